"""``secretsync controller``: run the sync controller (in a pod, or against a kubeconfig).

Kube connection comes from the root options (``--kubeconfig``, ``--context``) or, in a pod,
from the service account; provider timeouts and rate limits from the root ``--timeout`` /
``--rate-limit``. Log format and level are root options too (``--log-format json`` in a pod).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import replace
from types import FrameType

import click

from secretsync.controller import Controller, ControllerSettings, KubeApi
from secretsync.controller.memory import limit_malloc_arenas
from secretsync.controller.settings import (
    EventSettings,
    LeaderSettings,
    MetricsSettings,
    ProviderSettings,
    PushSettings,
    QueueSettings,
    RefreshSettings,
    RolloutSettings,
    RotationSettings,
    ScopeSettings,
    TrustSettings,
)

from .context import current

log = logging.getLogger("secretsync.controller")


def _parse_shard(value: str | None) -> tuple[int, int]:
    if not value:
        return 0, 1
    index, sep, total = value.partition("/")
    try:
        i, n = int(index), int(total)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise click.BadParameter(f"{value!r} must look like I/N with 0 <= I < N (e.g. 0/3)", param_hint="--shard")
    return i, n


def _namespaces(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(dict.fromkeys(out))


@click.command()
@click.option("--namespaces", "namespaces", multiple=True, metavar="NS[,NS...]",
              help="Serve only these namespaces (repeatable or comma-separated; default: all).")
@click.option("--namespace-selector", metavar="SELECTOR",
              help="Serve only namespaces whose labels match (e.g. 'team=payments,env in (prod)').")
@click.option("--shard", metavar="I/N", help="Serve shard I of N (namespaces hashed), to split a big cluster.")
@click.option("--metrics-port", type=int, default=8080, show_default=True,
              help="Port for /metrics, /healthz and /readyz (0: pick a free one; -1: off).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True)
@click.option("--metrics-object-labels/--no-metrics-object-labels", default=True, show_default=True,
              help="ESO-compatible metrics carry each object's name; off: summed per namespace (huge clusters).")
@click.option("--leader-elect/--no-leader-elect", default=True, show_default=True,
              help="Run as one of several replicas; only the Lease holder writes.")
@click.option("--lease-name", default="secretsync-controller", show_default=True)
@click.option("--lease-namespace", envvar="POD_NAMESPACE", default="default", show_default=True,
              help="Namespace of the Lease and of the controller's hash-key Secret (env POD_NAMESPACE).")
@click.option("--lease-duration", type=float, default=15.0, show_default=True,
              help="Seconds a standby waits for a silent leader before taking over.")
@click.option("--identity", envvar="POD_NAME", default="", help="Replica identity in the Lease (env POD_NAME).")
@click.option("--workers", type=int, default=4, show_default=True, help="Concurrent reconciles.")
@click.option("--min-refresh", type=float, default=1.0, show_default=True,
              help="Shortest refresh interval honoured, in seconds.")
@click.option("--allow-namespaced-ambient-identity", is_flag=True, default=False,
              envvar="SECRETSYNC_ALLOW_NAMESPACED_AMBIENT_IDENTITY",
              help="Let namespaced SecretStores without credentials use the controller's own cloud identity "
                   "(off: only ClusterSecretStores may; see docs/security.md).")
@click.option("--allow-cluster-store-files", is_flag=True, default=False,
              envvar="SECRETSYNC_ALLOW_CLUSTER_STORE_FILES",
              help="Let ClusterSecretStores name files of the controller: caCert, an AWS profile, a file store "
                   "(off: no store may; see docs/security.md).")
@click.option("--webhook-port", type=int, default=-1, show_default=True,
              help="Port of the change-notice receiver (signed webhook, Azure Event Grid; 0: pick a free one; "
                   "-1: off). See docs/events.md.")
@click.option("--webhook-host", default="0.0.0.0", show_default=True)
@click.option("--events-rate", type=float, default=5.0, show_default=True,
              help="Targeted reads per second per store triggered by change notices (a flood waits and merges).")
@click.option("--rollout/--no-rollout", default=False, show_default=True,
              help="Watch workloads and restart those reading a changed Secret, for ExternalSecrets with "
                   "spec.rollout (needs list/watch/patch on deployments, statefulsets, daemonsets).")
@click.option("--rollout-debounce", type=float, default=RolloutSettings().debounce, show_default=True,
              help="Seconds during which further changes join a workload's pending restart.")
@click.option("--rollout-rate", type=float, default=RolloutSettings().rate, show_default=True,
              help="Cluster-wide workload restarts per second (burst: --rollout-burst).")
@click.option("--rollout-burst", type=int, default=RolloutSettings().burst, show_default=True)
@click.option("--rotation/--no-rotation", default=False, show_default=True,
              help="Run SecretRotations: generate values on their schedule and write them as new provider "
                   "versions (the stores' credentials need write access).")
@click.option("--push-secrets/--no-push-secrets", default=False, show_default=True,
              help="Run PushSecrets and ClusterPushSecrets: write keys of cluster Secrets to stores (the stores' "
                   "credentials need write access).")
@click.option("--controller-class", default="", show_default=True,
              help="ESO's controller classes: serve only stores whose spec.controller is unset or this value "
                   "(and the ExternalSecrets and PushSecrets that use them).")
@click.option("--malloc-arenas", type=int, default=2, show_default=True,
              help="Cap glibc's malloc arenas (lower peak memory with many threads; 0: glibc's default; "
                   "MALLOC_ARENA_MAX, when set, wins).")
def controller(
    namespaces: tuple[str, ...],
    namespace_selector: str | None,
    shard: str | None,
    metrics_port: int,
    metrics_host: str,
    metrics_object_labels: bool,
    leader_elect: bool,
    lease_name: str,
    lease_namespace: str,
    lease_duration: float,
    identity: str,
    workers: int,
    min_refresh: float,
    allow_namespaced_ambient_identity: bool,
    allow_cluster_store_files: bool,
    webhook_port: int,
    webhook_host: str,
    events_rate: float,
    rollout: bool,
    rollout_debounce: float,
    rollout_rate: float,
    rollout_burst: int,
    rotation: bool,
    push_secrets: bool,
    controller_class: str,
    malloc_arenas: int,
) -> None:
    """Keep Kubernetes Secrets in sync with ExternalSecrets (runs until SIGTERM/SIGINT)."""
    ctx = current()
    shard_i, shard_n = _parse_shard(shard)
    if workers < 1:
        raise click.BadParameter("must be at least 1", param_hint="--workers")
    if rollout_rate <= 0 or rollout_debounce < 0 or rollout_burst < 1:
        raise click.BadParameter("--rollout-rate must be > 0, --rollout-debounce >= 0, --rollout-burst >= 1",
                                 param_hint="--rollout-rate")
    renew = max(1.0, lease_duration * 2 / 3)
    defaults = ControllerSettings()
    settings = replace(
        defaults,
        queue=replace(QueueSettings(), workers=workers),
        refresh=replace(RefreshSettings(), floor=max(0.1, min_refresh)),
        provider=ProviderSettings(timeouts=ctx.client_settings.timeouts, rate_limit=ctx.client_settings.rate_limit),
        leader=LeaderSettings(enabled=leader_elect, lease_name=lease_name, lease_namespace=lease_namespace,
                              identity=identity, lease_duration=lease_duration, renew_deadline=renew,
                              retry_period=max(0.5, min(2.0, lease_duration / 7))),
        metrics=MetricsSettings(port=None if metrics_port < 0 else metrics_port, host=metrics_host,
                                object_labels=metrics_object_labels),
        scope=ScopeSettings(namespaces=_namespaces(namespaces), namespace_selector=namespace_selector,
                            shard=shard_i, shards=shard_n),
        trust=TrustSettings(namespaced_ambient_identity=allow_namespaced_ambient_identity,
                            cluster_store_files=allow_cluster_store_files),
        events=replace(EventSettings(), webhook_port=None if webhook_port < 0 else webhook_port,
                       webhook_host=webhook_host, rate=max(0.1, events_rate)),
        rollout=RolloutSettings(enabled=rollout, debounce=rollout_debounce, rate=rollout_rate, burst=rollout_burst),
        rotation=RotationSettings(enabled=rotation),
        push=PushSettings(enabled=push_secrets),
        controller_class=controller_class,
    )
    limit_malloc_arenas(malloc_arenas)  # before any of the controller's threads exist
    api = KubeApi.from_config(ctx.kubeconfig, ctx.kube_context, timeout=settings.kube_timeout)
    ctl = Controller(api, settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.warning("received signal %d", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctl.start()
    port = ctl.health.port if ctl.health is not None else None
    log.warning("secretsync controller started (identity %s, pid %d, metrics port %s, shard %d/%d)",
                ctl.identity, os.getpid(), port, shard_i, shard_n)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.warning("secretsync controller stopping")
        ctl.stop()
        api.close()
