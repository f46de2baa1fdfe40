"""The one Kubernetes API client: thin JSON on the official client's configuration and pool.

The controller, ``migrate --cluster``, ``scan --cluster``, the audit and ``rotate`` all call the
API server through :class:`KubeApi`; paths come only from :class:`~.kinds.Resource`.

Why not the generated ``CoreV1Api`` models: deserializing every Secret, ExternalSecret and
watch event into model objects is what made an off-the-shelf operator hold ~440 MB for 10k
objects. Here responses stay plain dicts that the informers cut down to the few fields they
keep, and watch streams are parsed line by line. Authentication, TLS and proxies still come
from ``kubernetes.config`` (kubeconfig, exec plugins, in-cluster service account), so we
reuse the field's loader rather than re-implement it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlencode

from secretsync.core.errors import AuthenticationFailed, SecretSyncError, Unavailable

from .config import load_configuration
from .kinds import CONFIGMAPS, EVENTS, LEASES, NAMESPACES, SECRETS, SERVICE_ACCOUNTS, Resource
from .labels import FIELD_MANAGER

__all__ = ["CONFIGMAPS", "EVENTS", "LEASES", "NAMESPACES", "SECRETS", "SERVICE_ACCOUNTS", "KubeApi", "KubeError",
           "Resource", "WatchStream", "as_job_error"]

log = logging.getLogger(__name__)

JSON: Final = "application/json"
#: Seconds the credential headers are reused before the configuration is asked again.
AUTH_REUSE: Final = 10.0
#: Secrets listed as metadata only: the API server sends no ``data``, so no value reaches us.
METADATA_ONLY: Final = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


class KubeError(SecretSyncError):
    """A failed Kubernetes API call: HTTP status, the API's reason, and its message.

    API messages name objects and fields, never Secret values (the API server does not
    echo data back in errors). Status 0: the server was not reached (connection refused,
    timeout, TLS). A 404 here is the API's answer about a Kubernetes object, never a
    provider's :class:`~secretsync.core.errors.NotFound`.
    """

    def __init__(self, status: int, reason: str, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def unreachable(self) -> bool:
        return self.status == 0


def as_job_error(exc: KubeError, *, operation: str, host: str = "") -> SecretSyncError:
    """What a CLI job (scan, migrate, audit) raises for a failed call: an unreachable server is
    :class:`Unavailable` (exit code 5: an unreachable cluster is not a clean one), rejected
    credentials :class:`AuthenticationFailed`, anything else the KubeError itself."""
    where = f" at {host}" if host else ""
    if exc.unreachable:
        return Unavailable(f"cannot reach the Kubernetes API server{where} ({exc.message})", operation=operation)
    if exc.status == 401:
        return AuthenticationFailed("the Kubernetes API server rejected the credentials (HTTP 401)",
                                    operation=operation)
    return exc


class KubeApi:
    """JSON over the official client's urllib3 pool (thread-safe; one per controller)."""

    def __init__(self, configuration: Any, *, timeout: tuple[float, float] = (5.0, 30.0),
                 pool_size: int = 32, field_manager: str = FIELD_MANAGER) -> None:
        from kubernetes.client import rest

        self.configuration = configuration
        #: Who the writes are from (``managedFields``) and the User-Agent: the controller or a CLI job.
        self.field_manager = field_manager
        configuration.connection_pool_maxsize = pool_size
        self._pool = rest.RESTClientObject(configuration).pool_manager
        self.timeout = timeout
        self.host = str(configuration.host).rstrip("/")
        self._fence: Callable[[], bool] | None = None
        self._served: dict[str, Resource] = {}
        self._auth_cache: tuple[float, dict[str, str]] | None = None

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, kubeconfig: str | None = None, context: str | None = None, **kw: Any) -> KubeApi:
        """In-cluster config when running in a pod and no kubeconfig is given, else the kubeconfig."""
        cfg, _ = load_configuration(kubeconfig, context, operation="controller", prefer_incluster=True)
        return cls(cfg, **kw)

    @classmethod
    def for_cli(cls, kubeconfig: str | None, context: str | None, *, operation: str) -> tuple[KubeApi, str]:
        """A client for a CLI job (kubeconfig first, in-cluster as a fallback) and the context's namespace."""
        cfg, namespace = load_configuration(kubeconfig, context, operation=operation)
        return cls(cfg, timeout=(10.0, 120.0), field_manager=f"secretsync-{operation}"), namespace

    def close(self) -> None:
        self._pool.clear()

    def fenced(self, allowed: Callable[[], bool]) -> KubeApi:
        """The same client (same pool) whose writes are refused unless ``allowed()``: a replica
        that lost its lease must not write, even from a reconcile that was already running."""
        twin = copy.copy(self)
        twin._fence = allowed
        return twin

    # -- raw -------------------------------------------------------------------------------
    def _auth(self) -> dict[str, str]:
        """The credential headers, asked of the client's configuration at most every
        ``AUTH_REUSE`` seconds (and again after a 401).

        The official client's ``auth_settings()`` runs its refresh hook on every call (a
        kubeconfig reload, or the in-cluster token file's expiry check) and sets a dozen
        configuration attributes: 0.13 ms of CPU per call here, and a cold start of 10k
        ExternalSecrets makes 30k calls. The hook's own refresh periods (a
        projected token is re-read every minute) are far longer than the reuse here."""
        now = time.monotonic()
        cached = self._auth_cache
        if cached is not None and now - cached[0] < AUTH_REUSE:
            return cached[1]
        headers = {str(auth["key"]): str(auth["value"]) for auth in self.configuration.auth_settings().values()
                   if auth.get("in") == "header" and auth.get("value")}
        self._auth_cache = (now, headers)
        return headers

    def _headers(self, content_type: str | None, accept: str = JSON) -> dict[str, str]:
        headers = {"Accept": accept, "User-Agent": self.field_manager, **self._auth()}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        q = {k: ("true" if v is True else "false" if v is False else v)
             for k, v in (query or {}).items() if v is not None}
        return self.host + path + (("?" + urlencode(q)) if q else "")

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str | None = JSON,
                timeout: tuple[float, float] | None = None, accept: str = JSON) -> Any:
        import urllib3

        if method != "GET" and self._fence is not None and not self._fence():
            raise KubeError(503, "NotLeader", "this replica does not hold the leader lease; write not sent",
                            method=method, path=path)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            resp = self._pool.request(
                method, self._url(path, query), body=data,
                headers=self._headers(content_type if body is not None else None, accept),
                timeout=urllib3.Timeout(connect=(timeout or self.timeout)[0], read=(timeout or self.timeout)[1]),
                retries=False, preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, "ConnectionError", type(exc).__name__, method=method, path=path) from exc
        if resp.status == 401:
            self._auth_cache = None  # a rotated token: ask the configuration again next time
        if resp.status >= 300:
            raise _error(resp.status, resp.data, method, path)
        if not resp.data:
            return None
        try:
            return json.loads(resp.data)
        except ValueError as exc:
            raise KubeError(resp.status, "UnreadableResponse", type(exc).__name__, method=method, path=path) from exc

    # -- verbs -----------------------------------------------------------------------------
    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", res.path(namespace, name))
        return out

    def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int | None = None, continue_: str | None = None,
             resource_version: str | None = None, accept: str = JSON) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", res.path(namespace), query={
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
            "continue": continue_, "resourceVersion": resource_version,
        }, accept=accept)
        return out

    def list_pages(self, res: Resource, namespace: str | None = None, *, page: int = 500,
                   accept: str = JSON) -> Iterator[dict[str, Any]]:
        """Every item, page by page (``limit``/``continue``), at the first version the server serves.

        A 404 on a version with ``fallbacks`` (CronJob ``batch/v1`` on 1.20) tries the next one;
        items get the ``kind`` and ``apiVersion`` a list leaves out.
        """
        versions = res.versions()
        for i, at in enumerate(versions):
            token: str | None = None
            try:
                while True:
                    doc = self.list(at, namespace, limit=page, continue_=token, accept=accept)
                    for item in doc.get("items") or ():
                        if isinstance(item, dict):
                            item.setdefault("kind", res.kind)
                            item.setdefault("apiVersion", at.api_version)
                            yield item
                    token = (doc.get("metadata") or {}).get("continue")
                    if not token:
                        return
            except KubeError as exc:
                if exc.not_found and token is None and i + 1 < len(versions):
                    continue
                raise

    def served(self, res: Resource) -> Resource:
        """``res`` at the first of its versions this server serves (one probe per kind, remembered)."""
        if not res.fallbacks:
            return res
        known = self._served.get(res.kind)
        if known is None:
            known = res.versions()[-1]
            for at in res.versions()[:-1]:
                try:
                    self.list(at, limit=1)
                except KubeError as exc:
                    if not exc.not_found:
                        raise
                    continue
                known = at
                break
            self._served[res.kind] = known
        return known

    def create(self, res: Resource, body: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", res.path(namespace), body=body,
                                           query={"fieldManager": self.field_manager})
        return out

    def replace(self, res: Resource, name: str, body: Mapping[str, Any], namespace: str | None = None,
                *, subresource: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.request("PUT", res.path(namespace, name, subresource), body=body,
                                           query={"fieldManager": self.field_manager})
        return out

    def patch(self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
              subresource: str | None = None, patch_type: str = "merge") -> dict[str, Any]:
        ctype = {"merge": "application/merge-patch+json", "json": "application/json-patch+json",
                 "strategic": "application/strategic-merge-patch+json"}[patch_type]
        out: dict[str, Any] = self.request("PATCH", res.path(namespace, name, subresource), body=patch,
                                           content_type=ctype, query={"fieldManager": self.field_manager})
        return out

    def delete(self, res: Resource, name: str, namespace: str | None = None, *, uid: str | None = None,
               resource_version: str | None = None) -> None:
        """Delete, with preconditions: never delete a Secret someone replaced in the meantime."""
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": pre} if pre else None
        self.request("DELETE", res.path(namespace, name), body=body)

    def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str | None,
              label_selector: str | None = None, timeout_seconds: int = 300) -> WatchStream:
        """Open a watch; iterate the result for events (dicts with ``type`` and ``object``).

        ``allowWatchBookmarks`` lets the server tell us a newer resourceVersion without sending
        objects, so a re-watch after a timeout rarely falls back to a full relist. An ``ERROR``
        event (410 Gone) is raised as :class:`KubeError` so the informer relists.
        """
        import urllib3

        path = res.path(namespace)
        query = {"watch": True, "allowWatchBookmarks": True, "resourceVersion": resource_version,
                 "labelSelector": label_selector, "timeoutSeconds": timeout_seconds}
        try:
            resp = self._pool.request(
                "GET", self._url(path, query), headers=self._headers(None),
                timeout=urllib3.Timeout(connect=self.timeout[0], read=timeout_seconds + 30),
                retries=False, preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(0, "ConnectionError", type(exc).__name__, method="WATCH", path=path) from exc
        if resp.status >= 300:
            err = _error(resp.status, resp.read(), "WATCH", path)
            resp.release_conn()
            raise err
        return WatchStream(resp, path)


class WatchStream:
    """One open watch. ``close()`` (from any thread) ends the iteration promptly."""

    def __init__(self, resp: Any, path: str) -> None:
        self._resp = resp
        self._path = path
        self.closed = False

    def close(self) -> None:
        self.closed = True
        shutdown = getattr(self._resp, "shutdown", None)
        if shutdown is not None:
            # Interrupts a read blocked in another thread (urllib3 >= 2.3); ValueError/OSError:
            # no socket to shut down (yet, or any more).
            with contextlib.suppress(ValueError, OSError):
                shutdown()
        try:
            self._resp.close()
        except Exception:  # closing a dead socket may fail in many ways
            log.debug("closing watch %s failed", self._path, exc_info=True)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        import urllib3

        buf = b""
        try:
            for chunk in self._resp.stream(None, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        obj = event.get("object") or {}
                        raise KubeError(int(obj.get("code", 500)), str(obj.get("reason", "")),
                                        str(obj.get("message", "")), method="WATCH", path=self._path)
                    yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self.closed:
                return
            raise KubeError(0, "ConnectionError", type(exc).__name__, method="WATCH", path=self._path) from exc
        finally:
            self._resp.close()


def _error(status: int, data: bytes, method: str, path: str) -> KubeError:
    try:
        doc = json.loads(data)
        return KubeError(status, str(doc.get("reason", "")), str(doc.get("message", "")), method=method, path=path)
    except (ValueError, AttributeError):
        return KubeError(status, "", data[:200].decode(errors="replace"), method=method, path=path)
