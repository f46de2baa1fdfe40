"""The secret graph: provider secret -> ExternalSecret -> Kubernetes Secret -> consumers -> ServiceAccounts.

Built from an :class:`~.inventory.Inventory` without any I/O, so every edge case is a unit
test on plain dicts. Consumers are attributed to their *top* owner: a Pod owned by a
ReplicaSet owned by a Deployment counts as the Deployment, as long as the owner is in the
input (matched by uid when both sides have one, else by kind and name). An owned ReplicaSet
scaled to 0 is an old revision and is skipped.

Besides workloads, these consume a Secret: a ServiceAccount (its token Secrets and
``imagePullSecrets``), an Ingress (``spec.tls[].secretName``), a PersistentVolume or
StorageClass (volume plugin credentials), a SecretStore (credentials
in ``secretRef``) and an ExternalSecret (templates from ``templateFrom.secret``). A Secret
that does not exist but is the target of an ExternalSecret is *pending*, not missing: the
controller creates it.

Findings (``type``, severity):

* ``broken-ref`` (error; ``warning`` for image pull Secrets): a reference to a Secret,
  store or ServiceAccount that is not there.
* ``missing-key`` (error): a ``secretKeyRef``/``items`` key the Secret does not have (only
  where key names are known, i.e. manifests).
* ``broken-optional-ref`` (info): either of the above on an ``optional: true`` reference
  (the pod starts without it).
* ``orphan`` (info): a Secret nobody in the input consumes.
* ``unmanaged`` (warning): a Secret whose values live only in Kubernetes: not written by
  secretsync, not a ServiceAccount token, Helm release record or controller-generated Secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from secretsync.api.models import (
    KIND_CLUSTER_SECRET_STORE,
    KIND_SECRET_STORE,
    ExternalSecret,
    InvalidSpec,
    SourceRef,
    parse_external_secret,
)
from secretsync.kube.labels import CES_LABEL, MANAGED_LABEL, MANAGED_VALUE, OWNER_ANNOTATION
from secretsync.kube.podspec import VIA_IMAGE_PULL, SecretUse

from .inventory import Inventory, ObjRef, Problem, SecretInfo, Workload

VIA_SA_TOKEN: Final = "serviceAccountToken"
VIA_SA_SECRET: Final = "serviceAccountSecret"
VIA_STORE_CREDENTIAL: Final = "storeCredential"
VIA_TEMPLATE: Final = "template"

SA_TOKEN_TYPE: Final = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION: Final = "kubernetes.io/service-account.name"

FINDING_BROKEN_REF: Final = "broken-ref"
FINDING_BROKEN_OPTIONAL_REF: Final = "broken-optional-ref"
FINDING_MISSING_KEY: Final = "missing-key"
FINDING_ORPHAN: Final = "orphan"
FINDING_UNMANAGED: Final = "unmanaged"
SEVERITIES: Final = ("error", "warning", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    type: str
    severity: str  # error | warning | info
    object: str
    field: str | None
    message: str
    #: ``namespace/name`` of the Secret concerned, when there is one.
    secret: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"type": self.type, "severity": self.severity, "object": self.object, "field": self.field,
                "message": self.message, "secret": self.secret}


@dataclass(frozen=True, slots=True)
class Consumer:
    """Who reads a Secret and through which field."""

    ref: ObjRef
    use: SecretUse
    #: The object holding the reference when it is not ``ref`` itself (a ReplicaSet or Pod).
    found_in: ObjRef | None = None
    #: ``namespace/name`` of the ServiceAccount the workload runs as (workloads only).
    service_account: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderSource:
    """Where an ExternalSecret takes (some of) a Secret's keys from."""

    external_secret: ObjRef
    store: ObjRef
    provider: str | None
    remote_key: str | None = None
    property: str | None = None
    #: ``dataFrom.find`` as text (``name=~RE path=P tags=k=v``) instead of a single key.
    find: str | None = None
    secret_keys: tuple[str, ...] = ()
    #: The ClusterExternalSecret that stamped the ExternalSecret, if any.
    origin: ObjRef | None = None

    def label(self) -> str:
        what = self.remote_key or f"find({self.find})"
        prop = f"#{self.property}" if self.property else ""
        return f"{self.provider or '?'}:{self.store.name}/{what}{prop}"


