"""The audit's input: Kubernetes objects (dicts) sorted by kind and cut down to what the audit needs.

Why a separate, lossy inventory rather than keeping the dicts: a Secret dict carries its
values (``data``, ``stringData``, and very often a copy of both in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation). :class:`SecretInfo` is built
from metadata alone, keeps only the few annotations the audit reads, and never looks at
``data`` except for its key *names* (when the source had them: manifests do, a metadata-only
cluster listing does not). Everything else is reduced to references (which Secret, from which
field) as it is added, so no raw object outlives :meth:`Inventory.add`.

Malformed objects become :class:`Problem` entries naming the object and field; the object's
well-formed parts still count, and the other objects are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from secretsync.api.models import (
    GROUP,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_SECRET_STORE,
    ClusterExternalSecret,
    ExternalSecret,
    InvalidSpec,
    LabelSelector,
    LabelSelectorRequirement,
    SecretStore,
    parse_cluster_external_secret,
    parse_external_secret,
    parse_secret_store,
)
from secretsync.kube.kinds import RBAC_GROUP
from secretsync.kube.labels import OWNER_ANNOTATION
from secretsync.kube.podspec import POD_SPEC_PATHS, VIA_INGRESS_TLS, VIA_STORAGE, SecretUse, pod_spec_uses

#: The only annotations kept from a Secret: everything else may hold a copy of its data.
_KEPT_SECRET_ANNOTATIONS: Final = (
    "kubernetes.io/service-account.name",
    OWNER_ANNOTATION,
    "cert-manager.io/certificate-name",
)


@dataclass(frozen=True, slots=True)
class ObjRef:
    """``Kind/namespace/name`` of an object (no namespace for cluster-scoped kinds)."""

    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out


@dataclass(frozen=True, slots=True)
class Problem:
    """A malformed object or field: what the audit could not read, and why (never a value)."""

    object: str
    field: str
    message: str
    #: file (and document index) the object came from, for manifests.
    source: str | None = None
    #: ``file:line`` of the document (manifests), for editors and CI annotations.
    location: str | None = None

    def __str__(self) -> str:
        where = f"{self.location or self.source}: " if (self.location or self.source) else ""
        return f"{where}{self.object}: {self.field + ': ' if self.field else ''}{self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {"object": self.object, "field": self.field, "message": self.message, "source": self.source,
                "location": self.location}


@dataclass(frozen=True, slots=True)
class SecretInfo:
    """A Secret's identity, never its values. ``keys`` are data key names, None when unknown."""

    namespace: str
    name: str
    type: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    #: ownerReferences whose ``controller`` is true (who generates this Secret).
    controller: ObjRef | None = None
    keys: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Workload:
    """Anything that runs pods (or a Pod itself) and the Secrets its pod spec references."""

    ref: ObjRef
    uid: str | None
    #: The controller ownerReference (same namespace): kind, name and uid when given.
    owner: ObjRef | None
    owner_uid: str | None
    service_account: str
    automount_token: bool | None
    uses: tuple[SecretUse, ...]
    #: An old ReplicaSet revision (0 replicas, owned): its template no longer runs.
    inactive: bool = False


