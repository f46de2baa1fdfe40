# long-file: the CRD models of seven kinds and their shared field helpers (one codec drives them all)
"""The sync controller's API: typed, frozen models of the custom resources.

Kinds (group ``secretsync.io``, version ``v1alpha1``): ``SecretStore`` (namespaced) and
``ClusterSecretStore`` say where secrets live and how to authenticate; ``ExternalSecret``
(namespaced) says which remote secrets become which keys of which Kubernetes Secret;
``ClusterExternalSecret`` stamps one ExternalSecret into many namespaces; ``PushSecret`` and
``ClusterPushSecret`` write keys of a Kubernetes Secret to stores; ``SecretRotation`` writes
generated values.

Field names follow External Secrets Operator (ESO) wherever the concept is the same, so
people (and ``secretsync import-eso``) can move over without relearning. Differences:
templates are Jinja2 (sandboxed), provider blocks are keyed by our provider names
(``aws``, ``gcp``, ``azure``, ``vault``, ``file``, ``memory``), and there are no ESO generators
(``SecretRotation`` generates values). docs/sync-api.md has the field-by-field table.

Why frozen dataclasses and ``parse_*`` functions rather than raw dicts: the reconciler,
the migrator and the CLI all read the same objects; parsing once, up front, turns every
malformed field into one :class:`InvalidSpec` naming ``Kind/namespace/name`` and the field
path (``ExternalSecret/app/db: spec.data[1].remoteRef.key: required``) and lets the rest of
the code trust types. The same annotations generate the CRD schema (:mod:`.schema`), so
what we parse and what the API server accepts cannot drift apart.

Provider credentials: a provider block is the provider's own config (validated by that
provider's factory, ``validate_config``) plus two keys secretsync resolves itself:
``secretRef`` (credential name -> ``{name, key, namespace?}``) and ``serviceAccountRef``; see
:class:`ProviderSpec`. The runtime reads them and calls
``factory.open(spec.provider.config, credentials={credentialName: SecretValue})``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, Final

from secretsync.core.contract import (
    GENERIC_CREDENTIAL_KEYS,
    GENERIC_TOKEN_CREDENTIAL,
    CredentialSource,
    StoreBlock,
    addressed_names,
    generic_store_block,
    read_store_block,
)
from secretsync.core.errors import InvalidConfig, InvalidInput
from secretsync.core.regex import check_user_regex, replace_all
from secretsync.core.regex import search as regex_search
from secretsync.core.registry import get_factory, provider_for_block, provider_names, providers
from secretsync.core.values import SecretValue

from .fields import Problems, Wire, child, decode, encode, index, plain, shared

GROUP: Final = "secretsync.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

KIND_SECRET_STORE: Final = "SecretStore"
KIND_CLUSTER_SECRET_STORE: Final = "ClusterSecretStore"
KIND_EXTERNAL_SECRET: Final = "ExternalSecret"
KIND_CLUSTER_EXTERNAL_SECRET: Final = "ClusterExternalSecret"
KIND_SECRET_ROTATION: Final = "SecretRotation"
KIND_PUSH_SECRET: Final = "PushSecret"
KIND_CLUSTER_PUSH_SECRET: Final = "ClusterPushSecret"
KINDS: Final = (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE, KIND_EXTERNAL_SECRET, KIND_CLUSTER_EXTERNAL_SECRET,
                KIND_SECRET_ROTATION, KIND_PUSH_SECRET, KIND_CLUSTER_PUSH_SECRET)
#: kind -> plural resource name (what the REST paths and RBAC rules use).
PLURALS: Final = {
    KIND_SECRET_STORE: "secretstores",
    KIND_CLUSTER_SECRET_STORE: "clustersecretstores",
    KIND_EXTERNAL_SECRET: "externalsecrets",
    KIND_CLUSTER_EXTERNAL_SECRET: "clusterexternalsecrets",
    KIND_SECRET_ROTATION: "secretrotations",
    KIND_PUSH_SECRET: "pushsecrets",
    KIND_CLUSTER_PUSH_SECRET: "clusterpushsecrets",
}
NAMESPACED: Final = {
    KIND_SECRET_STORE: True,
    KIND_CLUSTER_SECRET_STORE: False,
    KIND_EXTERNAL_SECRET: True,
    KIND_CLUSTER_EXTERNAL_SECRET: False,
    KIND_SECRET_ROTATION: True,
    KIND_PUSH_SECRET: True,
    KIND_CLUSTER_PUSH_SECRET: False,
}


#: ESO's default refresh interval, and ours.
DEFAULT_REFRESH_INTERVAL: Final = 3600.0
#: How often a ClusterExternalSecret re-checks its namespaces when refreshTime is omitted.
DEFAULT_CES_REFRESH: Final = 60.0

_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SECRET_KEY = r"[-._a-zA-Z0-9]+"
_SUBDOMAIN_DOC = "a DNS subdomain (lowercase letters, digits, '-' and '.')"
_KEY_DOC = "a valid Secret key (letters, digits, '-', '_' and '.')"


class InvalidSpec(InvalidInput):
    """A custom resource is malformed. Names the object and every bad field; never a value.

    ``problems`` holds ``(field path, message)`` pairs so callers (status conditions, the
    import report) can show them one per line.
    """

    reason = "InvalidSpec"

    def __init__(self, obj_ref: str, problems: Sequence[tuple[str, str]]) -> None:
        self.obj_ref = obj_ref
        self.problems = tuple(problems)
        text = "; ".join(f"{p}: {m}" if p else m for p, m in self.problems)
        super().__init__(f"{obj_ref}: {text}")


# --------------------------------------------------------------------------- durations
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS: Final = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
DURATION_PATTERN: Final = r"^(0|([0-9]+(\.[0-9]*)?(ns|us|µs|μs|ms|s|m|h))+)$"


def parse_duration(text: str) -> float:
    """A Go duration (``1h``, ``30m``, ``15s``, ``1h30m``, ``1.5h``, ``0``) in seconds.

    Go syntax because ESO (and every Kubernetes user) writes it; negative durations and
    bare numbers other than ``0`` are rejected, since a unit-less ``60`` is ambiguous.
    """
    s = text.strip()
    if s == "0":
        return 0.0
    if not s:
        raise ValueError("must be a duration like 1h, 30m, 15s or 0")
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"must be a duration like 1h, 30m, 15s or 0 (got {text!r})")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not math.isfinite(total):
        raise ValueError(f"duration {text!r} is too large")
    return total


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest Go duration (``5400`` -> ``1h30m``; ``0`` -> ``0``)."""
    if seconds <= 0:
        return "0"
    if seconds != int(seconds):
        if seconds < 1:
            return f"{round(seconds * 1000, 3):g}ms"
        return f"{seconds:g}s"
    whole = int(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v)


class _DurationCodec:
    """Wire: Go duration string; model: float seconds."""

    schema: Mapping[str, Any] = {"type": "string", "pattern": DURATION_PATTERN}

    def decode(self, raw: Any) -> Any:
        if not isinstance(raw, str):
            raise ValueError("must be a duration string like 1h, 30m, 15s or 0")
        return parse_duration(raw)

    def encode(self, value: Any) -> Any:
        return format_duration(float(value))


DURATION = _DurationCodec()


# --------------------------------------------------------------------------- shared pieces
@dataclass(frozen=True, slots=True)
class SecretKeySelector:
    """A key of a Kubernetes Secret (ESO's ``SecretKeySelector``): where credentials live."""

    name: Annotated[str, Wire("name", "Name of the Secret.", pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)]
    key: Annotated[str, Wire("key", "Key in the Secret's data.", pattern=_SECRET_KEY, pattern_doc=_KEY_DOC)]
    namespace: Annotated[str | None, Wire(
        "namespace",
        "Namespace of the Secret. A SecretStore may only name its own namespace; a "
        "ClusterSecretStore without it reads from the ExternalSecret's namespace.",
    )] = None


@dataclass(frozen=True, slots=True)
class ServiceAccountSelector:
    """A ServiceAccount whose token authenticates to the provider (workload identity, Vault k8s auth)."""

    name: Annotated[str, Wire("name", "Name of the ServiceAccount.")]
    namespace: Annotated[str | None, Wire("namespace", "Namespace of the ServiceAccount.")] = None
    audiences: Annotated[tuple[str, ...], Wire("audiences", "Audiences for the requested token.")] = ()


@dataclass(frozen=True, slots=True)
class CredentialRef:
    """One credential the provider needs (``accessKeyID``, ``token``...) and the Secret key holding it."""

    credential: str
    selector: SecretKeySelector
    #: Where in the provider block it is named (``secretRef.token``, ``auth.secretRef.accessKeyIDSecretRef``).
    field: str = ""


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    key: Annotated[str, Wire("key", "The label key.")]
    operator: Annotated[str, Wire(
        "operator", "How the key relates to the values.", enum=("In", "NotIn", "Exists", "DoesNotExist")
    )]
    values: Annotated[tuple[str, ...], Wire("values", "Values for In/NotIn; empty for Exists/DoesNotExist.")] = ()

    def _validate(self, path: str, problems: Problems) -> None:
        if self.operator in ("In", "NotIn") and not self.values:
            problems.add(child(path, "values"), f"required for operator {self.operator}")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            problems.add(child(path, "values"), f"must be empty for operator {self.operator}")

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        if self.operator == "In":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # NotIn


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A Kubernetes label selector: matchLabels AND every matchExpression must hold."""

    match_labels: Annotated[Mapping[str, str], Wire("matchLabels", "Labels that must all be equal.")] = field(
        default_factory=dict
    )
    match_expressions: Annotated[tuple[LabelSelectorRequirement, ...], Wire(
        "matchExpressions", "Set-based requirements; all must hold."
    )] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: an empty selector matches everything."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        return all(req.matches(labels) for req in self.match_expressions)


@dataclass(frozen=True, slots=True)
class Condition:
    """A status condition (Kubernetes convention). Messages never contain secret values."""

    type: Annotated[str, Wire("type", "Condition type, e.g. Ready.")]
    status: Annotated[str, Wire("status", "True, False or Unknown.", enum=("True", "False", "Unknown"))]
    reason: Annotated[str | None, Wire("reason", "Machine-readable CamelCase reason.")] = None
    message: Annotated[str | None, Wire("message", "Human-readable detail (never a secret value).")] = None
    last_transition_time: Annotated[str | None, Wire(
        "lastTransitionTime", "When the status last changed (RFC 3339)."
    )] = None
    observed_generation: Annotated[int | None, Wire(
        "observedGeneration", "The metadata.generation this condition was computed for."
    )] = None


def set_condition(conditions: Sequence[Condition], new: Condition) -> tuple[Condition, ...]:
    """Replace the condition of ``new.type``, keeping lastTransitionTime if status did not change.

    Why: a transition time that moves on every reconcile makes ``kubectl get`` useless and
    causes needless status writes.
    """
    out: list[Condition] = []
    for c in conditions:
        if c.type == new.type:
            if c.status == new.status and c.last_transition_time:
                new = replace(new, last_transition_time=c.last_transition_time)
            continue
        out.append(c)
    out.append(new)
    return tuple(out)


def get_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """The slice of metadata the controller needs."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def object_ref(kind: str, name: str, namespace: str | None) -> str:
    """``Kind/namespace/name`` (``Kind/name`` for cluster-scoped kinds): how errors name objects."""
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


class _NamespacedObject:
    """name / namespace / ref of a parsed namespaced object (its parser guarantees a namespace)."""

    __slots__ = ()
    meta: ObjectMeta
    kind: str

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str:
        assert self.meta.namespace is not None  # the parser guarantees it
        return self.meta.namespace

    @property
    def ref(self) -> str:
        return object_ref(self.kind, self.meta.name, self.meta.namespace)


