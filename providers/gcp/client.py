"""The Secret Manager adapter: the secretsync contract on top of :mod:`.sdk`.

Cost per operation, in RPCs (each counted by ``settings.calls``):

* ``get`` / ``get_versioned``: 1 AccessSecretVersion (``latest`` or N). When the newest version
  is disabled or destroyed, +1 ListSecretVersions to find the newest ENABLED one and +1 access.
* ``get_many``: one ``get_versioned`` per name (8 in parallel); Secret Manager has no batch read.
* ``describe``: GetSecret + ListSecretVersions(``state:ENABLED``, page_size=1) = 2.
* ``exists``: 1 GetSecret.
* ``list``: ceil(N / 1000) ListSecrets pages + 1 ListSecretVersions per secret that passes the
  filter. ListSecrets returns no version information and a Secret's etag does not change
  when a version is added, so there is no cheaper correct "latest version" signal.
* ``put``: existing secret: AddSecretVersion (+ UpdateSecret when tags are given); new secret:
  AddSecretVersion (NOT_FOUND) + CreateSecret + AddSecretVersion; ``if_absent``: CreateSecret +
  AddSecretVersion; ``expected_version``: +1 ListSecretVersions before writing.
* ``delete``: 1 DeleteSecret (immediate and permanent: Secret Manager has no soft delete).

Version semantics: the "current version" (what ``describe``/``list`` report and
``expected_version`` compares with) is the newest ENABLED version, which is also what
``get`` returns. A DESTROYED version reads as NotFound (its data is gone for good); a
DISABLED one as Conflict (it exists and can be re-enabled, so it must never drive a prune).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import google_crc32c

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

from .names import decode_secret_id, encode_secret_id, label_problem, prefix_search_token, tags_to_labels
from .sdk import Payload, SecretManagerApi, VersionInfo

CAPABILITIES = Capabilities(
    batch_get=False,
    max_batch=1,
    versions=True,
    tags=True,
    # expected_version is checked, then the version added: two calls, not atomic.
    compare_and_set=False,
    binary=True,
    soft_delete=False,
    max_value_bytes=64 * 1024,
    # True, at a price: one ListSecretVersions per listed secret (see the module docstring).
    versions_in_list=True,
)

MAX_VALUE = 64 * 1024
LIST_PAGE_SIZE = 1000
#: ``list``/``versions`` follow at most this many page tokens (10,000,000 secrets at 1000 a
#: page), and never the same token twice: a service that pages forever must not hang a caller.
MAX_LIST_PAGES = 10_000


def _next_page(token: str, seen: set[str], operation: str) -> str:
    """The page token to follow ("" when done), refusing loops and endless paging."""
    if not token:
        return ""
    if token in seen:
        raise Unavailable(f"{operation}: the service sent a page token it had sent before (a paging loop)",
                          provider="gcp", operation=operation)
    if len(seen) + 1 >= MAX_LIST_PAGES:
        raise Unavailable(f"{operation}: still paging after {MAX_LIST_PAGES} pages; giving up",
                          provider="gcp", operation=operation)
    seen.add(token)
    return token
GET_MANY_PARALLELISM = 8
_VERSION_REF = re.compile(r"^(latest|[1-9][0-9]{0,18}|[A-Za-z][A-Za-z0-9_-]{0,62})$")
_PLAIN_FILTER_VALUE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _filter_value(value: str) -> str:
    if _PLAIN_FILTER_VALUE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class GcpClient(ClientBase):
    """One project (and optionally one location) of Secret Manager."""

    provider_name = "gcp"

    def __init__(self, project: str, location: str | None, api: SecretManagerApi,
                 settings: ClientSettings | None = None, *, prefix: str = "", where: str = "",
                 fallback: bool = True) -> None:
        super().__init__(settings)
        #: secretVersionSelectionPolicy: LatestOrFetch (True) reads the newest ENABLED version when
        #: ``latest`` is disabled or destroyed; LatestOrFail (False, ESO's default) fails instead.
        self.fallback = fallback
        self.project = project
        self.location = location
        #: Names are relative to this folder (``gcp://PROJECT/PREFIX``), as with aws:// and vault://.
        self.prefix = prefix.strip("/")
        self._api = api
        self._where = where
        self.parent = f"projects/{project}" + (f"/locations/{location}" if location else "")

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def _path(self, name: str) -> str:
        if isinstance(name, str) and any(seg in (".", "..") for seg in name.split("/")):
            raise InvalidConfig("invalid secret name: a '.' or '..' segment", provider="gcp", operation="name",
                                key=name)
        full = f"{self.prefix}/{name}" if self.prefix else name
        return f"{self.parent}/secrets/{encode_secret_id(full)}"

    def _relative(self, full: str) -> str | None:
        """The name inside this store's prefix, or None for a secret outside it."""
        if not self.prefix:
            return full
        head = self.prefix + "/"
        return full[len(head):] if full.startswith(head) and len(full) > len(head) else None

    # -- reads --------------------------------------------------------------------------------
    def _verified(self, payload: Payload, name: str) -> SecretValue:
        if payload.crc32c is not None and google_crc32c.value(payload.data) != payload.crc32c:
            raise Unavailable("payload failed its CRC32C check (corrupted in transit); retry",
                              provider="gcp", operation="AccessSecretVersion", key=name)
        return SecretValue(payload.data)

    def _latest_enabled(self, path: str, name: str) -> VersionInfo | None:
        versions, _ = self._api.list_versions(path, filter="state:ENABLED", page_size=1, key=name)
        return versions[0] if versions else None

    def _access_latest(self, name: str) -> Fetched:
        path = self._path(name)
        try:
            payload = self._api.access_version(f"{path}/versions/latest", key=name)
        except (Conflict, NotFound) as exc:
            # NotFound: no secret, no versions, or the newest version is DESTROYED.
            # Conflict: the newest version is DISABLED. Either way an older ENABLED one may exist.
            if isinstance(exc, NotFound) and "destroyed" not in str(exc).lower():
                raise
            if not self.fallback:
                # Conflict, not NotFound: the secret exists and may be re-enabled; never a prune.
                raise Conflict("the newest version is disabled or destroyed and secretVersionSelectionPolicy "
                               "is LatestOrFail", provider="gcp", operation="get", key=name) from exc
            latest = self._latest_enabled(path, name)
            if latest is None:
                disabled, _ = self._api.list_versions(path, filter="state:DISABLED", page_size=1, key=name)
                if disabled:
                    raise Conflict("the secret has no ENABLED version (newest is disabled)",
                                   provider="gcp", operation="get", key=name) from exc
                raise NotFound("the secret has no readable version (all destroyed)",
                               provider="gcp", operation="get", key=name) from exc
            payload = self._api.access_version(latest.name, key=name)
        version = payload.version_name.rsplit("/", 1)[-1]
        return Fetched(self._verified(payload, name), version)

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        if version is None or version == "latest":
            value = self._access_latest(name).value
        else:
            if not _VERSION_REF.match(version):
                raise InvalidConfig(f"version {version!r} is not a version number, 'latest' or an alias",
                                    provider="gcp", operation="get", key=name)
            value = self._verified(self._api.access_version(f"{self._path(name)}/versions/{version}",
                                                            key=name), name)
        return extract_property(value, prop, name=name, provider="gcp")

    def get_versioned(self, name: str) -> Fetched:
        return self._access_latest(name)

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        """One AccessSecretVersion per name (no batch API), up to GET_MANY_PARALLELISM at once.

        Why in parallel: this is the controller's hot path on GCP (listing costs more calls
        and the small read quota), and the calls are independent; the access quota (90,000
        per minute per project) and the client's rate limiter bound the pace. Per-secret
        errors stay per secret: IAM can be granted secret by secret, so one PermissionDenied
        must not fail the rest. Errors that hit the whole call (auth, throttling, outage) raise.
        """
        unique = list(dict.fromkeys(names))

        def one(name: str) -> Fetched | ProviderError:
            try:
                return self._access_latest(name)
            except (NotFound, PermissionDenied, Conflict, InvalidConfig) as exc:
                return exc

        if len(unique) <= 1:
            return {name: one(name) for name in unique}
        with ThreadPoolExecutor(max_workers=min(GET_MANY_PARALLELISM, len(unique)),
                                thread_name_prefix="gcp-get-many") as pool:
            return dict(zip(unique, pool.map(one, unique), strict=True))

    def describe(self, name: str) -> SecretMetadata:
        path = self._path(name)
        info = self._api.get_secret(path, key=name)
        latest = self._latest_enabled(path, name)
        return SecretMetadata(
            name=name,
            version=latest.version_id if latest else None,
            updated=(latest.create_time if latest else None) or info.create_time,
            tags=dict(info.labels),
        )

    def exists(self, name: str) -> bool:
        try:
            self._api.get_secret(self._path(name), key=name)
        except NotFound:
            return False
        return True

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        flt = flt or ListFilter()
        if any(label_problem(str(k), str(v)) for k, v in flt.tags.items()):
            return iter(())  # no Secret Manager label can hold such a tag: nothing matches
        return self._list(flt)

    def _server_filter(self, flt: ListFilter) -> str:
        terms = [f"labels.{key}={_filter_value(value)}" for key, value in sorted(flt.tags.items())]
        full_prefix = (self.prefix + "/" if self.prefix else "") + (flt.prefix or "")
        token = prefix_search_token(full_prefix) if full_prefix else ""
        if token:
            terms.insert(0, f"name:{_filter_value(token)}")
        return " AND ".join(terms)

    def _list(self, flt: ListFilter) -> Iterator[SecretMetadata]:
        server_filter = self._server_filter(flt)
        token = ""
        seen: set[str] = set()
        while True:
            secrets, token = self._api.list_secrets(self.parent, filter=server_filter,
                                                    page_size=LIST_PAGE_SIZE, page_token=token)
            token = _next_page(token, seen, "ListSecrets")
            for info in secrets:
                if "/secrets/" not in info.name or not info.secret_id:
                    raise Unavailable("ListSecrets answered a secret without a resource name (a broken answer)",
                                      provider="gcp", operation="ListSecrets")
                name = self._relative(decode_secret_id(info.secret_id))
                if name is None or not flt.matches(SecretMetadata(name=name, tags=dict(info.labels))):
                    continue
                try:
                    latest = self._latest_enabled(info.name, name)
                except NotFound:
                    continue  # deleted between the two calls
                except PermissionDenied:
                    latest = None  # listable but not readable: report it without a version
                yield SecretMetadata(
                    name=name,
                    version=latest.version_id if latest else None,
                    updated=(latest.create_time if latest else None) or info.create_time,
                    tags=dict(info.labels),
                )
            if not token:
                return

    # -- writes -------------------------------------------------------------------------------
    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        path = self._path(name)
        secret_id = path.rsplit("/", 1)[-1]
        labels = tags_to_labels(tags, name=name) if tags is not None else None
        data = value.reveal()
        if len(data) > MAX_VALUE:
            raise InvalidConfig(f"value is {len(data)} bytes; Secret Manager takes at most {MAX_VALUE}",
                                provider="gcp", operation="put", key=name)
        crc = google_crc32c.value(data)
        if expected_version is not None:
            try:
                current = self._latest_enabled(path, name)
            except NotFound:
                current = None
            if (current.version_id if current else None) != expected_version:
                raise Conflict("version changed (compare-and-set failed)",
                               provider="gcp", operation="put", key=name)
        regional = self.location is not None
        if if_absent:
            created = self._api.create_secret(self.parent, secret_id, labels=labels or {}, regional=regional,
                                              key=name)
            try:
                version = self._api.add_version(path, data, crc, key=name)
            except ProviderError:
                self._remove_empty_shell(path, created.etag, name)
                raise
            return PutResult(name, version.version_id)
        try:
            version = self._api.add_version(path, data, crc, key=name)
        except NotFound:
            try:
                self._api.create_secret(self.parent, secret_id, labels=labels or {}, regional=regional, key=name)
                labels = None  # set at creation
            except Conflict:
                pass  # created concurrently: add our version to it
            version = self._api.add_version(path, data, crc, key=name)
        if labels is not None:
            self._api.update_labels(path, labels, key=name)
        return PutResult(name, version.version_id)

    def _remove_empty_shell(self, path: str, etag: str, name: str) -> None:
        """Undo a CreateSecret whose first AddSecretVersion failed, so a retry of an
        only-if-absent put does not find a value-less secret in its way. Best effort: the
        etag guards against deleting a secret someone has modified since."""
        try:
            self._api.delete_secret(path, etag=etag, key=name)
        except ProviderError:
            return

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete the secret and all its versions (permanent: Secret Manager has no soft delete)."""
        self._api.delete_secret(self._path(name), key=name)

    # -- version lifecycle (beyond the contract) ---------------------------------------------
    def _version_path(self, name: str, version: str) -> str:
        if not _VERSION_REF.match(version):
            raise InvalidConfig(f"version {version!r} is not a version number, 'latest' or an alias",
                                provider="gcp", operation="version", key=name)
        return f"{self._path(name)}/versions/{version}"

    def disable_version(self, name: str, version: str) -> None:
        self._api.set_version_state(self._version_path(name, version), "disable", key=name)

    def enable_version(self, name: str, version: str) -> None:
        self._api.set_version_state(self._version_path(name, version), "enable", key=name)

    def destroy_version(self, name: str, version: str) -> None:
        """Irreversibly destroy one version's data (the version stays, in state DESTROYED)."""
        self._api.set_version_state(self._version_path(name, version), "destroy", key=name)

    def versions(self, name: str) -> builtins.list[tuple[str, str]]:
        """(version id, state) of every version, newest first."""
        out: builtins.list[tuple[str, str]] = []
        token = ""
        seen: set[str] = set()
        path = self._path(name)
        while True:
            page, token = self._api.list_versions(path, page_size=LIST_PAGE_SIZE, page_token=token, key=name)
            token = _next_page(token, seen, "ListSecretVersions")
            out.extend((v.version_id, v.state) for v in page)
            if not token:
                return out

    # -- housekeeping ------------------------------------------------------------------------
    def validate(self) -> Validation:
        """One ListSecrets call of one item: proves endpoint, credentials and list permission."""
        try:
            self._api.list_secrets(self.parent, page_size=1)
        except ProviderError as exc:
            return Validation(ValidationStatus.ERROR, str(exc))
        return Validation(ValidationStatus.READY)

    def close(self) -> None:
        self._api.close()

    def __repr__(self) -> str:
        return f"<GcpClient parent={self.parent!r} prefix={self.prefix!r} {self._where}>"
