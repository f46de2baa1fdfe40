"""Secrets of one namespace as a read-only store (ESO's Kubernetes provider semantics).

A key is a Secret name; its value is the Secret's data as a JSON object of decoded strings
(so ``property`` picks one data key and ``dataFrom.extract`` takes them all); binary data
that is not UTF-8 is refused naming the key rather than altered. ``find`` lists the
namespace's Secrets, filtered by labels (``tags``) on the server and by name regex here.
Version: the Secret's resourceVersion (change detection compares it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from secretsync.core.contract import (
    Access,
    Capabilities,
    ClientBase,
    Fetched,
    ListFilter,
    PutResult,
    SecretMetadata,
    extract_property,
)
from secretsync.core.errors import InvalidConfig, Unavailable
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from .config import PROVIDER
from .errors import map_error
from .names import check_name
from .sdk import SecretsApi

CAPABILITIES = Capabilities(access=Access.READ_ONLY, versions=False, tags=True, binary=False)
T = TypeVar("T")
#: Pages followed at most (the API server's continue tokens).
MAX_PAGES = 10_000


class KubernetesClient(ClientBase):
    provider_name = PROVIDER

    def __init__(self, api: SecretsApi, namespace: str, settings: ClientSettings | None = None) -> None:
        super().__init__(settings)
        self._api = api
        self.namespace = namespace
        self._limiter = self.settings.rate_limit.bucket()

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def _call(self, operation: str, key: str | None, fn: Callable[[], T]) -> T:
        with provider_call(self.settings, PROVIDER, operation, map_error, key=key, limiter=self._limiter,
                           server="the API server"):
            return fn()

    def _secret(self, name: str, operation: str) -> Mapping[str, Any]:
        wire = check_name(name, operation)
        return self._call(operation, name, lambda: self._api.get_secret(self.namespace, wire))

    @staticmethod
    def _value(secret: Mapping[str, Any], name: str) -> SecretValue:
        out: dict[str, str] = {}
        for k, v in (secret.get("data") or {}).items():
            try:
                out[str(k)] = base64.b64decode(str(v), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidConfig(f"data key {k!r} holds binary data, which this provider does not pass on",
                                   provider=PROVIDER, operation="get", key=name) from None
        return SecretValue(json.dumps(out, sort_keys=True, separators=(",", ":")))

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        if version:
            raise InvalidConfig("Secrets have no versions to read back", provider=PROVIDER, operation="get",
                               key=name)
        return extract_property(self._value(self._secret(name, "get"), name), prop, name=name, provider=PROVIDER)

    def get_versioned(self, name: str) -> Fetched:
        secret = self._secret(name, "get")
        return Fetched(self._value(secret, name), (secret.get("metadata") or {}).get("resourceVersion"))

    @staticmethod
    def _meta(secret: Mapping[str, Any]) -> SecretMetadata:
        md = secret.get("metadata") or {}
        return SecretMetadata(str(md.get("name")), md.get("resourceVersion"), None, dict(md.get("labels") or {}))

    def describe(self, name: str) -> SecretMetadata:
        return self._meta(self._secret(name, "describe"))

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        flt = flt or ListFilter()
        selector = ",".join(f"{k}={v}" for k, v in sorted(flt.tags.items()))
        out: list[SecretMetadata] = []
        cont = ""
        for _ in range(MAX_PAGES):
            page = self._call("list", None, self._lister(selector, cont))
            out.extend(m for m in (self._meta(s) for s in page.get("items") or []) if flt.matches(m))
            cont = str((page.get("metadata") or {}).get("continue") or "")
            if not cont:
                return iter(out)
        raise Unavailable(f"more than {MAX_PAGES} pages of Secrets", provider=PROVIDER, operation="list")

    def _lister(self, selector: str, cont: str) -> Callable[[], dict[str, Any]]:
        return lambda: self._api.list_secrets(self.namespace, selector, cont)

    def put(self, name: str, value: SecretValue, *, tags: Mapping[str, str] | None = None,
            if_absent: bool = False, expected_version: str | None = None) -> PutResult:
        raise InvalidConfig("the kubernetes provider is read-only", provider=PROVIDER, operation="put", key=name)

    def delete(self, name: str, *, force: bool = False) -> None:
        raise InvalidConfig("the kubernetes provider is read-only", provider=PROVIDER, operation="delete", key=name)

    def close(self) -> None:
        self._api.close()
