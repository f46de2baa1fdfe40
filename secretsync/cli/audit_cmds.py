"""``secretsync audit [PATH...]``: which workloads read which Secrets, who could, and who did.

Without PATH it reads the live cluster of the current kube context (Secrets metadata-only);
with PATHs it reads a manifest tree offline. Exit codes: 0 done, 1 a ``--fail-on`` finding
type is present, 2 usage error, 4 credentials rejected, 5 cluster unreachable, 6 bad input
(missing path, unreadable audit log, nothing readable in the tree).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
import yaml

from secretsync.audit import (
    Inventory,
    Scope,
    load_cluster,
    open_api_client,
    parse_workload,
    read_manifest_tree,
    render_dot,
    render_html,
    render_provider_key,
    render_text,
)
from secretsync.audit import audit as run_audit
from secretsync.audit.advice import advice_yaml
from secretsync.core.errors import InvalidConfig
from secretsync.manifests import EXIT_INCOMPLETE

from .context import current
from .output import terminal_width

log = logging.getLogger(__name__)

FINDING_TYPES = ("broken-ref", "broken-optional-ref", "missing-key", "orphan", "unmanaged", "broad-reader",
                 "audit-policy", "unused-permission")


class _FailOn(click.ParamType):  # type: ignore[type-arg]
    """``--fail-on broken-ref,broad-reader`` (repeatable; ``any`` = every type)."""

    name = "TYPE[,TYPE]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        types = tuple(t.strip() for t in str(value).split(",") if t.strip())
        bad = [t for t in types if t not in (*FINDING_TYPES, "any")]
        if bad or not types:
            self.fail(f"{', '.join(bad) or repr(value)}: expected any or one of {', '.join(FINDING_TYPES)}",
                      param, ctx)
        return types


@click.command("audit")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-n", "--namespace", help="Only this namespace (default: the context's; for PATHs: every one).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@click.option("--secret", "secret_name", metavar="NAME", help="Only this Secret (with -n: of that namespace).")
@click.option("--workload", metavar="KIND/NAME", help="Only the Secrets this workload reads (deploy/web, sts/db...).")
@click.option("--who-can", is_flag=True,
              help="Also list who could read the Secrets through RBAC (direct grants and escalations).")
@click.option("--audit-log", "audit_logs", multiple=True, type=click.Path(exists=True, path_type=Path), metavar="FILE",
              help="Also list who did read Secrets, from an API server audit log (JSON lines; repeatable).")
@click.option("--provider-key", metavar="KEY",
              help="Only what is fed from this provider secret: KEY, STORE/KEY or PROVIDER:STORE/KEY (as in the "
              "FROM column), optionally #PROPERTY; the table lists the pods that run with it.")
@click.option("--least-privilege", is_flag=True,
              help="With --audit-log: print, for each ServiceAccount, the Role it actually needs (from what it "
              "read) as YAML ready for kubectl apply, and the bindings never used (implies --who-can).")
@click.option("--fail-on", "fail_on", multiple=True, type=_FailOn(),
              help=f"Exit 1 when findings of these types are present: any, {', '.join(FINDING_TYPES)}.")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml", "dot", "html"]), default="table",
              show_default=True, help="Output format (json/yaml: the AuditReport schema in docs/audit.md; html: one "
              "self-contained page with an interactive graph).")
def audit(
    paths: tuple[Path, ...],
    namespace: str | None,
    all_namespaces: bool,
    secret_name: str | None,
    workload: str | None,
    who_can: bool,
    audit_logs: tuple[Path, ...],
    provider_key: str | None,
    least_privilege: bool,
    fail_on: tuple[tuple[str, ...], ...],
    output: str,
) -> None:
    """Show which workloads read which Secrets, from provider secret (store and remote key)
    through ExternalSecret and Kubernetes Secret to the pods and their ServiceAccounts; with
    --who-can, who could read them through RBAC, and why (binding -> role -> rule); with
    --audit-log, who did.

    Reads the live cluster (Secrets are listed metadata-only: their data is never fetched), or the
    manifests under PATH... offline. Reports broken references, missing keys, Secrets nobody
    uses, Secrets whose values live only in Kubernetes, and over-broad readers. Never prints
    a Secret value.
    """
    root = current()
    if least_privilege and not audit_logs:
        raise click.UsageError("--least-privilege needs --audit-log (what was read) to compare with RBAC")
    who_can = who_can or least_privilege
    if namespace and all_namespaces:
        raise click.UsageError("use either -n/--namespace or -A/--all-namespaces, not both")
    if not namespace and not all_namespaces:
        namespace, all_namespaces = root.namespace, root.all_namespaces
    wl: tuple[str, str] | None = None
    if workload:
        try:
            wl = parse_workload(workload)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--workload") from None
    for p in audit_logs:
        if not p.is_file():
            raise InvalidConfig(f"{p}: not a file", operation="audit")

    unread = 0
    if paths:
        inv = Inventory(default_namespace=namespace or "default")
        loaded = read_manifest_tree(list(paths), inv)
        unread = loaded.unread
        files = loaded.files
        if files == 0 and unread == 0:
            raise InvalidConfig(f"no YAML or JSON files under {', '.join(map(str, paths))}", operation="audit")
        source: dict[str, Any] = {"mode": "manifests", "paths": [str(p) for p in paths], "files": files,
                                  "unread": unread}
        scope_ns = frozenset({namespace}) if namespace and not all_namespaces else None
    else:
        api, default_ns = open_api_client(root.kubeconfig, root.kube_context)
        target = None if all_namespaces else (namespace or default_ns)
        inv = Inventory(default_namespace=target or "default")
        try:
            count = load_cluster(api, inv, target, rbac=who_can)
        finally:
            api.close()
        log.debug("audit: read %d objects from the cluster", count)
        source = {"mode": "cluster", "server": api.host,
                  "context": root.kube_context, "namespace": target}
        scope_ns = frozenset({target}) if target else None
    try:
        doc = run_audit(inv, Scope(scope_ns, secret_name, wl, provider_key), who_can=who_can, audit_logs=audit_logs,
                        source=source, builtin_roles=bool(paths))
    except OSError as exc:
        raise InvalidConfig(f"cannot read the audit log: {type(exc).__name__}: {exc.strerror or exc}",
                            operation="audit") from None

    for err in doc["errors"]:
        where = err.get("location") or err.get("source") or ""
        obj = "" if where.startswith(f"{err['object']}:") else f"{err['object']}: "  # a file-level problem
        field = f"{err['field']}: " if err.get("field") else ""
        click.echo(f"error: {where + ': ' if where else ''}{obj}{field}{err['message']}", err=True)
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)
    elif output == "dot":
        click.echo(render_dot(doc))
    elif output == "html":
        click.echo(render_html(doc), nl=False)
    elif least_privilege:
        click.echo(advice_yaml(doc.get("leastPrivilege") or []), nl=False)
    elif provider_key:
        click.echo(render_provider_key(doc, provider_key, terminal_width()))
    else:
        click.echo(render_text(doc, terminal_width()))
    wanted = {t for group in fail_on for t in group}
    if wanted and any("any" in wanted or f["type"] in wanted for f in doc["findings"]):
        # SystemExit rather than ctx.exit(): see scan_cmds (python -m drops ctx.exit's code).
        raise SystemExit(1)
    if unread:
        raise SystemExit(EXIT_INCOMPLETE)  # some manifests were not read: the answer is partial
