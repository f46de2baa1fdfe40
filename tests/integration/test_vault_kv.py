"""The Vault/OpenBao adapter against a real OpenBao dev server: KV v2 and v1 behaviour."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from secretsync.core.contract import ListFilter
from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Unavailable,
)
from secretsync.core.settings import ClientSettings, RateLimitSettings, TimeoutSettings
from secretsync.core.values import SecretValue
from tests.harness.ports import closed_port
from tests.harness.vault import KV1_MOUNT, OpenBao


def _name(prefix: str = "kv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}/app.db"


def test_put_get_round_trip_adds_numbered_versions(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name()
    assert client.put(name, SecretValue("one")).version == "1"
    assert client.put(name, SecretValue("two")).version == "2"
    assert client.get(name).reveal_text() == "two"
    assert client.get(name, version="1").reveal_text() == "one"
    fetched = client.get_versioned(name)
    assert (fetched.value.reveal_text(), fetched.version) == ("two", "2")
    with pytest.raises(NotFound):
        client.get(name, version="9")
    with pytest.raises(InvalidConfig):  # not a version number: a mistake, never "absent"
        client.get(name, version="latest-ish")


def test_value_is_stored_as_a_value_key_and_binary_as_base64(openbao: OpenBao) -> None:
    client = openbao.open()
    text, binary = _name(), _name()
    client.put(text, SecretValue("s3cr3t ünïcode"))
    client.put(binary, SecretValue(b"\x00\xff\xfe binary"))
    raw = openbao.raw()
    assert raw.secrets.kv.v2.read_secret_version(path=text, mount_point="secret",
                                                 raise_on_deleted_version=True)["data"]["data"] == {
        "value": "s3cr3t ünïcode"}
    stored = raw.secrets.kv.v2.read_secret_version(path=binary, mount_point="secret",
                                                   raise_on_deleted_version=True)["data"]["data"]
    assert set(stored) == {"value_b64"}
    assert client.get(binary).reveal() == b"\x00\xff\xfe binary"


def test_map_written_by_others_reads_as_json_and_property_selects_a_key(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name("foreign")
    openbao.kv2_write(name, {"username": "app", "password": "pw", "port": 5432, "value": "v"})
    whole = json.loads(client.get(name).reveal_text())
    assert whole == {"username": "app", "password": "pw", "port": 5432, "value": "v"}
    assert client.get(name, prop="password").reveal_text() == "pw"
    assert client.get(name, prop="port").reveal_text() == "5432"
    assert client.get(name, prop="value").reveal_text() == "v"
    with pytest.raises(NotFound):
        client.get(name, prop="missing")


def test_property_of_a_json_value_we_wrote(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name()
    client.put(name, SecretValue('{"db": {"user": "u"}, "value": "inner"}'))
    assert client.get(name, prop="db.user").reveal_text() == "u"
    assert client.get(name, prop="value").reveal_text() == "inner"


def test_describe_and_list_show_version_time_and_custom_metadata_tags(openbao: OpenBao) -> None:
    client = openbao.open()
    base = f"list-{uuid.uuid4().hex[:8]}"
    names = [f"{base}/a", f"{base}/deep/er/b.txt", f"{base}/deep/c"]
    for n in names:
        client.put(n, SecretValue("x"), tags={"team": "pay"} if n.endswith("c") else None)
    client.put(names[0], SecretValue("y"), tags={"team": "web"})
    meta = client.describe(names[0])
    assert meta.version == "2"
    assert meta.tags == {"team": "web"}
    assert meta.updated is not None and abs(time.time() - meta.updated.timestamp()) < 60
    listed = {m.name: m for m in client.list(ListFilter(prefix=f"{base}/"))}
    assert sorted(listed) == sorted(names)
    assert listed[names[0]].version == "2"
    by_tag = [m.name for m in client.list(ListFilter(prefix=f"{base}/", tags={"team": "pay"}))]
    assert by_tag == [f"{base}/deep/c"]
    by_prefix = [m.name for m in client.list(ListFilter(prefix=f"{base}/deep/er"))]
    assert by_prefix == [f"{base}/deep/er/b.txt"]


def test_list_cost_on_openbao_is_one_detailed_list_per_folder_and_no_metadata_reads(openbao: OpenBao) -> None:
    # Without LIST detailed-metadata (HashiCorp Vault) it is one LIST per folder plus one
    # metadata read per secret: tests/integration/test_vault_detailed_listing.py.
    settings = ClientSettings()
    client = openbao.open(settings=settings)
    base = f"cost-{uuid.uuid4().hex[:8]}"
    for i in range(4):
        client.put(f"{base}/sub/s{i}", SecretValue("x"))
    settings.calls.reset()
    assert len(list(client.list(ListFilter(prefix=f"{base}/")))) == 4
    assert settings.calls.total(operation="list") == 2  # base/ and base/sub/
    assert settings.calls.total(operation="read_metadata") == 0


def test_soft_delete_hides_the_secret_but_keeps_it_recoverable(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name("soft")
    client.put(name, SecretValue("v1"))
    client.put(name, SecretValue("v2"))
    client.delete(name)
    with pytest.raises(NotFound):
        client.get(name)
    with pytest.raises(NotFound):
        client.get(name, version="1")
    with pytest.raises(NotFound):
        client.describe(name)
    assert not client.exists(name)
    assert name not in [m.name for m in client.list(ListFilter(prefix=name.split("/")[0] + "/"))]
    with pytest.raises(NotFound):
        client.delete(name)
    # Recoverable out of band, as documented.
    openbao.raw().secrets.kv.v2.undelete_secret_versions(path=name, versions=[1, 2], mount_point="secret")
    assert client.get(name).reveal_text() == "v2"


def test_put_after_soft_delete_works_even_if_absent(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name("again")
    client.put(name, SecretValue("old"))
    client.delete(name)
    assert client.put(name, SecretValue("new"), if_absent=True).version == "2"
    assert client.get(name).reveal_text() == "new"
    with pytest.raises(Conflict):
        client.put(name, SecretValue("newer"), if_absent=True)


def test_force_delete_removes_every_version_and_the_metadata(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name("force")
    client.put(name, SecretValue("x"), tags={"a": "b"})
    client.delete(name, force=True)
    import hvac.exceptions

    with pytest.raises(hvac.exceptions.InvalidPath):
        openbao.raw().secrets.kv.v2.read_secret_metadata(path=name, mount_point="secret")
    with pytest.raises(NotFound):
        client.delete(name, force=True)
    assert client.put(name, SecretValue("fresh")).version == "1"


def test_destroy_removes_chosen_versions_only(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name("destroy")
    client.put(name, SecretValue("a"))
    client.put(name, SecretValue("b"))
    client.destroy(name, ["1"])
    with pytest.raises(NotFound):
        client.get(name, version="1")
    assert client.get(name).reveal_text() == "b"


def test_compare_and_set_uses_kv_cas(openbao: OpenBao) -> None:
    client = openbao.open()
    name = _name("cas")
    client.put(name, SecretValue("a"), if_absent=True)
    with pytest.raises(Conflict):
        client.put(name, SecretValue("b"), if_absent=True)
    with pytest.raises(Conflict):
        client.put(name, SecretValue("b"), expected_version="7")
    assert client.put(name, SecretValue("b"), expected_version="1").version == "2"
    with pytest.raises(Conflict):
        client.put(name, SecretValue("c"), expected_version="1")


def test_names_with_spaces_reserved_url_characters_and_unicode(openbao: OpenBao) -> None:
    client = openbao.open()
    base = f"odd-{uuid.uuid4().hex[:8]}"
    names = [f"{base}/with space", f"{base}/q?x=1#frag", f"{base}/per%cent+plus", f"{base}/ünï/cødé.key"]
    for i, n in enumerate(names):
        client.put(n, SecretValue(f"v{i}"))
    for i, n in enumerate(names):
        assert client.get(n).reveal_text() == f"v{i}"
    assert sorted(m.name for m in client.list(ListFilter(prefix=f"{base}/"))) == sorted(names)


@pytest.mark.parametrize("bad", ["/lead", "trail/", "a//b", "a/../b", "./a", "", "tab\there"])
def test_invalid_names_are_refused_before_any_call(openbao: OpenBao, bad: str) -> None:
    settings = ClientSettings()
    client = openbao.open({"kvVersion": 2}, settings=settings)
    with pytest.raises(InvalidConfig):
        client.put(bad, SecretValue("x"))
    assert settings.calls.total() == 0


def test_missing_mount_is_invalid_config_never_not_found(openbao: OpenBao) -> None:
    """A typo in the mount must not read as 'every secret is gone' (which would prune)."""
    for version in (None, 1, 2):
        client = openbao.open({"mount": f"nomount-{uuid.uuid4().hex[:6]}", "kvVersion": version})
        with pytest.raises(InvalidConfig):
            client.get("app/db")
        with pytest.raises(InvalidConfig):
            list(client.list())
        assert client.validate().status.value == "Error"


def test_kv_v1_mount_is_detected_and_works_without_versions(openbao: OpenBao) -> None:
    client = openbao.open({"mount": KV1_MOUNT})
    assert client.kv_version == 1
    caps = client.capabilities
    assert not caps.versions and not caps.tags and not caps.compare_and_set and not caps.soft_delete
    name = _name("v1")
    client.put(name, SecretValue("one"))
    client.put(name, SecretValue("two"))
    assert client.get(name).reveal_text() == "two"
    assert client.get_versioned(name).version is None
    assert client.describe(name).name == name
    assert name in [m.name for m in client.list(ListFilter(prefix=name.split("/")[0] + "/"))]
    with pytest.raises(Conflict):
        client.put(name, SecretValue("x"), if_absent=True)
    with pytest.raises(InvalidConfig):
        client.put(name, SecretValue("x"), tags={"a": "b"})
    with pytest.raises(InvalidConfig):
        client.put(name, SecretValue("x"), expected_version="1")
    with pytest.raises(InvalidConfig):
        client.get(name, version="1")
    client.delete(name)
    with pytest.raises(NotFound):
        client.get(name)
    with pytest.raises(NotFound):
        client.delete(name)


def test_prefix_makes_names_relative_to_a_folder(openbao: OpenBao) -> None:
    folder = f"team-{uuid.uuid4().hex[:8]}"
    client = openbao.open({"prefix": folder})
    client.put("db/password", SecretValue("pw"))
    assert openbao.open().get(f"{folder}/db/password").reveal_text() == "pw"
    assert [m.name for m in client.list()] == ["db/password"]


def test_bad_token_is_authentication_failed_and_policy_denial_is_permission_denied(openbao: OpenBao) -> None:
    raw = openbao.raw()
    raw.sys.create_or_update_policy(name="only-allowed", policy='path "secret/data/allowed/*" '
                                    '{ capabilities = ["read"] }')
    narrow = raw.auth.token.create(policies=["only-allowed"], ttl="5m")["auth"]["client_token"]
    openbao.open().put("allowed/x", SecretValue("ok"))
    limited = openbao.open(token=narrow)
    assert limited.get("allowed/x").reveal_text() == "ok"
    with pytest.raises(PermissionDenied):
        limited.get("forbidden/x")
    with pytest.raises(AuthenticationFailed):
        openbao.open(token="not-a-token").get("allowed/x")


def test_expired_static_token_is_authentication_failed(openbao: OpenBao) -> None:
    short = openbao.raw().auth.token.create(policies=["default"], ttl="1s", renewable=False)
    client = openbao.open(token=short["auth"]["client_token"])
    time.sleep(1.6)
    with pytest.raises(AuthenticationFailed):
        client.get("anything/x")


def test_unreachable_server_is_unavailable_quickly(openbao: OpenBao) -> None:
    settings = ClientSettings(timeouts=TimeoutSettings(connect=1, read=2, sdk_retries=1))
    client = openbao.open({"address": f"http://127.0.0.1:{closed_port()}"}, settings=settings)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        client.get("a/b")
    assert time.monotonic() - started < 3
    assert client.validate().status.value == "Error"


def test_https_against_a_plain_http_server_is_a_clear_config_error(openbao: OpenBao) -> None:
    client = openbao.open({"address": openbao.address.replace("http://", "https://")})
    with pytest.raises(InvalidConfig, match="tls=false"):
        client.get("a/b")


def test_no_sdk_exception_leaks_out(openbao: OpenBao) -> None:
    """Every failure mode surfaces as a secretsync error, with the SDK error only as __cause__."""
    name = _name("leak")
    ok = openbao.open()
    ok.put(name, SecretValue("x"))
    attempts = [
        lambda: ok.get("no/such/secret"),
        lambda: ok.get(name, version="99"),
        lambda: ok.put(name, SecretValue("y"), expected_version="5"),
        lambda: ok.put(name, SecretValue("y"), tags={"k" * 200: "v"}),
        lambda: ok.delete("no/such/secret"),
        lambda: openbao.open(token="bogus").get(name),
        lambda: openbao.open({"mount": "nope"}).get(name),
        lambda: openbao.open({"address": f"http://127.0.0.1:{closed_port()}"}).get(name),
        lambda: openbao.open({"address": openbao.address.replace("http:", "https:")}).get(name),
        lambda: list(openbao.open(token="bogus").list()),
    ]
    import hvac.exceptions
    import requests

    for attempt in attempts:
        with pytest.raises(ProviderError) as info:
            attempt()
        assert not isinstance(info.value, hvac.exceptions.VaultError | requests.RequestException)
        assert info.value.__cause__ is None or isinstance(
            info.value.__cause__, hvac.exceptions.VaultError | requests.RequestException | ProviderError)


def test_every_http_call_is_counted_and_rate_limited(openbao: OpenBao) -> None:
    settings = ClientSettings(rate_limit=RateLimitSettings(rate=20, burst=1))
    client = openbao.open({"kvVersion": 2}, settings=settings)
    name = _name("rl")
    started = time.monotonic()
    client.put(name, SecretValue("x"))
    for _ in range(4):
        client.get(name)
    elapsed = time.monotonic() - started
    snapshot = settings.calls.snapshot()
    assert snapshot[("vault", "read", "OK")] == 4
    assert snapshot[("vault", "write", "OK")] == 1
    total = settings.calls.total()
    assert elapsed >= (total - 1) / 20 * 0.9


def test_namespace_header_is_passed_through(openbao: OpenBao) -> None:
    raw = openbao.raw()
    ns = f"ns{uuid.uuid4().hex[:6]}"
    try:
        raw.adapter.post(f"/v1/sys/namespaces/{ns}")
    except Exception as exc:  # an OpenBao build without namespaces
        pytest.skip(f"namespaces unsupported: {exc}")
    import hvac

    in_ns = hvac.Client(url=openbao.address, token=openbao.root_token, namespace=ns)
    in_ns.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    client = openbao.open({"namespace": ns})
    client.put("scoped/x", SecretValue("in-namespace"))
    got = in_ns.secrets.kv.v2.read_secret_version(path="scoped/x", mount_point="secret",
                                                  raise_on_deleted_version=True)
    assert got["data"]["data"] == {"value": "in-namespace"}
    with pytest.raises(NotFound):
        openbao.open().get("scoped/x")


def test_list_with_a_prefix_lists_only_folders_that_can_match(openbao: OpenBao) -> None:
    settings = ClientSettings()
    client = openbao.open({"kvVersion": 2}, settings=settings)
    base = f"prune-{uuid.uuid4().hex[:8]}"
    for n in (f"{base}/a/x", f"{base}/b/y", f"{base}-sibling/z"):
        client.put(n, SecretValue("v"))
    settings.calls.reset()
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/a"))] == [f"{base}/a/x"]
    assert settings.calls.total(operation="list") == 2  # base/ and base/a/, never b/ or siblings
    assert [m.name for m in client.list(ListFilter(prefix=base))] == [f"{base}-sibling/z", f"{base}/a/x",
                                                                      f"{base}/b/y"]
