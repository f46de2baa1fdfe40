"""The cache's list/direct choice on a backend whose listing costs a call per secret (Vault/OpenBao KV v2)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

from secretsync.controller.providercache import DIRECT, LIST, StoreCache, Usage
from secretsync.core.calls import CallRecorder
from secretsync.core.contract import Capabilities, ClientBase, Fetched, ListFilter, PutResult, SecretMetadata
from secretsync.core.errors import NotFound
from secretsync.core.registry import open_store
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue


class _PerSecretListingClient(ClientBase):
    """Shaped like the KV v2 adapter: LIST gives names, then one metadata read per secret; no
    batch read; the first request of a session also looks the token up and detects the mount's
    KV version (two extra calls, which inflate the cold cycle's measured cost per key)."""

    provider_name = "kv"

    def __init__(self, recorder: CallRecorder, n: int) -> None:
        super().__init__(ClientSettings(calls=recorder))
        self.versions = {f"app/k{i:03d}": 1 for i in range(n)}
        self._session = False

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(batch_get=False, max_batch=1, versions=True)

    def _ensure_session(self) -> None:
        if not self._session:
            with self.settings.calls.call("kv", "lookup_self"):
                pass
            with self.settings.calls.call("kv", "detect_mount"):
                self._session = True

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        return self.get_versioned(name).value

    def get_versioned(self, name: str) -> Fetched:
        self._ensure_session()
        with self.settings.calls.call("kv", "read"):
            if name not in self.versions:
                raise NotFound("no such secret", provider="kv", operation="read", key=name)
            return Fetched(SecretValue(f"v{self.versions[name]}"), str(self.versions[name]))

    def describe(self, name: str) -> SecretMetadata:
        raise NotImplementedError

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        self._ensure_session()
        with self.settings.calls.call("kv", "list"):
            names = sorted(self.versions)
        for name in names:
            with self.settings.calls.call("kv", "read_metadata"):
                meta = SecretMetadata(name, version=str(self.versions[name]))
            yield meta

    def put(self, name: str, value: SecretValue, *, tags: Mapping[str, str] | None = None,
            if_absent: bool = False, expected_version: str | None = None) -> PutResult:
        raise NotImplementedError

    def delete(self, name: str, *, force: bool = False) -> None:
        raise NotImplementedError


def test_listing_that_costs_a_read_per_secret_is_dropped_after_one_cycle_and_never_probed_again() -> None:
    rec = CallRecorder()
    client = _PerSecretListingClient(rec, 100)
    keys = set(client.versions)
    changed: list[set[str]] = []
    cache = StoreCache(client, rec, lambda: Usage(frozenset(keys)), changed.append, probe_every=3)
    cache.refresh(0)  # cold: 100 reads + 2 session calls (fetch cost measured 1.02 per key)
    cache.refresh(0)  # one listing: 1 LIST + 100 metadata reads, not clearly cheaper than 100 reads
    assert cache.mode == DIRECT
    rec.reset()
    client.versions["app/k007"] += 1
    for _ in range(10):  # more than probe_every direct cycles
        cache.refresh(0)
    assert rec.total(operation="list") == 0
    assert rec.total(operation="read_metadata") == 0
    assert rec.total(operation="read") == 10 * 100  # one read per key in use per cycle, nothing more
    assert changed[-1] == {"app/k007"}
    assert cache.listing_per_secret


def test_a_paged_listing_of_a_few_secrets_is_still_probed_in_direct_mode() -> None:
    # One key in use: a 1-call listing costs as much as the 1 fetch, so direct mode; but one
    # page of one secret says nothing about a per-secret cost, so the listing is re-probed.
    rec = CallRecorder()
    client = open_store(f"memory://probe-{uuid.uuid4().hex[:8]}", ClientSettings(calls=rec))
    client.put("only", SecretValue("v"))
    keys = {"only"}
    cache = StoreCache(client, rec, lambda: Usage(frozenset(keys)), probe_every=3)
    cache.refresh(0)
    cache.refresh(0)
    assert cache.mode == DIRECT
    for i in range(30):
        client.put(f"more-{i}", SecretValue("v"))
        keys.add(f"more-{i}")
    rec.reset()
    for _ in range(4):
        cache.refresh(0)
    assert rec.total(operation="list") >= 1  # probed, and the listing now pays for 31 keys
    assert cache.mode == LIST
    assert not cache.listing_per_secret
