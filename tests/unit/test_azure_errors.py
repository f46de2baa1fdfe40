"""SDK exceptions raised without any server (transport, credential) map onto the contract.

Status-code mapping (400/401/403/404/409/429/5xx) runs against the fake vault in
``tests/integration/test_azure_keyvault.py``, with real HTTP responses.
"""

from __future__ import annotations

import pytest

pytest.importorskip("azure.identity")

from azure.core.exceptions import (
    ClientAuthenticationError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    TooManyRedirectsError,
)
from azure.identity import CredentialUnavailableError
from secretsync_providers.azure.errors import map_azure_error

from secretsync.core.errors import AuthenticationFailed, InvalidConfig, ProviderError, Unavailable


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ServiceRequestError("Connection refused"), Unavailable),
        (ServiceRequestTimeoutError("connect timed out"), Unavailable),
        (ServiceResponseError("read timed out"), Unavailable),
        (TooManyRedirectsError([]), Unavailable),
        (ClientAuthenticationError("AADSTS7000215: Invalid client secret"), AuthenticationFailed),
        (CredentialUnavailableError("EnvironmentCredential: not configured\nmore lines"), AuthenticationFailed),
        (ValueError("The challenge resource 'vault.azure.net' does not match"), InvalidConfig),
        (RuntimeError("anything else"), Unavailable),
    ],
)
def test_sdk_exceptions_map_to_contract_errors(exc: BaseException, expected: type[ProviderError]) -> None:
    mapped = map_azure_error(exc, operation="get", key="db/password")
    assert type(mapped) is expected
    assert mapped.provider == "azure" and mapped.key == "db/password"


def test_mapped_messages_are_one_short_line() -> None:
    mapped = map_azure_error(CredentialUnavailableError("line one\n" + "x" * 1000), operation="get")
    assert "\n" not in str(mapped)
    assert len(str(mapped)) < 400
    assert "line one" in str(mapped)


def test_only_retryable_errors_come_from_outages() -> None:
    assert map_azure_error(ServiceRequestError("down"), operation="list").retryable
    assert not map_azure_error(ClientAuthenticationError("no"), operation="list").retryable
