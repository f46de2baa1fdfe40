"""Change detection: one listing per cycle, fetch only what changed, one fetch per key however many users."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence

import pytest

from secretsync.controller.providercache import DIRECT, LIST, StoreCache, Usage, common_prefix
from secretsync.controller.runtime import shard_of
from secretsync.controller.settings import CircuitSettings
from secretsync.controller.stores import CircuitBreaker
from secretsync.core.calls import CallRecorder
from secretsync.core.contract import Capabilities, ClientBase, ListFilter, PutResult, SecretMetadata
from secretsync.core.errors import NotFound, Unavailable
from secretsync.core.registry import open_store
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue


def _memory(recorder: CallRecorder):  # type: ignore[no-untyped-def]
    return open_store(f"memory://cache-{uuid.uuid4().hex[:8]}", ClientSettings(calls=recorder))


def _cache(client, recorder: CallRecorder, keys: set[str], changed: list[set[str]] | None = None) -> StoreCache:  # type: ignore[no-untyped-def]
    return StoreCache(client, recorder, lambda: Usage(frozenset(keys)),
                      (lambda k: changed.append(k)) if changed is not None else None)


def test_steady_state_cycle_lists_once_and_fetches_only_changed_keys() -> None:
    rec = CallRecorder()
    client = _memory(rec)
    keys = {f"app/k{i}" for i in range(50)}
    for k in keys:
        client.put(k, SecretValue("v"))
    changed: list[set[str]] = []
    cache = _cache(client, rec, keys, changed)
    cache.refresh(0)
    assert rec.total(operation="get") == 50
    assert rec.total(operation="list") == 0  # a cold cache fetches everything; a listing adds nothing
    # First values are not changes: every ExternalSecret using them is queued already, and
    # queueing all of them again would double a cold start's reconciles.
    assert changed == []
    rec.reset()
    client.put("app/k7", SecretValue("new"))
    rec.reset()
    cache.refresh(0)
    assert rec.total(operation="list") == 1
    assert rec.total(operation="get") == 1
    assert changed[-1] == {"app/k7"}
    assert cache.entries(["app/k7"])["app/k7"].value == SecretValue("new")


def test_a_fresh_cache_is_not_refreshed_again() -> None:
    rec = CallRecorder()
    client = _memory(rec)
    client.put("k", SecretValue("v"))
    cache = _cache(client, rec, {"k"})
    assert cache.refresh(60) is True
    rec.reset()
    assert cache.refresh(60) is False
    assert rec.total() == 0


def test_many_users_of_one_key_cost_one_fetch() -> None:
    rec = CallRecorder()
    client = _memory(rec)
    client.put("shared", SecretValue("v"))
    cache = _cache(client, rec, {"shared"})
    cache.refresh(0)
    for _ in range(100):
        assert cache.entries(["shared"])["shared"].value == SecretValue("v")
    assert rec.total(operation="get") == 1


def test_deleted_remote_key_is_confirmed_absent_by_a_fetch() -> None:
    rec = CallRecorder()
    client = _memory(rec)
    for name in ("gone", "b", "c"):
        client.put(name, SecretValue("v"))
    cache = _cache(client, rec, {"gone", "b", "c"})
    cache.refresh(0)
    assert cache.mode == LIST
    client.delete("gone")
    cache.refresh(0)
    entry = cache.entries(["gone"])["gone"]
    assert entry.absent and isinstance(entry.error, NotFound)
    rec.reset()
    cache.refresh(0)  # known absent and still not listed: no more fetches
    assert rec.total(operation="get") == 0


def test_prefix_of_the_listing_is_the_common_prefix_of_keys_in_use() -> None:
    assert common_prefix(["team/a/x", "team/a/y", "team/b"]) == "team/"
    assert common_prefix(["x", "y"]) == ""
    assert common_prefix([]) == ""


class _NoVersionsClient(ClientBase):
    """A backend whose listing carries no change token: the cache must fall back to re-fetching."""

    provider_name = "plain"

    def __init__(self, recorder: CallRecorder, names: list[str]) -> None:
        super().__init__(ClientSettings(calls=recorder))
        self.names = names
        self.fail = False

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(batch_get=True, max_batch=20)

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        raise NotImplementedError

    def get_many(self, names: Sequence[str]) -> dict[str, object]:  # type: ignore[override]
        with self.settings.calls.call("plain", "batch_get"):
            if self.fail:
                raise Unavailable("down", provider="plain", operation="batch_get")
        from secretsync.core.contract import Fetched

        return {n: Fetched(SecretValue("v"), "1") for n in names}

    def describe(self, name: str) -> SecretMetadata:
        raise NotImplementedError

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        for i in range(0, len(self.names), 10):  # 10 per page, no versions
            with self.settings.calls.call("plain", "list"):
                page = self.names[i:i + 10]
            yield from (SecretMetadata(n) for n in page)

    def put(self, name: str, value: SecretValue, *, tags: Mapping[str, str] | None = None,
            if_absent: bool = False, expected_version: str | None = None) -> PutResult:
        raise NotImplementedError

    def delete(self, name: str, *, force: bool = False) -> None:
        raise NotImplementedError


def test_without_change_tokens_the_cache_switches_to_batched_refetch() -> None:
    rec = CallRecorder()
    names = [f"k{i:03d}" for i in range(100)]
    client = _NoVersionsClient(rec, names)
    cache = _cache(client, rec, set(names))
    cache.refresh(0)  # cold: fetch everything, no listing
    assert rec.total(operation="list") == 0
    cache.refresh(0)  # lists once, finds no change tokens
    assert cache.mode == DIRECT
    rec.reset()
    cache.refresh(0)
    assert rec.total(operation="list") == 0
    assert rec.total(operation="batch_get") == 5  # 100 keys in batches of 20


def test_listing_is_dropped_when_it_costs_more_than_refetching_the_keys_in_use() -> None:
    rec = CallRecorder()
    client = _memory(rec)
    client.put("only", SecretValue("v"))
    cache = _cache(client, rec, {"only"})
    cache.refresh(0)
    cache.refresh(0)
    # 1 list call vs 1 get for the single key in use: re-fetching is no dearer, so no listing.
    assert cache.mode == DIRECT


def test_a_failed_cycle_raises_and_keeps_the_old_values() -> None:
    rec = CallRecorder()
    names = ["a", "b"]
    client = _NoVersionsClient(rec, names)
    cache = _cache(client, rec, set(names))
    cache.refresh(0)
    client.fail = True
    with pytest.raises(Unavailable):
        cache.refresh(0)
    assert cache.entries(["a"])["a"].value == SecretValue("v")


def test_circuit_opens_after_consecutive_failures_and_allows_one_probe() -> None:
    now = [0.0]
    b = CircuitBreaker(CircuitSettings(failures=2, open_for=10, max_open=100), clock=lambda: now[0])
    err = Unavailable("down")
    assert b.failure(err) is False and b.allow()
    assert b.failure(err) is True
    assert not b.allow() and b.is_open
    now[0] = 20
    assert b.allow() is True  # the probe
    assert b.allow() is False  # only one
    assert b.success() is True
    assert b.allow() and not b.is_open


def test_failures_of_one_outage_do_not_lengthen_the_pause_only_failed_probes_do() -> None:
    now = [0.0]
    b = CircuitBreaker(CircuitSettings(failures=3, open_for=5, max_open=300), clock=lambda: now[0])
    err = Unavailable("down")
    for _ in range(3):
        b.failure(err)
    first = b.retry_in()
    for _ in range(13):  # the other workers' calls, admitted before it opened, fail too
        assert b.failure(err) is False
    assert b.retry_in() == first <= 6  # still the first pause (5 s, jittered), not 5 min
    now[0] = 10
    assert b.allow() is True  # the probe
    assert b.failure(err) is False  # a straggler does not end the probe's turn
    assert b.admit() == "wait"
    assert b.failure(err, probe=True) is True  # the failed probe doubles the pause
    assert 8 <= b.retry_in() <= 12
    now[0] = 30
    assert b.allow() and b.success() is True and not b.is_open


def test_namespaces_hash_to_stable_shards() -> None:
    counts = [0, 0, 0]
    for i in range(300):
        counts[shard_of(f"ns-{i}", 3)] += 1
    assert all(70 < c < 130 for c in counts)
    assert shard_of("payments", 3) == shard_of("payments", 3)
    assert shard_of("anything", 1) == 0


def test_modes_are_named() -> None:
    assert {LIST, DIRECT} == {"list", "direct"}


def test_while_one_worker_lists_the_others_answer_from_the_last_cycle_and_hear_the_change_after() -> None:
    import threading

    rec = CallRecorder()
    inner = _memory(rec)
    inner.put("app/k", SecretValue("old"))
    listing_started, release = threading.Event(), threading.Event()

    class SlowListing:
        """The store's client, with a listing that takes as long as the test says."""

        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            return getattr(inner, name)

        def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
            listing_started.set()
            release.wait(10)
            return inner.list(flt)

    changed: list[set[str]] = []
    clock = [0.0]
    cache = StoreCache(SlowListing(), rec, lambda: Usage(frozenset({"app/k"})), changed.append,
                       clock=lambda: clock[0])
    cache.refresh(10)  # cold: fetches
    inner.put("app/k", SecretValue("new"))
    clock[0] = 20.0  # stale
    cycling = threading.Thread(target=cache.refresh, args=(10,))
    cycling.start()
    assert listing_started.wait(10)
    # A second worker does not queue behind the listing: it reads the last cycle's value now...
    assert cache.refresh(10) is False
    assert cache.entries(["app/k"])["app/k"].value == SecretValue("old")
    release.set()
    cycling.join(10)
    # ...and the cycle then reports the change, so that worker's ExternalSecret is synced again.
    assert changed[-1] == {"app/k"}
    assert cache.entries(["app/k"])["app/k"].value == SecretValue("new")


