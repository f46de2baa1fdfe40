"""The few Key Vault operations the provider uses, behind one small interface.

Why a wrapper: the client's logic (name mapping, binary encoding, soft-delete handling,
compare-and-set) should not depend on SDK model classes, and the SDK's surface we rely on
should be visible in one place. :class:`SdkKeyVaultApi` is the only class that touches
``SecretClient``, ``CertificateClient`` and ``KeyClient``; it returns :class:`SecretRecord`
(values already wrapped in :class:`SecretValue`) and lets SDK exceptions through for the
client to map. Certificates and keys are read as ESO reads them (``cert/NAME``,
``key/NAME``): a certificate's value is its X.509 certificate in DER (Key Vault's ``cer``),
a key's value is its public JSON Web Key as JSON text.

It also sets up the SDK's HTTP pipeline so that:

* every HTTP request (each retry, the challenge round trip) waits for the store's rate
  limiter (``raw_request_hook``, which azure-core runs per attempt);
* a 2xx answer without the shape Key Vault gives it raises :class:`.errors.MalformedAnswer`
  (``raw_response_hook``) instead of being read as an empty value or an empty list;
* body logging stays off (``logging_enable=False``, whatever a caller's logging says);
* the requests session obeys :func:`..http_deadline.call_deadline`.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.keyvault.certificates import CertificateClient
from azure.keyvault.keys import JsonWebKey, KeyClient
from azure.keyvault.secrets import SecretClient, SecretProperties

from secretsync.core.ratelimit import TokenBucket
from secretsync.core.redact import guard_sdk_loggers
from secretsync.core.values import SecretValue

from ..http_deadline import deadline_http_adapter
from .errors import MalformedAnswer

#: Pinned so a new SDK default cannot change behaviour under us (the fake speaks it too).
API_VERSION = "7.5"
#: Key Vault's largest page (``maxresults`` is 1..25).
PAGE_SIZE = 25

#: azure-core's body-dumping logger (NetworkTraceLoggingPolicy); it logs bodies only with
#: ``logging_enable``, which we never set, and is guarded in case a caller does.
guard_sdk_loggers(["azure.core.pipeline.policies._universal"])

#: Every route is anchored at the path's root: a key called ``secrets`` is ``/keys/secrets/``
#: and a secret called ``keys`` read at a version is ``/secrets/keys/VERSION``.
_LIST_PATH = re.compile(r"^/(?:deleted)?secrets/?$|^/secrets/[^/]+/versions/?$")
_ITEM_PATH = re.compile(r"^/(?:deleted)?secrets/[^/]+(?:/[^/]*)?$")
_CERTIFICATE_PATH = re.compile(r"^/certificates/[^/]+(?:/[^/]*)?$")
_KEY_PATH = re.compile(r"^/keys/[^/]+(?:/[^/]*)?$")
#: A JSON Web Key's public members, in the order ESO's ``json.Marshal(keyResp.Key)`` writes
#: them; the private ones (``d``, ``dp``, ``dq``, ``qi``, ``p``, ``q``, ``k``, ``key_hsm``)
#: are never copied, whatever the answer holds.
JWK_PUBLIC_MEMBERS = ("kid", "kty", "key_ops", "n", "e", "crv", "x", "y")


def check_answer(response: Any) -> None:
    """``raw_response_hook``: refuse a 2xx answer that is not shaped like Key Vault's.

    A list page must hold a ``value`` list, a secret an ``id`` (and, from ``GET
    /secrets/NAME``, a string ``value``), a certificate an ``id`` and its ``cer``, a key its
    ``key`` with a ``kid``. A proxy's 200 page, a truncated body or ``{}`` would otherwise read
    as an empty list, an empty secret or an empty certificate.
    """
    http = response.http_response
    status = http.status_code
    if not 200 <= status < 300 or status == 204:
        return
    method = http.request.method.upper()
    path = urlsplit(http.request.url).path
    try:
        doc = json.loads(http.text() or "null")
    except ValueError:
        raise MalformedAnswer(f"HTTP {status} to {method} whose body is not JSON") from None
    if not isinstance(doc, dict):
        raise MalformedAnswer(f"HTTP {status} to {method} whose body is not a JSON object")
    if method == "GET" and _LIST_PATH.search(path):
        items = doc.get("value")
        if not isinstance(items, list):
            raise MalformedAnswer(f"HTTP {status} list page without a 'value' list")
        if not all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in items):
            raise MalformedAnswer(f"HTTP {status} list page with an item that has no 'id'")
    elif method == "GET" and _CERTIFICATE_PATH.search(path):
        if not isinstance(doc.get("id"), str) or not isinstance(doc.get("cer"), str) or not doc["cer"]:
            raise MalformedAnswer(f"HTTP {status} certificate without its 'id' and 'cer'")
    elif method == "GET" and _KEY_PATH.search(path):
        key = doc.get("key")
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            raise MalformedAnswer(f"HTTP {status} key without its 'key' and 'kid'")
    elif _ITEM_PATH.search(path) and method in ("GET", "PUT", "DELETE", "POST", "PATCH"):
        if not isinstance(doc.get("id"), str):
            raise MalformedAnswer(f"HTTP {status} to {method} without the secret's 'id'")
        if method == "GET" and "/deletedsecrets/" not in path and not isinstance(doc.get("value"), str):
            raise MalformedAnswer(f"HTTP {status} secret without a string 'value'")


def request_hook(limiter: TokenBucket | None) -> Callable[[Any], None]:
    """``raw_request_hook``: one token per HTTP request, retries and the auth challenge included."""

    def acquire(_request: Any) -> None:
        if limiter is not None:
            limiter.acquire()

    return acquire


def pipeline_options(limiter: TokenBucket | None, **transport: Any) -> dict[str, Any]:
    """Keyword arguments of one SDK client of :class:`SdkKeyVaultApi` (see the module
    docstring); each client gets its own (a transport is closed with its client)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    adapter = deadline_http_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    conn = {k: transport[k] for k in ("connection_timeout", "read_timeout", "connection_verify")
            if k in transport}
    return {
        **transport,
        "transport": RequestsTransport(session=session, session_owner=True, **conn),
        "logging_enable": False,
        "raw_request_hook": request_hook(limiter),
        "raw_response_hook": check_answer,
    }


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """One secret (or version) as the vault returned it; ``value`` only from a get."""

    name: str
    version: str | None
    content_type: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    updated: datetime | None = None
    enabled: bool | None = None
    value: SecretValue | None = None


