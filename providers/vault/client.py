"""The Vault/OpenBao KV adapter: KV v2 (versions, tags, compare-and-set, soft delete) and KV v1.

Value convention (see docs/providers.md): KV stores a JSON map per path, secretsync a
single value, so a value is written as ``{"value": "<text>"}`` (``{"value_b64": "..."}``
when it is not UTF-8). Reading a path someone else wrote with other keys returns the whole
map as JSON text, and ``prop`` picks one key, as External Secrets' ``property`` does.

KV v2 specifics:

* ``delete(name)`` soft-deletes every live version (recoverable with ``bao kv undelete``);
  the secret then reads as NotFound, drops out of ``list`` and a later ``put`` (even
  ``if_absent``) creates a new version. ``delete(name, force=True)`` removes the metadata
  and every version for good. :meth:`VaultClient.destroy` destroys chosen versions.
* ``tags`` are the secret's ``custom_metadata``; they are written right after the data
  (two calls: KV v2 has no single call for both).
* a secret whose current version is deleted or destroyed (or whose ``delete_version_after``
  has passed) is absent, whatever older versions remain.
* ``list`` on OpenBao asks ``LIST detailed-metadata/<folder>`` (every secret's metadata in
  one answer, ``LIST_PAGE`` per call): 10,000 secrets are 10 calls, where Vault's
  ``LIST metadata/`` gives names only and costs one metadata read per secret. A server
  without that endpoint (HashiCorp Vault answers it with a 404 "Invalid path"), or a policy
  that does not grant it, gets the classic walk; the client remembers which one works.

A 404 only ever becomes NotFound when the mount exists: see :mod:`.errors`.
"""

from __future__ import annotations

