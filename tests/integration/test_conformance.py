"""One conformance suite that every backend passes: memory, file, AWS (moto), GCP (fake),
Azure (fake) and Vault (OpenBao).

Each backend supplies a ``Backend`` harness (``tests/harness/*.py``): a client factory plus
out-of-band ``create``/``delete``, as External Secrets Operator's e2e suites do. Tests
branch on *declared* capabilities only, never on the backend's name.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator

import pytest

from secretsync.core.contract import Fetched, ListFilter, SecretsClient, ValidationStatus
from secretsync.core.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidConfig,
    NotFound,
    ProviderError,
    SecretSyncError,
    Unavailable,
)
from secretsync.core.values import SecretValue
from tests.harness.backends import Backend, unique_name

BACKENDS = ["memory", "file", "aws", "gcp", "azure", "vault"]

#: A dead endpoint must fail as Unavailable within this many seconds.
UNREACHABLE_BOUND_S = 20.0


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    try:
        return request.getfixturevalue(f"backend_{request.param}")
    except pytest.FixtureLookupError:
        pytest.fail(f"no harness fixture backend_{request.param}")


@pytest.fixture
def client(backend: Backend) -> Iterator[SecretsClient]:
    c = backend.client()
    yield c
    c.close()


def _wait_listed(client: SecretsClient, name: str, present: bool = True, timeout: float = 10.0) -> None:
    """Some backends list eventually (none of ours today); keep the suite honest but robust."""
    deadline = time.monotonic() + timeout
    while True:
        names = {m.name for m in client.list(ListFilter(prefix=name.split("/")[0]))}
        if (name in names) == present or time.monotonic() > deadline:
            assert (name in names) == present, f"{name} listed={name in names}, expected {present}"
            return
        time.sleep(0.2)


def test_put_then_get_returns_the_same_value(client: SecretsClient) -> None:
    name = unique_name()
    client.put(name, SecretValue("s3cr3t-value"))
    assert client.get(name) == SecretValue("s3cr3t-value")


def test_get_of_an_absent_secret_is_not_found(client: SecretsClient) -> None:
    with pytest.raises(NotFound):
        client.get(unique_name("absent"))


def test_secret_created_out_of_band_is_readable(backend: Backend, client: SecretsClient) -> None:
    name = unique_name("oob")
    backend.create(name, SecretValue("from-the-sdk"), None)
    assert client.get(name).reveal() == b"from-the-sdk"
    assert client.exists(name)


def test_new_versions_are_kept_and_readable(client: SecretsClient) -> None:
    name = unique_name("ver")
    first = client.put(name, SecretValue("v1"))
    second = client.put(name, SecretValue("v2"))
    assert first.version != second.version
    assert client.get(name).reveal() == b"v2"
    assert client.describe(name).version == second.version
    if client.capabilities.versions:
        assert first.version is not None
        assert client.get(name, version=first.version).reveal() == b"v1"
        with pytest.raises(NotFound):
            client.get(name, version="999999")


def test_list_returns_metadata_and_never_values(client: SecretsClient) -> None:
    name = unique_name("lst")
    put = client.put(name, SecretValue("listed-value"))
    _wait_listed(client, name)
    metas = [m for m in client.list(ListFilter(prefix=name.split("/")[0])) if m.name == name]
    assert len(metas) == 1
    meta = metas[0]
    if client.capabilities.versions_in_list:
        assert meta.version == put.version
    else:
        assert meta.version is None
        assert client.describe(name).version == put.version
    assert meta.updated is not None
    assert "listed-value" not in repr(meta) and "listed-value" not in json.dumps(meta.as_dict())


def test_list_filters_by_prefix_and_regex(client: SecretsClient) -> None:
    base = unique_name("flt").split("/")[0]
    client.put(f"{base}/one", SecretValue("1"))
    client.put(f"{base}/two", SecretValue("2"))
    client.put(f"{base}-other/three", SecretValue("3"))
    names = {m.name for m in client.list(ListFilter(prefix=f"{base}/"))}
    assert names == {f"{base}/one", f"{base}/two"}
    names = {m.name for m in client.list(ListFilter(prefix=base, name_regex=r"/t\w+$"))}
    assert names == {f"{base}/two", f"{base}-other/three"}


def test_tags_are_stored_and_filter_the_list(client: SecretsClient) -> None:
    if not client.capabilities.tags:
        pytest.skip("backend declares no tags")
    base = unique_name("tag").split("/")[0]
    client.put(f"{base}/a", SecretValue("a"), tags={"team": "payments", "env": "prod"})
    client.put(f"{base}/b", SecretValue("b"), tags={"team": "search"})
    assert dict(client.describe(f"{base}/a").tags) == {"team": "payments", "env": "prod"}
    names = {m.name for m in client.list(ListFilter(prefix=base, tags={"team": "payments"}))}
    assert names == {f"{base}/a"}


def test_get_many_returns_values_and_per_name_not_found(client: SecretsClient) -> None:
    base = unique_name("batch").split("/")[0]
    names = [f"{base}/k{i}" for i in range(25)]  # more than one AWS batch (20)
    for i, n in enumerate(names):
        client.put(n, SecretValue(f"value-{i}"))
    missing = f"{base}/missing"
    got = client.get_many([*names, missing])
    for i, n in enumerate(names):
        item = got[n]
        assert isinstance(item, Fetched), f"{n}: {item!r}"
        assert item.value.reveal() == f"value-{i}".encode()
    assert isinstance(got[missing], NotFound)


def test_delete_makes_the_secret_absent_and_the_name_reusable(client: SecretsClient) -> None:
    name = unique_name("del")
    client.put(name, SecretValue("doomed"))
    client.delete(name)
    assert not client.exists(name)
    with pytest.raises(NotFound):
        client.get(name)
    _wait_listed(client, name, present=False)
    client.put(name, SecretValue("reborn"))
    assert client.get(name).reveal() == b"reborn"


def test_delete_of_an_absent_secret_is_not_found(client: SecretsClient) -> None:
    with pytest.raises(NotFound):
        client.delete(unique_name("nodel"), force=True)


def test_exists_is_false_for_absent_and_true_for_present(client: SecretsClient) -> None:
    name = unique_name("ex")
    assert client.exists(name) is False
    client.put(name, SecretValue("here"))
    assert client.exists(name) is True


def test_binary_values_round_trip(client: SecretsClient) -> None:
    if not client.capabilities.binary:
        pytest.skip("backend declares no binary values")
    name = unique_name("bin")
    data = bytes(range(256)) + b"\x00\xff\xfe"
    client.put(name, SecretValue(data))
    assert client.get(name).reveal() == data


def test_unicode_values_round_trip(client: SecretsClient) -> None:
    name = unique_name("uni")
    text = "pässwörd-密码-🔑-\u00e9"
    client.put(name, SecretValue(text))
    assert client.get(name).reveal_text() == text


def test_64k_values_round_trip_or_are_refused_clearly(client: SecretsClient) -> None:
    name = unique_name("big")
    data = ("x" * 1023 + "\n") * 64  # 64 KiB of text
    limit = getattr(client.capabilities, "max_value_bytes", None)
    if limit is not None and limit < len(data.encode()):
        with pytest.raises(InvalidConfig) as info:
            client.put(name, SecretValue(data))
        assert "x" * 50 not in str(info.value)
        data = data[: limit - 64]
    client.put(name, SecretValue(data))
    assert client.get(name).reveal_text() == data


def test_names_with_slashes_and_dots_round_trip_through_list(client: SecretsClient) -> None:
    base = unique_name("nm").split("/")[0]
    name = f"{base}/team.a/db.password-x_y"
    client.put(name, SecretValue("v"))
    assert client.get(name).reveal() == b"v"
    assert name in {m.name for m in client.list(ListFilter(prefix=base))}


def test_json_property_is_extracted(client: SecretsClient) -> None:
    name = unique_name("json")
    client.put(name, SecretValue(json.dumps({"user": "app", "password": "pw-123", "nested": {"k": 1}})))
    assert client.get(name, prop="password").reveal() == b"pw-123"
    assert client.get(name, prop="nested.k").reveal() == b"1"
    with pytest.raises(NotFound):
        client.get(name, prop="nope")


def test_put_if_absent_conflicts_when_present(client: SecretsClient) -> None:
    name = unique_name("abs")
    client.put(name, SecretValue("first"), if_absent=True)
    with pytest.raises(Conflict):
        client.put(name, SecretValue("second"), if_absent=True)
    assert client.get(name).reveal() == b"first"


def test_stale_expected_version_conflicts(client: SecretsClient) -> None:
    name = unique_name("cas")
    first = client.put(name, SecretValue("v1"))
    client.put(name, SecretValue("v2"))
    with pytest.raises(Conflict):
        client.put(name, SecretValue("v3"), expected_version=first.version)
    assert client.get(name).reveal() == b"v2"


def test_concurrent_writers_with_cas_never_lose_a_write(backend: Backend, client: SecretsClient) -> None:
    """Six writers race a compare-and-set on one version. Where the backend declares atomic
    CAS exactly one wins; elsewhere (best-effort check-then-write) at least one wins, every
    loser sees Conflict and nothing else, and the final value is a winner's."""
    name = unique_name("race")
    base = client.put(name, SecretValue("base"))
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: dict[int, str] = {}
    lock = threading.Lock()

    def write(i: int) -> None:
        c = backend.client()
        barrier.wait()
        try:
            c.put(name, SecretValue(f"writer-{i}"), expected_version=base.version)
            result = "won"
        except Conflict:
            result = "conflict"
        except SecretSyncError as exc:
            result = f"error:{type(exc).__name__}"
        with lock:
            outcomes[i] = result

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert set(outcomes.values()) <= {"won", "conflict"}, outcomes
    winners = {i for i, r in outcomes.items() if r == "won"}
    if client.capabilities.compare_and_set:
        assert len(winners) == 1, outcomes
    else:
        assert len(winners) >= 1, outcomes
    final = client.get(name).reveal_text()
    assert final in {f"writer-{i}" for i in winners}