def test_a_burst_that_straddles_a_listing_is_seen_whole_before_restarts_go() -> None:
    """With rollout on, a cycle that saw changes lists again at once; restarts wait meanwhile."""
    rec = CallRecorder()
    client = _memory(rec)
    for k in ("app/a", "app/b"):
        client.put(k, SecretValue("v1"))
    settling_seen: list[bool] = []
    changed: list[set[str]] = []

    def on_changed(keys: set[str]) -> None:
        changed.append(keys)
        settling_seen.append(cache.settling)
        if keys == {"app/a"}:
            client.put("app/b", SecretValue("v2"))  # the rest of the burst lands after the first listing

    cache = StoreCache(client, rec, lambda: Usage(frozenset({"app/a", "app/b"})), on_changed, settle=True)
    cache.refresh(0)  # cold
    client.put("app/a", SecretValue("v2"))
    rec.reset()
    cache.refresh(0)
    assert changed == [{"app/a"}, {"app/b"}]  # one refresh saw the whole burst (the cold one reports none)
    assert settling_seen == [True, True]  # consumers hold until the settling listing is over
    assert not cache.settling
    assert rec.total(operation="list") == 2
    rec.reset()
    cache.refresh(0)  # a quiet cycle: no second listing
    assert rec.total(operation="list") == 1


