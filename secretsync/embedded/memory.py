"""``memory://[NAME]``: an in-process store with every capability, for tests and demos.

Stores with the same NAME share data within one process (so a test can open two clients
on one store); the data is gone when the process exits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from secretsync.core.contract import (
    Capabilities,
    ClientBase,
    CredentialUse,
    Fetched,
    ListFilter,
    NameRules,
    PutResult,
    SecretMetadata,
    SecretsClient,
    extract_property,
)
from secretsync.core.errors import InvalidConfig
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from .versioned import VersionedStore

CAPABILITIES = Capabilities(
    batch_get=True, max_batch=1000, versions=True, tags=True, compare_and_set=True, binary=True
)

_stores: dict[str, tuple[VersionedStore, threading.Lock]] = {}
_stores_lock = threading.Lock()


def _shared(name: str) -> tuple[VersionedStore, threading.Lock]:
    with _stores_lock:
        if name not in _stores:
            _stores[name] = (VersionedStore("memory"), threading.Lock())
        return _stores[name]


class MemoryClient(ClientBase):
    provider_name = "memory"

    def __init__(self, store_name: str, settings: ClientSettings | None = None) -> None:
        super().__init__(settings)
        self.store_name = store_name
        self._store, self._lock = _shared(store_name)
        self._limiter = self.settings.rate_limit.bucket()

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def _call(self, op: str) -> Any:
        return self.settings.calls.call("memory", op, self._limiter)

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        with self._call("get"), self._lock:
            value, _ = self._store.get(name, version)
        return extract_property(value, prop, name=name, provider="memory")

    def get_versioned(self, name: str) -> Fetched:
        with self._call("get"), self._lock:
            value, version = self._store.get(name, None)
        return Fetched(value, version)

    def describe(self, name: str) -> SecretMetadata:
        with self._call("describe"), self._lock:
            return self._store.describe(name)

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        with self._call("list"), self._lock:
            items = list(self._store.list(flt or ListFilter()))
        return iter(items)

    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        with self._call("put"), self._lock:
            return self._store.put(name, value, tags, if_absent, expected_version)

    def delete(self, name: str, *, force: bool = False) -> None:
        with self._call("delete"), self._lock:
            self._store.delete(name)


class MemoryFactory:
    name = "memory"
    #: Names this provider stores verbatim (what the migrator may choose).
    name_rules = NameRules(r"A-Za-z0-9/_.@+=:-", 512, True)
    #: The block's description in the SecretStore CRD.
    block_doc = 'Embedded in-process store (tests): {name?}.'
    capabilities = CAPABILITIES

    def config_from_url(self, url: str) -> dict[str, Any]:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise InvalidConfig(f"memory:// store URL {url!r} does not parse: {exc}") from None
        if parts.scheme != "memory":
            raise InvalidConfig(f"not a memory:// URL: {url!r}")
        return {"name": (parts.netloc + parts.path).strip("/") or "default"}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        unknown = sorted(str(k) for k in config if k != "name")
        if unknown:
            raise InvalidConfig(f"memory store config field {unknown[0]!r}: unknown field (known: name)")
        name = config.get("name", "default")
        if not isinstance(name, str):
            raise InvalidConfig("memory store config field 'name' must be a string")

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        """An in-process table (tests, demos): no identity, no file, no host."""
        return CredentialUse()

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        self.validate_config(config)
        return MemoryClient(str(config.get("name", "default")), settings)


factory = MemoryFactory()