class KeyVaultApi(Protocol):
    def get(self, name: str, version: str | None) -> SecretRecord: ...
    def get_certificate(self, name: str, version: str | None) -> SecretRecord:
        """A certificate (or version): its X.509 certificate in DER as the value."""
        ...
    def get_key(self, name: str, version: str | None) -> SecretRecord:
        """A key (or version): its public JSON Web Key as JSON text; never a private member."""
        ...
    def set(self, name: str, value: str, content_type: str | None,
            tags: Mapping[str, str] | None) -> SecretRecord: ...
    def list_pages(self) -> Iterator[tuple[list[SecretRecord], bool]]:
        """Pages of every secret's metadata, each with "is there another page?".

        Each ``next()`` is exactly one HTTP call; callers stop after a page that says
        there is no other, so the count of calls is the count of pages.
        """
        ...
    def delete(self, name: str) -> bool:
        """Delete; True when the deletion is recoverable (soft), False when it was final."""
        ...
    def get_deleted(self, name: str) -> None: ...
    def purge(self, name: str) -> None: ...
    def recover(self, name: str) -> None: ...
    def close(self) -> None: ...


def _record(props: SecretProperties, value: str | None = None) -> SecretRecord:
    return SecretRecord(
        name=props.name or "",
        version=props.version,
        content_type=props.content_type,
        tags=dict(props.tags or {}),
        updated=props.updated_on,
        enabled=props.enabled,
        value=SecretValue(value) if value is not None else None,
    )


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def jwk_json(jwk: JsonWebKey) -> str:
    """The key's public members as compact JSON, as ESO gives them (Key Vault's base64url text
    for ``n``, ``e``, ``x``, ``y``; members the key lacks left out)."""
    doc: dict[str, Any] = {}
    for member in JWK_PUBLIC_MEMBERS:
        raw = getattr(jwk, member, None)
        if raw is None:
            continue
        if isinstance(raw, bytes | bytearray):
            doc[member] = _b64url(bytes(raw))
        elif isinstance(raw, list):
            doc[member] = [str(getattr(op, "value", op)) for op in raw]
        else:
            doc[member] = str(getattr(raw, "value", raw))
    return json.dumps(doc, separators=(",", ":"))


