"""ClusterExternalSecret: stamp one ExternalSecret into every selected namespace, and clean up.

The value itself is fetched once per cycle however many namespaces get the ExternalSecret:
they all read the same store, so they share that store's cache (see providercache.py).

Ownership: each ExternalSecret we create carries the ``secretsync.io/cluster-external-secret``
label and an ownerReference to the ClusterExternalSecret. An ExternalSecret of the same
name that lacks the label is somebody else's: it is reported in ``failedNamespaces``, never
overwritten. With several shards, each writes only its own namespaces into the status lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from secretsync.api.models import (
    API_VERSION,
    KIND_CLUSTER_EXTERNAL_SECRET,
    ClusterExternalSecret,
    ClusterExternalSecretStatus,
    Condition,
    ExternalSecret,
    InvalidSpec,
    NamespaceFailure,
    parse_cluster_external_secret,
    set_condition,
)
from secretsync.kube.client import KubeApi, KubeError, Resource
from secretsync.kube.labels import CES_LABEL

from .events import EventRecorder, ObjectRef
from .metrics import ObjectCondition
from .reconciler import Outcome, now_rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExistingES:
    """What the reconciler needs of an ExternalSecret that already exists."""

    es: ExternalSecret | None
    ces: str | None
    uid: str | None


class ClusterExternalSecretReconciler:
    def __init__(self, api: KubeApi, events: EventRecorder, *, es_resource: Resource, ces_resource: Resource,
                 namespaces: Callable[[], Iterable[tuple[str, Mapping[str, str], bool]]],
                 existing: Callable[[str, str], ExistingES | None],
                 owned_by: Callable[[str], Iterable[tuple[str, str]]],
                 floor: float = 1.0) -> None:
        self.api = api
        self.events = events
        self.es_resource = es_resource
        self.ces_resource = ces_resource
        self.namespaces = namespaces
        self.existing = existing
        self.owned_by = owned_by
        self.floor = floor
        self._written: dict[str, ClusterExternalSecretStatus] = {}

    def reconcile(self, ces: ClusterExternalSecret) -> Outcome:
        name = ces.external_secret_name
        in_scope: set[str] = set()
        wanted: list[str] = []
        for ns, labels, terminating in self.namespaces():
            in_scope.add(ns)
            if not terminating and ces.selects(ns, labels):
                wanted.append(ns)
        provisioned: list[str] = []
        failed: list[NamespaceFailure] = []
        for ns in sorted(wanted):
            try:
                problem = self._ensure(ces, ns, name)
            except KubeError as exc:
                problem = f"{exc.status} {exc.reason}: {exc.message}"
            if problem is None:
                provisioned.append(ns)
            else:
                failed.append(NamespaceFailure(ns, problem))
        for ns, es_name in list(self.owned_by(ces.name)):
            if ns in in_scope and (ns not in wanted or es_name != name):
                # Namespace no longer selected, or externalSecretName changed: the old one goes.
                self._remove(ns, es_name)
        self._write_status(ces, in_scope, provisioned, failed)
        if failed:
            return Outcome(retry=True)
        return Outcome(requeue_after=max(self.floor, ces.spec.refresh_time))

    def _manifest(self, ces: ClusterExternalSecret, ns: str) -> dict[str, Any]:
        manifest = ces.external_secret_manifest(ns)
        manifest["metadata"]["ownerReferences"] = [{
            "apiVersion": API_VERSION, "kind": KIND_CLUSTER_EXTERNAL_SECRET, "name": ces.name,
            "uid": ces.meta.uid or "", "controller": True}]
        return manifest

    def _ensure(self, ces: ClusterExternalSecret, ns: str, name: str) -> str | None:
        """Create or update the ExternalSecret in ``ns``; a problem text when we must not."""
        current = self.existing(ns, name)
        manifest = self._manifest(ces, ns)
        if current is None:
            try:
                self.api.create(self.es_resource, manifest, ns)
                return None
            except KubeError as exc:
                if not exc.conflict:
                    raise
                return self._update(ces, ns, name, manifest)
        if current.ces != ces.name:
            return f"ExternalSecret {ns}/{name} exists and is not managed by this ClusterExternalSecret"
        if current.es is not None and current.es.spec == ces.spec.external_secret_spec and all(
                current.es.meta.labels.get(k) == v for k, v in manifest["metadata"]["labels"].items()):
            return None
        return self._update(ces, ns, name, manifest)

    def _update(self, ces: ClusterExternalSecret, ns: str, name: str, manifest: dict[str, Any]) -> str | None:
        obj = self.api.get(self.es_resource, name, ns)
        md = obj.setdefault("metadata", {})
        labels = md.setdefault("labels", {}) or {}
        if labels.get(CES_LABEL) != ces.name:
            return f"ExternalSecret {ns}/{name} exists and is not managed by this ClusterExternalSecret"
        labels.update(manifest["metadata"]["labels"])
        md["labels"] = labels
        if manifest["metadata"].get("annotations"):
            md["annotations"] = {**(md.get("annotations") or {}), **manifest["metadata"]["annotations"]}
        md["ownerReferences"] = manifest["metadata"]["ownerReferences"]
        md.pop("managedFields", None)
        obj["spec"] = manifest["spec"]
        obj.pop("status", None)
        self.api.replace(self.es_resource, name, obj, ns)
        return None

    def _remove(self, ns: str, name: str) -> None:
        current = self.existing(ns, name)
        try:
            self.api.delete(self.es_resource, name, ns, uid=current.uid if current else None)
            log.info("removed ExternalSecret %s/%s: no longer wanted by its ClusterExternalSecret", ns, name)
        except KubeError as exc:
            if not exc.not_found:
                log.warning("could not remove ExternalSecret %s/%s: %s", ns, name, exc)

    def _write_status(self, ces: ClusterExternalSecret, in_scope: set[str], provisioned: list[str],
                      failed: list[NamespaceFailure]) -> None:
        """Our namespaces' entries, merged into what is on the server *now*.

        Under sharding several controllers write this one status, each about its own
        namespaces: the status is read fresh and replaced with its resourceVersion (a
        conflict re-reads and merges again), so no shard drops the others' namespaces, as a
        merge patch built from a stale copy would.
        """
        for _ in range(5):
            try:
                obj = self.api.get(self.ces_resource, ces.name)
            except KubeError as exc:
                if not exc.not_found:
                    log.warning("ClusterExternalSecret %s: status read failed: %s", ces.name, exc)
                return
            try:
                current = parse_cluster_external_secret(obj).status
            except InvalidSpec:
                current = None
            if not self._write_status_once(ces, obj, current or ClusterExternalSecretStatus(), in_scope,
                                           provisioned, failed):
                return

    def _write_status_once(self, ces: ClusterExternalSecret, obj: dict[str, Any], old: ClusterExternalSecretStatus,
                           in_scope: set[str], provisioned: list[str], failed: list[NamespaceFailure]) -> bool:
        """One read-merge-replace; True when it lost a race and must be redone."""
        # Keep what other shards wrote about namespaces outside our scope.
        prov = sorted({n for n in old.provisioned_namespaces if n not in in_scope} | set(provisioned))
        fail = sorted([f for f in old.failed_namespaces if f.namespace not in in_scope] + failed,
                      key=lambda f: f.namespace)
        if fail:
            cond = Condition("Ready", "False", "PartiallyReady" if prov else "NotReady",
                             f"{len(fail)} namespace(s) failed: " + ", ".join(f.namespace for f in fail[:10]),
                             now_rfc3339(), ces.meta.generation)
        else:
            cond = Condition("Ready", "True", "Provisioned", f"ExternalSecret {ces.external_secret_name!r} in "
                             f"{len(prov)} namespace(s)", now_rfc3339(), ces.meta.generation)
        new = ClusterExternalSecretStatus(set_condition(old.conditions, cond), ces.external_secret_name,
                                          tuple(prov), tuple(fail))
        if _strip(new) == _strip(old):
            self._written[ces.name] = new
            return False
        if fail:
            self.events.emit(ObjectRef(API_VERSION, KIND_CLUSTER_EXTERNAL_SECRET, None, ces.name, ces.meta.uid),
                             "Warning", "NamespaceFailed", str(cond.message))
        obj["status"] = new.to_dict()
        (obj.get("metadata") or {}).pop("managedFields", None)
        try:
            self.api.replace(self.ces_resource, ces.name, obj, subresource="status")
            self._written[ces.name] = new
        except KubeError as exc:
            if exc.conflict:
                return True
            if not exc.not_found:
                log.warning("ClusterExternalSecret %s: status update failed: %s", ces.name, exc)
        return False

    def forget(self, name: str) -> None:
        self._written.pop(name, None)

    def forget_all(self) -> None:
        self._written.clear()

    def object_conditions(self) -> list[ObjectCondition]:
        """Every condition of every ClusterExternalSecret as last written (for ESO's gauge)."""
        return [ObjectCondition(KIND_CLUSTER_EXTERNAL_SECRET, "", name, c.type, c.status)
                for name, st in list(self._written.items()) for c in st.conditions]


def _strip(s: ClusterExternalSecretStatus) -> Any:
    return ([(c.type, c.status, c.reason, c.message) for c in s.conditions], s.external_secret_name,
            s.provisioned_namespaces, s.failed_namespaces)
