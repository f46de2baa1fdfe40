"""Reading the objects a cluster runs, for ``secretsync scan --cluster``.

Lists Pods, ReplicationControllers, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs, ConfigMaps and Secrets in one namespace or all of them with the official client,
page by page, as raw JSON (``_preload_content=False``: no model objects, and field names stay
as the API spells them, which is what the walker expects). A kind the caller may not list
(403) or the server does not serve (404) becomes a :class:`ScanError` and the others go on.
Which live objects to skip (secretsync's own Secrets, service-account tokens, pods of scanned
controllers) is decided by :func:`.scanner.scan_objects`, so it is testable without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from secretsync.core.errors import Unavailable
from secretsync.core.kubeconfig import open_api_client

from .results import ScanError

_PAGE = 500
#: (connect, read) seconds: a black-holed API server must not hang the scan.
_TIMEOUT = (10, 120)


@dataclass(frozen=True, slots=True)
class _Kind:
    kind: str
    api: str  # kubernetes.client class name
    plural: str  # method suffix: list_namespaced_<plural> / list_<plural>_for_all_namespaces
    raw_path: str  # API path (for the fallback group version)
    fallback: str | None = None  # older group version path


KINDS: tuple[_Kind, ...] = (
    _Kind("Pod", "CoreV1Api", "pod", "/api/v1"),
    _Kind("ReplicationController", "CoreV1Api", "replication_controller", "/api/v1"),
    _Kind("Deployment", "AppsV1Api", "deployment", "/apis/apps/v1"),
    _Kind("StatefulSet", "AppsV1Api", "stateful_set", "/apis/apps/v1"),
    _Kind("DaemonSet", "AppsV1Api", "daemon_set", "/apis/apps/v1"),
    _Kind("ReplicaSet", "AppsV1Api", "replica_set", "/apis/apps/v1"),
    _Kind("Job", "BatchV1Api", "job", "/apis/batch/v1"),
    _Kind("CronJob", "BatchV1Api", "cron_job", "/apis/batch/v1", fallback="/apis/batch/v1beta1"),
    _Kind("ConfigMap", "CoreV1Api", "config_map", "/api/v1"),
    _Kind("Secret", "CoreV1Api", "secret", "/api/v1"),
)
_RESOURCE_NAMES = {
    "pod": "pods", "replication_controller": "replicationcontrollers", "deployment": "deployments",
    "stateful_set": "statefulsets", "daemon_set": "daemonsets", "replica_set": "replicasets", "job": "jobs",
    "cron_job": "cronjobs", "config_map": "configmaps", "secret": "secrets",
}


def api_client_for(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """An ApiClient and the context's default namespace (in-cluster config as a fallback)."""
    return open_api_client(kubeconfig, context, operation="scan")


def list_live_objects(api_client: Any, namespace: str | None) -> tuple[list[dict[str, Any]], list[ScanError]]:
    """Every scannable object in ``namespace`` (None: all namespaces) and the kinds that failed.

    Raises :class:`Unavailable` when the API server cannot be reached at all: an unreachable
    cluster is not a clean one.
    """
    objects: list[dict[str, Any]] = []
    errors: list[ScanError] = []
    for kind in KINDS:
        where = f"namespace {namespace}" if namespace else "all namespaces"
        try:
            for obj in _list_kind(api_client, kind, namespace):
                objects.append(obj)
        except _ListFailed as exc:
            errors.append(ScanError(None, f"cannot list {kind.kind} objects in {where}: {exc}",
                                    resource=f"{kind.kind}/{namespace or ''}/", unread=True))
        except _Unreachable as exc:
            raise Unavailable(f"cannot reach the Kubernetes API server ({exc})", operation="scan") from None
    return objects, errors


class _ListFailed(Exception):
    pass


class _Unreachable(Exception):
    pass


def _list_kind(api_client: Any, kind: _Kind, namespace: str | None) -> Iterator[dict[str, Any]]:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = getattr(client, kind.api)(api_client)
    if namespace:
        method: Callable[..., Any] = getattr(api, f"list_namespaced_{kind.plural}")
        call: Callable[..., Any] = lambda **kw: method(namespace, **kw)  # noqa: E731
    else:
        call = getattr(api, f"list_{kind.plural}_for_all_namespaces")
    token: str | None = None
    try:
        while True:
            kwargs: dict[str, Any] = {"limit": _PAGE, "_preload_content": False, "_request_timeout": _TIMEOUT}
            if token:
                kwargs["_continue"] = token
            doc = json.loads(call(**kwargs).data)
            yield from _items(doc, kind.kind)
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return
    except ApiException as exc:
        if exc.status == 404 and kind.fallback:
            yield from _list_raw(api_client, kind, namespace, kind.fallback)
            return
        raise _ListFailed(f"HTTP {exc.status} {exc.reason or ''}".strip()) from None
    except (OSError, HTTPError) as exc:
        raise _Unreachable(type(exc).__name__) from None
    except ValueError as exc:
        raise _ListFailed(f"unreadable response ({type(exc).__name__})") from None


def _items(doc: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    items = doc.get("items") or []
    for item in items:
        if isinstance(item, dict):
            item.setdefault("kind", kind)
            yield item


def _list_raw(api_client: Any, kind: _Kind, namespace: str | None, base: str) -> Iterator[dict[str, Any]]:
    """A GET on an older group version the typed client no longer has (CronJob before 1.21)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    resource = _RESOURCE_NAMES[kind.plural]
    path = f"{base}/namespaces/{namespace}/{resource}" if namespace else f"{base}/{resource}"
    if not hasattr(api_client, "param_serialize"):
        raise _ListFailed("the server does not serve batch/v1 and this client cannot fall back")
    token: str | None = None
    try:
        while True:
            query: list[tuple[str, Any]] = [("limit", _PAGE)]
            if token:
                query.append(("continue", token))
            request = api_client.param_serialize("GET", path, query_params=query,
                                                 header_params={"Accept": "application/json"},
                                                 auth_settings=["BearerToken"])
            response = api_client.call_api(*request, _request_timeout=_TIMEOUT)
            response.read()
            if not 200 <= response.status <= 299:
                raise _ListFailed(f"HTTP {response.status}")
            doc = json.loads(response.data)
            yield from _items(doc, kind.kind)
            token = (doc.get("metadata") or {}).get("continue")
            if not token:
                return
    except ApiException as exc:
        raise _ListFailed(f"HTTP {exc.status} {exc.reason or ''}".strip()) from None
    except (OSError, HTTPError) as exc:
        raise _Unreachable(type(exc).__name__) from None