class SdkKeyVaultApi:
    """:class:`KeyVaultApi` on the real ``azure-keyvault-secrets``, ``-certificates`` and
    ``-keys`` clients. ``client_options`` gives one client's keyword arguments (its own
    transport); the certificates and keys clients are made on first use, so a store that
    reads only secrets opens one session."""

    def __init__(self, vault_url: str, credential: TokenCredential,
                 client_options: Callable[[], dict[str, Any]]) -> None:
        self._vault_url = vault_url
        self._credential = credential
        self._options = client_options
        self._client = SecretClient(vault_url, credential, api_version=API_VERSION, **client_options())
        self._lock = threading.Lock()
        self._certificates: CertificateClient | None = None
        self._keys: KeyClient | None = None

    def _certificate_client(self) -> CertificateClient:
        with self._lock:
            if self._certificates is None:
                self._certificates = CertificateClient(self._vault_url, self._credential, api_version=API_VERSION,
                                                       **self._options())
            return self._certificates

    def _key_client(self) -> KeyClient:
        with self._lock:
            if self._keys is None:
                self._keys = KeyClient(self._vault_url, self._credential, api_version=API_VERSION, **self._options())
            return self._keys

    def get(self, name: str, version: str | None) -> SecretRecord:
        secret = self._client.get_secret(name, version)
        return _record(secret.properties, secret.value)

    def get_certificate(self, name: str, version: str | None) -> SecretRecord:
        client = self._certificate_client()
        cert = client.get_certificate_version(name, version) if version else client.get_certificate(name)
        props = cert.properties
        if props is None:  # the SDK builds them from every bundle; a bundle without is broken
            raise MalformedAnswer("certificate without its properties")
        return SecretRecord(name=props.name or name, version=props.version, content_type=None,
                            tags=dict(props.tags or {}), updated=props.updated_on, enabled=props.enabled,
                            value=SecretValue(bytes(cert.cer)) if cert.cer else None)

    def get_key(self, name: str, version: str | None) -> SecretRecord:
        key = self._key_client().get_key(name, version)
        props = key.properties
        return SecretRecord(name=props.name or name, version=props.version, content_type=None,
                            tags=dict(props.tags or {}), updated=props.updated_on, enabled=props.enabled,
                            value=SecretValue(jwk_json(key.key)))

    def set(self, name: str, value: str, content_type: str | None,
            tags: Mapping[str, str] | None) -> SecretRecord:
        secret = self._client.set_secret(
            name, value, content_type=content_type, tags=dict(tags) if tags is not None else None
        )
        return _record(secret.properties)

    def list_pages(self) -> Iterator[tuple[list[SecretRecord], bool]]:
        # Key Vault's list items carry no version (their ids are /secrets/NAME), only
        # attributes (updated, to the second), tags and contentType.
        pages = self._client.list_properties_of_secrets(max_page_size=PAGE_SIZE).by_page()
        followed: set[str] = set()
        while True:
            page = [_record(p) for p in next(pages)]
            link = getattr(pages, "continuation_token", None)  # the nextLink, if any
            if link and link in followed:
                raise MalformedAnswer("the vault sent a nextLink it had sent before (a paging loop)")
            if link:
                followed.add(str(link))
            yield page, bool(link)
            if not link:
                return

    def delete(self, name: str) -> bool:
        # One DELETE; we poll for completion ourselves so each poll is counted and bounded.
        # No recovery id: a (legacy) vault without soft delete, where the delete was final.
        return self._client.begin_delete_secret(name).result().recovery_id is not None

    def get_deleted(self, name: str) -> None:
        self._client.get_deleted_secret(name)

    def purge(self, name: str) -> None:
        self._client.purge_deleted_secret(name)

    def recover(self, name: str) -> None:
        self._client.begin_recover_deleted_secret(name)

    def close(self) -> None:
        self._client.close()
        with self._lock:
            others = [c for c in (self._certificates, self._keys) if c is not None]
        for other in others:
            other.close()
        close = getattr(self._credential, "close", None)
        if callable(close):
            close()
