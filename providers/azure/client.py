"""``azure://VAULT``: secrets in Azure Key Vault, through the official SDK.

What Key Vault does differently from the other backends, and how this client meets the
contract anyway:

* **Names** are 1-127 letters, digits and dashes, case-insensitive: names are mapped
  reversibly (:mod:`.names`).
* **Values** are strings of at most 25 KiB: binary values are stored base64 with the
  content type :data:`BINARY_CONTENT_TYPE` and decoded on read; larger values are refused
  with InvalidConfig before any call (:attr:`Capabilities.max_value_bytes`).
* **Tags and content type belong to a version**: ``put(tags=None)`` reads the current
  tags first and carries them to the new version, as the other backends keep them.
* **Delete is soft**: the name stays reserved until purged, and a PUT on it answers
  ``409 ObjectIsDeletedButRecoverable``. ``put`` then recovers the secret and writes the
  new version on top, so delete-then-put works as on every other backend.
  ``delete(force=True)`` (or ``purgeOnDelete``) purges after the deletion completes.
* **No conditional writes**: ``if_absent`` / ``expected_version`` are checked with a read
  just before the write; the check is not atomic (``compare_and_set=False``).
* **List gives no versions** (list ids are ``/secrets/NAME``), only ``updated`` to the
  second: change detection compares ``updated``; an exact version costs one GET.
* **No batch read**: ``get_many`` runs single GETs on a small thread pool.
* **Certificates and keys** (``cert/NAME``, ``key/NAME``, ESO's remoteRef prefixes, read in
  the default ``verbatim`` names only) are read as ESO reads them: a certificate's X.509
  certificate in DER, a key's public JSON Web Key as JSON. They are read-only here (ESO's
  PushSecret imports them; this provider's writes are secrets only) and the secrets
  listing does not hold them, so the capabilities name their prefixes as unlisted and
  change detection reads them directly each cycle.

Every HTTP call runs inside :meth:`AzureKeyVaultClient._call`: rate limit, call count and
error mapping; one list page is one call.
"""

from __future__ import annotations

import binascii
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from secretsync.core.contract import (
    Capabilities,
    ClientBase,
    Fetched,
    ListFilter,
    PutResult,
    SecretMetadata,
    extract_property,
)
from secretsync.core.errors import (
    Conflict,
    InvalidConfig,
    NotFound,
    PermissionDenied,
    ProviderError,
    Unavailable,
)
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue

from ..calls import provider_call
from .errors import PROVIDER, is_deleted_but_recoverable, mapper
from .names import Kind, NameCodec, UnstorableName
from .sdk import KeyVaultApi, SecretRecord

log = logging.getLogger(__name__)

#: Key Vault's limit on a secret value (the service answers 400 above it).
MAX_VALUE_BYTES = 25 * 1024
#: ``list`` reads at most this many pages (25 secrets each: 250,000 secrets) and refuses a
#: nextLink it has already followed: a service that pages forever must not hang a caller.
MAX_LIST_PAGES = 10_000
#: What a version id may look like (Key Vault's are 32 hex digits; any other plain token is
#: looked up and answered 404 SecretNotFound by the service).
_VERSION = re.compile(r"^[A-Za-z0-9-]{1,64}$")
#: Content type marking a value this provider stored as base64 (binary data).
BINARY_CONTENT_TYPE = "application/octet-stream; secretsync-encoding=base64"
_BINARY_MARKER = "secretsync-encoding=base64"

CAPABILITIES = Capabilities(
    batch_get=False,
    max_batch=1,
    versions=True,
    tags=True,
    compare_and_set=False,
    binary=True,
    soft_delete=True,
    max_value_bytes=MAX_VALUE_BYTES,
    versions_in_list=False,
)


