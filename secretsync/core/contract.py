"""The provider contract: a factory that validates config and opens a client, and the client.

Modelled on External Secrets Operator's two levels (``Provider`` -> ``SecretsClient``):

* a :class:`ProviderFactory` is stateless; it turns a store URL or a store spec into a
  config mapping, validates it (raising :class:`~secretsync.core.errors.InvalidConfig`
  naming the field) and opens a client;
* a :class:`SecretsClient` talks to one store. Each operation either returns or raises an
  error of :mod:`secretsync.core.errors`; no SDK exception ever crosses this boundary.

What a backend cannot do is *declared* in :class:`Capabilities` rather than discovered
by calling a method that raises ``NotImplementedError``: callers (the controller's change
detection, the migrator's compare-and-set) branch on capabilities up front.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .errors import InvalidConfig, NotFound, ProviderError
from .regex import search as regex_search
from .settings import ClientSettings
from .values import SecretValue


class Access(enum.Enum):
    READ_ONLY = "ReadOnly"
    READ_WRITE = "ReadWrite"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend supports. Declared, so callers can plan instead of probing."""

    access: Access = Access.READ_WRITE
    #: get_many maps onto a real batch API (AWS BatchGetSecretValue) rather than a loop.
    batch_get: bool = False
    #: Largest batch one backend call takes (1 when there is no batch API).
    max_batch: int = 1
    #: Old versions can be read back by id.
    versions: bool = False
    #: Secrets carry key/value tags (labels) that list can filter on.
    tags: bool = False
    #: put supports expected_version (compare-and-set) atomically on the backend.
    compare_and_set: bool = False
    #: Values may be arbitrary bytes (not only UTF-8 text).
    binary: bool = True
    #: delete is soft (recoverable) unless force=True.
    soft_delete: bool = False
    #: Largest value the backend stores, in bytes (None: no limit worth declaring).
    #: put raises InvalidConfig before calling the backend when a value is larger.
    max_value_bytes: int | None = None
    #: list() metadata carries each secret's current version. Azure Key Vault's list does
    #: not (only ``updated``, to the second): change detection then compares ``updated``
    #: and an exact version costs a describe() per secret.
    versions_in_list: bool = True
    #: Names under these prefixes are readable but never in list() (Azure Key Vault's
    #: ``cert/`` and ``key/`` objects next to its secrets): change detection cannot learn
    #: from the listing that they changed or appeared, so it reads them directly.
    unlisted_prefixes: tuple[str, ...] = ()
    #: ESO's ``find.path`` names a folder here, not a name prefix (Parameter Store serves it with
    #: GetParametersByPath): ``/prod`` finds ``/prod/db`` but never ``/production/db``.
    find_path_is_folder: bool = False

    @property
    def read_write(self) -> bool:
        return self.access is Access.READ_WRITE

    def as_dict(self) -> dict[str, Any]:
        return {
            "access": self.access.value,
            "batchGet": self.batch_get,
            "maxBatch": self.max_batch,
            "versions": self.versions,
            "tags": self.tags,
            "compareAndSet": self.compare_and_set,
            "binary": self.binary,
            "softDelete": self.soft_delete,
            "maxValueBytes": self.max_value_bytes,
            "versionsInList": self.versions_in_list,
            "unlistedPrefixes": list(self.unlisted_prefixes),
            "findPathIsFolder": self.find_path_is_folder,
        }


