"""Harness for Azure Key Vault: the fake vault over HTTPS, driven by the real SDK.

``azure_keyvault`` (session) runs :class:`tests.fakes.azure_keyvault.FakeKeyVault` on a
free loopback port; ``backend_azure`` (function) empties it and hands the conformance
suite a :class:`Backend` whose out-of-band writes go through the REAL ``SecretClient``
(not our adapter), in the documented name and binary encodings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from secretsync.core.contract import SecretsClient
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.fakes.azure_keyvault import FakeKeyVault
from tests.harness.backends import Backend
from tests.harness.env import environ
from tests.harness.ports import closed_port

try:  # a plugin of every test session: it must import without the azure extra
    from azure.core.credentials import AccessToken
    from azure.keyvault.secrets import SecretClient
    from secretsync_providers.azure import factory
    from secretsync_providers.azure.client import BINARY_CONTENT_TYPE
    from secretsync_providers.azure.names import encode

    AZURE_SDK: str | None = None
except ImportError as exc:  # pragma: no cover - only without the azure extra
    AZURE_SDK = f"azure extra not installed: {exc}"

#: The vault the tests pretend to talk to; requests go to the fake (SECRETSYNC_AZURE_TEST_ENDPOINT).
VAULT_URL = "https://testvault.vault.azure.net"
#: Path-like names (the conformance suite uses them) need the opt-in escape encoding.
STORE_URL = "azure://testvault?nameEncoding=escape"


class FixedTokenCredential:
    """A real ``TokenCredential`` (azure-core's extension point) answering one token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def sdk_client(fake: FakeKeyVault, token: str | None = None) -> SecretClient:
    """The real SDK client on the fake, as a test's out-of-band writer."""
    return SecretClient(
        fake.url, FixedTokenCredential(token or fake.token), verify_challenge_resource=False,
        connection_verify=str(fake.ca_path), api_version="7.5", retry_total=0,
    )


def azure_config(fake: FakeKeyVault, **overrides: Any) -> dict[str, Any]:
    """Store config for the adapter on the fake. The fake itself is reached through the
    process environment (:func:`reaching`), as the controller is configured, never a field."""
    return {"vaultUrl": VAULT_URL, "authType": "accessToken", "nameEncoding": "escape", **overrides}


def reaching(url: str, ca_path: str) -> contextlib.AbstractContextManager[None]:
    """Clients opened in this block send their requests to ``url`` (the documented test hooks)."""
    return environ(SECRETSYNC_AZURE_TEST_ENDPOINT=url, SECRETSYNC_AZURE_TEST_CA_CERT=ca_path)


def open_azure(fake: FakeKeyVault, *, token: str | None = None, settings: ClientSettings | None = None,
               endpoint: str | None = None, **overrides: Any) -> SecretsClient:
    with reaching(endpoint or fake.url, str(fake.ca_path)):
        return factory.open(azure_config(fake, **overrides), settings or ClientSettings(),
                            {"accessToken": SecretValue(token or fake.token)})


def cli_env(fake: FakeKeyVault) -> dict[str, str]:
    """What ``secretsync secret ... azure://testvault`` needs to reach the fake."""
    return {
        "SECRETSYNC_AZURE_TEST_ENDPOINT": fake.url,
        "SECRETSYNC_AZURE_TEST_CA_CERT": str(fake.ca_path),
        "SECRETSYNC_AZURE_ACCESS_TOKEN": fake.token,
    }


@pytest.fixture(scope="session")
def azure_keyvault() -> Iterator[FakeKeyVault]:
    if AZURE_SDK:
        pytest.skip(AZURE_SDK)
    fake = FakeKeyVault().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_keyvault(azure_keyvault: FakeKeyVault) -> Iterator[FakeKeyVault]:
    """The session's fake vault, emptied (data, faults, request log) for this test, and
    reached by every Azure client this test opens (the process's test-hook environment)."""
    azure_keyvault.reset()
    with reaching(azure_keyvault.url, str(azure_keyvault.ca_path)):
        yield azure_keyvault


@pytest.fixture
def backend_azure(fake_keyvault: FakeKeyVault) -> Iterator[Backend]:
    fake = fake_keyvault
    raw = sdk_client(fake)

    def create(name: str, value: SecretValue, tags: Mapping[str, str] | None = None) -> None:
        if value.is_text:
            raw.set_secret(encode(name), value.reveal_text(), tags=dict(tags) if tags else None)
        else:
            raw.set_secret(encode(name), value.b64(), content_type=BINARY_CONTENT_TYPE,
                           tags=dict(tags) if tags else None)

    def delete(name: str) -> None:
        raw.begin_delete_secret(encode(name)).wait()
        raw.purge_deleted_secret(encode(name))

    yield Backend(
        "azure",
        client=lambda: open_azure(fake),
        create=create,
        delete=delete,
        bad_credentials_client=lambda: open_azure(fake, token="not-a-valid-token"),
        unreachable_client=lambda: open_azure(fake, endpoint=f"https://127.0.0.1:{closed_port()}"),
        url=STORE_URL,
        env=cli_env(fake),
    )
    raw.close()
