"""One tenant cannot stop the others: per-key errors, denied listings and finds in a shared store cache.

The client below behaves like the Vault/Azure adapters under a narrow policy: a batched read
raises as soon as one key is forbidden (ClientBase.get_many maps only NotFound per key), and
a listing outside the allowed paths is PermissionDenied.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from secretsync.controller.providercache import DIRECT, StoreCache, Usage
from secretsync.core.calls import CallRecorder
from secretsync.core.contract import Capabilities, Fetched, ListFilter, SecretMetadata
from secretsync.core.errors import PermissionDenied
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from secretsync.embedded.memory import MemoryClient


class _PolicyClient(MemoryClient):
    """A memory store behind a policy: some keys may not be read, some prefixes not listed."""

    def __init__(self, recorder: CallRecorder, *, denied_keys: set[str], listable: tuple[str, ...]) -> None:
        super().__init__(f"tenants-{uuid.uuid4().hex[:8]}", ClientSettings(calls=recorder))
        self.denied_keys = denied_keys
        self.listable = listable
        self.listed: list[str | None] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(batch_get=True, max_batch=50, versions=True)

    def get_versioned(self, name: str) -> Fetched:
        if name in self.denied_keys:
            raise PermissionDenied("permission denied", provider="memory", operation="get", key=name)
        return super().get_versioned(name)

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        prefix = flt.prefix if flt is not None else None
        self.listed.append(prefix)
        if not any((prefix or "").startswith(p) for p in self.listable):
            raise PermissionDenied("permission denied", provider="memory", operation="list", key=prefix or "")
        return super().list(flt)


def _setup(denied: set[str], listable: tuple[str, ...], keys: set[str],
           finds: tuple[str | None, ...] = ()) -> tuple[_PolicyClient, StoreCache]:
    rec = CallRecorder()
    client = _PolicyClient(rec, denied_keys=denied, listable=listable)
    for k in ("team-a/db", "team-a/api", "team-b/ok", "team-b/denied", "team-b/private/x"):
        client.put(k, SecretValue(f"value-of-{k}"))
    return client, StoreCache(client, rec, lambda: Usage(frozenset(keys), finds))


def test_one_forbidden_key_in_a_batch_fails_only_that_key() -> None:
    keys = {"team-a/db", "team-a/api", "team-b/ok", "team-b/denied"}
    _client, cache = _setup({"team-b/denied"}, ("",), keys)
    assert cache.refresh(0.0)  # the cycle itself succeeds
    got = cache.entries(keys)
    assert isinstance(got["team-b/denied"].error, PermissionDenied)
    assert {k for k, e in got.items() if e.value is not None} == keys - {"team-b/denied"}


def test_a_denied_listing_falls_back_to_direct_reads_and_says_so() -> None:
    keys = {"team-a/db", "team-b/ok"}
    client, cache = _setup(set(), ("team-a/",), keys)
    cache.refresh(0.0)  # cold: fetches directly
    client.put("team-b/ok", SecretValue("rotated"))
    cache.refresh(0.0)  # would list: denied -> direct
    assert cache.mode == DIRECT
    assert cache.listing_denied is not None and "permission denied" in cache.listing_denied
    assert cache.entries(["team-b/ok"])["team-b/ok"].value == SecretValue("rotated")
    client.put("team-b/ok", SecretValue("rotated-again"))
    cache.refresh(0.0)
    assert cache.entries(["team-b/ok"])["team-b/ok"].value == SecretValue("rotated-again")


def test_a_tenants_find_never_changes_the_listing_of_other_keys() -> None:
    keys = {"team-a/db", "team-a/api"}
    client, cache = _setup(set(), ("team-a/",), keys, finds=("team-b/private/",))
    cache.refresh(0.0)
    client.put("team-a/db", SecretValue("rotated"))
    cache.refresh(0.0)
    # The keys' listing stays on their own prefix; the find is listed on its own and its
    # denial is the find's error, not the cycle's.
    assert "team-a/" in client.listed and "" not in client.listed
    assert cache.entries(["team-a/db"])["team-a/db"].value == SecretValue("rotated")
    with pytest.raises(PermissionDenied):
        cache.find(ListFilter(prefix="team-b/private/"))


def test_while_the_half_open_probe_is_in_flight_other_callers_wait_for_it() -> None:
    from secretsync.controller.settings import CircuitSettings
    from secretsync.controller.stores import CLOSED, OPEN, PROBE, WAIT, CircuitBreaker
    from secretsync.core.errors import Unavailable

    now = [0.0]
    breaker = CircuitBreaker(CircuitSettings(failures=1, open_for=5.0, max_open=10.0), clock=lambda: now[0])
    assert breaker.admit() == CLOSED
    breaker.failure(Unavailable("down"))
    assert breaker.admit() == OPEN
    now[0] += 10
    assert breaker.admit() == PROBE
    assert breaker.admit() == WAIT  # not polled again every half second: it waits for the probe
    breaker.abandon_probe()  # a probe that never reached the provider hands the turn on
    assert breaker.admit() == PROBE
    breaker.success()
    assert breaker.admit() == CLOSED