def test_bad_credentials_raise_authentication_failed(backend: Backend) -> None:
    if backend.bad_credentials_client is None:
        pytest.skip(f"{backend.name} has no notion of credentials")
    c = backend.bad_credentials_client()
    with pytest.raises(AuthenticationFailed):
        c.get(unique_name("auth"))
    assert c.validate().status is ValidationStatus.ERROR


def test_unreachable_endpoint_is_unavailable_within_a_bounded_time(backend: Backend) -> None:
    if backend.unreachable_client is None:
        pytest.skip(f"{backend.name} has no network endpoint")
    c = backend.unreachable_client()
    start = time.monotonic()
    with pytest.raises(Unavailable) as info:
        c.get(unique_name("down"))
    elapsed = time.monotonic() - start
    assert elapsed < UNREACHABLE_BOUND_S, f"took {elapsed:.1f}s"
    assert info.value.retryable
    assert c.validate().status is not ValidationStatus.READY


def test_every_failure_is_a_contract_error_and_never_shows_the_value(client: SecretsClient) -> None:
    canary = "canary-conformance-Zq8w-0042"
    name = unique_name("leak")
    client.put(name, SecretValue(canary))
    failures: list[BaseException] = []
    for call in (
        lambda: client.get(name, version="424242"),
        lambda: client.get(name, prop="missing"),
        lambda: client.put(name, SecretValue(canary), if_absent=True),
        lambda: client.get(unique_name("nope")),
    ):
        try:
            call()
        except BaseException as exc:
            failures.append(exc)
    assert failures
    for exc in failures:
        assert isinstance(exc, SecretSyncError), f"SDK error leaked: {type(exc).__module__}.{type(exc).__name__}"
        assert canary not in str(exc) and canary not in repr(exc)
        # What a controller logs with exc_info: the whole chain, causes included.
        assert canary not in "".join(traceback.format_exception(exc))
        assert isinstance(exc, ProviderError)
    assert canary not in repr(client.get(name))


