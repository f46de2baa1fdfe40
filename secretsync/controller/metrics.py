"""Prometheus metrics and the /healthz, /readyz endpoints, on one small HTTP server.

Why a registry per controller (not prometheus-client's global one): tests and the benchmark
run several controllers in one process. No metric ever carries a secret value.

Two families are served side by side:

* ours (``secretsync_*``): every label bounded and value-free (provider, operation, outcome,
  condition reason, Secret operation);
* External Secrets Operator's names and labels (``externalsecret_sync_calls_total``,
  ``externalsecret_status_condition``, ``secretstore_status_condition``...), so the
  dashboards and alerts an ESO user already has keep working after the switch. These carry
  object names and namespaces as ESO's do; ``object_labels=False`` (``--no-metrics-object-labels``)
  drops the ``name`` label, summing per namespace, for clusters where one series per object is
  too many. Series of deleted objects are removed.

``*_created`` twin series are not exported (they double the series count and no dashboard
reads them); ``process_*`` and ``secretsync_build_info`` are.
"""

from __future__ import annotations

import logging
import platform
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The ESO-compatible condition gauges, per kind: (metric name, namespaced?).
CONDITION_METRICS: dict[str, tuple[str, bool]] = {
    "ExternalSecret": ("externalsecret_status_condition", True),
    "SecretStore": ("secretstore_status_condition", True),
    "ClusterSecretStore": ("clustersecretstore_status_condition", False),
    "ClusterExternalSecret": ("clusterexternalsecret_status_condition", False),
}


@dataclass(frozen=True, slots=True)
class ObjectCondition:
    """One condition of one object, as the controller last wrote it (for the ESO gauges)."""

    kind: str
    namespace: str
    name: str
    condition: str
    status: str


def _version() -> str:
    try:
        return metadata.version("secretsync")
    except metadata.PackageNotFoundError:
        return "unknown"