@dataclass
class SecretNode:
    namespace: str
    name: str
    info: SecretInfo | None = None
    external_secrets: list[ObjRef] = field(default_factory=list)
    sources: list[ProviderSource] = field(default_factory=list)
    consumers: list[Consumer] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def exists(self) -> bool:
        return self.info is not None

    @property
    def managed_by(self) -> str | None:
        """Who writes this Secret's values (None: a person did, and they live only here)."""
        info = self.info
        if self.external_secrets:
            return "secretsync"
        if info is None:
            return None
        if info.labels.get(MANAGED_LABEL) == MANAGED_VALUE and OWNER_ANNOTATION in info.annotations:
            return "secretsync"
        if info.type in (SA_TOKEN_TYPE, "bootstrap.kubernetes.io/token") or SA_NAME_ANNOTATION in info.annotations:
            return "kubernetes"
        if info.type == "helm.sh/release.v1" or (info.labels.get("owner") == "helm"
                                                  and self.name.startswith("sh.helm.release.v1.")):
            return "helm-release"
        if "cert-manager.io/certificate-name" in info.annotations:
            return "cert-manager"
        if info.controller is not None:
            return f"controller:{info.controller.kind}"
        return None


@dataclass
class WorkloadNode:
    ref: ObjRef
    service_account: str
    #: Objects attributed to this workload (its ReplicaSets, Pods...) that were in the input.
    members: list[ObjRef] = field(default_factory=list)
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (secret name, via)


@dataclass
class Graph:
    secrets: dict[tuple[str, str], SecretNode] = field(default_factory=dict)
    workloads: dict[ObjRef, WorkloadNode] = field(default_factory=dict)
    external_secrets: list[ExternalSecret] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: The inventory's ``file:line`` lookup (manifests), for findings.
    inventory: Inventory | None = None

    def location(self, f: Finding) -> str | None:
        return self.inventory.location(f.object, f.field) if self.inventory is not None else None

    def node(self, namespace: str, name: str) -> SecretNode:
        n = self.secrets.get((namespace, name))
        if n is None:
            n = self.secrets[(namespace, name)] = SecretNode(namespace, name)
        return n


def build_graph(inv: Inventory) -> Graph:
    """The graph and its findings (see the module docstring)."""
    g = Graph(problems=list(inv.problems), inventory=inv)
    for (ns, name), info in inv.secrets.items():
        g.node(ns, name).info = info
    _add_workloads(g, inv)
    _add_service_accounts(g, inv)
    for ref in inv.references:
        ns = ref.namespace
        if (ns, ref.use.secret) not in inv.secrets:
            # A namespace-less Secret manifest goes wherever it is applied: take it at its word.
            ns = next((n for n, s in sorted(inv.implicit_namespace) if s == ref.use.secret), ns)
        g.node(ns, ref.use.secret).consumers.append(Consumer(ref.consumer, ref.use))
    g.external_secrets = _expand_cluster_external_secrets(inv, g)
    _add_external_secrets(g, inv)
    _add_store_credentials(g, inv)
    _findings(g, inv)
    return g


# ---------------------------------------------------------------------- workloads
def _top_owners(workloads: list[Workload]) -> dict[int, Workload]:
    by_name = {(w.ref.kind, w.ref.namespace, w.ref.name): w for w in workloads}
    tops: dict[int, Workload] = {}
    for w in workloads:
        top, seen = w, {id(w)}
        while top.owner is not None:
            parent = by_name.get((top.owner.kind, top.owner.namespace, top.owner.name))
            if parent is None or id(parent) in seen:
                break
            if top.owner_uid and parent.uid and top.owner_uid != parent.uid:
                break  # same name, different object (deleted and recreated)
            seen.add(id(parent))
            top = parent
        tops[id(w)] = top
    return tops