@dataclass(frozen=True, slots=True)
class ServiceAccountInfo:
    namespace: str
    name: str
    secrets: tuple[str, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    automount_token: bool | None = None


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One RBAC rule; ``index`` is its position in the role (``rules[index]``)."""

    index: int
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    def text(self) -> str:
        parts = [f"verbs={','.join(self.verbs)}"]
        if self.non_resource_urls:
            parts.append(f"nonResourceURLs={','.join(self.non_resource_urls)}")
        else:
            parts.append("apiGroups=" + ",".join(g or '""' for g in self.api_groups))
            parts.append(f"resources={','.join(self.resources)}")
        if self.resource_names:
            parts.append(f"resourceNames={','.join(self.resource_names)}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """A Role (namespace set) or ClusterRole, with its aggregation selectors if any."""

    ref: ObjRef
    rules: tuple[PolicyRule, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    aggregation: tuple[LabelSelector, ...] | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        return out


@dataclass(frozen=True, slots=True)
class BindingInfo:
    """A RoleBinding (namespace set) or ClusterRoleBinding."""

    ref: ObjRef
    role: ObjRef
    subjects: tuple[Subject, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference from something other than a pod spec: Ingress TLS, PersistentVolume, StorageClass."""

    consumer: ObjRef
    namespace: str
    use: SecretUse


@dataclass
class Inventory:
    """Everything the audit knows, by kind. Build it with :meth:`add` (or :func:`build_inventory`)."""

    default_namespace: str = "default"
    #: False when Secrets come from a metadata-only listing (no key names to check refs against).
    secret_keys_known: bool = True
    secrets: dict[tuple[str, str], SecretInfo] = field(default_factory=dict)
    workloads: list[Workload] = field(default_factory=list)
    service_accounts: dict[tuple[str, str], ServiceAccountInfo] = field(default_factory=dict)
    roles: dict[ObjRef, RoleInfo] = field(default_factory=dict)
    bindings: list[BindingInfo] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    external_secrets: list[ExternalSecret] = field(default_factory=list)
    stores: dict[ObjRef, SecretStore] = field(default_factory=dict)
    cluster_external_secrets: list[ClusterExternalSecret] = field(default_factory=list)
    namespaces: dict[str, Mapping[str, str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: Secrets whose manifest had no namespace (``kubectl apply -n`` decides): a PersistentVolume
    #: or StorageClass naming another namespace may mean them.
    implicit_namespace: set[tuple[str, str]] = field(default_factory=set)
    #: Kinds the source could not list (live mode: 403/404), so answers about them are partial.
    incomplete: set[str] = field(default_factory=set)
    #: ``Kind/ns/name`` -> ``file:line`` where the object starts (manifests only).
    sources: dict[str, str] = field(default_factory=dict)
    #: (``Kind/ns/name``, field path) -> ``file:line`` of that field (manifests only).
    field_lines: dict[tuple[str, str], str] = field(default_factory=dict)

    def location(self, obj: str, field_path: str | None) -> str | None:
        """Where a finding's object (and field, when known) stands in the tree."""
        return self.field_lines.get((obj, field_path or "")) or self.sources.get(obj)

    def add(self, obj: Any, source: str | None = None) -> None:
        """Add one object (a ``List`` adds its items). Unknown kinds are ignored."""
        if not isinstance(obj, Mapping):
            self.problems.append(Problem("<document>", "", "not a mapping (object)", source))
            return
        kind = obj.get("kind")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
            # ``kubectl get -o yaml`` (kind List) or a raw API list (PodList: items carry no kind).
            item_kind = kind.removesuffix("List")
            for item in obj["items"]:
                if isinstance(item, Mapping) and item_kind and "kind" not in item:
                    item = {**item, "kind": item_kind, "apiVersion": obj.get("apiVersion")}
                self.add(item, source)
            return
        if not isinstance(kind, str):
            return
        group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        try:
            self._add(kind, group, obj, source)
        except (TypeError, AttributeError, ValueError) as exc:
            # Shapes no specific check foresaw: name the object, keep going.
            self.problems.append(Problem(_ref_of(kind, obj, self.default_namespace), "",
                                         f"malformed object ({type(exc).__name__})", source))

    def _add(self, kind: str, group: str, obj: Mapping[str, Any], source: str | None) -> None:
        md = obj.get("metadata")
        if not isinstance(md, Mapping):
            md = {}
        if group == GROUP:
            self._add_custom(kind, obj, source)
            return
        if group and group not in ("apps", "batch", "extensions", RBAC_GROUP, "networking.k8s.io", "storage.k8s.io"):
            return
        if "$patch" in obj:
            return  # a kustomize patch directive, not an object
        name = md.get("name")
        if not isinstance(name, str) or not name:
            if kind in POD_SPEC_PATHS or kind in _CORE_KINDS:
                self.problems.append(Problem(f"{kind}/<unnamed>", "metadata.name", "required", source))
            return
        ns = md.get("namespace") if isinstance(md.get("namespace"), str) and md.get("namespace") else None
        namespaced_ns = ns or self.default_namespace
        if source is not None:
            self.sources[str(ObjRef(kind, name, None if kind in _CLUSTER_KINDS else namespaced_ns))] = source
        if kind == "Secret" and group == "":
            self.secrets[(namespaced_ns, name)] = secret_info(obj, namespaced_ns,
                                                              keys_known=self.secret_keys_known)
            if ns is None:
                self.implicit_namespace.add((namespaced_ns, name))
        elif kind in POD_SPEC_PATHS and group in _WORKLOAD_GROUPS[kind]:
            self._add_workload(kind, name, namespaced_ns, md, obj, source)
        elif kind == "ServiceAccount" and group == "":
            self._add_service_account(name, namespaced_ns, obj, source)
        elif kind == "Namespace" and group == "":
            labels = md.get("labels")
            self.namespaces[name] = _str_map(labels)
        elif group == RBAC_GROUP and kind in ("Role", "ClusterRole"):
            ref = ObjRef(kind, name, namespaced_ns if kind == "Role" else None)
            self.roles[ref] = self._role(ref, md, obj, source)
        elif group == RBAC_GROUP and kind in ("RoleBinding", "ClusterRoleBinding"):
            binding = self._binding(ObjRef(kind, name, namespaced_ns if kind == "RoleBinding" else None), obj, source)
            if binding is not None:
                self.bindings.append(binding)
        elif kind == "Ingress" and group in ("networking.k8s.io", "extensions"):
            self._add_ingress(ObjRef(kind, name, namespaced_ns), obj, source)
        elif kind == "PersistentVolume" and group == "":
            spec = obj.get("spec")
            if isinstance(spec, Mapping):
                self.references.extend(persistent_volume_refs(ObjRef(kind, name), spec, self.default_namespace))
        elif kind == "StorageClass" and group == "storage.k8s.io":
            self.references.extend(storage_class_refs(ObjRef(kind, name), obj.get("parameters"),
                                                      self.default_namespace))

    # ------------------------------------------------------------------ secretsync kinds
    def _add_custom(self, kind: str, obj: Mapping[str, Any], source: str | None) -> None:
        md = obj.get("metadata")
        if source is not None and isinstance(md, Mapping) and isinstance(md.get("name"), str):
            ns = md.get("namespace") if isinstance(md.get("namespace"), str) else None
            cluster = kind in (KIND_CLUSTER_SECRET_STORE, KIND_CLUSTER_EXTERNAL_SECRET)
            self.sources[str(ObjRef(kind, md["name"], None if cluster else ns or self.default_namespace))] = source
        try:
            if kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
                store = parse_secret_store(obj, default_namespace=self.default_namespace)
                self.stores[ObjRef(store.kind, store.name, store.namespace)] = store
            elif kind == KIND_EXTERNAL_SECRET:
                self.external_secrets.append(parse_external_secret(obj, default_namespace=self.default_namespace))
            elif kind == KIND_CLUSTER_EXTERNAL_SECRET:
                self.cluster_external_secrets.append(parse_cluster_external_secret(obj))
        except InvalidSpec as exc:
            for path, message in exc.problems:
                self.problems.append(Problem(exc.obj_ref, path, message, source))

    # ------------------------------------------------------------------ workloads
    def _add_workload(self, kind: str, name: str, ns: str, md: Mapping[str, Any], obj: Mapping[str, Any],
                      source: str | None) -> None:
        ref = ObjRef(kind, name, ns)
        spec: Any = obj
        path: list[str] = []
        for part in POD_SPEC_PATHS[kind]:
            path.append(part)
            spec = spec.get(part) if isinstance(spec, Mapping) else None
            if not isinstance(spec, Mapping):
                if spec is not None or kind != "PodTemplate":
                    self.problems.append(Problem(str(ref), ".".join(path), "required (an object)", source))
                return
        problems: list[tuple[str, str]] = []
        uses = pod_spec_uses(spec, ".".join(path), problems)
        self.problems.extend(Problem(str(ref), p, m, source) for p, m in problems)
        owner, owner_uid = _controller_owner(md, ns)
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        automount = spec.get("automountServiceAccountToken")
        replicas = (obj.get("spec") or {}).get("replicas") if isinstance(obj.get("spec"), Mapping) else None
        self.workloads.append(Workload(
            ref=ref, uid=md.get("uid") if isinstance(md.get("uid"), str) else None, owner=owner,
            owner_uid=owner_uid, service_account=str(sa),
            automount_token=automount if isinstance(automount, bool) else None, uses=tuple(uses),
            inactive=kind == "ReplicaSet" and owner is not None and replicas == 0,
        ))

    def _add_service_account(self, name: str, ns: str, obj: Mapping[str, Any], source: str | None) -> None:
        ref = f"ServiceAccount/{ns}/{name}"
        secrets = _names(obj.get("secrets"), "secrets", ref, source, self.problems)
        pulls = _names(obj.get("imagePullSecrets"), "imagePullSecrets", ref, source, self.problems)
        automount = obj.get("automountServiceAccountToken")
        self.service_accounts[(ns, name)] = ServiceAccountInfo(
            ns, name, secrets, pulls, automount if isinstance(automount, bool) else None)

    def _add_ingress(self, ref: ObjRef, obj: Mapping[str, Any], source: str | None) -> None:
        spec = obj.get("spec")
        tls = spec.get("tls") if isinstance(spec, Mapping) else None
        if tls is None:
            return
        if not isinstance(tls, list):
            self.problems.append(Problem(str(ref), "spec.tls", "must be a list", source))
            return
        for i, item in enumerate(tls):
            name = item.get("secretName") if isinstance(item, Mapping) else None
            if isinstance(name, str) and name:
                self.references.append(Reference(ref, ref.namespace or self.default_namespace,
                                                  SecretUse(name, VIA_INGRESS_TLS, f"spec.tls[{i}].secretName")))

    # ------------------------------------------------------------------ RBAC
    def _role(self, ref: ObjRef, md: Mapping[str, Any], obj: Mapping[str, Any], source: str | None) -> RoleInfo:
        rules: list[PolicyRule] = []
        raw_rules = obj.get("rules")
        if raw_rules is not None and not isinstance(raw_rules, list):
            self.problems.append(Problem(str(ref), "rules", "must be a list", source))
            raw_rules = []
        for i, raw in enumerate(raw_rules or []):
            rule = _rule(i, raw, f"rules[{i}]", str(ref), source, self.problems)
            if rule is not None:
                rules.append(rule)
        aggregation: tuple[LabelSelector, ...] | None = None
        agg = obj.get("aggregationRule")
        if ref.kind == "ClusterRole" and isinstance(agg, Mapping):
            selectors = []
            for i, raw in enumerate(agg.get("clusterRoleSelectors") or []):
                sel = _selector(raw, f"aggregationRule.clusterRoleSelectors[{i}]", str(ref), source, self.problems)
                if sel is not None:
                    selectors.append(sel)
            aggregation = tuple(selectors)
        return RoleInfo(ref, tuple(rules), _str_map(md.get("labels")), aggregation)

    def _binding(self, ref: ObjRef, obj: Mapping[str, Any], source: str | None) -> BindingInfo | None:
        role_ref = obj.get("roleRef")
        kind = role_ref.get("kind") if isinstance(role_ref, Mapping) else None
        rname = role_ref.get("name") if isinstance(role_ref, Mapping) else None
        allowed = ("Role", "ClusterRole") if ref.kind == "RoleBinding" else ("ClusterRole",)
        if kind not in allowed or not isinstance(rname, str) or not rname:
            self.problems.append(Problem(str(ref), "roleRef", f"needs kind {' or '.join(allowed)} and a name", source))
            return None
        role = ObjRef(str(kind), rname, ref.namespace if kind == "Role" else None)
        subjects: list[Subject] = []
        raw_subjects = obj.get("subjects") or []
        if not isinstance(raw_subjects, list):
            self.problems.append(Problem(str(ref), "subjects", "must be a list", source))
            raw_subjects = []
        for i, raw in enumerate(raw_subjects):
            path = f"subjects[{i}]"
            skind = raw.get("kind") if isinstance(raw, Mapping) else None
            sname = raw.get("name") if isinstance(raw, Mapping) else None
            if skind not in ("User", "Group", "ServiceAccount") or not isinstance(sname, str) or not sname:
                self.problems.append(Problem(str(ref), path, "needs kind User, Group or ServiceAccount and a name",
                                             source))
                continue
            sns = raw.get("namespace") if isinstance(raw.get("namespace"), str) else None
            if skind == "ServiceAccount":
                # RBAC: a ServiceAccount subject of a RoleBinding defaults to the binding's namespace.
                sns = sns or ref.namespace
                if not sns:
                    self.problems.append(Problem(str(ref), f"{path}.namespace", "required for a ServiceAccount",
                                                 source))
                    continue
            else:
                sns = None
            subjects.append(Subject(skind, sname, sns))
        return BindingInfo(ref, role, tuple(subjects))


_CLUSTER_KINDS: Final = frozenset({"ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                                    "Namespace"})
_CORE_KINDS: Final = frozenset({"Secret", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
_WORKLOAD_GROUPS: Final = {
    "Pod": ("",), "PodTemplate": ("",), "ReplicationController": ("",),
    "ReplicaSet": ("apps", "extensions"), "Deployment": ("apps", "extensions"),
    "StatefulSet": ("apps",), "DaemonSet": ("apps", "extensions"), "Job": ("batch",), "CronJob": ("batch",),
}


def build_inventory(objects: Iterable[Any], *, default_namespace: str = "default") -> Inventory:
    """An :class:`Inventory` of ``objects`` (dicts as the API or a manifest spells them)."""
    inv = Inventory(default_namespace=default_namespace)
    for obj in objects:
        inv.add(obj)
    return inv


def secret_info(obj: Mapping[str, Any], namespace: str, *, keys_known: bool = True) -> SecretInfo:
    """A Secret's metadata, minus every annotation that could hold a copy of its data.

    ``data``/``stringData`` are read for their key names only (what a pod's ``secretKeyRef``
    can be checked against); a metadata-only listing has neither (``keys_known=False``), so
    ``keys`` is None there.
    """
    md = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(md, Mapping)
    ann = md.get("annotations") if isinstance(md.get("annotations"), Mapping) else {}
    assert isinstance(ann, Mapping)
    kept = {k: str(ann[k]) for k in _KEPT_SECRET_ANNOTATIONS if k in ann}
    keys: set[str] | None = None
    for part in ("data", "stringData"):
        block = obj.get(part)
        if isinstance(block, Mapping):
            keys = (keys or set()) | {str(k) for k in block}
    if keys is None and keys_known:
        keys = set()  # a whole Secret object without data: it has no keys
    owner, _uid = _controller_owner(md, namespace)
    stype = obj.get("type")
    return SecretInfo(
        namespace=namespace, name=str(md.get("name")), type=stype if isinstance(stype, str) else None,
        labels=_str_map(md.get("labels")), annotations=kept, controller=owner,
        keys=tuple(sorted(keys)) if keys is not None else None,
    )


_PV_REFS: Final = ("secretRef", "nodePublishSecretRef", "controllerPublishSecretRef", "nodeStageSecretRef",
                   "controllerExpandSecretRef")


def persistent_volume_refs(ref: ObjRef, spec: Mapping[str, Any], default_ns: str) -> list[Reference]:
    """Secrets a PersistentVolume's plugin block names (``secretRef``/``secretName``, CSI secret refs)."""
    out = []
    for plugin, block in spec.items():
        if not isinstance(block, Mapping):
            continue
        name = block.get("secretName")
        if isinstance(name, str) and name:
            ns = block.get("secretNamespace")
            out.append(Reference(ref, ns if isinstance(ns, str) and ns else default_ns,
                                 SecretUse(name, VIA_STORAGE, f"spec.{plugin}.secretName")))
        for field_name in _PV_REFS:
            sel = block.get(field_name)
            if isinstance(sel, Mapping) and isinstance(sel.get("name"), str) and sel["name"]:
                ns = sel.get("namespace")
                out.append(Reference(ref, ns if isinstance(ns, str) and ns else default_ns,
                                     SecretUse(sel["name"], VIA_STORAGE, f"spec.{plugin}.{field_name}")))
    return out


def storage_class_refs(ref: ObjRef, params: Any, default_ns: str) -> list[Reference]:
    """Secrets a StorageClass's parameters name: ``*SecretName``/``*secret-name`` (with the matching
    ``*Namespace`` parameter) and ``secretRef``; CSI templates (``${pvc.name}``) are skipped."""
    if not isinstance(params, Mapping):
        return []
    out = []
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str) or not value or "${" in value:
            continue
        low = key.lower()
        if low.endswith("secretname") or low.endswith("secret-name"):
            ns_key = key[:-4] + ("Namespace" if key.endswith("Name") else "namespace")
        elif low == "secretref":
            ns_key = ""
        else:
            continue
        ns = params.get(ns_key)
        ns = ns if isinstance(ns, str) and ns and "${" not in ns else default_ns
        out.append(Reference(ref, ns, SecretUse(value, VIA_STORAGE, f"parameters[{key!r}]")))
    return out


def _controller_owner(md: Mapping[str, Any], namespace: str) -> tuple[ObjRef | None, str | None]:
    refs = md.get("ownerReferences")
    if not isinstance(refs, list):
        return None, None
    for ref in refs:
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            kind, name = ref.get("kind"), ref.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                uid = ref.get("uid")
                return ObjRef(kind, name, namespace), uid if isinstance(uid, str) else None
    return None, None


def _ref_of(kind: str, obj: Mapping[str, Any], default_ns: str) -> str:
    md = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(md, Mapping)
    name = md.get("name") if isinstance(md.get("name"), str) else "<unnamed>"
    ns = md.get("namespace") if isinstance(md.get("namespace"), str) else None
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _names(raw: Any, path: str, ref: str, source: str | None, problems: list[Problem]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(Problem(ref, path, "must be a list", source))
        return ()
    out = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            problems.append(Problem(ref, f"{path}[{i}].name", "required", source))
            continue
        out.append(name)
    return tuple(out)


def _strings(raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        return None
    return tuple(raw)


def _rule(i: int, raw: Any, path: str, ref: str, source: str | None, problems: list[Problem]) -> PolicyRule | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(ref, path, "must be an object", source))
        return None
    values: dict[str, tuple[str, ...]] = {}
    for wire in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
        got = _strings(raw.get(wire))
        if got is None:
            problems.append(Problem(ref, f"{path}.{wire}", "must be a list of strings", source))
            return None
        values[wire] = got
    if not values["verbs"]:
        problems.append(Problem(ref, f"{path}.verbs", "required", source))
        return None
    return PolicyRule(i, values["verbs"], values["apiGroups"], values["resources"], values["resourceNames"],
                      values["nonResourceURLs"])


def _selector(raw: Any, path: str, ref: str, source: str | None, problems: list[Problem]) -> LabelSelector | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(ref, path, "must be a label selector", source))
        return None
    labels = raw.get("matchLabels") or {}
    exprs = raw.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(exprs, list):
        problems.append(Problem(ref, path, "matchLabels must be a map, matchExpressions a list", source))
        return None
    reqs = []
    for j, e in enumerate(exprs):
        op = e.get("operator") if isinstance(e, Mapping) else None
        if op not in ("In", "NotIn", "Exists", "DoesNotExist") or not isinstance(e.get("key"), str):
            problems.append(Problem(ref, f"{path}.matchExpressions[{j}]", "needs a key and operator "
                                    "In, NotIn, Exists or DoesNotExist", source))
            return None
        reqs.append(LabelSelectorRequirement(e["key"], op, tuple(str(v) for v in e.get("values") or ())))
    return LabelSelector(_str_map(labels), tuple(reqs))