@dataclass(frozen=True, slots=True)
class SecretMetadata:
    """What a list returns: never a value. ``version`` + ``updated`` drive change detection."""

    name: str
    version: str | None = None
    updated: datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "updated": self.updated.isoformat() if self.updated else None,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Server-side where the backend can (prefix, tags), client-side otherwise (regex)."""

    prefix: str | None = None
    name_regex: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    #: ``prefix`` is a folder (see ``Capabilities.find_path_is_folder``): only names under
    #: ``prefix/`` match (a trailing ``/`` in it changes nothing). A listing by ``prefix`` as a
    #: plain name prefix is a superset, so an adapter's server-side filtering stays valid.
    folder: bool = False

    def matches(self, meta: SecretMetadata) -> bool:
        """Client-side check; adapters apply it after any server-side filtering."""
        if self.prefix and not meta.name.startswith(self.prefix):
            return False
        if self.folder and self.prefix and not meta.name.startswith(self.prefix.rstrip("/") + "/"):
            return False
        if self.name_regex and not regex_search(self.name_regex, meta.name):
            return False
        return all(meta.tags.get(k) == v for k, v in self.tags.items())


@dataclass(frozen=True, slots=True)
class Fetched:
    """A value together with the provider version it was read at."""

    value: SecretValue
    version: str | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    name: str
    version: str | None = None


class ValidationStatus(enum.Enum):
    READY = "Ready"
    UNKNOWN = "Unknown"
    ERROR = "Error"


@dataclass(frozen=True, slots=True)
class Validation:
    status: ValidationStatus
    message: str = ""


@runtime_checkable
class SecretsClient(Protocol):
    """A client for one store. Thread-safe: the controller shares one per store."""

    @property
    def capabilities(self) -> Capabilities: ...

    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue:
        """One secret's value (latest unless ``version``; one JSON property if ``prop``).

        Raises NotFound when the secret, the version or the property does not exist.
        """
        ...

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        """Latest values of many secrets, batched where the backend can.

        Each name maps to its value or to the error for that name (NotFound included), so
        one missing secret does not fail the batch. Errors that hit the whole call raise.
        """
        ...

    def describe(self, name: str) -> SecretMetadata:
        """Metadata of one secret (no value). Raises NotFound."""
        ...

    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]:
        """Metadata of every secret matching ``flt``; pages lazily; never values."""
        ...

    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult:
        """Create the secret or add a new version.

        ``if_absent``: raise Conflict if it exists. ``expected_version``: raise Conflict
        unless the current version is this one (compare-and-set).
        """
        ...

    def delete(self, name: str, *, force: bool = False) -> None:
        """Delete (soft where the backend can, unless ``force``). Raises NotFound."""
        ...

    def exists(self, name: str) -> bool:
        """True/False for a definite answer; any other failure raises."""
        ...

    def validate(self) -> Validation:
        """Can we reach the store with these credentials? Never raises."""
        ...

    def close(self) -> None: ...


class ClientBase(abc.ABC):
    """Shared behaviour for adapters: generic get_many / exists / validate built on the rest.

    Adapters override what their backend does better (a batch API, a cheap existence
    check) and declare it in their capabilities.
    """

    provider_name: str = "unknown"

    def __init__(self, settings: ClientSettings | None = None) -> None:
        self.settings = settings or ClientSettings()

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    def get(self, name: str, *, version: str | None = None, prop: str | None = None) -> SecretValue: ...

    @abc.abstractmethod
    def describe(self, name: str) -> SecretMetadata: ...

    @abc.abstractmethod
    def list(self, flt: ListFilter | None = None) -> Iterator[SecretMetadata]: ...

    @abc.abstractmethod
    def put(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str] | None = None,
        if_absent: bool = False,
        expected_version: str | None = None,
    ) -> PutResult: ...

    @abc.abstractmethod
    def delete(self, name: str, *, force: bool = False) -> None: ...

    def get_versioned(self, name: str) -> Fetched:
        """Latest value with its version. Default: describe + get (two calls); override."""
        meta = self.describe(name)
        return Fetched(self.get(name, version=meta.version), meta.version)

    def get_many(self, names: Sequence[str]) -> dict[str, Fetched | ProviderError]:
        out: dict[str, Fetched | ProviderError] = {}
        for name in dict.fromkeys(names):
            try:
                out[name] = self.get_versioned(name)
            except NotFound as exc:
                out[name] = exc
        return out

    def exists(self, name: str) -> bool:
        try:
            self.describe(name)
        except NotFound:
            return False
        return True

    def validate(self) -> Validation:
        try:
            for _ in self.list():
                break
        except ProviderError as exc:
            return Validation(ValidationStatus.ERROR, str(exc))
        return Validation(ValidationStatus.READY)

    def close(self) -> None:
        return None

    def __enter__(self) -> ClientBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider_name}>"


def extract_property(value: SecretValue, prop: str | None, *, name: str, provider: str) -> SecretValue:
    """Apply a remoteRef ``property`` to a fetched value, mapping a miss to NotFound."""
    if prop is None:
        return value
    try:
        return value.json_property(prop)
    except KeyError as exc:
        raise NotFound(str(exc.args[0]), provider=provider, operation="get", key=name) from None


def read_current(client: SecretsClient, name: str) -> Fetched | None:
    """Latest value and version of ``name``; None only on a definite NotFound (other errors raise).

    The first half of every write (migration, rotation, PushSecret): what is there decides
    between creating and adding a version, and its version is what compare-and-set expects.
    """
    got = client.get_many([name]).get(name)
    if isinstance(got, Fetched):
        return got
    if got is None or isinstance(got, NotFound):
        return None
    raise got


@runtime_checkable
class AcceptsPutOptions(Protocol):
    """A client that applies provider-specific options to what it writes (AWS: a KMS key, a
    description, replica regions: ESO's PushSecretMetadata). Options it does not list are
    refused naming them, never dropped: a KMS key silently ignored is a secret under the
    wrong key."""

    put_option_keys: frozenset[str]

    def put(self, name: str, value: SecretValue, *, tags: Mapping[str, str] | None = None,
            if_absent: bool = False, expected_version: str | None = None,
            options: Mapping[str, Any] | None = None) -> PutResult: ...


def write_version(client: SecretsClient, name: str, value: SecretValue, current: Fetched | None, *,
                  tags: Mapping[str, str] | None = None, options: Mapping[str, Any] | None = None) -> PutResult:
    """The one way secretsync writes a value: create when ``current`` is None (``if_absent``, so a
    concurrent creator is a Conflict, not an overwrite), otherwise a new version that expects
    the version read, where the backend can compare-and-set (a concurrent writer is a Conflict,
    not a lost update). Migration, rotation and PushSecret all write through here."""
    expected = current.version if current is not None and client.capabilities.compare_and_set else None
    if options:
        keys = client.put_option_keys if isinstance(client, AcceptsPutOptions) else frozenset()
        unknown = sorted(set(options) - keys)
        if unknown:
            raise InvalidConfig(f"{unknown[0]}: this store does not apply it (it applies: "
                                f"{', '.join(sorted(keys)) or 'no options'})", operation="put", key=name)
        assert isinstance(client, AcceptsPutOptions)
        return client.put(name, value, tags=tags, if_absent=current is None, expected_version=expected,
                          options=options)
    if current is None:
        return client.put(name, value, tags=tags, if_absent=True)
    return client.put(name, value, tags=tags, expected_version=expected)


@runtime_checkable
class ProviderFactory(Protocol):
    """Validates a store config and opens a client. One per provider, found by entry point."""

    #: Entry-point name and URL scheme (``aws``, ``gcp``, ``azure``, ``vault``, ``file``, ``memory``).
    name: str
    #: What every client of this provider can do (a client may narrow it, e.g. read-only).
    capabilities: Capabilities

    def config_from_url(self, url: str) -> dict[str, Any]:
        """Turn a store URL (``aws://us-east-1/prefix``) into a config mapping.

        Raises InvalidConfig naming what is wrong with the URL.
        """
        ...

    def validate_config(self, config: Mapping[str, Any]) -> None:
        """Raise InvalidConfig naming the offending field; open() calls this first."""
        ...

    def open(
        self,
        config: Mapping[str, Any],
        settings: ClientSettings | None = None,
        credentials: Mapping[str, SecretValue] | None = None,
    ) -> SecretsClient:
        """Open a client. ``credentials`` are resolved Secret references (controller only);
        without them the provider's standard credential chain applies."""
        ...


@dataclass(frozen=True, slots=True)
class CredentialUse:
    """What opening a store with a config and a set of credentials draws on beyond those credentials.

    Why a provider declares this instead of the controller guessing: only the provider knows
    which of its fields read a file of the process (a CA bundle, an SDK profile), which send
    requests somewhere other than the provider's own service, and when its SDK falls back on
    the process's own identity (environment, metadata server, token files). The controller
    decides from it who may write such a store (see ``secretsync.controller.stores``): a
    namespace tenant may not name the controller's files, nor have the controller's identity
    used for it (unless the cluster admin allows it) or sent to a host the tenant chose.
    """

    #: Why the process's own identity would authenticate this store (None: only the given
    #: credentials are used), phrased to name the config field, e.g. ``"auth.method token
    #: without secretRef.token (VAULT_TOKEN / ~/.vault-token)"``.
    ambient: str | None = None
    #: Config fields that name a file of the process (read by the client).
    local_files: tuple[str, ...] = ()
    #: Config fields that send requests to a host other than the provider's own service.
    destinations: tuple[str, ...] = ()


@runtime_checkable
class DescribesCredentialUse(Protocol):
    """A factory that can say what a config would draw on (all built-in providers can).

    Kept apart from :class:`ProviderFactory` so third-party factories without it still
    load; the controller treats such a provider as using the process's identity.
    """

    def credential_use(self, config: Mapping[str, Any], credentials: frozenset[str]) -> CredentialUse:
        """``credentials``: the names of the credentials the store supplies (``accessKeyID``...)."""
        ...


@dataclass(frozen=True, slots=True)
class NameRules:
    """The secret names a provider stores verbatim (no encoding, no escaping).

    Why the provider declares it: a tool that *chooses* names (the migrator's name template)
    must pick ones the provider keeps as they are, so the name in a plan is the name in the
    provider; only the provider knows its alphabet and limits.
    """

    #: Regex character-class body of the characters allowed in a name (``A-Za-z0-9_-``).
    allowed: str
    max_len: int
    #: '/' may separate segments (otherwise segments are joined with '-').
    slash: bool
    #: The name must start with a letter (Azure Key Vault).
    first_alpha: bool = False
    #: The name starts with '/' (SSM Parameter Store paths, when no store prefix comes first).
    leading_slash: bool = False
    #: At most this many '/'-separated segments (SSM: 15 levels, fewer under a prefix).
    max_depth: int | None = None
    #: Words no name may begin with, any case (SSM reserves ``aws`` and ``ssm``).
    reserved_starts: tuple[str, ...] = ()
    #: Whose rules these are, for a plan to say (``SSM Parameter Store names``).
    label: str = ""

    def describe(self) -> str:
        """One line for a plan: which names the target store keeps verbatim."""
        parts = [f"characters [{self.allowed}]", f"at most {self.max_len} characters"]
        if not self.slash:
            parts.append("no '/'")
        if self.leading_slash:
            parts.append("starting with '/'")
        if self.max_depth is not None:
            parts.append(f"at most {self.max_depth} levels")
        if self.first_alpha:
            parts.append("starting with a letter")
        if self.reserved_starts:
            parts.append("not beginning with " + " or ".join(repr(w) for w in self.reserved_starts))
        return f"{self.label or 'names'}: " + ", ".join(parts)


#: For a provider that declares none: conservative, portable names.
DEFAULT_NAME_RULES = NameRules(r"A-Za-z0-9/_.-", 255, True)


def name_rules_of(factory: object, config: Mapping[str, Any] | None = None) -> NameRules:
    """The names a store keeps verbatim: the factory's answer for this store's ``config``
    (``name_rules_for(config)``: one provider can front services with different rules, as
    ``aws`` fronts Secrets Manager and Parameter Store, and a store prefix shortens them), else
    its declared ``name_rules``, else the default."""
    answer = getattr(factory, "name_rules_for", None)
    if config is not None and callable(answer):
        rules = answer(config)
        if isinstance(rules, NameRules):
            return rules
    rules = getattr(factory, "name_rules", None)
    return rules if isinstance(rules, NameRules) else DEFAULT_NAME_RULES


@runtime_checkable
class NamesAddressed(Protocol):
    """A factory that can say which names a read of a key reaches (a provider that rewrites keys).

    Why the provider declares it: a store's ``allowedKeyPrefix`` must bound what the provider
    actually reads, not the key as a tenant wrote it. Only the provider knows how it rewrites
    a key before reading (Azure's ``secret/NAME`` is the secret ``NAME``; Vault reads
    ``MOUNT/x`` as ``x`` inside the mount first), so it names every name the read may reach.
    """

    def addressed_names(self, config: Mapping[str, Any], key: str) -> tuple[str, ...]:
        """The names (in the store's key space, as ``allowedKeyPrefix`` is written) a read of
        ``key`` may reach, in the order it tries them. Raises InvalidConfig (saying why, without
        a value) when the provider cannot tell which object the key names."""
        ...


def addressed_names(factory: object, config: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """The factory's :meth:`NamesAddressed.addressed_names`, or the key itself for a provider
    that reads every key as written."""
    if isinstance(factory, NamesAddressed):
        return factory.addressed_names(config, key)
    return (key,)


#: Block keys under which credentials are named in the generic (secretsync) block shape.
GENERIC_CREDENTIAL_KEYS: tuple[str, ...] = ("secretRef", "serviceAccountRef")
#: The credential name a generic ``serviceAccountRef`` token is passed under.
GENERIC_TOKEN_CREDENTIAL = "jwt"


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """One credential a store block draws from its cluster: where the controller reads it.

    Why a flat record the provider fills in: only the provider knows how its block names
    credentials (secretsync's ``secretRef.<credential>``, ESO's ``auth.secretRef.
    accessKeyIDSecretRef``, ``auth.jwt.serviceAccountRef``, ``authSecretRef.clientId``...), while
    only the controller may read Secrets and request ServiceAccount tokens, under the trust
    rules of one namespace. So the provider translates, the controller resolves, and the
    client receives ``{credential: SecretValue}``.

    ``kind``:
      * ``secret``: data key ``key`` of Secret ``name``;
      * ``token``: a TokenRequest for ServiceAccount ``name`` with ``audiences``;
      * ``annotation``: annotation ``key`` of ServiceAccount ``name`` (Azure workload identity
        reads client and tenant ids there);
      * ``configmap``: data key ``key`` of ConfigMap ``name`` (a CA bundle: ESO's
        ``caProvider: {type: ConfigMap}``).
    """

    credential: str
    #: Where in the block this comes from (``auth.secretRef.accessKeyIDSecretRef``), for errors.
    field: str
    kind: str
    name: str
    namespace: str | None = None
    key: str = ""
    audiences: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreBlock:
    """A store's provider block, read by its provider: the canonical config plus its credentials.

    ``config`` is what :meth:`ProviderFactory.validate_config` and ``open`` take (no credential
    references in it); ``credentials`` are resolved by the controller.
    """

    config: dict[str, Any]
    credentials: tuple[CredentialSource, ...] = ()


@runtime_checkable
class ReadsStoreBlocks(Protocol):
    """A factory that reads its own SecretStore block (every built-in provider does).

    A factory without it gets :func:`generic_store_block`. ``aliases`` are other keys its block
    may be written under (ESO's ``gcpsm``, ``azurekv``).
    """

    aliases: tuple[str, ...]

    def store_block(self, block: Mapping[str, Any]) -> StoreBlock:
        """Translate a block as written (secretsync's or ESO's dialect) into the canonical model.

        Raises InvalidConfig whose message starts with the offending field's path inside the
        block (``auth.jwt.serviceAccountRef.name: required``), one problem per line; never
        quotes a credential.
        """
        ...


def _str_field(sel: Mapping[str, Any], name: str, where: str) -> str:
    value = sel.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidConfig(f"{where}.{name}: required (a non-empty string)")
    return value


def secret_source(credential: str, sel: Any, where: str) -> CredentialSource:
    """A ``{name, key, namespace?}`` selector (secretsync's and ESO's SecretKeySelector)."""
    if not isinstance(sel, Mapping):
        raise InvalidConfig(f"{where}: must be an object {{name, key, namespace?}}")
    ns = sel.get("namespace")
    if ns is not None and not isinstance(ns, str):
        raise InvalidConfig(f"{where}.namespace: must be a string")
    return CredentialSource(credential, where, "secret", _str_field(sel, "name", where),
                            ns or None, _str_field(sel, "key", where))


def token_source(credential: str, sel: Any, where: str, default_audiences: tuple[str, ...] = ()) -> CredentialSource:
    """A ``{name, namespace?, audiences?}`` ServiceAccount selector: a TokenRequest."""
    if not isinstance(sel, Mapping):
        raise InvalidConfig(f"{where}: must be an object {{name, namespace?, audiences?}}")
    ns = sel.get("namespace")
    if ns is not None and not isinstance(ns, str):
        raise InvalidConfig(f"{where}.namespace: must be a string")
    aud = sel.get("audiences") or ()
    if not isinstance(aud, list | tuple) or not all(isinstance(a, str) for a in aud):
        raise InvalidConfig(f"{where}.audiences: must be a list of strings")
    return CredentialSource(credential, where, "token", _str_field(sel, "name", where), ns or None,
                            audiences=tuple(aud) or default_audiences)


def configmap_source(credential: str, sel: Any, where: str) -> CredentialSource:
    """A ``{name, key, namespace?}`` ConfigMap key (public material, such as a CA bundle)."""
    src = secret_source(credential, sel, where)
    return CredentialSource(credential, where, "configmap", src.name, src.namespace, src.key)


def ca_provider_source(credential: str, sel: Any, where: str) -> CredentialSource:
    """ESO's ``caProvider: {type: Secret | ConfigMap, name, key, namespace?}``."""
    if not isinstance(sel, Mapping):
        raise InvalidConfig(f"{where}: must be an object {{type, name, key, namespace?}}")
    kind = sel.get("type")
    if kind == "Secret":
        return secret_source(credential, sel, where)
    if kind == "ConfigMap":
        return configmap_source(credential, sel, where)
    raise InvalidConfig(f"{where}.type: must be Secret or ConfigMap")


def generic_store_block(block: Mapping[str, Any], default_audiences: tuple[str, ...] = ()) -> StoreBlock:
    """secretsync's own block shape: config keys, ``secretRef.<credential>: {name, key,
    namespace?}`` and ``serviceAccountRef`` (a token passed as credential ``jwt``).

    Every problem is reported, one per line of the InvalidConfig (see ReadsStoreBlocks)."""
    creds: list[CredentialSource] = []
    problems: list[str] = []
    refs = block.get("secretRef")
    if refs is not None and not isinstance(refs, Mapping):
        problems.append("secretRef: must be an object {credentialName: {name, key, namespace?}}")
    elif refs is not None:
        for c, sel in refs.items():
            try:
                creds.append(secret_source(str(c), sel, f"secretRef.{c}"))
            except InvalidConfig as exc:
                problems.append(str(exc.args[0]))
    sa = block.get("serviceAccountRef")
    if sa is not None:
        try:
            creds.append(token_source(GENERIC_TOKEN_CREDENTIAL, sa, "serviceAccountRef", default_audiences))
        except InvalidConfig as exc:
            problems.append(str(exc.args[0]))
    if problems:
        raise InvalidConfig("\n".join(problems))
    config = {k: v for k, v in block.items() if k not in GENERIC_CREDENTIAL_KEYS}
    return StoreBlock(config, tuple(creds))


def read_store_block(factory: object, block: Mapping[str, Any]) -> StoreBlock:
    """The factory's own reading of ``block``, or the generic one for factories without it."""
    if isinstance(factory, ReadsStoreBlocks):
        return factory.store_block(block)
    return generic_store_block(block)


def chunked(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """Split names into backend-sized batches (AWS takes 20 per BatchGetSecretValue)."""
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