def _add_workloads(g: Graph, inv: Inventory) -> None:
    tops = _top_owners(inv.workloads)
    for w in inv.workloads:
        top = tops[id(w)]
        ns = w.ref.namespace or inv.default_namespace
        node = g.workloads.get(top.ref)
        if node is None:
            node = g.workloads[top.ref] = WorkloadNode(top.ref, f"{ns}/{top.service_account}")
        if w is not top:
            node.members.append(w.ref)
        if w.inactive:
            continue
        for use in w.uses:
            consumer = Consumer(top.ref, use, None if w is top else w.ref, node.service_account)
            secret = g.node(ns, use.secret)
            same = next((i for i, c in enumerate(secret.consumers) if _same_use(c, consumer)), None)
            if same is None:
                secret.consumers.append(consumer)
            elif w is top:
                secret.consumers[same] = consumer  # the workload's own field beats a Pod's copy of it
            if (use.secret, use.via) not in node.secrets:
                node.secrets.append((use.secret, use.via))
        sa_known = (ns, w.service_account) in inv.service_accounts
        if (w is top and not sa_known and w.service_account != "default" and "ServiceAccount" not in inv.incomplete):
            g.findings.append(Finding(
                FINDING_BROKEN_REF, "error", str(w.ref), _sa_path(w),
                f"ServiceAccount {ns}/{w.service_account} not found", None))


def _sa_path(w: Workload) -> str:
    from secretsync.kube.podspec import POD_SPEC_PATHS

    return ".".join(POD_SPEC_PATHS[w.ref.kind]) + ".serviceAccountName"


def _same_use(a: Consumer, b: Consumer) -> bool:
    """The same reference seen on a Deployment and on its ReplicaSets/Pods counts once.

    Paths are not compared: admission (sidecar injection) shifts a Pod's container and
    volume indexes away from its template's.
    """
    return (a.ref == b.ref and a.use.via == b.use.via and a.use.containers == b.use.containers
            and a.use.keys == b.use.keys)


def _add_service_accounts(g: Graph, inv: Inventory) -> None:
    for (ns, name), sa in inv.service_accounts.items():
        ref = ObjRef("ServiceAccount", name, ns)
        for i, secret in enumerate(sa.secrets):
            g.node(ns, secret).consumers.append(Consumer(ref, SecretUse(secret, VIA_SA_SECRET, f"secrets[{i}]",
                                                                        optional=True)))
        for i, secret in enumerate(sa.image_pull_secrets):
            g.node(ns, secret).consumers.append(Consumer(ref, SecretUse(secret, VIA_IMAGE_PULL,
                                                                        f"imagePullSecrets[{i}]")))
    for (ns, name), info in inv.secrets.items():
        sa_name = info.annotations.get(SA_NAME_ANNOTATION)
        if sa_name and info.type in (SA_TOKEN_TYPE, None):
            node = g.node(ns, name)
            ref = ObjRef("ServiceAccount", sa_name, ns)
            if not any(c.ref == ref for c in node.consumers):
                node.consumers.append(Consumer(ref, SecretUse(name, VIA_SA_TOKEN,
                                                              f"metadata.annotations[{SA_NAME_ANNOTATION!r}]")))


# ---------------------------------------------------------------------- ExternalSecrets
def _expand_cluster_external_secrets(inv: Inventory, g: Graph) -> list[ExternalSecret]:
    """ExternalSecrets in the input, plus those a ClusterExternalSecret stamps that are not."""
    out = list(inv.external_secrets)
    have = {(es.namespace, es.name) for es in out}
    for ces in inv.cluster_external_secrets:
        targets = set(ces.spec.namespaces)
        targets |= {ns for ns, labels in inv.namespaces.items() if ces.selects(ns, labels)}
        if ces.status is not None:
            targets |= set(ces.status.provisioned_namespaces)
        for ns in sorted(targets):
            if (ns, ces.external_secret_name) in have:
                continue
            try:
                out.append(parse_external_secret(ces.external_secret_manifest(ns)))
            except InvalidSpec as exc:
                g.problems.extend(Problem(ces.ref, p, m) for p, m in exc.problems)
    return out


