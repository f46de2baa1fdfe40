"""Live input: the objects of a cluster, listed read-only through the one client.

Secrets are listed as ``PartialObjectMetadataList`` (``Accept: application/json;as=
PartialObjectMetadataList;g=meta.k8s.io;v=v1``): the API server sends metadata only, so no
Secret value ever reaches this process. One caveat the server cannot help with: a Secret
created with ``kubectl apply`` carries a copy of itself in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation; that annotation is dropped
as the item is read (:func:`.inventory.secret_info`) and never stored or printed. A server
that cannot serve metadata-only lists gets no Secret request at all (a full list would
transfer every value).

Every other kind is listed page by page as raw JSON (no model objects). A kind the caller may
not list (403) is reported and marked incomplete, and the rest goes on; a kind the server
does not serve (404: our CRDs not installed) is skipped. An unreachable server raises
:class:`~secretsync.core.errors.Unavailable` (exit code 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from secretsync.core.gcpause import paused_gc
from secretsync.kube import crds, kinds
from secretsync.kube.client import JSON, METADATA_ONLY, KubeApi, KubeError, as_job_error

from .inventory import Inventory, Problem

SECRET_METADATA_ACCEPT: Final = METADATA_ONLY


@dataclass(frozen=True, slots=True)
class _Listed:
    res: kinds.Resource
    optional: bool = False  # 404: not installed, nothing to say
    rbac: bool = False  # only needed to answer "who could read"


RESOURCES: Final = (
    _Listed(kinds.SECRETS),
    _Listed(kinds.PODS),
    _Listed(kinds.REPLICATION_CONTROLLERS),
    _Listed(kinds.SERVICE_ACCOUNTS),
    _Listed(kinds.DEPLOYMENTS),
    _Listed(kinds.STATEFULSETS),
    _Listed(kinds.DAEMONSETS),
    _Listed(kinds.REPLICASETS),
    _Listed(kinds.JOBS),
    _Listed(kinds.CRONJOBS),
    _Listed(kinds.INGRESSES, optional=True),
    *(_Listed(r, optional=True) for r in (crds.SECRET_STORES, crds.CLUSTER_SECRET_STORES, crds.EXTERNAL_SECRETS,
                                          crds.CLUSTER_EXTERNAL_SECRETS)),
    _Listed(kinds.ROLES, rbac=True),
    _Listed(kinds.ROLE_BINDINGS, rbac=True),
    _Listed(kinds.CLUSTER_ROLES, rbac=True),
    _Listed(kinds.CLUSTER_ROLE_BINDINGS, rbac=True),
)


def open_api_client(kubeconfig: str | None, context: str | None) -> tuple[KubeApi, str]:
    """A client for the kubeconfig context (in-cluster config as a fallback) and its namespace."""
    return KubeApi.for_cli(kubeconfig, context, operation="audit")


def _stop_unless_answered(api: KubeApi, exc: KubeError) -> None:
    """An unreachable server or rejected credentials end the audit; an answer (403, 404) does not."""
    out = as_job_error(exc, operation="audit", host=api.host)
    if out is not exc:
        raise out from exc


def load_cluster(api: KubeApi, inv: Inventory, namespace: str | None, *, rbac: bool = False) -> int:
    """List the audit's kinds in ``namespace`` (None: all) into ``inv``; returns the objects read.

    ``rbac``: also list Roles, ClusterRoles and their bindings (for "who could read").
    """
    with paused_gc():  # tens of thousands of small objects, no cycles: see core.gcpause
        return _load_cluster(api, inv, namespace, rbac=rbac)


def _load_cluster(api: KubeApi, inv: Inventory, namespace: str | None, *, rbac: bool) -> int:
    inv.secret_keys_known = False
    count = 0
    where = f"namespace {namespace}" if namespace else "all namespaces"
    _load_namespaces(api, inv, namespace)
    for listed in RESOURCES:
        res = listed.res
        if listed.rbac and not rbac:
            continue
        ns = namespace if res.namespaced else None
        secrets = res is kinds.SECRETS
        try:
            for item in api.list_pages(res, ns, accept=METADATA_ONLY if secrets else JSON):
                if secrets:
                    # PartialObjectMetadata items: metadata only, by construction.
                    item = {"apiVersion": "v1", "kind": "Secret", "metadata": item.get("metadata") or {}}
                inv.add(item, None)
                count += 1
        except KubeError as exc:
            _stop_unless_answered(api, exc)
            if exc.not_found and listed.optional:
                continue
            inv.incomplete.add(res.kind)
            why = {403: "forbidden", 404: "not served", 406: "the server cannot list metadata only"}.get(
                exc.status, f"HTTP {exc.status}")
            scope = where if res.namespaced else "the cluster"
            inv.problems.append(Problem(f"{res.kind} ({scope})", "", f"cannot list: {why}; answers that "
                                        f"depend on {res.kind} objects are incomplete"))
    return count


def _load_namespaces(api: KubeApi, inv: Inventory, namespace: str | None) -> None:
    """Namespace labels (ClusterSecretStore conditions, ClusterExternalSecret selectors); best effort."""
    try:
        if namespace:
            doc = api.get(kinds.NAMESPACES, namespace)
            doc.setdefault("kind", "Namespace")
            doc.setdefault("apiVersion", "v1")
            inv.add(doc)
        else:
            for item in api.list_pages(kinds.NAMESPACES):
                inv.add(item)
    except KubeError as exc:
        _stop_unless_answered(api, exc)
        if exc.not_found and namespace:
            inv.problems.append(Problem(f"Namespace/{namespace}", "", "not found"))