def test_readers_get_their_keys_while_the_cold_cycle_still_fetches_the_rest() -> None:
    """A cold start is a provider fetch of every key, then API server writes: a reader must
    not wait for all 10k keys before it may write its Secret. Its key's batch goes first."""
    import dataclasses
    import threading

    rec = CallRecorder()
    client = _memory(rec)
    keys = [f"app/k{i:03d}" for i in range(40)]
    for k in keys:
        client.put(k, SecretValue(f"v-{k}"))
    gate = threading.Event()
    reads: list[str] = []
    real_get_many = client.get_many

    def slow_get_many(batch):  # type: ignore[no-untyped-def]
        reads.extend(batch)
        if len(reads) > 2:
            assert gate.wait(10)  # the cycle stalls after its first keys
        return real_get_many(batch)

    client.get_many = slow_get_many  # type: ignore[method-assign]
    base = type(client)

    class OneKeyPerCall(base):  # type: ignore[valid-type,misc]
        """As on Vault: no batch read."""

        @property
        def capabilities(self):  # type: ignore[no-untyped-def]
            return dataclasses.replace(base.capabilities.fget(self), max_batch=1)  # type: ignore[attr-defined]

    client.__class__ = OneKeyPerCall
    cache = StoreCache(client, rec, lambda: Usage(frozenset(keys)), fetch_concurrency=2)
    cycling = threading.Thread(target=cache.refresh, args=(60,))
    cycling.start()
    while len(reads) < 3:
        threading.Event().wait(0.01)
    # Another worker: its refresh does not wait behind the cold cycle...
    assert cache.refresh(60) is False
    got: dict[str, object] = {}
    reader = threading.Thread(target=lambda: got.update(cache.entries(["app/k039"])))
    reader.start()
    threading.Event().wait(0.2)
    gate.set()
    reader.join(10)
    cycling.join(10)
    # ...and the key it waits for was fetched ahead of the keys sorted before it.
    assert reads.index("app/k039") < reads.index("app/k020")
    assert got["app/k039"].value == SecretValue("v-app/k039")  # type: ignore[attr-defined]
    assert sorted(reads) == keys  # each key fetched once