def test_capabilities_are_declared(client: SecretsClient) -> None:
    caps = client.capabilities.as_dict()
    assert caps["access"] in ("ReadOnly", "ReadWrite")
    if client.capabilities.batch_get:
        assert client.capabilities.max_batch > 1


def test_no_value_reaches_any_log_line_at_debug(backend: Backend) -> None:
    """With secretsync's logging at DEBUG (as ``--log-level debug`` sets it), run every
    operation and read every record any logger emitted: the canary is in none of them."""
    import logging

    from secretsync.cli.logsetup import setup_logging

    canary = "canary-debug-log-Zq8w-7777"
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    setup_logging("debug", "text")
    handler = Capture(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        c = backend.client()
        name = unique_name("log")
        c.put(name, SecretValue(canary), tags={"t": "1"} if c.capabilities.tags else None)
        assert c.get(name).reveal_text() == canary
        c.get_many([name])
        list(c.list(ListFilter(prefix=name.split("/")[0])))
        c.describe(name)
        c.delete(name)
        c.close()
    finally:
        logging.getLogger().removeHandler(handler)
        setup_logging("warning", "text")
    assert not [r for r in records if canary in r]


def test_no_value_reaches_any_log_record_with_every_sdk_logger_at_debug(backend: Backend) -> None:
    """A library user may log everything at DEBUG (not the CLI's pinned SDK loggers): botocore,
    urllib3, azure-core, hvac, google and grpc included, propagation forced on. No record's
    message, exception text or extra fields may hold the value, raw or base64."""
    canary = "canary-all-loggers-Zq8w-9090"
    needles = (canary, base64.b64encode(canary.encode()).decode()[:24],
               base64.b64encode(b"\xff" + canary.encode()).decode()[4:28])
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage() + repr(record.__dict__)
            if record.exc_info:
                text += logging.Formatter().formatException(record.exc_info)
            seen.append(f"{record.name}: {text}")

    loggers = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    root = logging.getLogger()
    root_level = root.level
    handler = Capture(level=logging.DEBUG)
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.propagate = True
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        c = backend.client()
        name = unique_name("dbg")
        c.put(name, SecretValue(canary), tags={"t": "1"} if c.capabilities.tags else None)
        c.get(name)
        c.get_many([name, unique_name("dbg-missing")])
        list(c.list(ListFilter(prefix=name.split("/")[0])))
        c.describe(name)
        c.exists(name)
        c.validate()
        second = c.put(name, SecretValue(canary + "-2"))
        for failing in (lambda: c.put(name, SecretValue(canary), if_absent=True),
                        lambda: c.put(name, SecretValue(canary), expected_version="stale-0"),
                        lambda: c.get(name, version="424242"),
                        lambda: c.get(name, prop="nope")):
            with contextlib.suppress(ProviderError):
                failing()
        c.put(name, SecretValue(b"\xff" + canary.encode()), expected_version=second.version)
        c.get(name)
        c.delete(name)
        c.put(name, SecretValue(canary))  # over a soft-deleted name (recover/restore paths)
        c.delete(name, force=True)
        c.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for lg, level, propagate in saved:
            lg.setLevel(level)
            lg.propagate = propagate
    leaks = [line[:300] for line in seen if any(n in line for n in needles)]
    assert not leaks, leaks


@pytest.mark.parametrize("bad", ["", "../x", "a/../b", "a/./b", "x/..", "a\x00b", "x" * 5000],
                         ids=["empty", "dotdot-lead", "dotdot-mid", "dot", "dotdot-tail", "nul", "5000-chars"])
def test_names_no_store_can_hold_are_invalid_config_never_not_found(client: SecretsClient, bad: str) -> None:
    """A traversal attempt or garbage name is the caller's mistake: it must never look like a
    definite "absent" (which may drive a prune), and never reach the backend as a path."""
    for call in (lambda: client.get(bad), lambda: client.exists(bad), lambda: client.describe(bad),
                 lambda: client.delete(bad), lambda: client.put(bad, SecretValue("v"))):
        with pytest.raises(InvalidConfig):
            call()
