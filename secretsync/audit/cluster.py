"""Live input: the objects of a cluster, listed read-only with the official client.

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

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from secretsync.api.models import API_VERSION, PLURALS
from secretsync.core.errors import AuthenticationFailed, Unavailable
from secretsync.core.gcpause import paused_gc
from secretsync.core.kubeconfig import open_api_client as _open_api_client

from .inventory import RBAC_GROUP, Inventory, Problem

SECRET_METADATA_ACCEPT: Final = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
_PAGE: Final = 500
_TIMEOUT: Final = (10, 120)


@dataclass(frozen=True, slots=True)
class _Resource:
    kind: str
    api: str  # /api/v1 or /apis/GROUP/VERSION
    plural: str
    namespaced: bool = True
    fallback: str | None = None  # an older group version (CronJob before 1.21)
    optional: bool = False  # 404: not installed, nothing to say
    rbac: bool = False  # only needed to answer "who could read"


RESOURCES: Final = (
    _Resource("Secret", "/api/v1", "secrets"),
    _Resource("Pod", "/api/v1", "pods"),
    _Resource("ReplicationController", "/api/v1", "replicationcontrollers"),
    _Resource("ServiceAccount", "/api/v1", "serviceaccounts"),
    _Resource("Deployment", "/apis/apps/v1", "deployments"),
    _Resource("StatefulSet", "/apis/apps/v1", "statefulsets"),
    _Resource("DaemonSet", "/apis/apps/v1", "daemonsets"),
    _Resource("ReplicaSet", "/apis/apps/v1", "replicasets"),
    _Resource("Job", "/apis/batch/v1", "jobs"),
    _Resource("CronJob", "/apis/batch/v1", "cronjobs", fallback="/apis/batch/v1beta1"),
    _Resource("Ingress", "/apis/networking.k8s.io/v1", "ingresses", optional=True),
    *(_Resource(kind, f"/apis/{API_VERSION}", PLURALS[kind], namespaced=kind in ("SecretStore", "ExternalSecret"),
                optional=True) for kind in ("SecretStore", "ClusterSecretStore", "ExternalSecret",
                                            "ClusterExternalSecret")),
    _Resource("Role", f"/apis/{RBAC_GROUP}/v1", "roles", rbac=True),
    _Resource("RoleBinding", f"/apis/{RBAC_GROUP}/v1", "rolebindings", rbac=True),
    _Resource("ClusterRole", f"/apis/{RBAC_GROUP}/v1", "clusterroles", namespaced=False, rbac=True),
    _Resource("ClusterRoleBinding", f"/apis/{RBAC_GROUP}/v1", "clusterrolebindings", namespaced=False, rbac=True),
)


def open_api_client(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """An ApiClient for the kubeconfig context (in-cluster config as a fallback) and its namespace."""
    return _open_api_client(kubeconfig, context, operation="audit")


class _HttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _get(api: Any, path: str, query: list[tuple[str, Any]], accept: str) -> dict[str, Any]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    host = getattr(getattr(api, "configuration", None), "host", "?")
    try:
        request = api.param_serialize("GET", path, query_params=query, header_params={"Accept": accept},
                                      auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=_TIMEOUT)
        response.read()
    except ApiException as exc:
        if not exc.status:
            raise Unavailable(f"cannot reach the Kubernetes API server at {host} ({exc.reason})".strip(),
                              operation="audit") from None
        raise _HttpError(exc.status) from None
    except (OSError, HTTPError) as exc:
        raise Unavailable(f"cannot reach the Kubernetes API server at {host} ({type(exc).__name__})",
                          operation="audit") from None
    if response.status == 401:
        raise AuthenticationFailed("the Kubernetes API server rejected the credentials (HTTP 401)",
                                   operation="audit")
    if not 200 <= response.status <= 299:
        raise _HttpError(response.status)
    doc = json.loads(response.data)
    return doc if isinstance(doc, dict) else {}


def _list(api: Any, base: str, plural: str, namespace: str | None, accept: str) -> Iterator[dict[str, Any]]:
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", _PAGE)]
        if token:
            query.append(("continue", token))
        doc = _get(api, path, query, accept)
        for item in doc.get("items") or ():
            if isinstance(item, dict):
                yield item
        token = (doc.get("metadata") or {}).get("continue")
        if not token:
            return


def load_cluster(api: Any, inv: Inventory, namespace: str | None, *, rbac: bool = False) -> int:
    """List the audit's kinds in ``namespace`` (None: all) into ``inv``; returns the objects read.

    ``rbac``: also list Roles, ClusterRoles and their bindings (for "who could read").
    """
    with paused_gc():  # tens of thousands of small objects, no cycles: see core.gcpause
        return _load_cluster(api, inv, namespace, rbac=rbac)


def _load_cluster(api: Any, inv: Inventory, namespace: str | None, *, rbac: bool) -> int:
    inv.secret_keys_known = False
    count = 0
    where = f"namespace {namespace}" if namespace else "all namespaces"
    _load_namespaces(api, inv, namespace)
    for res in RESOURCES:
        if res.rbac and not rbac:
            continue
        ns = namespace if res.namespaced else None
        secrets = res.kind == "Secret"
        accept = SECRET_METADATA_ACCEPT if secrets else "application/json"
        group_version = res.api.removeprefix("/api/").removeprefix("/apis/")
        bases = [res.api] + ([res.fallback] if res.fallback else [])
        for i, base in enumerate(bases):
            try:
                for item in _list(api, base, res.plural, ns, accept):
                    if secrets:
                        # PartialObjectMetadata items: metadata only, by construction.
                        item = {"apiVersion": "v1", "kind": "Secret", "metadata": item.get("metadata") or {}}
                    else:
                        item.setdefault("kind", res.kind)
                        item.setdefault("apiVersion", group_version if i == 0 else base.removeprefix("/apis/"))
                    inv.add(item, None)
                    count += 1
                break
            except _HttpError as exc:
                if exc.status == 404 and i + 1 < len(bases):
                    continue
                if exc.status == 404 and res.optional:
                    break
                inv.incomplete.add(res.kind)
                why = {403: "forbidden", 404: "not served", 406: "the server cannot list metadata only"}.get(
                    exc.status, f"HTTP {exc.status}")
                scope = where if res.namespaced else "the cluster"
                inv.problems.append(Problem(f"{res.kind} ({scope})", "", f"cannot list: {why}; answers that "
                                            f"depend on {res.kind} objects are incomplete"))
                break
    return count


def _load_namespaces(api: Any, inv: Inventory, namespace: str | None) -> None:
    """Namespace labels (ClusterSecretStore conditions, ClusterExternalSecret selectors); best effort."""
    try:
        if namespace:
            doc = _get(api, f"/api/v1/namespaces/{namespace}", [], "application/json")
            doc.setdefault("kind", "Namespace")
            doc.setdefault("apiVersion", "v1")
            inv.add(doc)
        else:
            for item in _list(api, "/api/v1", "namespaces", None, "application/json"):
                item.setdefault("kind", "Namespace")
                item.setdefault("apiVersion", "v1")
                inv.add(item)
    except _HttpError as exc:
        if exc.status == 404 and namespace:
            inv.problems.append(Problem(f"Namespace/{namespace}", "", "not found"))
