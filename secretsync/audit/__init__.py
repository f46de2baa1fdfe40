"""The audit job: which workloads read which Secrets, from provider secret to Kubernetes Secret
to pod, who *could* read them through RBAC, and who *did* (API server audit log).

Pure at its heart: :func:`audit` takes an :class:`Inventory` (objects from a manifest tree,
:func:`load_manifests`, or a live cluster, :func:`load_cluster`) and returns the report
document; nothing in it does I/O except the audit-log reader. Secret values are never read:
Secrets are listed metadata-only from clusters, and reduced to metadata and key names as
they are added from manifests.

Imports only :mod:`secretsync.api` and :mod:`secretsync.core` (import-linter enforces it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from secretsync.core.gcpause import paused_gc

from .auditlog import AuditLogResult, SecretAccess, read_audit_logs
from .cluster import load_cluster, open_api_client
from .graph import Finding, Graph, build_graph
from .html import render_html
from .inventory import Inventory, Problem, build_inventory
from .manifests import ManifestLoad, load_manifests, read_manifest_tree
from .rbac import Grant, Rbac
from .report import Scope, build_report, parse_workload, render_dot, render_provider_key, render_text

__all__ = [
    "AuditLogResult",
    "Finding",
    "Grant",
    "Graph",
    "Inventory",
    "ManifestLoad",
    "Problem",
    "Rbac",
    "Scope",
    "SecretAccess",
    "audit",
    "build_graph",
    "build_inventory",
    "load_cluster",
    "load_manifests",
    "open_api_client",
    "parse_workload",
    "read_audit_logs",
    "read_manifest_tree",
    "render_dot",
    "render_html",
    "render_provider_key",
    "render_text",
]


def audit(inv: Inventory, scope: Scope | None = None, *, who_can: bool = False, audit_logs: Sequence[Path] = (),
          source: Mapping[str, Any] | None = None, builtin_roles: bool = False) -> dict[str, Any]:
    """The report document for ``inv`` within ``scope``.

    ``who_can`` adds RBAC readers (``builtin_roles``: resolve bindings to the built-in
    ``cluster-admin``/``admin``/``edit``/``view`` roles missing from the input, as in a manifest
    tree); ``audit_logs`` adds reads from API server audit logs (``OSError`` if unreadable).
    """
    scope = scope or Scope()
    with paused_gc():
        graph = build_graph(inv)
        rbac = Rbac(inv.roles, inv.bindings, builtin_roles=builtin_roles) if who_can else None
        access = None
        if audit_logs:
            access = read_audit_logs(audit_logs, namespaces=set(scope.namespaces) if scope.namespaces else None,
                                     secret=scope.secret)
        return build_report(graph, scope, source=source or {}, rbac=rbac, access=access,
                            incomplete=sorted(inv.incomplete))