import binascii
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from secretsync.core.contract import (
    Capabilities,
    ClientBase,
    Fetched,
    ListFilter,
    PutResult,
    SecretMetadata,
    Validation,
    ValidationStatus,
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

from .auth import TokenSession, error_detail
from .errors import PROVIDER
from .names import quote_path, read_paths
from .sdk import Transport

T = TypeVar("T")

# ``find_path_is_folder``: ESO lists ``find.path`` as the folder ``<path>/`` (recursively), so
# ``path: prod`` never pulls in ``production/`` (another team's secrets) or the secret ``prod``.
CAPABILITIES_V2 = Capabilities(
    batch_get=False, max_batch=1, versions=True, tags=True, compare_and_set=True, binary=True,
    soft_delete=True, find_path_is_folder=True,
)
CAPABILITIES_V1 = Capabilities(
    batch_get=False, max_batch=1, versions=False, tags=False, compare_and_set=False, binary=True,
    soft_delete=False, find_path_is_folder=True,
)

VALUE_KEY = "value"
VALUE_B64_KEY = "value_b64"
_MAX_NAME = 1024
#: ``list`` walks at most this many folders deep and makes at most this many LIST calls: a
#: server (or a proxy) answering every folder with another folder must not recurse forever.
MAX_LIST_DEPTH = 64
MAX_LIST_CALLS = 100_000
#: OpenBao's KV v2 endpoint that LISTs a folder with each secret's metadata (``key_info``).
DETAILED_METADATA = "detailed-metadata"
#: Secrets per ``LIST detailed-metadata`` call (bounds one answer to a few hundred KB).
LIST_PAGE = 1000


class _NoDetailedListing(Exception):
    """``LIST detailed-metadata`` is not served (or not allowed) here: use the classic walk.

    A signal inside :meth:`VaultClient.list`, raised before anything is yielded; never leaves it.
    """


def _malformed(operation: str, key: str | None, what: str) -> Unavailable:
    """A 2xx answer without the shape Vault gives it: never read as "absent" or "empty"."""
    return Unavailable(f"malformed answer from the server: {what} (truncated, or not from Vault?)",
                       provider=PROVIDER, operation=operation, key=key)


def _listed_key_ok(key: object) -> bool:
    """A LIST entry we can walk into or read: a name or ``folder/``, no '.', '..' or control chars."""
    if not isinstance(key, str) or not key:
        return False
    body = key[:-1] if key.endswith("/") else key
    return bool(body) and "/" not in body and body not in (".", "..") and not any(
        ord(c) < 0x20 or ord(c) == 0x7F for c in body)


def check_name(name: str) -> None:
    """KV paths: no leading/trailing '/', no empty, '.' or '..' segment, no control characters."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > _MAX_NAME
        or name.startswith("/")
        or name.endswith("/")
        or any(seg in ("", ".", "..") for seg in name.split("/"))
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    ):
        raise InvalidConfig("invalid secret name (no leading/trailing '/', empty, '.' or '..' segments, "
                            "or control characters)", provider=PROVIDER, operation="name", key=str(name))


def encode_value(value: SecretValue) -> dict[str, str]:
    """The KV map secretsync writes for one value."""
    if value.is_text:
        return {VALUE_KEY: value.reveal_text()}
    return {VALUE_B64_KEY: value.b64()}


def _own_value(data: Mapping[str, Any]) -> SecretValue | None:
    """The value if ``data`` follows secretsync's convention, else None."""
    if len(data) != 1:
        return None
    if isinstance(data.get(VALUE_KEY), str):
        return SecretValue(data[VALUE_KEY])
    if isinstance(data.get(VALUE_B64_KEY), str):
        try:
            return SecretValue.from_b64(data[VALUE_B64_KEY])
        except (binascii.Error, ValueError):
            return None
    return None


def _as_value(item: Any) -> SecretValue:
    if isinstance(item, str):
        return SecretValue(item)
    return SecretValue(json.dumps(item, separators=(",", ":"), ensure_ascii=False))


def decode_value(data: Mapping[str, Any], prop: str | None, *, name: str) -> SecretValue:
    """A secretsync value from a KV map (see the module docstring for the rules)."""
    own = _own_value(data)
    if own is not None:
        # Our own value: a property applies inside it, as on every other provider; the
        # raw key still answers (``property: value`` on a path holding ``value=...``).
        try:
            return extract_property(own, prop, name=name, provider=PROVIDER)
        except NotFound:
            if prop is not None and prop in data:
                return _as_value(data[prop])
            raise
    if prop is not None and prop in data:
        return _as_value(data[prop])
    return extract_property(_as_value(dict(data)), prop, name=name, provider=PROVIDER)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    # Vault prints nanoseconds; fromisoformat takes at most microseconds.
    main, _, rest = text.partition(".")
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits):]
        text = f"{main}.{digits[:6]}{tz}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _version_gone(info: Mapping[str, Any] | None, now: datetime) -> bool:
    """Whether a KV v2 version is deleted (deletion time reached) or destroyed (or unreadable)."""
    if not info or not isinstance(info, Mapping):
        return True
    if info.get("destroyed"):
        return True
    deleted_at = _parse_time(info.get("deletion_time"))
    return deleted_at is not None and deleted_at <= now