def _store_ref(es: ExternalSecret, source: SourceRef | None = None) -> ObjRef:
    """The store one item reads from: its own ``sourceRef.storeRef``, else spec.secretStoreRef
    (as the controller reads it, so each key is attributed to the store that serves it)."""
    ref = source.store_ref if source is not None and source.store_ref is not None else es.spec.secret_store_ref
    assert ref is not None  # parse check: without spec.secretStoreRef every item names its store
    return ObjRef(ref.kind, ref.name, es.namespace if ref.kind == KIND_SECRET_STORE else None)


def _store_fields(es: ExternalSecret) -> dict[ObjRef, str]:
    """Every store an ExternalSecret reads from, with the field that first names it."""
    out: dict[ObjRef, str] = {}
    if es.spec.secret_store_ref is not None:
        out[_store_ref(es)] = "spec.secretStoreRef"
    items = [("data", i, d.source_ref) for i, d in enumerate(es.spec.data)]
    items += [("dataFrom", i, d.source_ref) for i, d in enumerate(es.spec.data_from)]
    for part, i, src in items:
        if src is not None and src.store_ref is not None:
            out.setdefault(_store_ref(es, src), f"spec.{part}[{i}].sourceRef.storeRef")
    return out


def _find_text(find: object) -> str:
    parts = []
    name = getattr(find, "name", None)
    if name is not None:
        parts.append(f"name=~{name.regexp}")
    if getattr(find, "path", None):
        parts.append(f"path={find.path}")  # type: ignore[attr-defined]
    tags = getattr(find, "tags", None) or {}
    parts += [f"tag:{k}={v}" for k, v in sorted(tags.items())]
    return " ".join(parts)


def _sources(es: ExternalSecret, es_ref: ObjRef, providers: Mapping[ObjRef, str | None],
             origin: ObjRef | None) -> list[ProviderSource]:
    """Each item's provider source, attributed to the store that item reads from."""

    def source(item_source: SourceRef | None, **what: Any) -> ProviderSource:
        ref = _store_ref(es, item_source)
        return ProviderSource(es_ref, ref, providers.get(ref), origin=origin, **what)

    out = [source(d.source_ref, remote_key=d.remote_ref.key, property=d.remote_ref.property,
                  secret_keys=(d.secret_key,)) for d in es.spec.data]
    for item in es.spec.data_from:
        if item.extract is not None:
            out.append(source(item.source_ref, remote_key=item.extract.key, property=item.extract.property))
        elif item.find is not None:
            out.append(source(item.source_ref, find=_find_text(item.find)))
    return out


