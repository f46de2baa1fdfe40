"""Every hvac / requests exception maps into the secretsync error tree (no server)."""

from __future__ import annotations

import pytest

pytest.importorskip("hvac")

import hvac.exceptions as hv
import requests
from secretsync_providers.vault.errors import map_error

from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Throttled,
    Unavailable,
)


@pytest.mark.parametrize(("exc", "expected"), [
    (hv.InvalidPath(errors=[]), NotFound),
    (hv.InvalidPath(errors=['no handler for route "nomount/data/x". route entry not found.']), InvalidConfig),
    (hv.InvalidPath("<html>404 Not Found</html>", text="<html>404 Not Found</html>"), InvalidConfig),
    (hv.Forbidden(errors=["permission denied"]), PermissionDenied),
    (hv.Unauthorized(errors=["unauthorized"]), AuthenticationFailed),
    (hv.RateLimitExceeded(errors=["request path \"x\": rate limit quota exceeded"]), Throttled),
    (hv.InvalidRequest(errors=["check-and-set parameter did not match the current version"]), Conflict),
    (hv.InvalidRequest(errors=["error parsing check-and-set parameter"]), InvalidConfig),
    (hv.InternalServerError(errors=["boom"]), Unavailable),
    (hv.InternalServerError(errors=["put failed due to value being too large; got 2000000 bytes"]),
     InvalidConfig),
    (hv.VaultDown(errors=["Vault is sealed"]), Unavailable),
    (hv.BadGateway(), Unavailable),
    (hv.VaultNotInitialized(), Unavailable),
    (hv.UnexpectedError(), Unavailable),
    (hv.PreconditionFailed(), Unavailable),
    (hv.ParamValidationError("bad"), InvalidConfig),
    (requests.exceptions.ConnectTimeout(), Unavailable),
    (requests.exceptions.ReadTimeout(), Unavailable),
    (requests.exceptions.ConnectionError(), Unavailable),
    (requests.exceptions.SSLError(), InvalidConfig),
    (requests.exceptions.InvalidURL(), InvalidConfig),
    (requests.exceptions.ChunkedEncodingError(), Unavailable),
])
def test_sdk_exception_maps_to_contract_error(exc: BaseException, expected: type[ProviderError]) -> None:
    mapped = map_error(exc, operation="read", key="app/db")
    assert type(mapped) is expected
    assert mapped.provider == "vault" and mapped.operation == "read" and mapped.key == "app/db"


def test_only_temporary_failures_are_retryable_and_only_404_is_not_found() -> None:
    assert map_error(hv.VaultDown(), operation="read").retryable
    assert map_error(requests.exceptions.ConnectionError(), operation="read").retryable
    assert not map_error(hv.Forbidden(errors=["permission denied"]), operation="read").retryable
    for exc in (hv.Forbidden(), hv.VaultDown(), requests.exceptions.ReadTimeout(), hv.InvalidRequest()):
        assert not isinstance(map_error(exc, operation="read"), NotFound)


def test_messages_carry_vault_errors_but_not_the_url_or_body() -> None:
    exc = hv.InvalidRequest(errors=["invalid request"], url="http://v/v1/secret/data/x",
                            text='{"data":{"value":"s3cr3t"}}')
    text = str(map_error(exc, operation="write", key="x"))
    assert "s3cr3t" not in text and "http://v" not in text
