"""Prometheus metrics and the /healthz, /readyz endpoints, on one small HTTP server.

Why a registry per controller (not prometheus-client's global one): tests and the benchmark
run several controllers in one process. Every label is bounded and value-free: provider,
operation, outcome, condition reason, Secret operation. Object names never become labels
(10k ExternalSecrets would be 10k series), and no metric ever carries a secret value.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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


class Metrics:
    """Everything the controller counts. Create one per controller."""

    def __init__(self) -> None:
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
        self.leader = Gauge("secretsync_leader", "1 while this replica holds the leader lease.", registry=r)
        self.store_cycles = Counter(
            "secretsync_store_cycles", "Change-detection cycles per store kind, by mode and outcome.",
            ["mode", "outcome"], registry=r)
        self.circuit_open = Gauge("secretsync_stores_circuit_open", "Stores whose circuit breaker is open.",
                                  registry=r)

    def call_listener(self, provider: str, operation: str, outcome: str) -> None:
        """Hook for :meth:`secretsync.core.calls.CallRecorder.add_listener`."""
        self.provider_calls.labels(provider, operation, outcome).inc()

    def watch_conditions(self, source: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self.registry.register(_ConditionCollector(source))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


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
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, outer.metrics.render(), CONTENT_TYPE)
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