class VaultClient(ClientBase):
    """One KV mount (optionally a folder in it). Thread-safe: shares one HTTP session."""

    provider_name = PROVIDER

    def __init__(
        self,
        transport: Transport,
        session: TokenSession,
        *,
        mount: str,
        prefix: str = "",
        kv_version: int | None = None,
        settings: ClientSettings | None = None,
    ) -> None:
        super().__init__(settings)
        self._transport = transport
        self._session = session
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/")
        self._kv_version = kv_version
        self._detect_lock = threading.Lock()
        #: Whether ``LIST detailed-metadata`` works here: None until a listing has found out.
        self._detailed: bool | None = None

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        """Run one request with a valid token; after a 403, tell an invalid token from a denial."""
        self._session.ensure()
        try:
            return fn()
        except PermissionDenied as exc:
            if self._session.on_forbidden(exc):
                return fn()
            raise

    def _request(self, method: str, path: str, *, operation: str, key: str | None = None,
                 body: Mapping[str, Any] | None = None,
                 params: Mapping[str, str] | None = None) -> dict[str, Any] | None:
        return self._call(lambda: self._transport.request(
            method, path, operation=operation, key=key, body=body, params=params))

    def _rel(self, name: str) -> str:
        """Path of a name inside the mount (prefix applied), percent-encoded."""
        full = f"{self.prefix}/{name}" if self.prefix else name
        return quote_path(full)

    def _path(self, kind: str, name: str) -> str:
        """``kind`` is data/metadata/delete/destroy for v2, ignored for v1."""
        mount = quote_path(self.mount)
        if self.kv_version == 1:
            return f"{mount}/{self._rel(name)}"
        return f"{mount}/{kind}/{self._rel(name)}"

    @property
    def kv_version(self) -> int:
        if self._kv_version is None:
            with self._detect_lock:
                if self._kv_version is None:
                    self._kv_version = self._detect_version()
        return self._kv_version

    def _detect_version(self) -> int:
        """The mount's KV version from ``sys/internal/ui/mounts`` (what ``bao kv`` asks too).

        Any token with some capability under the mount may call it. When it is refused
        (the mount may not exist, or the policy is narrow) the version is unknown, and a
        guess is never made: reading a v1 mount with v2 paths answers 404 for every key,
        which would be taken for "deleted" and prune Secrets. So a refusal is an
        InvalidConfig naming ``kvVersion`` (set it to skip the probe); an outage propagates
        as Unavailable and the probe runs again on the next call.
        """
        try:
            response = self._request("GET", f"sys/internal/ui/mounts/{quote_path(self.mount)}",
                                     operation="detect_mount")
        except (PermissionDenied, NotFound, InvalidConfig) as exc:
            raise InvalidConfig(
                f"cannot detect the KV version of mount {self.mount!r} (sys/internal/ui/mounts: "
                f"{type(exc).__name__}: {error_detail(exc)}); set the store config field 'kvVersion' to 1 or 2",
                provider=PROVIDER, operation="detect_mount") from exc
        data = (response or {}).get("data") or {}
        mount_type = data.get("type")
        if mount_type not in (None, "kv", "generic"):
            raise InvalidConfig(f"mount {self.mount!r} is a {mount_type!r} engine, not kv",
                                provider=PROVIDER, operation="detect_mount")
        options = data.get("options") or {}
        return 2 if str(options.get("version") or "1") == "2" else 1

    @property
    def capabilities(self) -> Capabilities:
        try:
            version = self.kv_version
        except ProviderError:
            return CAPABILITIES_V2
        return CAPABILITIES_V2 if version == 2 else CAPABILITIES_V1

    def _v1_only(self, what: str, key: str) -> InvalidConfig:
        return InvalidConfig(f"KV v1 mount {self.mount!r} has no {what}", provider=PROVIDER,
                             operation="put", key=key)

    # -- reads -------------------------------------------------------------------------------
    def _aliases(self, name: str) -> list[str]:
        """The paths a read of ``name`` tries (see :func:`.names.read_paths`)."""
        return read_paths(name, self.mount, lambda: self.kv_version == 2)

    def _first_found(self, name: str, read: Callable[[str], T]) -> T:
        check_name(name)
        candidates = self._aliases(name)
        for candidate in candidates[:-1]:
            try:
                return read(candidate)
            except NotFound:
                continue
        return read(candidates[-1])

    def _read_data(self, name: str, version: str | None) -> tuple[dict[str, Any], str | None]:
        return self._first_found(name, lambda path: self._read_path(path, version, name))

    def _read_path(self, path: str, version: str | None, name: str) -> tuple[dict[str, Any], str | None]:
        params: dict[str, str] | None = None
        if version is not None:
            if self.kv_version == 1:
                raise InvalidConfig(f"KV v1 mount {self.mount!r} has no versions", provider=PROVIDER,
                                    operation="read", key=name)
            if not version.isdigit() or int(version) < 1:
                # KV v2 versions are positive integers: anything else ("latest", "v2", "../x")
                # is a caller's mistake, never a definite "absent" that could drive a prune.
                raise InvalidConfig(f"version {version[:40]!r} is not a KV v2 version number (1, 2, ...)",
                                    provider=PROVIDER, operation="read", key=name)
            params = {"version": version}
        response = self._request("GET", self._path("data", path), operation="read", key=name,
                                 params=params)
        data = (response or {}).get("data")
        if not isinstance(data, dict):
            # Vault answers a missing secret with a 404 (mapped to NotFound by the transport);
            # a 200 without a data object is a broken answer, not an absent secret.
            raise _malformed("read", name, "no 'data' object in a successful read")
        if self.kv_version == 1:
            return data, None
        inner = data.get("data")
        meta = data.get("metadata")
        if not isinstance(inner, dict) or not isinstance(meta, dict):
            raise _malformed("read", name, "no 'data.data'/'data.metadata' objects in a KV v2 read")
        got = meta.get("version")
        return inner, str(got) if got is not None else version

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        data, _ = self._read_data(name, version)
        return decode_value(data, prop, name=name)

    def get_versioned(self, name: str) -> Fetched:
        """One call: a KV v2 read returns the version with the data."""
        data, version = self._read_data(name, None)
        return Fetched(decode_value(data, None, name=name), version)

    def _read_metadata(self, name: str) -> dict[str, Any]:
        response = self._request("GET", self._path("metadata", name), operation="read_metadata", key=name)
        data = (response or {}).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("versions", {}), dict):
            raise _malformed("read_metadata", name, "no 'data' object in a successful metadata read")
        return data

    def _live_meta(self, name: str, data: Mapping[str, Any]) -> SecretMetadata | None:
        """SecretMetadata from a KV v2 metadata response; None when the current version is gone."""
        current = data.get("current_version")
        versions = data.get("versions") or {}
        custom = data.get("custom_metadata") or {}
        info = versions.get(str(current)) if current and isinstance(versions, Mapping) else None
        if (not isinstance(versions, Mapping) or not isinstance(custom, Mapping)
                or (current and not isinstance(info, Mapping))):
            # Vault always lists the current version's entry: without it (or with the wrong
            # types) this is a broken answer, not a deleted secret.
            raise _malformed("read_metadata", name, "the current version's entry is missing or not an object")
        if _version_gone(info, datetime.now(UTC)):
            return None
        assert info is not None
        tags = {str(k): str(v) for k, v in custom.items() if v is not None}
        updated = _parse_time(info.get("created_time")) or _parse_time(data.get("updated_time"))
        return SecretMetadata(name=name, version=str(current), updated=updated, tags=tags)

    def describe(self, name: str) -> SecretMetadata:
        check_name(name)
        if self.kv_version == 1:
            self._read_data(name, None)
            return SecretMetadata(name=name)
        meta = self._live_meta(name, self._first_found(name, self._read_metadata))
        if meta is None:
            raise NotFound("secret not found (deleted)", provider=PROVIDER, operation="read_metadata",
                           key=name)
        return meta

    def _list_keys(self, folder: str) -> list[str]:
        """Keys directly under ``folder`` ('' or ending in '/'); a missing folder lists empty."""
        mount = quote_path(self.mount)
        base = f"{self.prefix}/{folder}" if self.prefix else folder
        rel = quote_path(base.rstrip("/")) + "/" if base else ""
        path = f"{mount}/{rel}" if self.kv_version == 1 else f"{mount}/metadata/{rel}"
        try:
            response = self._request("LIST", path, operation="list", key=folder or None)
        except NotFound:
            return []  # Vault's definite 404: nothing under this folder
        keys = ((response or {}).get("data") or {}).get("keys") if isinstance(response, dict) else None
        if not isinstance(keys, list):
            raise _malformed("list", folder or None, "no 'data.keys' list in a successful LIST")
        return [k for k in keys if _listed_key_ok(k)]

    def _walk(self, folder: str, prefix: str, budget: list[int] | None = None) -> Iterator[str]:
        """Every secret name under ``folder`` starting with ``prefix``, depth first, sorted.

        Folders that cannot hold a matching name are not listed at all. The walk is bounded
        (depth and LIST calls) so a server that nests folders forever cannot hang it.
        """
        budget = budget if budget is not None else [MAX_LIST_CALLS]
        if folder.count("/") > MAX_LIST_DEPTH:
            raise Unavailable(f"list: folders nested deeper than {MAX_LIST_DEPTH} levels under "
                              f"{folder[:80]!r}...; refusing to walk further (a looping server?)",
                              provider=PROVIDER, operation="list")
        budget[0] -= 1
        if budget[0] < 0:
            raise Unavailable(f"list: more than {MAX_LIST_CALLS} folders; refusing to walk further "
                              "(narrow the store's prefix)", provider=PROVIDER, operation="list")
        for key in sorted(self._list_keys(folder)):
            path = folder + key
            if not (path.startswith(prefix) or prefix.startswith(path)):
                continue
            if key.endswith("/"):
                yield from self._walk(path, prefix, budget)
            elif path.startswith(prefix):
                yield path

    def _detailed_page(self, folder: str, after: str | None) -> tuple[list[str], Mapping[str, Any], str | None]:
        """One page of ``LIST detailed-metadata/<folder>``: the usable keys, their metadata, and
        where the next page starts (None: this was the last page).

        It asks for one key more than it returns: that key says whether another page follows,
        so a folder of exactly k pages costs k calls, not k + 1 (the last one empty).

        Raises :class:`_NoDetailedListing` while the endpoint has not yet been seen to work
        and the server refuses it (InvalidConfig: a 404 "Invalid path" or 405 from a server
        without it; PermissionDenied: a policy written for ``metadata/`` only), or answers
        the first folder with a 404 (maybe empty, maybe not: the classic LIST decides).
        Once it has worked, every error is what it is.
        """
        mount = quote_path(self.mount)
        base = f"{self.prefix}/{folder}" if self.prefix else folder
        rel = quote_path(base.rstrip("/")) + "/" if base else ""
        params = {"limit": str(LIST_PAGE + 1)}
        if after is not None:
            params["after"] = after
        try:
            response = self._request("LIST", f"{mount}/{DETAILED_METADATA}/{rel}", operation="list",
                                     key=folder or None, params=params)
        except NotFound:
            if not self._detailed:
                raise _NoDetailedListing from None
            return [], {}, None  # OpenBao's definite 404: nothing under this folder
        except (InvalidConfig, PermissionDenied):
            if self._detailed:
                raise
            self._detailed = False
            raise _NoDetailedListing from None
        data = (response or {}).get("data") if isinstance(response, dict) else None
        keys = data.get("keys") if isinstance(data, dict) else None
        info = data.get("key_info", {}) if isinstance(data, dict) else None
        if not isinstance(keys, list) or not isinstance(info, dict):
            raise _malformed("list", folder or None, "no 'data.keys' list / 'data.key_info' object in a "
                             "successful detailed LIST")
        self._detailed = True
        more = len(keys) > LIST_PAGE
        keys = keys[:LIST_PAGE]
        after_this = keys[-1] if more and isinstance(keys[-1], str) else None
        return [k for k in keys if _listed_key_ok(k)], info, after_this

    def _walk_detailed(self, folder: str, prefix: str, budget: list[int]
                       ) -> Iterator[tuple[str, Mapping[str, Any] | None]]:
        """Like :meth:`_walk`, a page of ``LIST_PAGE`` at a time, yielding each name's metadata."""
        if folder.count("/") > MAX_LIST_DEPTH:
            raise Unavailable(f"list: folders nested deeper than {MAX_LIST_DEPTH} levels under "
                              f"{folder[:80]!r}...; refusing to walk further (a looping server?)",
                              provider=PROVIDER, operation="list")
        after: str | None = None
        while True:
            budget[0] -= 1
            if budget[0] < 0:
                raise Unavailable(f"list: more than {MAX_LIST_CALLS} LIST calls; refusing to walk further "
                                  "(narrow the store's prefix)", provider=PROVIDER, operation="list")
            keys, info, last = self._detailed_page(folder, after)
            for key in keys:
                path = folder + key
                if not (path.startswith(prefix) or prefix.startswith(path)):
                    continue
                if key.endswith("/"):
                    yield from self._walk_detailed(path, prefix, budget)
                elif path.startswith(prefix):
                    meta = info.get(key)
                    yield path, meta if isinstance(meta, Mapping) and meta else None
            if last is None or last == after:  # the last page (or a server ignoring 'after')
                return
            after = last

    def _names(self, start: str, prefix: str) -> Iterator[tuple[str, Mapping[str, Any] | None]]:
        """Every name under ``start`` matching ``prefix``, with its KV v2 metadata when the
        listing carried it (OpenBao's detailed LIST), else None."""
        if self.kv_version == 2 and self._detailed is not False:
            walk = self._walk_detailed(start, prefix, [MAX_LIST_CALLS])
            try:
                # The endpoint is decided on the first page, before anything is yielded.
                first = next(walk, None)
            except _NoDetailedListing:
                pass
            else:
                if first is not None:
                    yield first
                    yield from walk
                return
        for name in self._walk(start, prefix):
            yield name, None

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        """KV v2 on OpenBao: one ``LIST detailed-metadata`` per page of ``LIST_PAGE`` secrets.
        Elsewhere: LIST each folder (one call per folder), then one metadata read per secret.

        ``flt.prefix`` prunes the walk to the folders that can match; regex and tags apply
        after the metadata is known.
        Soft-deleted secrets (current version deleted) are left out.
        """
        flt = flt or ListFilter()
        prefix = flt.prefix or ""
        start = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        for name, info in self._names(start, prefix):
            if self.kv_version == 1:
                meta: SecretMetadata | None = SecretMetadata(name=name)
            else:
                try:
                    data = info if info is not None else self._read_metadata(name)
                except NotFound:
                    continue  # deleted between the LIST and the read
                if not isinstance(data.get("versions", {}), dict):
                    raise _malformed("list", name, "a secret's 'versions' is not an object")
                meta = self._live_meta(name, data)
            if meta is not None and flt.matches(meta):
                yield meta

    def validate(self) -> Validation:
        """One LIST of the store's root: proves address, token and list permission."""
        try:
            self._list_keys("")
        except ProviderError as exc:
            return Validation(ValidationStatus.ERROR, str(exc))
        return Validation(ValidationStatus.READY)

    # -- writes ------------------------------------------------------------------------------
    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        check_name(name)
        if not isinstance(value, SecretValue):
            raise InvalidConfig("value must be a SecretValue", provider=PROVIDER, operation="write", key=name)
        if self.kv_version == 1:
            return self._put_v1(name, value, tags=tags, if_absent=if_absent,
                                expected_version=expected_version)
        cas: int | None = None
        if if_absent:
            cas = 0
        elif expected_version is not None:
            if not str(expected_version).isdigit():
                raise Conflict(f"expected version {expected_version!r} is not current", provider=PROVIDER,
                               operation="write", key=name)
            cas = int(expected_version)
        if tags is not None:
            self._check_tags(name, tags)
        try:
            version = self._write_v2(name, value, cas)
        except Conflict:
            if cas != 0:
                raise
            # cas=0 fails when metadata exists, even if every version was deleted: a
            # soft-deleted secret is absent for us, so retry against its current version.
            data = self._read_metadata(name)
            if self._live_meta(name, data) is not None:
                raise Conflict("secret already exists", provider=PROVIDER, operation="write",
                               key=name) from None
            version = self._write_v2(name, value, int(data.get("current_version") or 0))
        if tags is not None:
            self._request("POST", self._path("metadata", name), operation="write_metadata", key=name,
                          body={"custom_metadata": dict(tags)})
        return PutResult(name, version)

    def _check_tags(self, name: str, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k:
                raise InvalidConfig("tags must map non-empty strings to strings", provider=PROVIDER,
                                    operation="write", key=name)

    def _write_v2(self, name: str, value: SecretValue, cas: int | None) -> str | None:
        body: dict[str, Any] = {"data": encode_value(value)}
        if cas is not None:
            body["options"] = {"cas": cas}
        response = self._request("POST", self._path("data", name), operation="write", key=name, body=body)
        version = ((response or {}).get("data") or {}).get("version")
        return str(version) if version is not None else None

    def _put_v1(self, name: str, value: SecretValue, *, tags: Mapping[str, str] | None, if_absent: bool,
                expected_version: str | None) -> PutResult:
        if tags:
            raise self._v1_only("tags (custom metadata needs KV v2)", name)
        if expected_version is not None:
            raise self._v1_only("versions to compare-and-set against", name)
        if if_absent:
            # Not atomic on KV v1 (documented): a read, then the write.
            try:
                self._read_data(name, None)
            except NotFound:
                pass
            else:
                raise Conflict("secret already exists", provider=PROVIDER, operation="write", key=name)
        self._request("POST", self._path("data", name), operation="write", key=name,
                      body=encode_value(value))
        return PutResult(name, None)

    def delete(self, name: str, *, force: bool = False) -> None:
        """KV v2: soft-delete all live versions, or (force) remove metadata and every version.

        Vault answers 204 to deleting what is not there, so this reads first to raise NotFound.
        """
        check_name(name)
        if self.kv_version == 1:
            self._read_data(name, None)
            self._request("DELETE", self._path("data", name), operation="delete", key=name)
            return
        data = self._read_metadata(name)
        if force:
            self._request("DELETE", self._path("metadata", name), operation="delete_metadata", key=name)
            return
        now = datetime.now(UTC)
        live = sorted(int(v) for v, info in (data.get("versions") or {}).items()
                      if str(v).isdigit() and not _version_gone(info, now))
        if self._live_meta(name, data) is None or not live:
            raise NotFound("secret not found (already deleted)", provider=PROVIDER, operation="delete",
                           key=name)
        self._request("POST", self._path("delete", name), operation="delete", key=name,
                      body={"versions": live})

    def destroy(self, name: str, versions: Sequence[str]) -> None:
        """Permanently destroy the given KV v2 versions (their data; the metadata stays)."""
        check_name(name)
        if self.kv_version == 1:
            raise self._v1_only("versions to destroy", name)
        numbers = []
        for v in versions:
            if not str(v).isdigit():
                raise InvalidConfig(f"version {v!r} is not a KV v2 version number", provider=PROVIDER,
                                    operation="destroy", key=name)
            numbers.append(int(v))
        self._read_metadata(name)
        self._request("POST", self._path("destroy", name), operation="destroy", key=name,
                      body={"versions": numbers})

    def close(self) -> None:
        """Revoke the token this client logged in for (a token it was given is left alone),
        so a controller that reopens stores does not leave live tokens behind."""
        try:
            self._session.revoke()
        finally:
            self._transport.close()

    def __repr__(self) -> str:
        return f"<VaultClient mount={self.mount!r} prefix={self.prefix!r}>"
