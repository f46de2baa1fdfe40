"""Reading the objects a cluster runs, for ``secretsync scan --cluster``.

Lists Pods, ReplicationControllers, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs, ConfigMaps and Secrets in one namespace or all of them through the one client
(:class:`~secretsync.kube.client.KubeApi`), page by page, as raw JSON (no model objects, and
field names stay as the API spells them, which is what the walker expects). A kind the caller
may not list (403) or the server does not serve (404) becomes a :class:`ScanError` and the
others go on. Which live objects to skip (secretsync's own Secrets, service-account tokens,
pods of scanned controllers) is decided by :func:`.scanner.scan_objects`, so it is testable
without a cluster.
"""

from __future__ import annotations

from typing import Any

from secretsync.kube.client import KubeApi, KubeError, as_job_error
from secretsync.kube.kinds import CONFIGMAPS, POD_KINDS, SECRETS

from .results import ScanError

#: What the scanner reads: every kind that runs pods, then ConfigMaps and Secrets.
KINDS = (*POD_KINDS, CONFIGMAPS, SECRETS)


def api_client_for(kubeconfig: str | None, context: str | None) -> tuple[KubeApi, str]:
    """A client and the context's default namespace (in-cluster config as a fallback)."""
    return KubeApi.for_cli(kubeconfig, context, operation="scan")


def list_live_objects(api: KubeApi, namespace: str | None) -> tuple[list[dict[str, Any]], list[ScanError]]:
    """Every scannable object in ``namespace`` (None: all namespaces) and the kinds that failed.

    Raises :class:`~secretsync.core.errors.Unavailable` when the API server cannot be reached
    at all: an unreachable cluster is not a clean one.
    """
    objects: list[dict[str, Any]] = []
    errors: list[ScanError] = []
    where = f"namespace {namespace}" if namespace else "all namespaces"
    for res in KINDS:
        try:
            objects.extend(api.list_pages(res, namespace))
        except KubeError as exc:
            if exc.unreachable:
                raise as_job_error(exc, operation="scan") from exc
            why = f"HTTP {exc.status} {exc.reason}".strip()
            errors.append(ScanError(None, f"cannot list {res.kind} objects in {where}: {why}",
                                    resource=f"{res.kind}/{namespace or ''}/", unread=True))
    return objects, errors
