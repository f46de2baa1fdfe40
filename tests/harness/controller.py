"""Helpers to run the sync controller against the kube harness: CRDs, an in-thread controller, waits.

A library (no fixtures), used by the controller tests and by ``bench/controller_bench.py``.
"""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from secretsync.api.models import API_VERSION
from secretsync.api.schema import all_crds
from secretsync.controller import Controller, ControllerSettings, KubeApi
from secretsync.controller.runtime import CES_RES, CSS_RES, ES_RES, SS_RES
from secretsync.controller.settings import (
    CircuitSettings,
    LeaderSettings,
    MetricsSettings,
    ProviderSettings,
    QueueSettings,
    RefreshSettings,
    ScopeSettings,
    TrustSettings,
)
from secretsync.core.calls import CallRecorder
from secretsync.kube.client import SECRETS, KubeError
from tests.harness.kube import KubeCluster

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.1,
             message: str = "condition") -> T:
    """Poll until ``predicate()`` is truthy; return its value or fail with ``message``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def kube_api(cluster: KubeCluster, **kw: Any) -> KubeApi:
    return KubeApi(cluster.configuration(), **kw)


def install_crds(cluster: KubeCluster, timeout: float = 30.0) -> None:
    """Create (or update) our four CRDs and wait until each is served."""
    api = kube_api(cluster)
    from secretsync.kube.client import Resource

    crd_res = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                       namespaced=False)
    for crd in all_crds():
        name = crd["metadata"]["name"]
        try:
            api.create(crd_res, crd)
        except KubeError as exc:
            if not exc.conflict:
                raise
            current = api.get(crd_res, name)
            crd = {**crd, "metadata": {**crd["metadata"],
                                       "resourceVersion": current["metadata"]["resourceVersion"]}}
            api.replace(crd_res, name, crd)
    for res in (ES_RES, SS_RES, CSS_RES, CES_RES):
        wait_for(lambda r=res: _served(api, r), timeout, message=f"{res.plural} served")
    api.close()


def _served(api: KubeApi, res: Any) -> bool:
    try:
        api.list(res, limit=1)
        return True
    except KubeError:
        return False


def fast_settings(**overrides: Any) -> ControllerSettings:
    """Short intervals for tests: refresh floor 0.2 s, fast backoff, no leader election, no HTTP."""
    s = ControllerSettings(
        queue=QueueSettings(workers=4, backoff_base=0.2, backoff_max=2.0, jitter=0.1),
        refresh=RefreshSettings(floor=0.2, jitter=0.05, status_heartbeat=0.0, credentials_ttl=1.0,
                                cluster_external_floor=0.5),
        provider=ProviderSettings(circuit=CircuitSettings(failures=2, open_for=0.5, max_open=2.0)),
        leader=LeaderSettings(enabled=False),
        metrics=MetricsSettings(port=None),
        scope=ScopeSettings(),
        # The tests' ClusterSecretStores use file stores (the admin's choice to allow).
        trust=TrustSettings(cluster_store_files=True),
    )
    return replace(s, **overrides)


@contextlib.contextmanager
def running_controller(cluster: KubeCluster, settings: ControllerSettings,
                       calls: CallRecorder | None = None) -> Iterator[Controller]:
    """A controller in this process (threads), started and ready; stopped on exit."""
    ctl = Controller(kube_api(cluster), settings, calls=calls or CallRecorder())
    ctl.start()
    try:
        assert ctl.wait_ready(30), "controller caches did not sync"
        yield ctl
    finally:
        ctl.stop()
        ctl.api.close()


# -- object builders ------------------------------------------------------------------------
def store_manifest(name: str, namespace: str | None, provider: str, block: Mapping[str, Any],
                   **spec: Any) -> dict[str, Any]:
    kind = "SecretStore" if namespace else "ClusterSecretStore"
    md: dict[str, Any] = {"name": name}
    if namespace:
        md["namespace"] = namespace
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": md,
            "spec": {"provider": {provider: dict(block)}, **spec}}


def es_manifest(name: str, namespace: str, store: str, data: list[tuple[str, str]] | None = None, *,
                store_kind: str = "SecretStore", refresh: str = "1s", target: Mapping[str, Any] | None = None,
                annotations: Mapping[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "secretStoreRef": {"name": store, "kind": store_kind},
        "refreshInterval": refresh,
        **({"target": dict(target)} if target else {}),
        **spec,
    }
    if data:
        body["data"] = [{"secretKey": k, "remoteRef": {"key": rk}} for k, rk in data]
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        md["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": md, "spec": body}


def create(api: KubeApi, obj: Mapping[str, Any]) -> dict[str, Any]:
    kind = obj["kind"]
    res = {"ExternalSecret": ES_RES, "SecretStore": SS_RES, "ClusterSecretStore": CSS_RES,
           "ClusterExternalSecret": CES_RES, "Secret": SECRETS}[kind]
    return api.create(res, obj, obj["metadata"].get("namespace"))


def secret_data(api: KubeApi, namespace: str, name: str) -> dict[str, str] | None:
    """The Secret's data decoded to text, or None when it does not exist."""
    try:
        obj = api.get(SECRETS, name, namespace)
    except KubeError as exc:
        if exc.not_found:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def ready_condition(api: KubeApi, res: Any, namespace: str | None, name: str) -> dict[str, Any] | None:
    try:
        obj = api.get(res, name, namespace)
    except KubeError:
        return None
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def store_refused(api: KubeApi, namespace: str, name: str) -> dict[str, Any] | None:
    """A predicate body for wait_for: the SecretStore's Ready condition is False with a message."""
    cond = ready_condition(api, SS_RES, namespace, name)
    return cond if cond and cond.get("status") == "False" and cond.get("message") else None


def es_ready(api: KubeApi, namespace: str, name: str, status: str = "True", reason: str | None = None
             ) -> Callable[[], dict[str, Any] | None]:
    """A predicate for wait_for: the ExternalSecret's Ready condition has this status (and reason)."""
    def check() -> dict[str, Any] | None:
        cond = ready_condition(api, ES_RES, namespace, name)
        if cond and cond.get("status") == status and (reason is None or cond.get("reason") == reason):
            return cond
        return None

    return check


class SecretPoller:
    """Polls Secrets in a thread while a fault is injected: every change of data or
    resourceVersion (``changes``) and every Secret found missing or with an empty value
    (``emptied``). Reads that fail (the apiserver is down) are skipped, not judged."""

    def __init__(self, api: KubeApi, namespace: str, names: list[str], every: float = 0.25) -> None:
        self.api, self.namespace, self.names, self.every = api, namespace, names, every
        self.changes: list[str] = []
        self.emptied: list[str] = []
        self._last = {n: self._read(n) for n in names}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self, name: str) -> tuple[str, dict[str, str]] | None:
        try:
            obj = self.api.get(SECRETS, name, self.namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return obj["metadata"]["resourceVersion"], obj.get("data") or {}

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for n in self.names:
                try:
                    now = self._read(n)
                except Exception:
                    continue
                if now is None or not now[1] or not all(now[1].values()):
                    self.emptied.append(f"{n}: {'deleted' if now is None else 'emptied'}")
                if now != self._last[n]:
                    self.changes.append(f"{n}: {'deleted' if now is None else 'changed'}")
                    self._last[n] = now

    def __enter__(self) -> SecretPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
