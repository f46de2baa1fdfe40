"""The Azure Key Vault adapter against the fake vault, driven through the real SDK.

What the conformance suite does not cover: the Key Vault specifics (name mapping as
stored, base64 binary, soft delete / recover / purge, per-version tags, paging cost) and
the mapping of every service error onto the contract's error tree.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("azure.keyvault.secrets")

from secretsync_providers.azure.client import BINARY_CONTENT_TYPE

from secretsync.core.contract import ListFilter, ValidationStatus
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
from secretsync.core.registry import open_store
from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.fakes.azure_keyvault import SECRETS_USER, FakeKeyVault
from tests.harness.azure import STORE_URL, cli_env, open_azure, sdk_client


def test_store_url_opens_through_the_registry_and_round_trips(
    fake_keyvault: FakeKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in cli_env(fake_keyvault).items():
        monkeypatch.setenv(key, value)
    client = open_store(STORE_URL)
    try:
        put = client.put("smoke/db.password", SecretValue("pw-1"), tags={"team": "a"})
        assert client.get("smoke/db.password").reveal() == b"pw-1"
        assert [m.name for m in client.list()] == ["smoke/db.password"]
        assert client.describe("smoke/db.password").version == put.version
        client.delete("smoke/db.password")
        assert not client.exists("smoke/db.password")
    finally:
        client.close()


def test_names_are_stored_in_the_documented_encoding_and_listed_back(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    client.put("team/app.db_Main-x", SecretValue("v"))
    assert fake_keyvault.raw_names() == ["team-sapp-ddb-u-cmain--x"]
    assert [m.name for m in client.list()] == ["team/app.db_Main-x"]


def test_vault_names_made_by_other_tools_are_skipped_unless_verbatim(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    raw.set_secret("made-elsewhere", "x")  # "-e" is no escape: not an encoded name
    raw.set_secret("plain", "y")
    escaped = open_azure(fake_keyvault)
    assert [m.name for m in escaped.list()] == ["plain"]
    verbatim = open_azure(fake_keyvault, nameEncoding="verbatim")
    assert sorted(m.name for m in verbatim.list()) == ["made-elsewhere", "plain"]
    assert verbatim.get("made-elsewhere").reveal() == b"x"
    with pytest.raises(InvalidConfig, match="letters, digits and dashes"):
        verbatim.put("a/b", SecretValue("z"))


def test_binary_values_are_stored_base64_with_a_content_type_marker(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    data = b"\x00\xff\xfebinary"
    client.put("bin", SecretValue(data))
    client.put("text", SecretValue("plain text"))
    raw = sdk_client(fake_keyvault)
    stored = raw.get_secret("bin")
    assert stored.properties.content_type == BINARY_CONTENT_TYPE
    assert stored.value == SecretValue(data).b64()
    assert raw.get_secret("text").value == "plain text"
    assert raw.get_secret("text").properties.content_type is None
    assert client.get("bin").reveal() == data


def test_too_large_value_is_refused_before_any_request(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    assert client.capabilities.max_value_bytes == 25 * 1024
    with pytest.raises(InvalidConfig, match="at most 25600 bytes") as info:
        client.put("big", SecretValue("x" * (25 * 1024 + 1)))
    assert info.value.key == "big"
    with pytest.raises(InvalidConfig, match="as base64"):
        client.put("bigbin", SecretValue(b"\xff" * 20000))  # 26668 bytes once base64
    assert fake_keyvault.requests() == []
    client.put("fits", SecretValue("x" * 25 * 1024))


def test_put_without_tags_keeps_the_current_tags_on_the_new_version(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    client.put("tagged", SecretValue("v1"), tags={"owner": "payments"})
    client.put("tagged", SecretValue("v2"))
    assert dict(client.describe("tagged").tags) == {"owner": "payments"}
    client.put("tagged", SecretValue("v3"), tags={"owner": "search"})
    assert dict(client.describe("tagged").tags) == {"owner": "search"}
    assert [dict(m.tags) for m in client.list()] == [{"owner": "search"}]


def test_delete_is_soft_and_put_on_the_deleted_name_recovers_it(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    first = client.put("soft", SecretValue("old"))
    client.delete("soft")
    assert fake_keyvault.deleted_names() == ["soft"]
    with pytest.raises(NotFound):
        client.get("soft")
    second = client.put("soft", SecretValue("new"))
    assert fake_keyvault.deleted_names() == []
    assert client.get("soft").reveal() == b"new"
    assert first.version is not None
    assert client.get("soft", version=first.version).reveal() == b"old"  # recovered history
    assert second.version != first.version


def test_force_delete_and_purge_on_delete_leave_nothing_recoverable(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    client.put("forced", SecretValue("v"))
    client.delete("forced", force=True)
    assert fake_keyvault.deleted_names() == [] and fake_keyvault.raw_names() == []

    purging = open_azure(fake_keyvault, purgeOnDelete="true")
    purging.put("purged", SecretValue("v"))
    purging.delete("purged")
    assert fake_keyvault.deleted_names() == []


def test_force_delete_purges_a_secret_that_is_already_soft_deleted(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    client.put("twice", SecretValue("v"))
    client.delete("twice")
    with pytest.raises(NotFound):
        client.delete("twice")  # soft delete of a soft-deleted secret: it is absent
    client.delete("twice", force=True)
    assert fake_keyvault.deleted_names() == []


def test_list_pages_cost_one_call_per_25_secrets(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    for i in range(60):
        raw.set_secret(f"s{i:02d}", "x")
    settings = ClientSettings()
    client = open_azure(fake_keyvault, settings=settings)
    metas = list(client.list())
    assert len(metas) == 60
    assert all(m.version is None and m.updated is not None for m in metas)
    assert settings.calls.total("azure", "list") == 3
    assert len([r for r in fake_keyvault.requests("GET", "/secrets") if r[1] == "/secrets"
                and r[2] == 200]) == 3


def test_list_is_lazy_and_validate_reads_one_page(fake_keyvault: FakeKeyVault) -> None:
    raw = sdk_client(fake_keyvault)
    for i in range(30):
        raw.set_secret(f"s{i:02d}", "x")
    settings = ClientSettings()
    client = open_azure(fake_keyvault, settings=settings)
    assert client.validate().status is ValidationStatus.READY
    assert settings.calls.total("azure", "list") == 1


def test_get_many_reads_in_parallel_and_reports_missing_per_name(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    for i in range(10):
        client.put(f"m/{i}", SecretValue(f"v{i}"), tags={})
    got = client.get_many([*(f"m/{i}" for i in range(10)), "m/missing", "x" * 200])
    assert all(got[f"m/{i}"].value.reveal() == f"v{i}".encode() for i in range(10))  # type: ignore[union-attr]
    assert isinstance(got["m/missing"], NotFound)
    assert isinstance(got["x" * 200], InvalidConfig)  # too long for Key Vault: per name


def test_a_disabled_secret_is_permission_denied_never_not_found(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    client.put("off", SecretValue("v"))
    sdk_client(fake_keyvault).update_secret_properties("off", enabled=False)
    with pytest.raises(PermissionDenied):
        client.get("off")


def test_a_read_only_identity_gets_permission_denied_on_write(fake_keyvault: FakeKeyVault) -> None:
    fake_keyvault.add_token("secrets-user-token", SECRETS_USER)
    open_azure(fake_keyvault).put("ro", SecretValue("v"), tags={})
    reader = open_azure(fake_keyvault, token="secrets-user-token")
    assert reader.get("ro").reveal() == b"v"
    assert [m.name for m in reader.list()] == ["ro"]
    with pytest.raises(PermissionDenied, match="setSecret"):
        reader.put("ro", SecretValue("w"), tags={})
    with pytest.raises(PermissionDenied):
        reader.delete("ro")


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "BadParameter", InvalidConfig),
        (401, "Unauthorized", AuthenticationFailed),
        (403, "Forbidden", PermissionDenied),
        (404, "SecretNotFound", NotFound),
        (409, "Conflict", Conflict),
        (500, "InternalServerError", Unavailable),
        (503, "ServiceUnavailable", Unavailable),
    ],
)
def test_service_errors_map_onto_the_contract_and_no_sdk_exception_leaks(
    fake_keyvault: FakeKeyVault, status: int, code: str, expected: type[ProviderError]
) -> None:
    client = open_azure(fake_keyvault)
    client.put("e", SecretValue("v"), tags={})
    fake_keyvault.inject(status, code, method="GET", path="^/secrets/e", times=5)
    with pytest.raises(ProviderError) as info:
        client.get("e")
    exc = info.value
    assert type(exc) is expected
    assert not type(exc).__module__.startswith("azure")
    assert type(exc.__cause__).__module__.startswith("azure."), "mapped with raise ... from exc"
    assert exc.provider == "azure" and exc.operation == "get" and exc.key == "e"
    assert code in str(exc)


def test_throttling_is_throttled_with_the_retry_after_the_vault_sent(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault)
    client.put("t", SecretValue("v"), tags={})
    fake_keyvault.throttle(retry_after=7, method="GET")
    start = time.monotonic()
    with pytest.raises(Throttled) as info:
        client.get("t")
    assert time.monotonic() - start < 3, "the SDK must not sleep the Retry-After itself"
    assert info.value.retry_after == 7 and info.value.retryable
    assert client.get("t").reveal() == b"v"


def test_a_slow_vault_fails_as_unavailable_within_the_read_timeout(fake_keyvault: FakeKeyVault) -> None:
    settings = ClientSettings(timeouts=TimeoutSettings(connect=1, read=0.5, sdk_retries=0))
    client = open_azure(fake_keyvault, settings=settings)
    client.put("slow", SecretValue("v"), tags={})
    fake_keyvault.slow(3, method="GET")
    start = time.monotonic()
    with pytest.raises(Unavailable):
        client.get("slow")
    assert time.monotonic() - start < 2.5


def test_wrong_token_is_authentication_failed_and_validate_reports_it(fake_keyvault: FakeKeyVault) -> None:
    client = open_azure(fake_keyvault, token="wrong")
    with pytest.raises(AuthenticationFailed, match="AKV10032"):
        list(client.list(ListFilter()))
    validation = client.validate()
    assert validation.status is ValidationStatus.ERROR
    assert "AKV10032" in validation.message


def test_a_tls_certificate_from_an_unknown_ca_is_refused(fake_keyvault: FakeKeyVault, tmp_path: Path) -> None:
    other = FakeKeyVault(workdir=tmp_path / "other")  # a CA the fake's certificate is not from
    settings = ClientSettings(timeouts=TimeoutSettings(connect=1, read=2, sdk_retries=0))
    client = open_azure(fake_keyvault, caCert=str(other.ca_path), settings=settings)
    with pytest.raises(Unavailable, match=r"(?i)certificate"):
        client.get("x")


def test_every_http_call_is_counted_and_rate_limited(fake_keyvault: FakeKeyVault) -> None:
    settings = ClientSettings(rate_limit=RateLimitSettings(rate=20, burst=1))
    client = open_azure(fake_keyvault, settings=settings)
    start = time.monotonic()
    client.put("r", SecretValue("v"), tags={})
    for _ in range(5):
        client.get("r")
    assert time.monotonic() - start >= 0.25  # 6 calls at 20/s with no burst
    snapshot = settings.calls.snapshot()
    assert snapshot[("azure", "put", "OK")] == 1
    assert snapshot[("azure", "get", "OK")] == 5