class _ConditionCollector:
    """ExternalSecrets by Ready status and reason, counted at scrape time from the runtime."""

    def __init__(self, source: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        fam = GaugeMetricFamily("secretsync_externalsecrets", "ExternalSecrets by Ready condition status and reason.",
                                labels=["status", "reason"])
        counts: dict[tuple[str, str], int] = {}
        for status, reason in self._source():
            counts[(status, reason)] = counts.get((status, reason), 0) + 1
        for (status, reason), n in sorted(counts.items()):
            fam.add_metric([status, reason], n)
        yield fam


class _EsoCollector:
    """ESO's metric names and labels, built at scrape time from plain dicts.

    A custom collector rather than prometheus-client Counters because ESO's counters
    ``externalsecret_sync_calls_error`` and ``externalsecret_provider_api_calls_count`` have
    no ``_total`` suffix, which prometheus-client's Counter would add.
    """

    def __init__(self, object_labels: bool) -> None:
        self.object_labels = object_labels
        self._lock = threading.Lock()
        self._calls: dict[tuple[str, str], float] = {}
        self._errors: dict[tuple[str, str], float] = {}
        self._duration: dict[tuple[str, str], float] = {}
        self._api_calls: dict[tuple[str, str, str], float] = {}
        self._sources: list[Callable[[], Iterable[ObjectCondition]]] = []

    def _obj(self, namespace: str, name: str) -> tuple[str, str]:
        return (namespace, name if self.object_labels else "")

    def reconciled(self, namespace: str, name: str, seconds: float) -> None:
        key = self._obj(namespace, name)
        with self._lock:
            self._calls[key] = self._calls.get(key, 0) + 1
            self._duration[key] = seconds * 1e9  # ESO sets a Go time.Duration: nanoseconds

    def failed(self, namespace: str, name: str) -> None:
        key = self._obj(namespace, name)
        with self._lock:
            self._errors[key] = self._errors.get(key, 0) + 1

    def forget(self, namespace: str, name: str) -> None:
        if not self.object_labels:
            return  # per-namespace sums keep counting (counters must not go down)
        with self._lock:
            for d in (self._calls, self._errors, self._duration):
                d.pop((namespace, name), None)

    def api_call(self, provider: str, operation: str, outcome: str) -> None:
        key = (provider, operation, "success" if outcome == "OK" else "error")
        with self._lock:
            self._api_calls[key] = self._api_calls.get(key, 0) + 1

    def watch(self, source: Callable[[], Iterable[ObjectCondition]]) -> None:
        self._sources.append(source)

    def _labels(self, namespace: str, name: str) -> dict[str, str]:
        return {"name": name, "namespace": namespace} if self.object_labels else {"namespace": namespace}

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            calls, errors, duration = dict(self._calls), dict(self._errors), dict(self._duration)
            api_calls = dict(self._api_calls)
        for name, doc, typ, data in (
            ("externalsecret_sync_calls_total", "Total number of ExternalSecret reconciles.", "counter", calls),
            ("externalsecret_sync_calls_error", "Total number of ExternalSecret reconcile errors.", "counter",
             errors),
            ("externalsecret_reconcile_duration", "Duration of the last reconcile of the ExternalSecret "
             "(nanoseconds, as ESO).", "gauge", duration),
        ):
            fam = Metric(name, doc, typ)
            for (ns, obj), value in sorted(data.items()):
                fam.add_sample(name, self._labels(ns, obj), value)
            yield fam
        fam = Metric("externalsecret_provider_api_calls_count", "Provider API calls by provider, call and status.",
                     "counter")
        for (provider, call, status), value in sorted(api_calls.items()):
            fam.add_sample("externalsecret_provider_api_calls_count",
                           {"provider": provider, "call": call, "status": status}, value)
        yield fam
        yield from self._conditions()

    def _conditions(self) -> Iterator[Metric]:
        sums: dict[str, dict[tuple[tuple[str, str], ...], float]] = {k: {} for k in CONDITION_METRICS}
        for source in self._sources:
            try:
                items = list(source())
            except Exception:  # a scrape must not fail because one source is mid-update
                log.debug("condition source failed", exc_info=True)
                continue
            for c in items:
                if c.kind not in CONDITION_METRICS:
                    continue
                namespaced = CONDITION_METRICS[c.kind][1]
                base: dict[str, str] = {}
                if self.object_labels:
                    base["name"] = c.name
                if namespaced:
                    base["namespace"] = c.namespace
                base["condition"] = c.condition
                # ESO exports both statuses of a condition: 1 for the current one, 0 for the other.
                for status in ("True", "False"):
                    key = tuple(sorted({**base, "status": status}.items()))
                    sums[c.kind][key] = sums[c.kind].get(key, 0) + (1 if c.status == status else 0)
        for kind, (metric, _ns) in CONDITION_METRICS.items():
            fam = Metric(metric, f"The status condition of a {kind}.", "gauge")
            for labels, value in sorted(sums[kind].items()):
                fam.add_sample(metric, dict(labels), value)
            yield fam


class Metrics:
    """Everything the controller counts. Create one per controller."""

    def __init__(self, *, object_labels: bool = True) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.provider_calls = Counter(
            "secretsync_provider_calls", "Provider API calls by provider, operation and outcome.",
            ["provider", "operation", "outcome"], registry=r)
        self.sync_duration = Histogram(
            "secretsync_sync_duration_seconds", "Time to reconcile one object.", ["kind"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.secrets_written = Counter(
            "secretsync_secrets_written", "Kubernetes Secrets written, by operation.", ["operation"], registry=r)
        self.drift_repaired = Counter(
            "secretsync_drift_repaired", "Managed Secrets restored after a hand edit or deletion.", registry=r)
        self.reconcile_errors = Counter(
            "secretsync_reconcile_errors", "Reconciles that ended in an error, by reason.", ["kind", "reason"],
            registry=r)
        self.queue_depth = Gauge("secretsync_workqueue_depth", "Keys ready to be processed.", registry=r)
        self.queue_waiting = Gauge("secretsync_workqueue_scheduled", "Keys scheduled for later.", registry=r)
        self.events_dropped = Counter(
            "secretsync_events_dropped", "Kubernetes Events not recorded because too many were waiting.",
            registry=r)
        self.leader = Gauge("secretsync_leader", "1 while this replica holds the leader lease.", registry=r)
        self.store_cycles = Counter(
            "secretsync_store_cycles", "Change-detection cycles per store kind, by mode and outcome.",
            ["mode", "outcome"], registry=r)
        self.circuit_open = Gauge("secretsync_stores_circuit_open", "Stores whose circuit breaker is open.",
                                  registry=r)
        self.build_info = Gauge("secretsync_build_info", "Always 1; the labels say which build is running.",
                                ["version", "python_version"], registry=r)
        self.build_info.labels(_version(), platform.python_version()).set(1)
        ProcessCollector(registry=r)
        self.eso = _EsoCollector(object_labels)
        r.register(self.eso)

    def call_listener(self, provider: str, operation: str, outcome: str) -> None:
        """Hook for :meth:`secretsync.core.calls.CallRecorder.add_listener`."""
        self.provider_calls.labels(provider, operation, outcome).inc()
        self.eso.api_call(provider, operation, outcome)

    def watch_conditions(self, source: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self.registry.register(_ConditionCollector(source))

    def watch_object_conditions(self, source: Callable[[], Iterable[ObjectCondition]]) -> None:
        """Feed the ESO condition gauges from the statuses a reconciler last wrote."""
        self.eso.watch(source)

    def render(self, names: Iterable[str] = ()) -> bytes:
        """The exposition; ``names`` (the ``name[]`` query parameter, as prometheus_client's own
        handler reads it) restricts it to those metrics. At 10k ExternalSecrets the whole page
        is tens of thousands of series: a probe that wants one gauge should not pay for all."""
        wanted = list(names)
        registry = self.registry.restricted_registry(wanted) if wanted else self.registry
        return bytes(generate_latest(registry))


class HealthServer:
    """Serves /metrics, /healthz (threads alive) and /readyz (caches synced) on one port."""

    def __init__(self, host: str, port: int, metrics: Metrics, healthy: Callable[[], bool],
                 ready: Callable[[], bool]) -> None:
        self.metrics = metrics
        self.healthy = healthy
        self.ready = ready
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/metrics":
                    names = parse_qs(query).get("name[]", [])
                    self._send(200, outer.metrics.render(names), CONTENT_TYPE)
                elif path in ("/healthz", "/livez"):
                    ok = outer.healthy()
                    self._send(200 if ok else 500, b"ok\n" if ok else b"unhealthy\n")
                elif path == "/readyz":
                    ok = outer.ready()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
                else:
                    self._send(404, b"not found\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="health-server", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
