"""A third-party provider, as someone outside this project would write one.

It lives outside ``secretsync_providers`` and is found only through the ``secretsync.providers``
entry point (the test writes a ``*.dist-info`` for it), so it proves what "third parties can
add their own" means: its own block dialect (``catalog`` and ``auth.apiKeySecretRef``, no
``secretRef``), its own credential, its own names, with nothing of it known to secretsync.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

from secretsync.core.contract import (
    Capabilities,
    ClientBase,
    CredentialUse,
    ListFilter,
    NameRules,
    PutResult,
    SecretMetadata,
    StoreBlock,
    extract_property,
    secret_source,
)
from secretsync.core.errors import InvalidConfig, NotFound, PermissionDenied, ProviderError
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from secretsync.embedded.versioned import VersionedStore

#: The one API key the toy backend accepts.
API_KEY = "toy-api-key-0123"
CATALOGS: dict[str, VersionedStore] = {}
_lock = threading.Lock()


def catalog(name: str) -> VersionedStore:
    with _lock:
        return CATALOGS.setdefault(name, VersionedStore("toy"))


class ToyClient(ClientBase):
    provider_name = "toy"

    def __init__(self, store: VersionedStore, settings: ClientSettings | None) -> None:
        super().__init__(settings)
        self._store = store

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(versions=True)

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        with self.settings.calls.call("toy", "get"):
            value, _ = self._store.get(name, version)
        return extract_property(value, prop, name=name, provider="toy")

    def describe(self, name: str) -> SecretMetadata:
        return self._store.describe(name)

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        return iter(list(self._store.list(flt or ListFilter())))

    def put(self, name: str, value: SecretValue, *, tags: Mapping[str, str] | None = None,
            if_absent: bool = False, expected_version: str | None = None) -> PutResult:
        return self._store.put(name, value, tags, if_absent, expected_version)

    def delete(self, name: str, *, force: bool = False) -> None:
        self._store.delete(name)


class ToyFactory:
    name = "toy"
    aliases: tuple[str, ...] = ("toybox",)
    name_rules = NameRules(r"a-z0-9.", 64, False)
    block_doc = "A toy catalogue: {catalog, auth: {apiKeySecretRef: {name, key}}}."
    capabilities = Capabilities(versions=True)

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        auth = block.get("auth")
        if not isinstance(auth, Mapping) or "apiKeySecretRef" not in auth:
            raise InvalidConfig("auth.apiKeySecretRef: required (the toy backend needs an API key)")
        source = secret_source("apiKey", auth["apiKeySecretRef"], "auth.apiKeySecretRef")
        return StoreBlock({k: v for k, v in block.items() if k != "auth"}, (source,))

    def config_from_url(self, url: str) -> dict[str, Any]:
        return {"catalog": url.split("://", 1)[-1]}

    def validate_config(self, config: Mapping[str, Any]) -> None:
        if not isinstance(config.get("catalog"), str):
            raise InvalidConfig("toy store config field 'catalog': required (a string)")

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        return CredentialUse() if "apiKey" in credentials else CredentialUse(ambient="no auth.apiKeySecretRef")

    def open(self, config: Mapping[str, Any], settings: ClientSettings | None = None,
             credentials: Mapping[str, SecretValue] | None = None) -> ToyClient:
        key = (credentials or {}).get("apiKey")
        if key is None or key.reveal_text() != API_KEY:
            raise PermissionDenied("the toy backend refused the API key", provider="toy", operation="open")
        return ToyClient(catalog(str(config["catalog"])), settings)


factory = ToyFactory()

__all__ = ["API_KEY", "NotFound", "ProviderError", "ToyFactory", "catalog", "factory"]