class AzureKeyVaultClient(ClientBase):
    """A client for one vault. Thread-safe (the SDK client is)."""

    provider_name = PROVIDER

    def __init__(
        self,
        api: KeyVaultApi,
        *,
        vault_url: str,
        names: NameCodec | None = None,
        purge_on_delete: bool = False,
        settings: ClientSettings | None = None,
        max_workers: int = 8,
        poll_timeout: float | None = None,
        limited_in_pipeline: bool = False,
    ) -> None:
        super().__init__(settings)
        self._api = api
        self.vault_url = vault_url
        self._names = names or NameCodec()
        self._unlisted: set[str] = set()
        self._purge_on_delete = purge_on_delete
        #: With ``limited_in_pipeline`` the api's HTTP pipeline waits for the store's bucket on
        #: every request (retries included); otherwise each SDK call waits here.
        self._limiter = None if limited_in_pipeline else self.settings.rate_limit.bucket()
        self._max_workers = max(1, max_workers)
        t = self.settings.timeouts
        #: How long delete/recover may take to complete on the service side.
        self._poll_timeout = poll_timeout if poll_timeout is not None else max(30.0, 2 * (t.connect + t.read))
        self._closed = threading.Event()
        self._capabilities = dataclasses.replace(CAPABILITIES, unlisted_prefixes=self._names.unlisted_prefixes())
        self._readers: dict[Kind, Callable[[str, str | None], SecretRecord]] = {
            "secret": api.get, "cert": api.get_certificate, "key": api.get_key}

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def __repr__(self) -> str:
        return f"<AzureKeyVaultClient vault={self.vault_url}>"

    # ------------------------------------------------------------------ plumbing
    def _call(self, operation: str, key: str | None = None,
              values: tuple[SecretValue | str, ...] = ()) -> AbstractContextManager[None]:
        """One SDK call through :func:`providers.calls.provider_call` (rate limit, count, a
        deadline for the whole call, the mapping of :func:`.errors.mapper`)."""
        return provider_call(self.settings, PROVIDER, operation, mapper(values), key=key, limiter=self._limiter,
                             server="the vault")

    def _target(self, name: str, operation: str) -> tuple[Kind, str]:
        """Which vault object ``name`` is (secret, certificate or key) and its vault name."""
        if (not isinstance(name, str) or any(seg in (".", "..") for seg in name.split("/"))
                or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)):
            raise InvalidConfig("invalid secret name: a '.' or '..' segment, or a control character",
                                provider=PROVIDER, operation=operation, key=str(name))
        try:
            return self._names.resolve(name)
        except UnstorableName as exc:
            raise InvalidConfig(f"invalid secret name: {exc}", provider=PROVIDER, operation=operation,
                                key=name) from None

    def _vault_name(self, name: str, operation: str) -> str:
        """The vault name of a secret this provider may write (or delete, recover, purge)."""
        kind, vault_name = self._target(name, operation)
        if kind != "secret":
            what = "certificate" if kind == "cert" else "key"
            raise InvalidConfig(
                f"'{kind}/' names a Key Vault {what}: readable here, but {operation} works on secrets only "
                f"(ESO's PushSecret imports a {what}; secretsync does not)",
                provider=PROVIDER, operation=operation, key=name)
        return vault_name

    @staticmethod
    def _encode_value(name: str, value: SecretValue) -> tuple[str, str | None]:
        if value.is_text:
            text, content_type = value.reveal_text(), None
        else:
            text, content_type = value.b64(), BINARY_CONTENT_TYPE
        size = len(text.encode("utf-8"))
        if size > MAX_VALUE_BYTES:
            how = f"{len(value)} bytes" if content_type is None else \
                f"{len(value)} bytes of binary data ({size} as base64)"
            raise InvalidConfig(
                f"value is {how}; Azure Key Vault stores at most {MAX_VALUE_BYTES} bytes per secret "
                "(split it, or keep it in another store)",
                provider=PROVIDER, operation="put", key=name,
            )
        return text, content_type

    @staticmethod
    def _decode_value(name: str, record: SecretRecord) -> SecretValue:
        if record.value is None:
            # Key Vault always returns "value" on a GET: without it the answer is broken, and
            # an empty value must not be synced in its place.
            raise Unavailable("malformed answer from the vault: a secret without a value",
                              provider=PROVIDER, operation="get", key=name)
        value = record.value
        ctype = (record.content_type or "").replace(" ", "").lower()
        if _BINARY_MARKER in ctype:
            try:
                return SecretValue.from_b64(value.reveal_text())
            except (ValueError, binascii.Error):
                raise InvalidConfig("value is marked base64 (content type) but does not decode",
                                    provider=PROVIDER, operation="get", key=name) from None
        return value

    def _get_record(self, name: str, version: str | None, operation: str) -> SecretRecord:
        kind, vault_name = self._target(name, operation)
        if version is not None and not _VERSION.match(version):
            # Key Vault version ids are 32 hex digits; a '/', '.' or '..' would change the URL path.
            raise InvalidConfig(f"version {version[:40]!r} is not a Key Vault version id", provider=PROVIDER,
                                operation=operation, key=name)
        with self._call(operation, name):
            return self._readers[kind](vault_name, version)

    def _wait_until(self, operation: str, name: str, probe: Callable[[], None]) -> None:
        """Poll ``probe`` until it stops answering 404 (as the SDK's poller does), bounded."""
        deadline = time.monotonic() + self._poll_timeout
        delay = 0.1
        while True:
            try:
                with self._call(operation, name):
                    probe()
                return
            except NotFound:
                pass
            except PermissionDenied:
                return  # no get permission on the target: the SDK's poller also stops here
            if time.monotonic() + delay > deadline:
                raise Unavailable(f"{operation}: still in progress after {self._poll_timeout:.0f}s",
                                  provider=PROVIDER, operation=operation, key=name)
            time.sleep(delay)
            delay = min(2.0, delay * 2)

    # ------------------------------------------------------------------ reads
    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        record = self._get_record(name, version or None, "get")
        return extract_property(self._decode_value(name, record), prop, name=name, provider=PROVIDER)

    def get_versioned(self, name: str) -> Fetched:
        record = self._get_record(name, None, "get")
        return Fetched(self._decode_value(name, record), record.version)

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        """Single GETs (Key Vault has no batch read) on up to ``max_workers`` threads.

        NotFound and a name Key Vault cannot hold are per-name results; any other error
        (auth, outage, throttling) fails the whole call, as the contract asks.
        """
        unique = list(dict.fromkeys(names))

        def one(name: str) -> Fetched | ProviderError:
            try:
                return self.get_versioned(name)
            except (NotFound, InvalidConfig) as exc:
                return exc

        if len(unique) <= 1 or self._max_workers == 1:
            return {n: one(n) for n in unique}
        with ThreadPoolExecutor(min(self._max_workers, len(unique)), thread_name_prefix="azure-get") as pool:
            futures = {n: pool.submit(one, n) for n in unique}
            return {n: f.result() for n, f in futures.items()}

    def describe(self, name: str) -> SecretMetadata:
        # Key Vault has no metadata-only read of the current version: this GET returns the
        # value too, which stays inside the SDK object and is dropped here.
        record = self._get_record(name, None, "describe")
        return SecretMetadata(name=name, version=record.version, updated=record.updated,
                              tags=dict(record.tags))

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        """Every secret's metadata, 25 per call; ``version`` is None (Key Vault's list has none).

        Filters apply client-side (Key Vault filters nothing server-side). Vault names that
        are not this store's encoding of a name (made by other tools) are skipped.
        """
        flt = flt or ListFilter()
        pages = self._api.list_pages()
        more = True
        count = 0
        while more:
            count += 1
            if count > MAX_LIST_PAGES:
                raise Unavailable(f"list: the vault is still paging after {MAX_LIST_PAGES} pages; giving up "
                                  "(a nextLink loop?)", provider=PROVIDER, operation="list")
            try:
                with self._call("list"):
                    page, more = next(pages)
            except NotFound as exc:
                # A list never answers "no such secret": a 404 here is a wrong URL or route.
                raise InvalidConfig(f"list answered 404 ({exc}); check the vault URL", provider=PROVIDER,
                                    operation="list") from exc.__cause__
            for record in page:
                name = self._names.from_vault(record.name)
                if name is None:
                    # Only in the opt-in escape mode: a name another tool wrote cannot be read
                    # back through the encoding. Said once per name, never silently dropped.
                    if record.name not in self._unlisted:
                        self._unlisted.add(record.name)
                        log.warning("azure %s: vault secret %r is not listed: it is not an escape-encoded "
                                    "name (nameEncoding: escape); use nameEncoding: verbatim to read it",
                                    self.vault_url, record.name)
                    continue
                meta = SecretMetadata(name=name, version=None, updated=record.updated, tags=dict(record.tags))
                if flt.matches(meta):
                    yield meta

    # ------------------------------------------------------------------ writes
    def _current_or_none(self, name: str) -> SecretRecord | None:
        try:
            return self._get_record(name, None, "describe")
        except NotFound:
            return None

    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        vault_name = self._vault_name(name, "put")
        text, content_type = self._encode_value(name, value)
        write_tags: Mapping[str, str] | None = tags
        if if_absent or expected_version is not None or tags is None:
            # Key Vault has no conditional PUT: check just before writing (not atomic).
            current = self._current_or_none(name)
            if if_absent and current is not None:
                raise Conflict("secret already exists", provider=PROVIDER, operation="put", key=name)
            if expected_version is not None and (current is None or current.version != expected_version):
                raise Conflict("version changed (compare-and-set failed)", provider=PROVIDER,
                               operation="put", key=name)
            if tags is None and current is not None:
                write_tags = dict(current.tags)
        try:
            with self._call("put", name, (value, text)):
                record = self._api.set(vault_name, text, content_type, write_tags)
        except Conflict as exc:
            if not is_deleted_but_recoverable(exc):
                raise
            # The name is soft-deleted: bring the secret back, then write the new version.
            self.recover(name)
            with self._call("put", name, (value, text)):
                record = self._api.set(vault_name, text, content_type, write_tags)
        return PutResult(name, record.version)

    def recover(self, name: str) -> None:
        """Undo a soft delete (all versions come back) and wait until it is readable."""
        vault_name = self._vault_name(name, "recover")
        with self._call("recover", name):
            self._api.recover(vault_name)

        def readable() -> None:
            self._api.get(vault_name, None)

        self._wait_until("recover-wait", name, readable)

    def purge(self, name: str) -> None:
        """Purge a soft-deleted secret for good (needs the purge permission)."""
        vault_name = self._vault_name(name, "purge")
        deadline = time.monotonic() + self._poll_timeout
        while True:
            try:
                with self._call("purge", name):
                    self._api.purge(vault_name)
                return
            except Conflict:
                # Still being deleted on the service side: purge is refused until it is done.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def delete(self, name: str, *, force: bool = False) -> None:
        vault_name = self._vault_name(name, "delete")
        purge = force or self._purge_on_delete
        try:
            with self._call("delete", name):
                recoverable = self._api.delete(vault_name)
        except NotFound:
            if not purge:
                raise
            # Already soft-deleted? force means gone for good: purge it, else it is absent.
            try:
                with self._call("get-deleted", name):
                    self._api.get_deleted(vault_name)
            except NotFound:
                raise NotFound("secret not found", provider=PROVIDER, operation="delete", key=name) from None
            self.purge(name)
            return
        if not recoverable:
            return  # a vault without soft delete: nothing to wait for or purge
        self._wait_until("delete-wait", name, lambda: self._api.get_deleted(vault_name))
        if purge:
            self.purge(name)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._api.close()
        except Exception as exc:  # closing sockets must not fail a caller that is done
            log.debug("azure: error while closing the client: %s", type(exc).__name__)

