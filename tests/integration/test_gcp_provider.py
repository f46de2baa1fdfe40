"""The GCP adapter against the fake Secret Manager server, through the real SDK and a real socket."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from google.cloud.secretmanager_v1 import types

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
from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.fakes.gcp_secretmanager import sdk_client
from tests.harness.gcp import PROJECT, gcp_client


@pytest.fixture
def fake(gcp_server):
    return gcp_server


@pytest.fixture
def settings():
    return ClientSettings(timeouts=TimeoutSettings(connect=2.0, read=3.0, sdk_retries=1))


@pytest.fixture
def client(fake, settings):
    c = gcp_client(fake.address, fake.token, settings)
    yield c
    c.close()


@pytest.fixture
def sdk(fake):
    c = sdk_client(fake.address, fake.token)
    yield c
    c.transport.close()


def test_put_get_describe_list_delete_round_trip(client, fake):
    result = client.put("team/app.db", SecretValue("s3cr3t"), tags={"env": "prod"})
    assert result.version == "1"
    assert client.get("team/app.db").reveal_text() == "s3cr3t"
    meta = client.describe("team/app.db")
    assert (meta.name, meta.version, dict(meta.tags)) == ("team/app.db", "1", {"env": "prod"})
    assert meta.updated is not None
    assert [m.name for m in client.list()] == ["team/app.db"]
    assert fake.secret_ids() == ["team_2F_app_2E_db"]
    client.delete("team/app.db")
    assert not client.exists("team/app.db")
    with pytest.raises(NotFound):
        client.get("team/app.db")


def test_second_put_adds_a_version_and_old_versions_stay_readable(client):
    client.put("db", SecretValue("one"))
    assert client.put("db", SecretValue("two")).version == "2"
    assert client.get("db").reveal_text() == "two"
    assert client.get("db", version="1").reveal_text() == "one"
    assert client.get_versioned("db").version == "2"
    with pytest.raises(NotFound):
        client.get("db", version="9")


def test_binary_and_64kib_values_are_native(client):
    blob = bytes(range(256)) * 256  # exactly 64 KiB
    client.put("blob", SecretValue(blob))
    assert client.get("blob").reveal() == blob
    with pytest.raises(InvalidConfig):
        client.put("blob", SecretValue(blob + b"x"))


def test_out_of_band_names_with_underscores_and_escapes_list_as_names(client, sdk):
    for secret_id in ("db_password", "team_2F_api_2E_key", "API-KEY"):
        sdk.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id, secret=types.Secret(
            replication=types.Replication(automatic=types.Replication.Automatic())))
        sdk.add_secret_version(parent=f"projects/{PROJECT}/secrets/{secret_id}",
                               payload=types.SecretPayload(data=b"v"))
    assert sorted(m.name for m in client.list()) == ["API-KEY", "db_password", "team/api.key"]
    assert client.get("team/api.key").reveal() == b"v"


def test_json_property_is_extracted(client):
    client.put("cfg", SecretValue('{"user": "app", "db": {"port": 5432}}'))
    assert client.get("cfg", prop="user").reveal_text() == "app"
    assert client.get("cfg", prop="db.port").reveal_text() == "5432"
    with pytest.raises(NotFound):
        client.get("cfg", prop="missing")


def test_latest_disabled_version_falls_back_to_newest_enabled(client):
    client.put("rot", SecretValue("v1"))
    client.put("rot", SecretValue("v2"))
    client.disable_version("rot", "2")
    fetched = client.get_versioned("rot")
    assert (fetched.value.reveal_text(), fetched.version) == ("v1", "1")
    assert client.describe("rot").version == "1"
    with pytest.raises(Conflict):  # disabled: exists, may be re-enabled, never a prune
        client.get("rot", version="2")
    client.enable_version("rot", "2")
    assert client.get("rot").reveal_text() == "v2"


@pytest.mark.parametrize("state", ["disable", "destroy"])
def test_latest_or_fail_refuses_a_disabled_or_destroyed_latest_without_a_not_found(fake, settings, state):
    """ESO's default secretVersionSelectionPolicy: never an older value, and never NotFound
    (which could prune the Kubernetes Secret) while older versions exist."""
    strict = gcp_client(fake.address, fake.token, settings, secretVersionSelectionPolicy="LatestOrFail")
    strict.put("pinned", SecretValue("v1"))
    strict.put("pinned", SecretValue("v2"))
    getattr(strict, f"{state}_version")("pinned", "2")
    with pytest.raises(Conflict, match="LatestOrFail"):
        strict.get("pinned")
    assert type(strict.get_many(["pinned"])["pinned"]) is Conflict
    fetching = gcp_client(fake.address, fake.token, settings, secretVersionSelectionPolicy="LatestOrFetch")
    assert fetching.get("pinned").reveal_text() == "v1"
    strict.close()
    fetching.close()


def test_destroyed_version_reads_as_not_found(client):
    client.put("gone", SecretValue("v1"))
    client.put("gone", SecretValue("v2"))
    client.destroy_version("gone", "2")
    with pytest.raises(NotFound):
        client.get("gone", version="2")
    assert client.get("gone").reveal_text() == "v1"
    client.destroy_version("gone", "1")
    with pytest.raises(NotFound):
        client.get("gone")
    assert client.versions("gone") == [("2", "DESTROYED"), ("1", "DESTROYED")]


def test_only_disabled_versions_is_a_conflict_not_a_not_found(client):
    client.put("off", SecretValue("v1"))
    client.disable_version("off", "1")
    with pytest.raises(Conflict):
        client.get("off")
    assert client.describe("off").version is None


def test_if_absent_conflicts_when_the_secret_exists(client):
    client.put("once", SecretValue("a"), if_absent=True)
    with pytest.raises(Conflict):
        client.put("once", SecretValue("b"), if_absent=True)
    assert client.get("once").reveal_text() == "a"


def test_concurrent_if_absent_writers_exactly_one_wins(client):
    results: list[str] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        try:
            client.put("race", SecretValue(f"w{i}"), if_absent=True)
            outcome = "ok"
        except Conflict:
            outcome = "conflict"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    assert len(client.versions("race")) == 1


def test_expected_version_is_checked_before_writing(client):
    client.put("cas", SecretValue("a"))
    assert client.put("cas", SecretValue("b"), expected_version="1").version == "2"
    with pytest.raises(Conflict):
        client.put("cas", SecretValue("c"), expected_version="1")
    with pytest.raises(Conflict):
        client.put("new-one", SecretValue("c"), expected_version="1")


def test_tags_become_labels_and_filter_server_side(client, fake, sdk):
    client.put("a", SecretValue("1"), tags={"team": "payments", "env": "prod"})
    client.put("b", SecretValue("2"), tags={"team": "search"})
    client.put("c", SecretValue("3"))
    secret = sdk.get_secret(name=f"projects/{PROJECT}/secrets/a")
    assert dict(secret.labels) == {"team": "payments", "env": "prod"}
    fake.calls.clear()
    assert [m.name for m in client.list(ListFilter(tags={"team": "payments"}))] == ["a"]
    # The filter ran on the server: only the match cost a version lookup.
    assert fake.calls["ListSecretVersions"] == 1
    client.put("a", SecretValue("1b"), tags={"team": "core"})
    assert dict(client.describe("a").tags) == {"team": "core"}
    assert list(client.list(ListFilter(tags={"Team": "x"}))) == []


def test_tags_that_cannot_be_labels_are_rejected_naming_the_tag(client):
    with pytest.raises(InvalidConfig, match="'Owner'"):
        client.put("x", SecretValue("v"), tags={"Owner": "me"})
    with pytest.raises(InvalidConfig, match="'env'"):
        client.put("x", SecretValue("v"), tags={"env": "Prod Env"})
    assert not client.exists("x")


def test_prefix_and_regex_filters(client, fake):
    for name in ("app/db.password", "app/api_key", "app_other", "web/token"):
        client.put(name, SecretValue("v"))
    fake.calls.clear()
    assert sorted(m.name for m in client.list(ListFilter(prefix="app/"))) == ["app/api_key", "app/db.password"]
    assert fake.calls["ListSecretVersions"] == 2
    assert [m.name for m in client.list(ListFilter(prefix="app_"))] == ["app_other"]
    assert [m.name for m in client.list(ListFilter(name_regex=r"token$"))] == ["web/token"]


def test_list_pages_through_every_secret(client, fake, monkeypatch):
    import secretsync_providers.gcp.client as gcp_client_module

    monkeypatch.setattr(gcp_client_module, "LIST_PAGE_SIZE", 3)
    names = {f"s{i:02d}/x" for i in range(10)}
    for name in names:
        client.put(name, SecretValue("v"))
    fake.calls.clear()
    listed = list(client.list())
    assert {m.name for m in listed} == names
    assert all(m.version == "1" for m in listed)
    assert fake.calls["ListSecrets"] == 4  # ceil(10 / 3)
    assert fake.calls["ListSecretVersions"] == 10  # one per secret: the documented cost


def test_every_rpc_is_counted_and_rate_limited(fake):
    settings = ClientSettings(rate_limit=RateLimitSettings(rate=1000, burst=1))
    c = gcp_client(fake.address, fake.token, settings)
    c.put("counted", SecretValue("v"))
    settings.calls.reset()
    c.get("counted")
    assert settings.calls.snapshot() == {("gcp", "AccessSecretVersion", "OK"): 1}
    c.describe("counted")
    assert settings.calls.total("gcp") == 3
    c.close()


def test_bad_token_is_authentication_failed(fake):
    c = gcp_client(fake.address, "wrong-token")
    with pytest.raises(AuthenticationFailed):
        c.get("x")
    assert c.validate().status is ValidationStatus.ERROR
    c.close()


def test_missing_token_is_authentication_failed(fake):
    c = gcp_client(fake.address, None)
    with pytest.raises(AuthenticationFailed):
        list(c.list())
    c.close()


def test_unreachable_endpoint_is_unavailable_fast(settings):
    from tests.harness.ports import closed_port

    c = gcp_client(f"127.0.0.1:{closed_port()}", "t", settings)
    start = time.monotonic()
    with pytest.raises(Unavailable):
        c.get("x")
    assert time.monotonic() - start < 5
    assert c.validate().status is ValidationStatus.ERROR
    c.close()


def test_hanging_endpoint_times_out_as_unavailable(client, fake):
    client.put("slow", SecretValue("v"))
    fake.delay("AccessSecretVersion", 5.0)
    start = time.monotonic()
    with pytest.raises(Unavailable):
        client.get("slow")
    assert time.monotonic() - start < 4.5  # one read timeout (3 s), a deadline is not retried


def test_quota_exhaustion_is_throttled_with_the_server_delay(client, fake):
    client.put("q", SecretValue("v"))
    fake.fail_next("AccessSecretVersion", grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=1.5)
    with pytest.raises(Throttled) as info:
        client.get("q")
    assert info.value.retry_after == pytest.approx(1.5)
    assert info.value.retryable


def test_a_passing_unavailable_read_is_retried_once(client, fake):
    client.put("flaky", SecretValue("v"))
    fake.fail_next("AccessSecretVersion", grpc.StatusCode.UNAVAILABLE)
    assert client.get("flaky").reveal_text() == "v"


def test_permission_denied_on_one_secret_does_not_fail_the_batch(client, fake):
    client.put("open", SecretValue("1"))
    client.put("locked", SecretValue("2"))
    fake.deny("secretmanager.versions.access", f"projects/{PROJECT}/secrets/locked")
    out = client.get_many(["open", "locked", "missing"])
    assert out["open"].value.reveal_text() == "1"
    assert isinstance(out["locked"], PermissionDenied)
    assert isinstance(out["missing"], NotFound)


def test_unknown_project_is_permission_denied_not_not_found(fake):
    c = gcp_client(fake.address, fake.token, project="someone-elses")
    with pytest.raises(PermissionDenied):
        c.get("x")
    c.close()


def test_corrupted_payload_fails_the_crc32c_check(client, fake, canary):
    client.put("crc", SecretValue(canary))
    fake.corrupt_next_access()
    with pytest.raises(Unavailable, match="CRC32C") as info:
        client.get("crc")
    assert canary not in str(info.value)


@pytest.mark.parametrize("code", [
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.DATA_LOSS, grpc.StatusCode.OUT_OF_RANGE,
])
def test_no_sdk_exception_leaks_from_any_operation(client, fake, code, canary):
    client.put("leak", SecretValue(canary))
    operations = {
        "get": lambda: client.get("leak"),
        "describe": lambda: client.describe("leak"),
        "list": lambda: list(client.list()),
        "put": lambda: client.put("leak", SecretValue(canary)),
        "delete": lambda: client.delete("leak"),
        "exists": lambda: client.exists("leak"),
    }
    for op, call in operations.items():
        fake.fail_next(None, code, times=3)
        try:
            call()
        except ProviderError as exc:
            assert exc.provider == "gcp", op
            assert canary not in str(exc) and canary not in repr(exc)
        except Exception as exc:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{op}: {type(exc).__module__}.{type(exc).__name__} leaked for {code.name}")
        fake.reset()
        client.put("leak", SecretValue(canary))


def test_regional_secrets_use_the_location_parent(fake):
    c = gcp_client(fake.address, fake.token, location="europe-west1")
    c.put("reg/one", SecretValue("v"))
    assert c.get("reg/one").reveal_text() == "v"
    assert [m.name for m in c.list()] == ["reg/one"]
    assert fake.secret_ids() == ["reg_2F_one"]
    global_client = gcp_client(fake.address, fake.token)
    assert list(global_client.list()) == []
    c.close()
    global_client.close()


def test_if_absent_put_leaves_no_empty_secret_when_adding_the_value_fails(client, fake):
    fake.fail_next("AddSecretVersion", grpc.StatusCode.INTERNAL)
    with pytest.raises(Unavailable):
        client.put("shell", SecretValue("v"), if_absent=True)
    assert not client.exists("shell")
    client.put("shell", SecretValue("v"), if_absent=True)
    assert client.get("shell").reveal_text() == "v"


def test_a_prefix_store_sees_only_its_folder_with_relative_names(fake):
    scoped = gcp_client(fake.address, fake.token, prefix="team")
    whole = gcp_client(fake.address, fake.token)
    scoped.put("db.password", SecretValue("v"))
    whole.put("other/x", SecretValue("w"))
    whole.put("teamster", SecretValue("w"))
    assert sorted(m.name for m in whole.list()) == ["other/x", "team/db.password", "teamster"]
    assert [m.name for m in scoped.list()] == ["db.password"]
    assert [m.name for m in scoped.list(ListFilter(prefix="db"))] == ["db.password"]
    assert whole.get("team/db.password").reveal_text() == "v"
    assert not scoped.exists("other/x")
    scoped.close()
    whole.close()