# --------------------------------------------------------------------------- stores
#: Keys of a generic provider block that secretsync itself resolves (credential sources).
CREDENTIAL_KEYS: Final = GENERIC_CREDENTIAL_KEYS
#: The credential name a generic ``serviceAccountRef`` token is passed under.
SERVICE_ACCOUNT_CREDENTIAL: Final = GENERIC_TOKEN_CREDENTIAL

#: ``some.field[0]: why`` -> the path inside the block, and the reason.
_BLOCK_PROBLEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\[\]'-]*): (.+)$", re.S)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """Exactly one provider block, as written, and what its provider read from it.

    Shape: ``spec.provider.<key>: {...}`` where ``<key>`` is any installed provider's name
    (``aws``, ``gcp``, ``azure``, ``vault``, ``file``, ``memory``, or a third party's entry
    point) or an alias the provider declares (ESO's ``gcpsm``, ``azurekv``).

    Why the provider reads the block and not this module: the block's fields, its dialects
    (secretsync's own keys and ESO's as ESO documents them) and where it names credentials
    are the provider's knowledge (:class:`~secretsync.core.contract.ReadsStoreBlocks`). This
    model keeps the block as written and the provider's reading of it: ``config`` for
    ``validate_config``/``open``, ``credentials`` for the controller to resolve (Secrets,
    ServiceAccount tokens) under the trust rules of the store's namespace.
    """

    #: The key as written (``gcpsm``).
    key: str
    #: The provider's registry name (``gcp``).
    name: str
    block: Mapping[str, Any]
    reading: StoreBlock

    @classmethod
    def __wire_decode__(cls, raw: Any, path: str, problems: Problems) -> ProviderSpec | None:
        if not isinstance(raw, dict):
            problems.add(path, "must be an object with exactly one provider block")
            return None
        keys = [k for k, v in raw.items() if v is not None]
        if len(keys) != 1:
            problems.add(path, "exactly one provider block must be set" + (
                f" (got {', '.join(map(str, keys))})" if keys else f" (installed: {', '.join(provider_names())})"))
            return None
        key = str(keys[0])
        base = child(path, key)
        block = raw[key]
        if not isinstance(block, dict):
            problems.add(base, "must be an object")
            return None
        name = provider_for_block(key)
        if name is None:
            problems.add(base, f"no installed provider is named {key!r} (installed: {', '.join(provider_names())})")
            return None
        try:
            factory: object | None = get_factory(name)
        except InvalidConfig:
            factory = None  # not installed here: read generically; opening it says why
        try:
            reading = read_store_block(factory, block) if factory is not None else generic_store_block(block)
        except InvalidConfig as exc:
            for msg in (str(exc.args[0]) if exc.args else str(exc)).splitlines():
                m = _BLOCK_PROBLEM.match(msg)
                problems.add(f"{base}.{m.group(1)}" if m else base, m.group(2) if m else msg)
            return None
        before = len(problems)
        for src in reading.credentials:
            where = f"{base}.{src.field}"
            if src.kind == "secret":
                decode(SecretKeySelector, {"name": src.name, "key": src.key,
                                           **({"namespace": src.namespace} if src.namespace else {})},
                       where, problems)
            elif not re.fullmatch(_DNS_SUBDOMAIN, src.name):
                problems.add(f"{where}.name", f"must be {_SUBDOMAIN_DOC} (got {src.name!r})")
        if len(problems) > before:
            return None
        return cls(key, name, block, reading)

    @classmethod
    def __wire_schema__(cls) -> dict[str, Any]:
        """Every installed provider's block (and its aliases) as the provider declares it; other
        keys are kept, so a provider installed later is not pruned by the API server."""
        props: dict[str, Any] = {}
        for info in providers():
            factory = info.factory
            declared = getattr(factory, "block_schema", None) if factory is not None else None
            schema = dict(declared) if isinstance(declared, Mapping) else {
                "type": "object", "x-kubernetes-preserve-unknown-fields": True}
            doc = getattr(factory, "block_doc", None)
            if isinstance(doc, str) and doc:
                schema = {"description": doc, **schema}
            for key in (info.name, *tuple(getattr(factory, "aliases", ()) or ())):
                props[key] = schema
        return {"type": "object", "properties": dict(sorted(props.items())),
                "x-kubernetes-preserve-unknown-fields": True}

    def __wire_encode__(self) -> dict[str, Any]:
        return {self.key: plain(self.block)}

    @property
    def config(self) -> dict[str, Any]:
        """The provider's canonical config (no credential references): what ``validate_config``
        and ``open`` take."""
        cfg: dict[str, Any] = plain(self.reading.config)
        return cfg

    @property
    def credentials(self) -> tuple[CredentialSource, ...]:
        """Every credential the controller resolves for this store."""
        return self.reading.credentials

    def credential_refs(self) -> tuple[CredentialRef, ...]:
        """The credentials read from Secrets (for audit edges and the ClusterSecretStore rules)."""
        return tuple(CredentialRef(s.credential, SecretKeySelector(s.name, s.key, s.namespace), s.field)
                     for s in self.reading.credentials if s.kind == "secret")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Client-side token bucket for calls to this store (protects provider quotas)."""

    rate: Annotated[float, Wire("rate", "Sustained calls per second.", minimum=0)]
    burst: Annotated[int, Wire("burst", "Calls allowed at once after idling.", minimum=1)] = 20


@dataclass(frozen=True, slots=True)
class NamespaceCondition:
    """Which namespaces may use a ClusterSecretStore. Any matching part of any condition allows."""

    namespaces: Annotated[tuple[str, ...], Wire("namespaces", "Namespaces allowed by name.")] = ()
    namespace_selector: Annotated[LabelSelector | None, Wire(
        "namespaceSelector", "Namespaces allowed by label."
    )] = None
    namespace_regexes: Annotated[tuple[str, ...], Wire(
        "namespaceRegexes", "Namespaces allowed by regular expression (unanchored, like ESO)."
    )] = ()

    def _validate(self, path: str, problems: Problems) -> None:
        for i, rx in enumerate(self.namespace_regexes):
            if (problem := check_user_regex(rx)) is not None:
                problems.add(index(child(path, "namespaceRegexes"), i), f"invalid regular expression: {problem}")

    def matches(self, ns_name: str, ns_labels: Mapping[str, str]) -> bool:
        if ns_name in self.namespaces:
            return True
        if self.namespace_selector is not None and self.namespace_selector.matches(ns_labels):
            return True
        return any(regex_search(rx, ns_name) for rx in self.namespace_regexes)


@dataclass(frozen=True, slots=True)
class WebhookEvents:
    """A pushed notice source: senders prove they hold this key (docs/events.md)."""

    secret_ref: Annotated[SecretKeySelector, Wire(
        "secretRef",
        "The key senders sign with (generic webhook) or present (Event Grid). A SecretStore may only "
        "name a Secret of its own namespace; a ClusterSecretStore must name the namespace.",
    )]


@dataclass(frozen=True, slots=True)
class StoreEvents:
    """Change notices for this store, so a provider change reaches the Secret in seconds.

    Notices only accelerate: ExternalSecrets still refresh at their interval, which catches a
    lost notice. A notice makes the controller read only the keys it names that are in use.
    """

    subscription: Annotated[str | None, Wire(
        "subscription",
        "A provider feed the controller pulls with this store's credentials: an SQS queue URL fed by "
        "EventBridge (aws), a Pub/Sub subscription of Secret Manager notifications (gcp).",
    )] = None
    webhook: Annotated[WebhookEvents | None, Wire(
        "webhook", "Accept pushed notices for this store (signed webhook, Azure Event Grid).",
    )] = None


@dataclass(frozen=True, slots=True)
class SecretStoreSpec:
    provider: Annotated[ProviderSpec, Wire("provider", "Where the secrets live: exactly one provider block.")]
    refresh_interval: Annotated[float | None, Wire(
        "refreshInterval", "How often the store's health is re-checked (Go duration; 0 = only on change).",
        codec=DURATION,
    )] = None
    allowed_key_prefix: Annotated[str | None, Wire(
        "allowedKeyPrefix",
        "If set, ExternalSecrets may only read remote keys that reach names starting with this prefix, "
        "as the provider resolves them (Azure's secret/NAME is NAME; a '.' or '..' segment is refused), "
        "and find only under it.",
    )] = None
    rate_limit: Annotated[RateLimit | None, Wire("rateLimit", "Client-side rate limit for this store.")] = None
    conditions: Annotated[tuple[NamespaceCondition, ...], Wire(
        "conditions", "ClusterSecretStore only: which namespaces may use it (none = all)."
    )] = ()
    events: Annotated[StoreEvents | None, Wire(
        "events", "Push notices of provider changes (optional; polling still runs)."
    )] = None
    controller: Annotated[str | None, Wire(
        "controller", "Controller class (ESO's): only the controller started with --controller-class of this "
        "value serves the store and what reads or pushes through it; unset: every controller.")] = None


@dataclass(frozen=True, slots=True)
class StoreCapabilities:
    """What the store's backend can do, as reported by the controller (mirrors core Capabilities)."""

    access: Annotated[str, Wire("access", "ReadOnly or ReadWrite.", enum=("ReadOnly", "ReadWrite"))] = "ReadWrite"
    batch_get: Annotated[bool, Wire("batchGet", "Batched reads are one backend call.")] = False
    max_batch: Annotated[int, Wire("maxBatch", "Largest batch per backend call.")] = 1
    versions: Annotated[bool, Wire("versions", "Old versions can be read.")] = False
    tags: Annotated[bool, Wire("tags", "Secrets carry tags that find can filter on.")] = False
    compare_and_set: Annotated[bool, Wire("compareAndSet", "Writes support compare-and-set.")] = False
    binary: Annotated[bool, Wire("binary", "Values may be binary.")] = True
    soft_delete: Annotated[bool, Wire("softDelete", "Deletes are recoverable.")] = False

    @classmethod
    def from_core(cls, caps: Any) -> StoreCapabilities:
        """From :class:`secretsync.core.contract.Capabilities`."""
        d = caps.as_dict()
        return cls(d["access"], d["batchGet"], d["maxBatch"], d["versions"], d["tags"],
                   d["compareAndSet"], d["binary"], d["softDelete"])


@dataclass(frozen=True, slots=True)
class SecretStoreStatus:
    conditions: Annotated[tuple[Condition, ...], Wire("conditions", "Ready says whether the store is usable.")] = ()
    capabilities: Annotated[StoreCapabilities | None, Wire("capabilities", "What the backend supports.")] = None

    def to_dict(self) -> dict[str, Any]:
        return encode(self, omit_defaults=False)


@dataclass(frozen=True, slots=True)
class SecretStore:
    """A SecretStore or ClusterSecretStore (``kind`` tells which)."""

    kind: str
    meta: ObjectMeta
    spec: SecretStoreSpec
    status: SecretStoreStatus | None = None

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str | None:
        """None for a ClusterSecretStore."""
        return self.meta.namespace

    @property
    def cluster_scoped(self) -> bool:
        return self.kind == KIND_CLUSTER_SECRET_STORE

    @property
    def ref(self) -> str:
        return object_ref(self.kind, self.meta.name, self.meta.namespace)

    def namespace_allowed(self, ns_name: str, ns_labels: Mapping[str, str] | None = None) -> bool:
        """May an ExternalSecret in ``ns_name`` use this store?

        A SecretStore serves only its own namespace. A ClusterSecretStore without
        conditions serves every namespace; with conditions, a namespace is allowed when
        any condition lists it by name, selects its labels, or matches a regex.
        """
        if not self.cluster_scoped:
            return ns_name == self.meta.namespace
        if not self.spec.conditions:
            return True
        labels = ns_labels or {}
        return any(c.matches(ns_name, labels) for c in self.spec.conditions)

    def served_by(self, controller_class: str) -> bool:
        """ESO's controller classes: a store without ``spec.controller`` is every controller's."""
        return not self.spec.controller or self.spec.controller == controller_class

    def key_allowed(self, key: str) -> bool:
        """Whether ``allowedKeyPrefix`` lets an ExternalSecret read ``key`` (see :meth:`key_refusal`)."""
        return self.key_refusal(key) is None

    def key_refusal(self, key: str | None, *, listing: bool = False) -> str | None:
        """Why ``allowedKeyPrefix`` refuses ``key`` (None: allowed), checked before any call.

        Why not ``key.startswith(prefix)``: providers rewrite keys before reading (Azure's
        ``secret/NAME`` is the secret ``NAME``, Vault reads ``MOUNT/x`` as ``x``, URL paths
        drop ``..``), so a key can start with the prefix and read outside it. So every name
        the provider says a read of the key reaches (:func:`addressed_names`) must start with
        the prefix, and a '.' or '..' segment is refused outright: no provider reads such a
        name as written, and a URL may resolve it. ``listing``: ``key`` is a ``find.path``
        (a prefix of listed names, compared as written; None: the whole store).
        """
        prefix = self.spec.allowed_key_prefix
        if not prefix:
            return None
        if key is None:
            return f"a find without path lists the whole store, not only keys starting with {prefix!r}"
        if any(seg in (".", "..") for seg in key.split("/")):
            return (f"{key!r} has a '.' or '..' segment, which a provider may resolve to another path "
                    f"(allowedKeyPrefix {prefix!r})")
        bound = prefix
        if listing:
            names: tuple[str, ...] = (key,)
        else:
            try:
                factory: object | None = get_factory(self.spec.provider.name)
            except InvalidConfig:
                factory = None  # not installed here: opening the store says why, nothing is read
            config = self.spec.provider.config
            try:
                names = addressed_names(factory, config, key)
            except (InvalidConfig, InvalidInput) as exc:
                return f"{key!r} names no single object of this store ({exc}; allowedKeyPrefix {prefix!r})"
            # The admin's prefix in the provider's spelling too: Azure's ``secret/team-a-`` bounds
            # the secrets ``team-a-*``. A prefix that is no single name is compared as written.
            try:
                spelled = addressed_names(factory, config, prefix)
            except (InvalidConfig, InvalidInput):
                spelled = (prefix,)
            bound = spelled[0] if len(spelled) == 1 else prefix
        outside = [n for n in names if not n.startswith(bound)]
        if not outside:
            return None
        shown = repr(prefix) + (f" (the names {bound!r}...)" if bound != prefix else "")
        if outside == [key]:
            return f"{key!r} does not start with allowedKeyPrefix {shown}"
        return f"{key!r} reads {outside[0]!r} in this store, outside allowedKeyPrefix {shown}"


# --------------------------------------------------------------------------- ExternalSecret
DECODING_STRATEGIES: Final = ("None", "Base64", "Base64URL", "Auto")
CONVERSION_STRATEGIES: Final = ("Default", "Unicode")
METADATA_POLICIES: Final = ("None", "Fetch")
_CONVERSION_DOC = ("How remote names that are not valid Secret keys become keys (dataFrom): Default replaces each "
                   "invalid character with '_', Unicode with _UXXXX_ (its code point), as ESO; not applied when "
                   "rewrite is set.")
REFRESH_POLICIES: Final = ("Periodic", "OnChange", "CreatedOnce")


@dataclass(frozen=True, slots=True)
class StoreRef:
    name: Annotated[str, Wire("name", "Name of the store.", pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)]
    kind: Annotated[str, Wire(
        "kind", "SecretStore (same namespace) or ClusterSecretStore.",
        enum=(KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE), schema_default=True,
    )] = KIND_SECRET_STORE


@dataclass(frozen=True, slots=True)
class RemoteRef:
    key: Annotated[str, Wire("key", "The remote secret's name (path) in the provider.")]
    property: Annotated[str | None, Wire(
        "property", "One property of a JSON secret (dotted path for nesting)."
    )] = None
    version: Annotated[str | None, Wire("version", "A specific provider version (default: latest).")] = None
    decoding_strategy: Annotated[str, Wire(
        "decodingStrategy", "Decode the fetched value: None, Base64, Base64URL, or Auto (base64 if it decodes).",
        enum=DECODING_STRATEGIES,
    )] = "None"
    metadata_policy: Annotated[str, Wire(
        "metadataPolicy", "Fetch: read the remote secret's metadata (AWS tags, GCP labels, Azure tags, Vault "
        "custom_metadata) instead of its value; property selects one tag, none gives all as JSON.",
        enum=METADATA_POLICIES,
    )] = "None"
    conversion_strategy: Annotated[str, Wire(
        "conversionStrategy", "Accepted for ESO compatibility; a data item's key is its secretKey, so nothing "
        "is converted.", enum=CONVERSION_STRATEGIES,
    )] = "Default"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where one item reads from instead of ``spec.secretStoreRef`` (ESO's ``sourceRef``)."""

    store_ref: Annotated[StoreRef | None, Wire(
        "storeRef", "Read this item from this store (the namespace rules of that store apply).")] = None
    generator_ref: Annotated[Mapping[str, Any] | None, Wire(
        "generatorRef", "ESO generators are not supported (SecretRotation generates values).")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if self.generator_ref is not None:
            problems.add(child(path, "generatorRef"), "generators are not supported (SecretRotation generates "
                                                      "values into a store; read them with storeRef)")
        elif self.store_ref is None:
            problems.add(child(path, "storeRef"), "required")


@dataclass(frozen=True, slots=True)
class DataItem:
    secret_key: Annotated[str, Wire(
        "secretKey", "Key in the target Secret.", pattern=_SECRET_KEY, pattern_doc=_KEY_DOC, max_length=253
    )]
    remote_ref: Annotated[RemoteRef, Wire("remoteRef", "Which remote secret (and property) to read.")]
    source_ref: Annotated[SourceRef | None, Wire(
        "sourceRef", "Read this item from another store than spec.secretStoreRef.")] = None


@dataclass(frozen=True, slots=True)
class ExtractSpec:
    """Every top-level property of one JSON secret becomes a key of the target Secret."""

    key: Annotated[str, Wire("key", "The remote secret's name.")]
    property: Annotated[str | None, Wire("property", "Extract from this nested object instead.")] = None
    version: Annotated[str | None, Wire("version", "A specific provider version.")] = None
    decoding_strategy: Annotated[str, Wire(
        "decodingStrategy", "Decode each value: None, Base64, Base64URL or Auto.", enum=DECODING_STRATEGIES
    )] = "None"
    metadata_policy: Annotated[str, Wire(
        "metadataPolicy", "Fetch: every tag (label, custom_metadata entry) of the remote secret becomes a key.",
        enum=METADATA_POLICIES,
    )] = "None"
    conversion_strategy: Annotated[str, Wire("conversionStrategy", _CONVERSION_DOC, enum=CONVERSION_STRATEGIES)] = (
        "Default")


@dataclass(frozen=True, slots=True)
class FindName:
    regexp: Annotated[str, Wire("regexp", "Regular expression the remote secret name must match.")]


@dataclass(frozen=True, slots=True)
class FindSpec:
    """Every remote secret matching becomes a key (its name with '/' replaced by '_', as in ESO)."""

    name: Annotated[FindName | None, Wire("name", "Match secret names.")] = None
    path: Annotated[str | None, Wire("path", "Only secrets under this path (prefix).")] = None
    tags: Annotated[Mapping[str, str], Wire("tags", "Only secrets carrying all these tags.")] = field(
        default_factory=dict
    )
    decoding_strategy: Annotated[str, Wire(
        "decodingStrategy", "Decode each value: None, Base64, Base64URL or Auto.", enum=DECODING_STRATEGIES
    )] = "None"
    conversion_strategy: Annotated[str, Wire("conversionStrategy", _CONVERSION_DOC, enum=CONVERSION_STRATEGIES)] = (
        "Default")

    def _validate(self, path: str, problems: Problems) -> None:
        if self.name is None and not self.path and not self.tags:
            problems.add(path, "set at least one of name, path, tags (refusing to sync a whole store)")
        if self.name is not None and (problem := check_user_regex(self.name.regexp)) is not None:
            problems.add(child(child(path, "name"), "regexp"), f"invalid regular expression: {problem}")


@dataclass(frozen=True, slots=True)
class RegexpRewrite:
    source: Annotated[str, Wire("source", "Regular expression to find in each key.")]
    target: Annotated[str, Wire("target", "Replacement; $1 / ${1} / ${name} refer to groups (Go syntax).")]


@dataclass(frozen=True, slots=True)
class TransformRewrite:
    template: Annotated[str, Wire(
        "template", "Jinja2 template of the new key; the old key is `value` (ESO: Go template over .value).")]


@dataclass(frozen=True, slots=True)
class MergeRewrite:
    """ESO's merge rewrite: every value is a JSON object; their members are merged."""

    strategy: Annotated[str, Wire(
        "strategy", "Extract: the members become the keys; JSON: the merged object goes to key `into`.",
        enum=("Extract", "JSON"), schema_default=True)] = "Extract"
    into: Annotated[str | None, Wire("into", "The key the merged JSON object is written to (strategy JSON).")] = None
    priority: Annotated[tuple[str, ...], Wire(
        "priority", "Keys merged last, in this order (they win a collision); the others go alphabetically.")] = ()
    conflict_policy: Annotated[str, Wire(
        "conflictPolicy", "Error: a member two values define fails the sync, naming it; Ignore: the later wins.",
        enum=("Error", "Ignore"), schema_default=True)] = "Error"

    def _validate(self, path: str, problems: Problems) -> None:
        if self.strategy == "JSON" and not self.into:
            problems.add(child(path, "into"), "required with strategy JSON")


@dataclass(frozen=True, slots=True)
class Rewrite:
    regexp: Annotated[RegexpRewrite | None, Wire("regexp", "Rename keys by regular expression.")] = None
    transform: Annotated[TransformRewrite | None, Wire("transform", "Rename keys with a template.")] = None
    merge: Annotated[MergeRewrite | None, Wire("merge", "Merge JSON values into keys (ESO's merge).")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if sum(x is not None for x in (self.regexp, self.transform, self.merge)) != 1:
            problems.add(path, "set exactly one of regexp, transform, merge")
        if self.regexp is not None and (problem := check_user_regex(self.regexp.source)) is not None:
            problems.add(child(child(path, "regexp"), "source"), f"invalid regular expression: {problem}")


class RewriteError(InvalidInput, ValueError):
    """A rewrite could not be applied; the message names keys, never values."""


def rewrite_map(data: Mapping[str, SecretValue], rewrites: Sequence[Rewrite],
                transform: Callable[[str, str], str]) -> dict[str, SecretValue]:
    """Apply dataFrom rewrites in order to a whole entry, as ESO does: ``regexp`` and ``transform``
    rename each key (``transform(template, key)`` renders the new one), ``merge`` combines JSON
    values. Raises :class:`RewriteError` naming the rewrite and key."""
    out = dict(data)
    for i, rw in enumerate(rewrites):
        if rw.regexp is not None:
            regexp = rw.regexp
            out = {replace_all(regexp.source, regexp.target, k): v for k, v in out.items()}
        elif rw.transform is not None:
            template = rw.transform.template
            out = {transform(template, k): v for k, v in out.items()}
        elif rw.merge is not None:
            out = _merge_rewrite(out, rw.merge, f"rewrite[{i}].merge")
    return out


def _merge_rewrite(data: dict[str, SecretValue], m: MergeRewrite, where: str) -> dict[str, SecretValue]:
    order = sorted(k for k in data if k not in m.priority) + [k for k in m.priority if k in data]
    merged: dict[str, Any] = {}
    for key in order:
        try:
            doc = json.loads(data[key].reveal())
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise RewriteError(f"{where}: the value of {key!r} is not a JSON object")
        for member, value in doc.items():
            if member in merged and m.conflict_policy == "Error":
                raise RewriteError(f"{where}: {member!r} is defined by more than one value (conflictPolicy Error)")
            merged[member] = value
    if m.strategy == "JSON":
        assert m.into is not None  # validated
        return {**data, m.into: SecretValue(json.dumps(merged, separators=(",", ":")))}
    return {k: SecretValue(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))
            for k, v in merged.items()}


def convert_key(key: str, strategy: str) -> str:
    """ESO's key conversion for dataFrom: every character that is not a letter, digit, '-', '.' or
    '_' becomes '_' (Default) or ``_UXXXX_`` (Unicode, its code point: reversible by PushSecret's
    ReverseUnicode). Letters and digits outside ASCII stay (as in ESO) and fail as invalid keys."""
    out = []
    for ch in key:
        if ch.isalpha() or ch.isdigit() or ch in "-._":
            out.append(ch)
        else:
            out.append(f"_U{ord(ch):04x}_" if strategy == "Unicode" else "_")
    return "".join(out)


def apply_rewrites(key: str, rewrites: Sequence[Rewrite]) -> str:
    """Apply the ``regexp`` rewrites in order to one key (RE2 replace-all, Go group syntax)."""
    for rw in rewrites:
        if rw.regexp is not None:
            key = replace_all(rw.regexp.source, rw.regexp.target, key)
    return key


@dataclass(frozen=True, slots=True)
class DataFromItem:
    extract: Annotated[ExtractSpec | None, Wire("extract", "Take every property of one JSON secret.")] = None
    find: Annotated[FindSpec | None, Wire("find", "Take every secret matching name/path/tags.")] = None
    rewrite: Annotated[tuple[Rewrite, ...], Wire("rewrite", "Rename the resulting keys, in order.")] = ()
    source_ref: Annotated[SourceRef | None, Wire(
        "sourceRef", "Read this entry from another store than spec.secretStoreRef.")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if (self.extract is None) == (self.find is None):
            problems.add(path, "exactly one of extract, find must be set")


@dataclass(frozen=True, slots=True)
class TemplateItem:
    key: Annotated[str, Wire(
        "key", "Key of the ConfigMap/Secret holding a template; the output goes to this key.",
        pattern=_SECRET_KEY, pattern_doc=_KEY_DOC,
    )]


@dataclass(frozen=True, slots=True)
class TemplateSourceRef:
    name: Annotated[str, Wire("name", "Name (same namespace as the ExternalSecret).",
                              pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)]
    items: Annotated[tuple[TemplateItem, ...], Wire("items", "Which keys hold templates.")]

    def _validate(self, path: str, problems: Problems) -> None:
        if not self.items:
            problems.add(child(path, "items"), "must list at least one key")


TEMPLATE_TARGETS: Final = ("Data", "Annotations", "Labels")


@dataclass(frozen=True, slots=True)
class TemplateFrom:
    """Templates kept in a ConfigMap or Secret of the ExternalSecret's own namespace, or inline (literal)."""

    config_map: Annotated[TemplateSourceRef | None, Wire("configMap", "Read templates from a ConfigMap.")] = None
    secret: Annotated[TemplateSourceRef | None, Wire("secret", "Read templates from a Secret.")] = None
    literal: Annotated[str | None, Wire(
        "literal", "An inline template whose output is a YAML mapping of keys to values (as ESO).")] = None
    target: Annotated[str, Wire(
        "target", "Where the output goes: Data (the Secret's keys), Annotations or Labels (refused when a "
        "rendered value carries a fetched value).", enum=TEMPLATE_TARGETS, schema_default=True)] = "Data"

    def _validate(self, path: str, problems: Problems) -> None:
        if sum(x is not None for x in (self.config_map, self.secret, self.literal)) != 1:
            problems.add(path, "exactly one of configMap, secret, literal must be set")


@dataclass(frozen=True, slots=True)
class TemplateMetadata:
    labels: Annotated[Mapping[str, str], Wire("labels", "Labels of the target Secret.")] = field(default_factory=dict)
    annotations: Annotated[Mapping[str, str], Wire("annotations", "Annotations of the target Secret.")] = field(
        default_factory=dict
    )


#: Secret types the API server or its controllers treat as credentials of the cluster itself:
#: a templated Secret of such a type would mint (service-account-token) or plant (bootstrap
#: token) an identity the ExternalSecret's author was never granted.
PRIVILEGED_SECRET_TYPES: Final = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})
PRIVILEGED_ANNOTATIONS: Final = frozenset({"kubernetes.io/service-account.name", "kubernetes.io/service-account.uid"})


def reserved_metadata_key(key: str) -> str | None:
    """Why an ExternalSecret's template may not set this label or annotation on its Secret, or None.

    Why: the controller's own keys (``secretsync.io/`` and its subdomains: the owner, the hash,
    the owned-metadata list, ``merge.secretsync.io/<other ExternalSecret>``) decide who owns a
    Secret and its keys, so a tenant writing them could forge ownership or release another
    ExternalSecret's keys; the ServiceAccount annotations make Kubernetes put a token in. Compared
    without regard to case: a guard a capital letter slips past is none (the API server's
    prefixes are lower case, but other readers of these keys need not be so strict).
    """
    folded = key.strip().lower()
    prefix = folded.split("/", 1)[0] if "/" in folded else ""
    if prefix == GROUP or prefix.endswith("." + GROUP):
        return f"not allowed: {GROUP} keys are the controller's own (ownership and merge bookkeeping)"
    if folded in PRIVILEGED_ANNOTATIONS:
        return "not allowed: it asks Kubernetes to put a ServiceAccount's token into the Secret"
    return None


@dataclass(frozen=True, slots=True)
class TargetTemplate:
    """Shape the target Secret: its type, metadata and Jinja2-templated data."""

    type: Annotated[str | None, Wire("type", "Secret type, e.g. kubernetes.io/tls.")] = None
    metadata: Annotated[TemplateMetadata | None, Wire("metadata", "Labels and annotations to set.")] = None
    data: Annotated[Mapping[str, str], Wire(
        "data", "Secret key -> Jinja2 template; fetched values are variables (as text)."
    )] = field(default_factory=dict)
    template_from: Annotated[tuple[TemplateFrom, ...], Wire(
        "templateFrom", "Templates from ConfigMaps/Secrets of the same namespace."
    )] = ()
    merge_policy: Annotated[str, Wire(
        "mergePolicy", "Replace: only templated keys; Merge: fetched keys plus templated keys.",
        enum=("Replace", "Merge"),
    )] = "Replace"
    engine_version: Annotated[str, Wire(
        "engineVersion", "ESO's template engine version: only v2 (values are strings), which import-eso "
        "translates to Jinja2.", enum=("v2",), schema_default=True)] = "v2"

    def _validate(self, path: str, problems: Problems) -> None:
        for key in self.data:
            if not re.fullmatch(_SECRET_KEY, key):
                problems.add(child(child(path, "data"), key), f"key must be {_KEY_DOC}")
        if self.type is not None and self.type.strip().lower() in PRIVILEGED_SECRET_TYPES:
            problems.add(child(path, "type"), f"{self.type!r} is not allowed: Kubernetes itself fills Secrets of "
                                              "this type with credentials (as External Secrets Operator refuses)")
        md = self.metadata or TemplateMetadata()
        for part, keys in (("labels", md.labels), ("annotations", md.annotations)):
            for name in keys:
                why = reserved_metadata_key(name)
                if why is not None:
                    problems.add(child(child(child(path, "metadata"), part), name), why)


@dataclass(frozen=True, slots=True)
class Target:
    name: Annotated[str | None, Wire(
        "name", "Name of the Secret to write (default: the ExternalSecret's name).",
        pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC, max_length=253,
    )] = None
    creation_policy: Annotated[str, Wire(
        "creationPolicy",
        "Owner: create it, owned (deleted with the ExternalSecret). Orphan: create it, not owned. "
        "Merge: only merge keys into an existing Secret. None: do not write.",
        enum=("Owner", "Orphan", "Merge", "None"), schema_default=True,
    )] = "Owner"
    deletion_policy: Annotated[str, Wire(
        "deletionPolicy",
        "When every remote secret is definitely gone: Retain the Secret, Delete it, or Merge (drop "
        "only the gone keys). Outages and permission errors never delete anything.",
        enum=("Retain", "Delete", "Merge"), schema_default=True,
    )] = "Retain"
    immutable: Annotated[bool, Wire("immutable", "Create the Secret immutable (never updated afterwards).")] = False
    template: Annotated[TargetTemplate | None, Wire("template", "Shape the Secret with templates.")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if self.deletion_policy == "Delete" and self.creation_policy in ("Merge", "None"):
            problems.add(child(path, "deletionPolicy"),
                         f"Delete is not allowed with creationPolicy {self.creation_policy} "
                         "(the controller does not own that Secret)")
        if self.deletion_policy == "Merge" and self.creation_policy == "None":
            problems.add(child(path, "deletionPolicy"), "Merge is not allowed with creationPolicy None")


# --------------------------------------------------------------------------- rollout (issue 13)
ROLLOUT_NONE: Final = "none"
ROLLOUT_AUTO: Final = "auto"
ROLLOUT_TARGETS: Final = "targets"
ROLLOUT_KINDS: Final = ("Deployment", "StatefulSet", "DaemonSet", "Rollout")


@dataclass(frozen=True, slots=True)
class RolloutTarget:
    """One workload of the ExternalSecret's namespace to restart when the Secret changes."""

    kind: Annotated[str, Wire("kind", "Deployment, StatefulSet, DaemonSet or (Argo) Rollout.", enum=ROLLOUT_KINDS)]
    name: Annotated[str, Wire("name", "Name of the workload.", pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)]


@dataclass(frozen=True, slots=True)
class RolloutPolicy:
    """``spec.rollout``: which workloads restart when the target Secret's data changes.

    ``{policy: none}`` (the default, also when ``rollout`` is omitted: nothing restarts unless
    asked), ``{policy: auto}`` (every Deployment, StatefulSet, DaemonSet and Argo Rollout whose
    pods read a changed key), or ``{targets: [{kind, name}]}`` (only those; a listed workload
    that does not reference the Secret in its pod spec is treated as reading every key).
    An object rather than a bare ``auto``: CRD schemas must be structural (one type per field).
    """

    policy: Annotated[str | None, Wire(
        "policy", "none, auto, or targets (the default when targets are listed, else none).",
        enum=(ROLLOUT_NONE, ROLLOUT_AUTO, ROLLOUT_TARGETS))] = None
    targets: Annotated[tuple[RolloutTarget, ...], Wire("targets", "Only these workloads restart.")] = ()

    @property
    def mode(self) -> str:
        return self.policy or (ROLLOUT_TARGETS if self.targets else ROLLOUT_NONE)

    def _validate(self, path: str, problems: Problems) -> None:
        if self.mode == ROLLOUT_TARGETS and not self.targets:
            problems.add(child(path, "targets"), "must list at least one workload for policy targets")
        if self.mode != ROLLOUT_TARGETS and self.targets:
            problems.add(child(path, "targets"), f"only with policy targets (policy is {self.mode})")


SYNC_WINDOW_KINDS: Final = ("allow", "deny")
#: Each window is evaluated at every refresh of its ExternalSecret: a tenant's list is bounded.
MAX_SYNC_WINDOWS: Final = 16


@dataclass(frozen=True, slots=True)
class SyncWindow:
    """One window of ``spec.syncWindows``: it opens at each firing of ``schedule`` (UTC) and
    stays open for ``duration``."""

    schedule: Annotated[str, Wire(
        "schedule", "When the window opens (UTC): five cron fields, a shorthand such as @daily, or "
        "@every <duration>.")]
    duration: Annotated[float, Wire("duration", "How long the window stays open (Go duration: 8h).",
                                    codec=DURATION)]

    def _validate(self, path: str, problems: Problems) -> None:
        from .cron import check_window_schedule

        err = check_window_schedule(self.schedule)
        if err:
            problems.add(child(path, "schedule"), err)
        from .cron import MAX_WINDOW_SECONDS

        if self.duration <= 0:
            problems.add(child(path, "duration"), "must be longer than 0")
        elif self.duration > MAX_WINDOW_SECONDS:
            problems.add(child(path, "duration"), "must be at most 8784h (a year)")


@dataclass(frozen=True, slots=True)
class SyncWindows:
    """``spec.syncWindows`` (as ESO's): when periodic refreshes may change the Secret.

    ``allow``: only while a window is open; ``deny``: never while one is. They hold back what a
    refresh would bring (a rotated value, a provider edit) under the Periodic policy. The first
    sync, a spec change, a force-sync, a retry after a failure and the repair of an edited or
    deleted Secret are not refreshes: they run at once, as without windows."""

    kind: Annotated[str, Wire("kind", "allow: refresh only inside a window; deny: never inside one.",
                              enum=SYNC_WINDOW_KINDS)]
    windows: Annotated[tuple[SyncWindow, ...], Wire("windows", "Schedule + duration pairs.")] = ()

    def _validate(self, path: str, problems: Problems) -> None:
        if not self.windows:
            problems.add(child(path, "windows"), "must list at least one window")
        if len(self.windows) > MAX_SYNC_WINDOWS:
            problems.add(child(path, "windows"), f"at most {MAX_SYNC_WINDOWS} windows (got {len(self.windows)})")

    def blocked_until(self, now: datetime) -> datetime | None:
        """None when a refresh may run at ``now``, else the earliest time it may."""
        from .cron import sync_blocked_until

        return sync_blocked_until(self.kind, [(w.schedule, w.duration) for w in self.windows], now)

    def wait_seconds(self, now: datetime) -> float | None:
        """None when a refresh may run at ``now``, else how long to wait before looking again:
        until the window changes, at least 1 s and at most an hour (a window edited meanwhile is
        a spec change and syncs at once anyway; the hour bounds a clock that jumps)."""
        until = self.blocked_until(now)
        return None if until is None else min(max((until - now).total_seconds(), 1.0), 3600.0)


@dataclass(frozen=True, slots=True)
class ExternalSecretSpec:
    secret_store_ref: Annotated[StoreRef | None, Wire(
        "secretStoreRef", "The store to read from (optional when every item names its sourceRef.storeRef).")] = None
    refresh_interval: Annotated[float, Wire(
        "refreshInterval", "How often to re-read the provider (Go duration: 1h, 30m, 1h30m; 0 = never).",
        codec=DURATION, schema_default=True,
    )] = DEFAULT_REFRESH_INTERVAL
    refresh_policy: Annotated[str, Wire(
        "refreshPolicy",
        "Periodic: re-read every refreshInterval (0: once per spec change). OnChange: only when the spec "
        "changes. CreatedOnce: write the Secret once, never update it (re-created if deleted). Failures "
        "are retried with backoff under every policy.",
        enum=REFRESH_POLICIES, schema_default=True,
    )] = "Periodic"
    target: Annotated[Target, Wire("target", "The Kubernetes Secret to write.")] = field(default_factory=Target)
    data: Annotated[tuple[DataItem, ...], Wire("data", "Remote secret (property) -> Secret key.")] = ()
    data_from: Annotated[tuple[DataFromItem, ...], Wire(
        "dataFrom", "Many keys at once (extract/find); later entries win on key clashes, and data wins "
        "over dataFrom (as in ESO)."
    )] = ()
    rollout: Annotated[RolloutPolicy | None, Wire(
        "rollout", "Restart the workloads reading the Secret when its data changes: {policy: none} (default), "
        "{policy: auto} (every consumer of a changed key), or {targets: [{kind, name}]}.",
    )] = None
    sync_windows: Annotated[SyncWindows | None, Wire(
        "syncWindows", "When periodic refreshes may change the Secret (UTC, Periodic policy): kind allow "
        "(only inside a window) or deny (never inside one), with windows [{schedule, duration}].",
    )] = None

    def _validate(self, path: str, problems: Problems) -> None:
        seen: dict[str, int] = {}
        for i, item in enumerate(self.data):
            if item.secret_key in seen:
                problems.add(child(index(child(path, "data"), i), "secretKey"),
                             f"duplicate of data[{seen[item.secret_key]}] ({item.secret_key!r})")
            seen.setdefault(item.secret_key, i)
        tmpl = self.target.template
        has_template = tmpl is not None and (bool(tmpl.data) or bool(tmpl.template_from))
        if not self.data and not self.data_from and not has_template:
            problems.add(path, "at least one of data, dataFrom or target.template must be set")

    def storeless_items(self) -> tuple[str, ...]:
        """Items that name no store (no spec.secretStoreRef, no sourceRef.storeRef), as field paths.

        Accepted at admission, as ESO's CRD accepts them (documentation fragments elide the
        store); the reconciler reports them on the object's status instead of syncing.
        """
        if self.secret_store_ref is not None:
            return ()
        sources = [("data", i, d.source_ref) for i, d in enumerate(self.data)]
        sources += [("dataFrom", i, d.source_ref) for i, d in enumerate(self.data_from)]
        return tuple(f"spec.{name}[{i}]" for name, i, src in sources if src is None or src.store_ref is None)

    def stores(self) -> tuple[StoreRef, ...]:
        """Every store read from: spec.secretStoreRef and each item's sourceRef.storeRef, once each."""
        refs = [self.secret_store_ref] if self.secret_store_ref is not None else []
        sources = [d.source_ref for d in self.data] + [d.source_ref for d in self.data_from]
        refs += [src.store_ref for src in sources if src is not None and src.store_ref is not None]
        return tuple(dict.fromkeys(refs))

    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    def remote_keys(self) -> tuple[str, ...]:
        """The remote keys ``data`` and ``dataFrom.extract`` (not ``find``) read from spec.secretStoreRef."""
        keys = [d.remote_ref.key for d in self.data if d.source_ref is None]
        keys += [d.extract.key for d in self.data_from if d.extract is not None and d.source_ref is None]
        return tuple(dict.fromkeys(keys))


@dataclass(frozen=True, slots=True)
class SecretBinding:
    name: Annotated[str, Wire("name", "Name of the Secret this ExternalSecret writes.")]
    resource_version: Annotated[str | None, Wire(
        "resourceVersion", "resourceVersion of that Secret as last written or verified by the controller."
    )] = None


@dataclass(frozen=True, slots=True)
class ExternalSecretStatus:
    conditions: Annotated[tuple[Condition, ...], Wire(
        "conditions", "Ready: True when the Secret holds the latest values."
    )] = ()
    refresh_time: Annotated[str | None, Wire("refreshTime", "When the provider was last read (RFC 3339).")] = None
    synced_resource_version: Annotated[str | None, Wire(
        "syncedResourceVersion", "generation of the spec last synced (detects spec changes)."
    )] = None
    binding: Annotated[SecretBinding | None, Wire("binding", "The Secret written.")] = None
    synced_versions: Annotated[Mapping[str, str], Wire(
        "syncedVersions", "Remote key -> provider version last synced (versions only, never values)."
    )] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return encode(self, omit_defaults=False)


@dataclass(frozen=True, slots=True)
class ExternalSecret:
    meta: ObjectMeta
    spec: ExternalSecretSpec
    status: ExternalSecretStatus | None = None
    kind: str = KIND_EXTERNAL_SECRET

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def namespace(self) -> str:
        assert self.meta.namespace is not None  # parse_external_secret guarantees it
        return self.meta.namespace

    @property
    def ref(self) -> str:
        return object_ref(self.kind, self.meta.name, self.meta.namespace)

    @property
    def target_name(self) -> str:
        return self.spec.target.name or self.meta.name


# --------------------------------------------------------------------------- ClusterExternalSecret
@dataclass(frozen=True, slots=True)
class ExternalSecretMetadata:
    labels: Annotated[Mapping[str, str], Wire("labels", "Labels on each created ExternalSecret.")] = field(
        default_factory=dict
    )
    annotations: Annotated[Mapping[str, str], Wire(
        "annotations", "Annotations on each created ExternalSecret."
    )] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterExternalSecretSpec:
    external_secret_spec: Annotated[ExternalSecretSpec, Wire(
        "externalSecretSpec", "The spec of each ExternalSecret created."
    )]
    external_secret_name: Annotated[str | None, Wire(
        "externalSecretName", "Name of each ExternalSecret (default: this object's name).",
        pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC,
    )] = None
    external_secret_metadata: Annotated[ExternalSecretMetadata | None, Wire(
        "externalSecretMetadata", "Labels and annotations of each ExternalSecret."
    )] = None
    namespace_selector: Annotated[LabelSelector | None, Wire(
        "namespaceSelector", "Namespaces by label (kept for ESO compatibility; prefer namespaceSelectors)."
    )] = None
    namespace_selectors: Annotated[tuple[LabelSelector, ...], Wire(
        "namespaceSelectors", "Namespaces by label; any selector may match."
    )] = ()
    namespaces: Annotated[tuple[str, ...], Wire(
        "namespaces", "Namespaces by name; OR'd with the selectors.", pattern=_DNS_LABEL,
        pattern_doc="a namespace name (DNS label)",
    )] = ()
    refresh_time: Annotated[float, Wire(
        "refreshTime", "How often to re-check which namespaces match (Go duration).", codec=DURATION,
        schema_default=True,
    )] = DEFAULT_CES_REFRESH

    def _validate(self, path: str, problems: Problems) -> None:
        if self.namespace_selector is None and not self.namespace_selectors and not self.namespaces:
            problems.add(path, "set namespaces or namespaceSelectors (refusing to target every namespace "
                         "implicitly; use namespaceSelectors: [{}] to mean all)")


@dataclass(frozen=True, slots=True)
class NamespaceFailure:
    namespace: Annotated[str, Wire("namespace", "The namespace.")]
    reason: Annotated[str | None, Wire("reason", "Why the ExternalSecret could not be created there.")] = None


@dataclass(frozen=True, slots=True)
class ClusterExternalSecretStatus:
    conditions: Annotated[tuple[Condition, ...], Wire("conditions", "Ready: every namespace provisioned.")] = ()
    external_secret_name: Annotated[str | None, Wire(
        "externalSecretName", "Name of the ExternalSecrets created."
    )] = None
    provisioned_namespaces: Annotated[tuple[str, ...], Wire(
        "provisionedNamespaces", "Namespaces holding the ExternalSecret."
    )] = ()
    failed_namespaces: Annotated[tuple[NamespaceFailure, ...], Wire(
        "failedNamespaces", "Namespaces where it could not be created, and why."
    )] = ()

    def to_dict(self) -> dict[str, Any]:
        return encode(self, omit_defaults=False)


@dataclass(frozen=True, slots=True)
class ClusterExternalSecret:
    meta: ObjectMeta
    spec: ClusterExternalSecretSpec
    status: ClusterExternalSecretStatus | None = None
    kind: str = KIND_CLUSTER_EXTERNAL_SECRET

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def ref(self) -> str:
        return object_ref(self.kind, self.meta.name, None)

    @property
    def external_secret_name(self) -> str:
        return self.spec.external_secret_name or self.meta.name

    def selects(self, ns_name: str, ns_labels: Mapping[str, str] | None = None) -> bool:
        """Is ``ns_name`` one of the namespaces that get the ExternalSecret?"""
        labels = ns_labels or {}
        if ns_name in self.spec.namespaces:
            return True
        selectors = list(self.spec.namespace_selectors)
        if self.spec.namespace_selector is not None:
            selectors.append(self.spec.namespace_selector)
        return any(s.matches(labels) for s in selectors)

    def external_secret_manifest(self, namespace: str) -> dict[str, Any]:
        """The ExternalSecret to create in ``namespace`` (labels say who owns it)."""
        md = self.spec.external_secret_metadata or ExternalSecretMetadata()
        labels = {**md.labels, f"{GROUP}/cluster-external-secret": self.meta.name}
        return {
            "apiVersion": API_VERSION,
            "kind": KIND_EXTERNAL_SECRET,
            "metadata": {
                "name": self.external_secret_name,
                "namespace": namespace,
                "labels": labels,
                **({"annotations": dict(md.annotations)} if md.annotations else {}),
            },
            "spec": self.spec.external_secret_spec.to_dict(),
        }


# --------------------------------------------------------------------------- parsing
#: The one empty labels/annotations map every object without any shares (read-only).
_NO_STRINGS: Mapping[str, str] = MappingProxyType({})


def _str_map(raw: Any) -> Mapping[str, str]:
    """Labels or annotations as strings; most objects have none, and 10k empty dicts are 1.3 MB."""
    if not isinstance(raw, Mapping) or not raw:
        return _NO_STRINGS
    return {shared(str(k)): shared(str(v)) for k, v in raw.items()}


def _metadata(obj: Mapping[str, Any], kind: str, namespaced: bool, default_namespace: str | None,
              problems: Problems) -> tuple[ObjectMeta, str]:
    md = obj.get("metadata")
    if not isinstance(md, Mapping):
        md = {}
    name = md.get("name")
    ns = md.get("namespace") or (default_namespace if namespaced else None)
    if not isinstance(name, str) or not name:
        problems.add("metadata.name", "required")
        name = "<unnamed>"
    if namespaced and (not isinstance(ns, str) or not ns):
        problems.add("metadata.namespace", "required")
        ns = None
    ref = object_ref(kind, name, ns if namespaced else None)
    gen = md.get("generation")
    labels = md.get("labels") or {}
    annotations = md.get("annotations") or {}
    meta = ObjectMeta(
        name=shared(name),
        namespace=shared(ns) if namespaced and isinstance(ns, str) else None,
        uid=md.get("uid") if isinstance(md.get("uid"), str) else None,
        generation=gen if isinstance(gen, int) and not isinstance(gen, bool) else None,
        resource_version=md.get("resourceVersion") if isinstance(md.get("resourceVersion"), str) else None,
        labels=_str_map(labels),
        annotations=_str_map(annotations),
    )
    return meta, ref


def _check_header(obj: Mapping[str, Any], kinds: Sequence[str], problems: Problems) -> str:
    if not isinstance(obj, Mapping):
        raise InvalidSpec(f"{kinds[0]}/<unknown>", [("", "must be an object")])
    kind = obj.get("kind") or kinds[0]
    if kind not in kinds:
        problems.add("kind", f"must be {' or '.join(kinds)} (got {kind!r})")
        kind = kinds[0]
    api = obj.get("apiVersion")
    if api is not None and api != API_VERSION:
        problems.add("apiVersion", f"must be {API_VERSION} (got {api!r})")
    return str(kind)


def _decode_status(cls: type[Any], obj: Mapping[str, Any]) -> Any:
    """Status is written by us; a malformed one is ignored rather than failing the object."""
    raw = obj.get("status")
    if not isinstance(raw, dict):
        return None
    p = Problems()
    return decode(cls, raw, "status", p) if raw else None


def _check_store_refs(kind: str, namespace: str | None, spec: SecretStoreSpec, problems: Problems) -> None:
    """A namespaced SecretStore must not read credentials from another namespace.

    Why: anyone who may create a SecretStore in namespace A could otherwise make the
    controller (which can read Secrets everywhere) hand them credentials from namespace B.
    ESO enforces the same rule.
    """
    if kind == KIND_CLUSTER_SECRET_STORE and spec.events is not None and spec.events.webhook is not None \
            and not spec.events.webhook.secret_ref.namespace:
        problems.add("spec.events.webhook.secretRef.namespace", "a ClusterSecretStore must name the namespace")
    if kind != KIND_SECRET_STORE or namespace is None:
        return
    base = f"spec.provider.{spec.provider.key}"
    for src in spec.provider.credentials:
        if src.namespace not in (None, namespace):
            what = {"secret": "Secrets", "configmap": "ConfigMaps"}.get(src.kind, "ServiceAccounts")
            problems.add(f"{base}.{src.field}.namespace",
                         f"a SecretStore may only reference {what} in its own namespace {namespace!r}")
    if spec.conditions:
        problems.add("spec.conditions", "only a ClusterSecretStore takes conditions")
    hook = spec.events.webhook if spec.events is not None else None
    if hook is not None and hook.secret_ref.namespace not in (None, namespace):
        problems.add("spec.events.webhook.secretRef.namespace",
                     f"a SecretStore may only reference Secrets in its own namespace {namespace!r}")


def parse_secret_store(obj: Mapping[str, Any], *, default_namespace: str | None = None) -> SecretStore:
    """Parse a SecretStore or ClusterSecretStore dict (from the API server or a file).

    Raises :class:`InvalidSpec` naming the object and every bad field.
    """
    problems = Problems()
    kind = _check_header(obj, (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE), problems)
    meta, ref = _metadata(obj, kind, NAMESPACED[kind], default_namespace, problems)
    spec = decode(SecretStoreSpec, obj.get("spec"), "spec", problems)
    if spec is not None:
        _check_store_refs(kind, meta.namespace, spec, problems)
    if problems or spec is None:
        raise InvalidSpec(ref, problems.items)
    return SecretStore(kind, meta, spec, _decode_status(SecretStoreStatus, obj))


def parse_external_secret(obj: Mapping[str, Any], *, default_namespace: str | None = None,
                          prior: ExternalSecret | None = None) -> ExternalSecret:
    """Parse an ExternalSecret dict. Raises :class:`InvalidSpec` naming every bad field.

    ``prior``: the same object parsed before. Its spec is reused when the API server says the
    spec is unchanged. Why: every status write the controller makes comes back as a watch
    event, and parsing the whole spec again costs CPU and a second copy of it in memory at
    10k objects. ``metadata.generation`` moves on every spec change (the status subresource
    keeps status writes from moving it), so the same uid and generation mean the same spec.
    """
    problems = Problems()
    kind = _check_header(obj, (KIND_EXTERNAL_SECRET,), problems)
    meta, ref = _metadata(obj, kind, True, default_namespace, problems)
    same = (prior is not None and meta.uid is not None and meta.uid == prior.meta.uid
            and meta.generation is not None and meta.generation == prior.meta.generation)
    spec = prior.spec if same and prior is not None else decode(ExternalSecretSpec, obj.get("spec"), "spec", problems)
    if problems or spec is None:
        raise InvalidSpec(ref, problems.items)
    return ExternalSecret(meta, spec, _decode_status(ExternalSecretStatus, obj))


def parse_cluster_external_secret(obj: Mapping[str, Any]) -> ClusterExternalSecret:
    """Parse a ClusterExternalSecret dict. Raises :class:`InvalidSpec` naming every bad field."""
    problems = Problems()
    kind = _check_header(obj, (KIND_CLUSTER_EXTERNAL_SECRET,), problems)
    meta, ref = _metadata(obj, kind, False, None, problems)
    spec = decode(ClusterExternalSecretSpec, obj.get("spec"), "spec", problems)
    if problems or spec is None:
        raise InvalidSpec(ref, problems.items)
    return ClusterExternalSecret(meta, spec, _decode_status(ClusterExternalSecretStatus, obj))


def parse_object(obj: Mapping[str, Any], *, default_namespace: str | None = None) -> (
        SecretStore | ExternalSecret | ClusterExternalSecret | PushSecret | ClusterPushSecret):
    """Parse any of the sync kinds (stores, ExternalSecrets, PushSecrets), dispatching on ``kind``."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if kind == KIND_PUSH_SECRET:
        return parse_push_secret(obj, default_namespace=default_namespace)
    if kind == KIND_CLUSTER_PUSH_SECRET:
        return parse_cluster_push_secret(obj)
    if kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
        return parse_secret_store(obj, default_namespace=default_namespace)
    if kind == KIND_EXTERNAL_SECRET:
        return parse_external_secret(obj, default_namespace=default_namespace)
    if kind == KIND_CLUSTER_EXTERNAL_SECRET:
        return parse_cluster_external_secret(obj)
    raise InvalidSpec(f"{kind or '<no kind>'}/?", [("kind", f"must be one of {', '.join(KINDS)}")])


def check_provider_config(store: SecretStore) -> None:
    """Validate the provider block with that provider's own factory (``validate_config``).

    Raises :class:`InvalidSpec` naming the store and ``spec.provider.<name>``; also when the
    provider is not installed (the message says which extra to install).
    """
    from secretsync.core.registry import get_factory

    name = store.spec.provider.name
    try:
        get_factory(name).validate_config(store.spec.provider.config)
    except InvalidConfig as exc:
        raise InvalidSpec(store.ref, [(f"spec.provider.{store.spec.provider.key}", str(exc))]) from None


# --------------------------------------------------------------------------- SecretRotation (issue 13)
PASSWORD_SYMBOLS: Final = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
DEFAULT_GRACE_PERIOD: Final = 86400.0


@dataclass(frozen=True, slots=True)
class PasswordGenerator:
    """A password from the classes asked for, at least one character of each."""

    length: Annotated[int, Wire("length", "Number of characters.", minimum=8, schema_default=True)] = 32
    lowercase: Annotated[bool, Wire("lowercase", "Use a-z.", schema_default=True)] = True
    uppercase: Annotated[bool, Wire("uppercase", "Use A-Z.", schema_default=True)] = True
    digits: Annotated[bool, Wire("digits", "Use 0-9.", schema_default=True)] = True
    symbols: Annotated[bool, Wire("symbols", f"Use {PASSWORD_SYMBOLS}.", schema_default=True)] = True
    exclude: Annotated[str, Wire("exclude", "Characters never used (e.g. quotes a target system mangles).")] = ""

    def _validate(self, path: str, problems: Problems) -> None:
        classes = sum((self.lowercase, self.uppercase, self.digits, self.symbols))
        if classes == 0:
            problems.add(path, "enable at least one of lowercase, uppercase, digits, symbols")
        if self.length > 4096:
            problems.add(child(path, "length"), "must be at most 4096")
        elif self.length < classes:
            problems.add(child(path, "length"), f"must be at least {classes} (one per class)")


@dataclass(frozen=True, slots=True)
class RandomBytesGenerator:
    length: Annotated[int, Wire("length", "Number of random bytes.", minimum=8, schema_default=True)] = 32
    encoding: Annotated[str, Wire("encoding", "How the bytes are written: base64, base64url, hex or raw.",
                                  enum=("base64", "base64url", "hex", "raw"), schema_default=True)] = "base64"


@dataclass(frozen=True, slots=True)
class EmptyGenerator:
    """A generator without options (uuid, ed25519)."""


@dataclass(frozen=True, slots=True)
class RSAGenerator:
    bits: Annotated[int, Wire("bits", "Key size: 2048, 3072 or 4096.", minimum=2048, schema_default=True)] = 3072

    def _validate(self, path: str, problems: Problems) -> None:
        if self.bits not in (2048, 3072, 4096):
            problems.add(child(path, "bits"), "must be 2048, 3072 or 4096")


@dataclass(frozen=True, slots=True)
class ECDSAGenerator:
    curve: Annotated[str, Wire("curve", "P-256, P-384 or P-521.", enum=("P-256", "P-384", "P-521"),
                               schema_default=True)] = "P-256"


@dataclass(frozen=True, slots=True)
class Generator:
    """Exactly one kind of value. Key pairs are written as JSON ``{privateKey, publicKey}`` (PEM)."""

    password: Annotated[PasswordGenerator | None, Wire("password", "A password by policy.")] = None
    random_bytes: Annotated[RandomBytesGenerator | None, Wire("randomBytes", "Random bytes, encoded.")] = None
    uuid: Annotated[EmptyGenerator | None, Wire("uuid", "A random (version 4) UUID.")] = None
    rsa: Annotated[RSAGenerator | None, Wire("rsa", "An RSA key pair (PKCS#8 / SubjectPublicKeyInfo PEM).")] = None
    ecdsa: Annotated[ECDSAGenerator | None, Wire("ecdsa", "An ECDSA key pair (PEM).")] = None
    ed25519: Annotated[EmptyGenerator | None, Wire("ed25519", "An Ed25519 key pair (PEM).")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if sum(getattr(self, f) is not None for f in self.__slots__) != 1:
            problems.add(path, "set exactly one of password, randomBytes, uuid, rsa, ecdsa, ed25519")

    @property
    def kind(self) -> str:
        return next(f for f in self.__slots__ if getattr(self, f) is not None)


@dataclass(frozen=True, slots=True)
class WebhookHook:
    url: Annotated[str, Wire("url", "HTTPS endpoint that applies the new credential (POST, JSON).",
                             pattern=r"https://[^\s]+", pattern_doc="an https:// URL")]
    ca_bundle: Annotated[str | None, Wire("caBundle", "PEM CA certificates to trust (default: the system's).")] = None
    timeout: Annotated[float, Wire("timeout", "How long to wait for the webhook (Go duration).", codec=DURATION,
                                   schema_default=True)] = 30.0


@dataclass(frozen=True, slots=True)
class JobHook:
    """A Job built from a PodTemplate of the rotation's own namespace.

    A reference, not an embedded pod spec: the CRD schema stays structural (no
    preserve-unknown-fields), and the API server validates the PodTemplate like any pod spec.
    """

    template_name: Annotated[str, Wire(
        "podTemplateName", "PodTemplate (same namespace) the Job's pod is made from; its containers read the "
        "new value from /var/run/secretsync/rotation/value (previous: .../previous).",
        pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)]
    timeout: Annotated[float, Wire("timeout", "How long the Job may take before the rotation is abandoned "
                                   "(Go duration).", codec=DURATION, schema_default=True)] = 600.0
    backoff_limit: Annotated[int, Wire("backoffLimit", "Pod retries before the Job fails.", minimum=0,
                                       schema_default=True)] = 0


@dataclass(frozen=True, slots=True)
class RotationHook:
    """Runs before the switch: the new value is written to the provider only if it succeeds."""

    webhook: Annotated[WebhookHook | None, Wire("webhook", "Call an HTTPS webhook with the new value.")] = None
    job: Annotated[JobHook | None, Wire("job", "Run a Job with the new value and wait for it to succeed.")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if (self.webhook is None) == (self.job is None):
            problems.add(path, "set exactly one of webhook, job")


@dataclass(frozen=True, slots=True)
class SecretRotationSpec:
    secret_store_ref: Annotated[StoreRef, Wire("secretStoreRef", "The store to write new versions to.")]
    remote_key: Annotated[str, Wire("remoteKey", "The remote secret rotated (a new version per rotation).")]
    generator: Annotated[Generator, Wire("generator", "What a new value is.")]
    interval: Annotated[float | None, Wire(
        "interval", "Rotate this often (Go duration, e.g. 720h). Exclusive with schedule.", codec=DURATION)] = None
    schedule: Annotated[str | None, Wire(
        "schedule", "Rotate on this cron schedule (5 fields, UTC). Exclusive with interval.")] = None
    grace_period: Annotated[float, Wire(
        "gracePeriod", "How long the previous value stays exposed as `previous` (dualCredentials).",
        codec=DURATION, schema_default=True)] = DEFAULT_GRACE_PERIOD
    dual_credentials: Annotated[bool, Wire(
        "dualCredentials", "Write JSON {current, previous} so a Secret (dataFrom.extract) holds both during the "
        "grace period; after it, {current} only.")] = False
    hook: Annotated[RotationHook | None, Wire("hook", "Apply the new value to the target system first.")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if (self.interval is None) == (self.schedule is None):
            problems.add(path, "set exactly one of interval, schedule")
        if self.interval is not None and self.interval < 60:
            problems.add(child(path, "interval"), "must be at least 1m")
        if self.schedule is not None:
            from .cron import check_cron

            err = check_cron(self.schedule)
            if err:
                problems.add(child(path, "schedule"), err)


@dataclass(frozen=True, slots=True)
class SecretRotationStatus:
    conditions: Annotated[tuple[Condition, ...], Wire(
        "conditions", "Ready: False with the reason when the last rotation failed.")] = ()
    last_rotation_time: Annotated[str | None, Wire("lastRotationTime", "When a new value was last written.")] = None
    current_version: Annotated[str | None, Wire("currentVersion", "Provider version written last.")] = None
    previous_version: Annotated[str | None, Wire("previousVersion", "Provider version it replaced.")] = None
    previous_expires: Annotated[str | None, Wire(
        "previousExpires", "End of the grace period of the previous value (RFC 3339).")] = None
    requested: Annotated[str | None, Wire(
        "requested", "The last rotate-now request handled (the annotation's value).")] = None

    def to_dict(self) -> dict[str, Any]:
        return encode(self, omit_defaults=False)


@dataclass(frozen=True, slots=True)
class SecretRotation(_NamespacedObject):
    meta: ObjectMeta
    spec: SecretRotationSpec
    status: SecretRotationStatus | None = None
    kind: str = KIND_SECRET_ROTATION


def parse_secret_rotation(obj: Mapping[str, Any], *, default_namespace: str | None = None) -> SecretRotation:
    """Parse a SecretRotation dict. Raises :class:`InvalidSpec` naming every bad field."""
    return SecretRotation(*_parse_kind(obj, KIND_SECRET_ROTATION, SecretRotationSpec, SecretRotationStatus,
                                       default_namespace))


# --------------------------------------------------------------------------- PushSecret (issue 12)
PUSH_UPDATE_POLICIES: Final = ("Replace", "IfNotExists")
PUSH_DELETION_POLICIES: Final = ("Delete", "None")


@dataclass(frozen=True, slots=True)
class PushStoreRef:
    """A store to push to, by name or (ESO) by the labels of stores of that kind."""

    name: Annotated[str | None, Wire("name", "Name of the store.", pattern=_DNS_SUBDOMAIN,
                                     pattern_doc=_SUBDOMAIN_DOC)] = None
    kind: Annotated[str, Wire(
        "kind", "SecretStore (same namespace) or ClusterSecretStore.",
        enum=(KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE), schema_default=True,
    )] = KIND_SECRET_STORE
    label_selector: Annotated[LabelSelector | None, Wire(
        "labelSelector", "Every store of this kind whose labels match (instead of name).")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if (self.name is None) == (self.label_selector is None):
            problems.add(path, "set exactly one of name, labelSelector")


@dataclass(frozen=True, slots=True)
class PushSourceSecret:
    name: Annotated[str | None, Wire("name", "The Secret (of the PushSecret's namespace) to push.",
                                     pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)] = None
    selector: Annotated[LabelSelector | None, Wire(
        "selector", "Every Secret of the namespace whose labels match (instead of name).")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if (self.name is None) == (self.selector is None):
            problems.add(path, "set exactly one of name, selector")


@dataclass(frozen=True, slots=True)
class PushSelector:
    secret: Annotated[PushSourceSecret | None, Wire("secret", "Which Secret(s) to push.")] = None
    generator_ref: Annotated[Mapping[str, Any] | None, Wire(
        "generatorRef", "ESO generators are not supported (use SecretRotation to generate values).")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if self.generator_ref is not None:
            problems.add(child(path, "generatorRef"), "generators are not supported (SecretRotation generates "
                                                      "and writes values); set selector.secret")
        elif self.secret is None:
            problems.add(child(path, "secret"), "required")


@dataclass(frozen=True, slots=True)
class PushRemoteRef:
    remote_key: Annotated[str, Wire("remoteKey", "The remote secret written.")]
    property: Annotated[str | None, Wire(
        "property", "Write into this property of a JSON remote secret (the other properties are kept).")] = None


@dataclass(frozen=True, slots=True)
class PushMatch:
    secret_key: Annotated[str | None, Wire(
        "secretKey", "Key of the Secret to push; omitted: the whole Secret as a JSON object.",
        pattern=_SECRET_KEY, pattern_doc=_KEY_DOC)] = None
    remote_ref: Annotated[PushRemoteRef, Wire("remoteRef", "Where it goes.")] = field(
        default_factory=lambda: PushRemoteRef(""))

    def _validate(self, path: str, problems: Problems) -> None:
        if not self.remote_ref.remote_key:
            problems.add(child(child(path, "remoteRef"), "remoteKey"), "required")


#: Keys of ``data[].metadata`` (flat, or under ``spec`` as ESO's PushSecretMetadata) that are applied.
PUSH_METADATA_KEYS: Final = ("tags", "secretPushFormat", "kmsKeyID", "description", "replicationLocations")
#: Of those, the provider-specific options handed to the store's put (it refuses any it does not apply).
PUSH_OPTION_KEYS: Final = ("kmsKeyID", "description", "replicationLocations")


@dataclass(frozen=True, slots=True)
class PushData:
    match: Annotated[PushMatch, Wire("match", "Which key goes where.")]
    metadata: Annotated[Mapping[str, Any] | None, Wire(
        "metadata", "Provider metadata of the remote secret: tags (AWS tags, GCP labels, Azure tags, Vault "
        "custom_metadata). Flat or as ESO's PushSecretMetadata {apiVersion, kind, spec}.")] = None
    conversion_strategy: Annotated[str, Wire(
        "conversionStrategy", "None, or ReverseUnicode (turn _UXXXX_ back into the character, as ESO).",
        enum=("None", "ReverseUnicode"), schema_default=True)] = "None"

    def _validate(self, path: str, problems: Problems) -> None:
        md = self.push_metadata
        base = child(path, "metadata")
        for key in md:
            if key not in PUSH_METADATA_KEYS:
                problems.add(child(base, key), f"not supported (supported: {', '.join(PUSH_METADATA_KEYS)})")
        tags = md.get("tags")
        if tags is not None and not (isinstance(tags, Mapping)
                                     and all(isinstance(v, str) for v in tags.values())):
            problems.add(child(base, "tags"), "must map names to strings")
        fmt = md.get("secretPushFormat")
        if fmt is not None and fmt not in ("string", "binary"):
            problems.add(child(base, "secretPushFormat"), "must be string or binary")

    @property
    def push_metadata(self) -> Mapping[str, Any]:
        """The metadata's own keys (ESO's ``{apiVersion, kind, spec: {...}}`` unwrapped)."""
        md = self.metadata or {}
        if "spec" in md and isinstance(md["spec"], Mapping):
            return dict(md["spec"])
        return {k: v for k, v in md.items() if k not in ("apiVersion", "kind")}

    @property
    def options(self) -> dict[str, Any]:
        """Provider-specific put options (ESO's AWS PushSecretMetadata: kmsKeyID, description,
        replicationLocations); the store checks and applies them, or refuses them by name."""
        md = self.push_metadata
        return {k: md[k] for k in PUSH_OPTION_KEYS if md.get(k) is not None}

    @property
    def tags(self) -> dict[str, str] | None:
        tags = self.push_metadata.get("tags")
        return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else None


@dataclass(frozen=True, slots=True)
class PushSecretSpec:
    secret_store_refs: Annotated[tuple[PushStoreRef, ...], Wire("secretStoreRefs", "The stores written to.")]
    selector: Annotated[PushSelector, Wire("selector", "The Secret(s) of this namespace to push.")]
    data: Annotated[tuple[PushData, ...], Wire(
        "data", "Which keys go where. Empty: each key of the Secret becomes the remote secret of that name.")] = ()
    update_policy: Annotated[str, Wire(
        "updatePolicy", "Replace: keep the remote secret equal to the Secret. IfNotExists: write only when the "
        "remote secret (property) does not exist yet.", enum=PUSH_UPDATE_POLICIES, schema_default=True,
    )] = "Replace"
    deletion_policy: Annotated[str, Wire(
        "deletionPolicy", "Delete: when the PushSecret (or a data entry) goes, delete the remote secrets "
        "(properties) it created, never ones it found. None: leave them.", enum=PUSH_DELETION_POLICIES,
        schema_default=True,
    )] = "None"
    refresh_interval: Annotated[float, Wire(
        "refreshInterval", "How often to push again (Go duration; 0 = only on change).", codec=DURATION,
        schema_default=True,
    )] = DEFAULT_REFRESH_INTERVAL
    template: Annotated[TargetTemplate | None, Wire(
        "template", "Render the data pushed from the Secret's keys (as an ExternalSecret's target.template; "
        "data.match.secretKey then names a rendered key). metadata and type do not apply.")] = None

    def _validate(self, path: str, problems: Problems) -> None:
        if not self.secret_store_refs:
            problems.add(child(path, "secretStoreRefs"), "must list at least one store")
        tmpl = self.template
        if tmpl is not None and tmpl.metadata is not None and (tmpl.metadata.labels or tmpl.metadata.annotations):
            problems.add(child(child(path, "template"), "metadata"), "has no effect on a PushSecret (nothing is "
                                                                   "written to Kubernetes); remove it")
        seen: dict[tuple[str, str | None], int] = {}
        for i, d in enumerate(self.data):
            k = (d.match.remote_ref.remote_key, d.match.remote_ref.property)
            if k in seen:
                problems.add(child(index(child(path, "data"), i), "match.remoteRef"),
                             f"writes the same remote secret (property) as data[{seen[k]}]")
            seen.setdefault(k, i)


@dataclass(frozen=True, slots=True)
class PushedKey:
    """One remote secret (property) a PushSecret wrote: names and versions, never values."""

    store: Annotated[str, Wire("store", "Kind/name of the store.")]
    remote_key: Annotated[str, Wire("remoteKey", "The remote secret.")]
    property: Annotated[str | None, Wire("property", "The property written, if any.")] = None
    version: Annotated[str | None, Wire("version", "Provider version written or found.")] = None
    created: Annotated[bool, Wire(
        "created", "This PushSecret created it (only such keys are deleted by deletionPolicy Delete).")] = False
    proof: Annotated[str | None, Wire(
        "proof", "The controller's HMAC over this PushSecret and the entry: status written by anyone else "
        "cannot make the controller delete a key.")] = None

    def ident(self) -> tuple[str, str, str | None]:
        """(store, remote key, property): what one entry of syncedPushSecrets is about."""
        return (self.store, self.remote_key, self.property)


@dataclass(frozen=True, slots=True)
class PushSecretStatus:
    conditions: Annotated[tuple[Condition, ...], Wire("conditions", "Ready: every key is pushed.")] = ()
    refresh_time: Annotated[str | None, Wire("refreshTime", "When the last push ran (RFC 3339).")] = None
    synced_resource_version: Annotated[str | None, Wire(
        "syncedResourceVersion", "generation of the spec last pushed.")] = None
    synced_push_secrets: Annotated[tuple[PushedKey, ...], Wire(
        "syncedPushSecrets", "Every remote secret (property) pushed, per store.")] = ()

    def to_dict(self) -> dict[str, Any]:
        return encode(self, omit_defaults=False)


@dataclass(frozen=True, slots=True)
class PushSecret(_NamespacedObject):
    meta: ObjectMeta
    spec: PushSecretSpec
    status: PushSecretStatus | None = None
    kind: str = KIND_PUSH_SECRET


def _parse_kind(obj: Mapping[str, Any], kind: str, spec_cls: type[Any], status_cls: type[Any],
                default_namespace: str | None) -> tuple[ObjectMeta, Any, Any]:
    """Header, metadata, spec and status of one kind; every problem at once as :class:`InvalidSpec`."""
    problems = Problems()
    kind = _check_header(obj, (kind,), problems)
    meta, ref = _metadata(obj, kind, NAMESPACED[kind], default_namespace, problems)
    spec = decode(spec_cls, obj.get("spec"), "spec", problems)
    if problems or spec is None:
        raise InvalidSpec(ref, problems.items)
    return meta, spec, _decode_status(status_cls, obj)


def parse_push_secret(obj: Mapping[str, Any], *, default_namespace: str | None = None) -> PushSecret:
    """Parse a PushSecret dict. Raises :class:`InvalidSpec` naming every bad field."""
    return PushSecret(*_parse_kind(obj, KIND_PUSH_SECRET, PushSecretSpec, PushSecretStatus, default_namespace))


@dataclass(frozen=True, slots=True)
class ClusterPushSecretSpec:
    push_secret_spec: Annotated[PushSecretSpec, Wire("pushSecretSpec", "The spec of each PushSecret created.")]
    namespace_selectors: Annotated[tuple[LabelSelector, ...], Wire(
        "namespaceSelectors", "Namespaces by label; any selector may match.")] = ()
    namespaces: Annotated[tuple[str, ...], Wire(
        "namespaces", "Namespaces by name; OR'd with the selectors.", pattern=_DNS_LABEL,
        pattern_doc="a namespace name (DNS label)")] = ()
    push_secret_name: Annotated[str | None, Wire(
        "pushSecretName", "Name of each PushSecret (default: this object's name).",
        pattern=_DNS_SUBDOMAIN, pattern_doc=_SUBDOMAIN_DOC)] = None
    push_secret_metadata: Annotated[ExternalSecretMetadata | None, Wire(
        "pushSecretMetadata", "Labels and annotations of each PushSecret.")] = None
    refresh_time: Annotated[float, Wire(
        "refreshTime", "How often to re-check which namespaces match (Go duration).", codec=DURATION,
        schema_default=True)] = DEFAULT_CES_REFRESH

    def _validate(self, path: str, problems: Problems) -> None:
        if not self.namespace_selectors and not self.namespaces:
            problems.add(path, "set namespaces or namespaceSelectors (refusing to target every namespace "
                         "implicitly; use namespaceSelectors: [{}] to mean all)")


@dataclass(frozen=True, slots=True)
class ClusterPushSecretStatus:
    conditions: Annotated[tuple[Condition, ...], Wire("conditions", "Ready: every namespace provisioned.")] = ()
    push_secret_name: Annotated[str | None, Wire("pushSecretName", "Name of the PushSecrets created.")] = None
    provisioned_namespaces: Annotated[tuple[str, ...], Wire(
        "provisionedNamespaces", "Namespaces holding the PushSecret.")] = ()
    failed_namespaces: Annotated[tuple[NamespaceFailure, ...], Wire(
        "failedNamespaces", "Namespaces where it could not be created, and why.")] = ()

    def to_dict(self) -> dict[str, Any]:
        return encode(self, omit_defaults=False)


@dataclass(frozen=True, slots=True)
class ClusterPushSecret:
    meta: ObjectMeta
    spec: ClusterPushSecretSpec
    status: ClusterPushSecretStatus | None = None
    kind: str = KIND_CLUSTER_PUSH_SECRET

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def ref(self) -> str:
        return object_ref(self.kind, self.meta.name, None)

    @property
    def push_secret_name(self) -> str:
        return self.spec.push_secret_name or self.meta.name

    def selects(self, ns_name: str, ns_labels: Mapping[str, str] | None = None) -> bool:
        labels = ns_labels or {}
        return ns_name in self.spec.namespaces or any(s.matches(labels) for s in self.spec.namespace_selectors)


def parse_cluster_push_secret(obj: Mapping[str, Any]) -> ClusterPushSecret:
    """Parse a ClusterPushSecret dict. Raises :class:`InvalidSpec` naming every bad field."""
    return ClusterPushSecret(*_parse_kind(obj, KIND_CLUSTER_PUSH_SECRET, ClusterPushSecretSpec,
                                          ClusterPushSecretStatus, None))


# --------------------------------------------------------------------------- values
def apply_decoding(value: SecretValue, strategy: str) -> SecretValue:
    """Apply a ``decodingStrategy`` to a fetched value (ESO semantics).

    ``Auto`` decodes when the value is valid base64 (standard or URL alphabet) and keeps it
    as is otherwise. Errors never include the value.
    """
    if strategy == "None":
        return value
    raw = value.reveal()
    try:
        if strategy == "Base64":
            return SecretValue(base64.b64decode(raw, validate=True))
        if strategy == "Base64URL":
            return SecretValue(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
        if strategy == "Auto":
            try:
                return SecretValue(base64.b64decode(raw, validate=True))
            except (binascii.Error, ValueError):
                pass
            if re.fullmatch(rb"[A-Za-z0-9_-]+={0,2}", raw):
                try:
                    return SecretValue(base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4)))
                except (binascii.Error, ValueError):
                    pass
            return value
    except (binascii.Error, ValueError):
        raise ValueError(f"value is not valid {strategy}") from None
    raise ValueError(f"unknown decodingStrategy {strategy!r}")


# --------------------------------------------------------------------------- builders
def external_secret_manifest(
    name: str,
    namespace: str,
    store_ref: StoreRef | str,
    target_name: str | None,
    data: Sequence[tuple[str, str, str | None]],
    refresh_interval: str | float = "1h",
    *,
    store_kind: str = KIND_SECRET_STORE,
    creation_policy: str = "Owner",
    deletion_policy: str = "Retain",
    template: TargetTemplate | None = None,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build a valid ExternalSecret manifest (what the migrator writes for each moved Secret).

    ``data`` is ``[(secretKey, remoteKey, property | None), ...]``. The result is parsed
    back before it is returned, so a bad name or key raises :class:`InvalidSpec` here, at
    plan time, instead of at apply time in the cluster.
    """
    ref = store_ref if isinstance(store_ref, StoreRef) else StoreRef(store_ref, store_kind)
    interval = parse_duration(refresh_interval) if isinstance(refresh_interval, str) else float(refresh_interval)
    spec = ExternalSecretSpec(
        secret_store_ref=ref,
        refresh_interval=interval,
        target=Target(name=target_name if target_name and target_name != name else None,
                      creation_policy=creation_policy, deletion_policy=deletion_policy, template=template),
        data=tuple(DataItem(k, RemoteRef(key=rk, property=prop)) for k, rk, prop in data),
    )
    encoded = encode(spec)
    # Always spell out the store kind and refresh interval: manifests are read by people.
    body: dict[str, Any] = {
        "secretStoreRef": {"name": ref.name, "kind": ref.kind},
        "refreshInterval": format_duration(interval),
    }
    body.update({k: v for k, v in encoded.items() if k not in body})
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    manifest = {"apiVersion": API_VERSION, "kind": KIND_EXTERNAL_SECRET, "metadata": metadata, "spec": body}
    parse_external_secret(manifest)
    return manifest


def secret_store_manifest(
    name: str,
    namespace: str | None,
    provider: str,
    config: Mapping[str, Any],
    *,
    allowed_key_prefix: str | None = None,
    refresh_interval: str | None = None,
) -> dict[str, Any]:
    """Build a valid SecretStore (``namespace`` set) or ClusterSecretStore (``namespace=None``)."""
    kind = KIND_SECRET_STORE if namespace else KIND_CLUSTER_SECRET_STORE
    spec: dict[str, Any] = {"provider": {provider: plain(config)}}
    if allowed_key_prefix:
        spec["allowedKeyPrefix"] = allowed_key_prefix
    if refresh_interval:
        spec["refreshInterval"] = refresh_interval
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    manifest = {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
    parse_secret_store(manifest)
    return manifest