def _add_external_secrets(g: Graph, inv: Inventory) -> None:
    for es in g.external_secrets:
        es_ref = ObjRef(es.kind, es.name, es.namespace)
        origin_name = es.meta.labels.get(CES_LABEL)
        origin = ObjRef("ClusterExternalSecret", origin_name) if origin_name else None
        providers: dict[ObjRef, str | None] = {}
        for store_ref, field_ in _store_fields(es).items():
            store = inv.stores.get(store_ref)
            providers[store_ref] = store.spec.provider.name if store is not None else None
            if store is None:
                if store_ref.kind not in inv.incomplete:
                    g.findings.append(Finding(FINDING_BROKEN_REF, "error", str(es_ref), field_,
                                              f"{store_ref} not found"))
            elif store.cluster_scoped and es.namespace in inv.namespaces and not store.namespace_allowed(
                    es.namespace, inv.namespaces[es.namespace]):
                g.findings.append(Finding(FINDING_BROKEN_REF, "error", str(es_ref), field_,
                                          f"{store_ref} does not serve namespace {es.namespace} (spec.conditions)"))
        sources = _sources(es, es_ref, providers, origin)
        if es.spec.target.creation_policy != "None":
            node = g.node(es.namespace, es.target_name)
            node.external_secrets.append(es_ref)
            node.sources.extend(sources)
        tmpl = es.spec.target.template
        for i, tf in enumerate(tmpl.template_from if tmpl is not None else ()):
            if tf.secret is not None:
                path = f"spec.target.template.templateFrom[{i}].secret"
                g.node(es.namespace, tf.secret.name).consumers.append(Consumer(es_ref, SecretUse(
                    tf.secret.name, VIA_TEMPLATE, path, keys=tuple(it.key for it in tf.secret.items))))


def _add_store_credentials(g: Graph, inv: Inventory) -> None:
    users: dict[ObjRef, set[str]] = {}
    for es in g.external_secrets:
        for ref in _store_fields(es):
            users.setdefault(ref, set()).add(es.namespace)
    for ref, store in inv.stores.items():
        base = f"spec.provider.{store.spec.provider.key}"
        for cred in store.spec.provider.credential_refs():
            sel = cred.selector
            if sel.namespace or store.namespace:
                namespaces = {sel.namespace or store.namespace or ""}
            else:  # a ClusterSecretStore reading from each ExternalSecret's namespace
                namespaces = users.get(ref, set()) if store.kind == KIND_CLUSTER_SECRET_STORE else set()
            for ns in sorted(namespaces):
                g.node(ns, sel.name).consumers.append(Consumer(ref, SecretUse(
                    sel.name, VIA_STORE_CREDENTIAL, f"{base}.{cred.field}", keys=(sel.key,))))


# ---------------------------------------------------------------------- findings
def _broken(use: SecretUse, kind: str) -> tuple[str, str]:
    """(type, severity) of a reference to something missing."""
    if use.optional:
        return FINDING_BROKEN_OPTIONAL_REF, "info"
    if use.via == VIA_IMAGE_PULL and kind == FINDING_BROKEN_REF:
        return kind, "warning"  # the pod runs; only a private image fails to pull
    return kind, "error"


def _findings(g: Graph, inv: Inventory) -> None:
    secrets_complete = "Secret" not in inv.incomplete
    for node in g.secrets.values():
        for c in node.consumers:
            where = str(c.found_in or c.ref)
            if not node.exists and not node.external_secrets:
                if not secrets_complete:
                    continue
                opt = " (optional: the workload starts without it)" if c.use.optional else ""
                g.findings.append(Finding(*_broken(c.use, FINDING_BROKEN_REF), where, c.use.path,
                                          f"Secret {node.key} not found{opt}", node.key))
            elif node.info is not None and node.info.keys is not None and not node.external_secrets:
                for key in c.use.keys:
                    if key not in node.info.keys:
                        opt = " (optional)" if c.use.optional else ""
                        g.findings.append(Finding(*_broken(c.use, FINDING_MISSING_KEY), where, c.use.path,
                                                  f"Secret {node.key} has no key {key!r}{opt}", node.key))
        if not node.exists:
            continue
        managed = node.managed_by
        system = managed in ("kubernetes", "helm-release")
        if not node.consumers and not system:
            g.findings.append(Finding(FINDING_ORPHAN, "info", f"Secret/{node.key}", None,
                                      "no workload, ServiceAccount, Ingress or store in the input uses it", node.key))
        if managed is None:
            g.findings.append(Finding(FINDING_UNMANAGED, "warning", f"Secret/{node.key}", None,
                                      "its values live only in Kubernetes (no ExternalSecret writes it); "
                                      "move them to a secret manager with `secretsync migrate`", node.key))
    g.findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.type, f.object, f.field or ""))

