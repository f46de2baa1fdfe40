"""The audit report: one JSON-shaped document (a stable schema), and its table and Graphviz views.

Every view is rendered from the document, so ``-o json`` holds everything the table shows.
Schema (``apiVersion: secretsync.io/v1alpha1``, ``kind: AuditReport``) is documented in
``docs/audit.md``; fields are only ever added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from secretsync.api.models import API_VERSION
from secretsync.core.tables import format_table

from .advice import least_privilege
from .auditlog import AuditLogResult
from .graph import SEVERITIES, Consumer, Finding, Graph, ProviderSource, SecretNode
from .inventory import ObjRef, Problem
from .rbac import HOW_ESCALATION, HOW_SUPERUSER, Grant, Rbac, is_everyone, is_system

FINDING_BROAD_READER: Final = "broad-reader"
FINDING_AUDIT_POLICY: Final = "audit-policy"
REPORT_KIND: Final = "AuditReport"

_KIND_ALIASES: Final = {
    "pod": "Pod", "po": "Pod", "deployment": "Deployment", "deploy": "Deployment", "statefulset": "StatefulSet",
    "sts": "StatefulSet", "daemonset": "DaemonSet", "ds": "DaemonSet", "replicaset": "ReplicaSet", "rs": "ReplicaSet",
    "job": "Job", "cronjob": "CronJob", "cj": "CronJob", "replicationcontroller": "ReplicationController",
    "rc": "ReplicationController", "podtemplate": "PodTemplate",
}


def parse_workload(text: str) -> tuple[str, str]:
    """``deploy/web`` -> ``("Deployment", "web")``; raises ValueError naming what is wrong."""
    kind, sep, name = text.partition("/")
    canonical = _KIND_ALIASES.get(kind.lower())
    if not sep or not name or canonical is None:
        raise ValueError(f"{text!r}: expected KIND/NAME with KIND one of "
                         "deployment, statefulset, daemonset, replicaset, job, cronjob, pod, replicationcontroller")
    return canonical, name


@dataclass(frozen=True, slots=True)
class Scope:
    """What the report covers. ``namespaces`` None: every namespace in the input."""

    namespaces: frozenset[str] | None = None
    secret: str | None = None
    workload: tuple[str, str] | None = None  # (Kind, name)
    #: Only Secrets fed from this provider key: ``KEY``, ``STORE/KEY`` or ``PROVIDER:STORE/KEY``
    #: (the FROM column), each optionally with ``#PROPERTY``.
    provider_key: str | None = None

    def has_namespace(self, ns: str | None) -> bool:
        return self.namespaces is None or ns is None or ns in self.namespaces

    def wants_workload(self, ref: ObjRef) -> bool:
        return self.workload is None or (ref.kind, ref.name) == self.workload

    def wants_sources(self, sources: Sequence[ProviderSource]) -> bool:
        key = self.provider_key
        return key is None or any(key_matches(key, s.provider, s.store.name, s.remote_key, s.property)
                                  for s in sources)


def key_matches(key: str, provider: str | None, store: str, remote_key: str | None, prop: str | None) -> bool:
    """Does ``key`` (as ``--provider-key`` takes it) name this provider secret?

    A ``dataFrom.find`` source (no remote key) never matches: which keys it reads is only
    known to the provider.
    """
    if remote_key is None:
        return False
    base, _, want = key.partition("#")
    if want and want != (prop or ""):
        return False
    return base in (remote_key, f"{store}/{remote_key}", f"{provider or '?'}:{store}/{remote_key}")


def _consumer_dict(c: Consumer) -> dict[str, Any]:
    return {**c.ref.as_dict(), "via": c.use.via, "path": c.use.path,
            "foundIn": str(c.found_in) if c.found_in else None, "containers": list(c.use.containers),
            "keys": list(c.use.keys), "optional": c.use.optional, "serviceAccount": c.service_account}


def _source_dict(s: ProviderSource) -> dict[str, Any]:
    return {"externalSecret": str(s.external_secret), "store": s.store.as_dict(), "provider": s.provider,
            "remoteKey": s.remote_key, "property": s.property, "find": s.find, "secretKeys": list(s.secret_keys),
            "origin": str(s.origin) if s.origin else None}


def _secret_dict(node: SecretNode, consumers: Sequence[Consumer]) -> dict[str, Any]:
    info = node.info
    state = "present" if node.exists else ("pending" if node.external_secrets else "missing")
    return {
        "namespace": node.namespace, "name": node.name, "state": state,
        "type": info.type if info else None, "managedBy": node.managed_by,
        "keys": list(info.keys) if info and info.keys is not None else None,
        "externalSecrets": [str(r) for r in node.external_secrets],
        "sources": [_source_dict(s) for s in node.sources],
        "consumers": [_consumer_dict(c) for c in consumers],
    }


def _grant_findings(grants: Sequence[Grant], scope: Scope) -> list[Finding]:
    out: list[Finding] = []
    for g in grants:
        if g.how == HOW_SUPERUSER or (scope.secret and not g.covers(scope.secret)):
            continue
        step = g.via[0] if g.via else None
        obj = step.binding if step and step.binding else str(g.subject)
        where = "every namespace" if g.namespace is None else f"namespace {g.namespace}"
        what = "read Secrets" if g.how != HOW_ESCALATION else g.reason
        if is_everyone(g.subject):
            out.append(Finding(FINDING_BROAD_READER, "error", obj, "subjects",
                               f"{g.subject} (everyone in it) can {what} in {where}, via {step}"))
        elif g.namespace is None and g.resource_names is None and not is_system(g.subject):
            out.append(Finding(FINDING_BROAD_READER, "warning", obj, "subjects",
                               f"{g.subject} can {what} in every namespace, via {step}"))
    return out


def build_report(graph: Graph, scope: Scope, *, source: Mapping[str, Any], rbac: Rbac | None = None,
                 access: AuditLogResult | None = None, incomplete: Sequence[str] = ()) -> dict[str, Any]:
    """The report document for ``scope`` (see docs/audit.md for the schema)."""
    secrets: list[dict[str, Any]] = []
    in_scope: set[str] = set()
    for (ns, name), node in sorted(graph.secrets.items()):
        if not scope.has_namespace(ns) or (scope.secret and name != scope.secret) or not scope.wants_sources(
                node.sources):
            continue
        consumers = [c for c in node.consumers if scope.wants_workload(c.ref)]
        if scope.workload is not None and not consumers:
            continue
        secrets.append(_secret_dict(node, consumers))
        in_scope.add(node.key)
    workloads = [
        {**w.ref.as_dict(), "serviceAccount": w.service_account, "members": sorted(str(m) for m in w.members),
         "secrets": [{"name": s, "via": v} for s, v in w.secrets if not scope.secret or s == scope.secret]}
        for ref, w in sorted(graph.workloads.items(), key=lambda kv: str(kv[0]))
        if scope.has_namespace(ref.namespace) and scope.wants_workload(ref)
        and (not scope.secret or any(s == scope.secret for s, _ in w.secrets))
        and (not scope.provider_key or any(f"{ref.namespace}/{s}" in in_scope for s, _ in w.secrets))
    ]
    findings = [f for f in graph.findings if _finding_in_scope(f, scope, in_scope)]
    problems = list(graph.problems)
    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": REPORT_KIND,
                           "source": {**source, "incomplete": sorted(incomplete)}}
    if rbac is not None:
        cluster = rbac.secret_readers(None)
        namespaces = sorted(scope.namespaces) if scope.namespaces is not None else sorted(
            {ns for ns, _ in graph.secrets} | {b.ref.namespace for b in rbac.bindings if b.ref.namespace})
        per_ns = {ns: rbac.secret_readers(ns) for ns in namespaces}
        if scope.secret:
            cluster = [g for g in cluster if g.covers(scope.secret)]
            per_ns = {ns: [g for g in gs if g.covers(scope.secret)] for ns, gs in per_ns.items()}
        doc["rbac"] = {"cluster": [g.as_dict() for g in cluster],
                       "namespaces": {ns: [g.as_dict() for g in gs] for ns, gs in per_ns.items()}}
        findings += _grant_findings(cluster, scope)
        for gs in per_ns.values():
            findings += _grant_findings(gs, scope)
        problems += rbac.problems
    if access is not None:
        doc["access"] = {"lines": access.lines, "events": access.events, "bodyEvents": access.body_events,
                         "reads": [a.as_dict() for a in access.accesses]}
        if access.body_events:
            findings.append(Finding(FINDING_AUDIT_POLICY, "error", "audit policy", "level",
                                    f"{access.body_events} audit events on Secrets carry request/response bodies "
                                    "(level Request or RequestResponse): the audit log holds Secret values; "
                                    "log Secrets at level Metadata"))
        problems += access.problems
    if rbac is not None and access is not None:
        grants = [*cluster, *(g for gs in per_ns.values() for g in gs)]
        advice, unused = least_privilege(rbac, grants, access)
        doc["leastPrivilege"] = advice
        findings += unused
    findings.sort(key=lambda f: (SEVERITIES.index(f.severity), f.type, f.object, f.field or ""))
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    sections: dict[str, Any] = {k: doc.pop(k) for k in ("rbac", "access", "leastPrivilege") if k in doc}
    doc["summary"] = {"secrets": len(secrets), "workloads": len(workloads), "findings": counts}
    doc["secrets"] = secrets
    doc["workloads"] = workloads
    doc.update(sections)
    doc["findings"] = [{**f.as_dict(), "location": graph.location(f)} for f in findings]
    doc["errors"] = [p.as_dict() for p in problems]
    return doc


def _finding_in_scope(f: Finding, scope: Scope, secrets_in_scope: set[str]) -> bool:
    if f.secret is not None:
        return f.secret in secrets_in_scope
    if scope.secret is not None or scope.provider_key is not None:
        return False
    parts = f.object.split("/")
    ns = parts[1] if len(parts) == 3 else None
    if not scope.has_namespace(ns):
        return False
    return scope.workload is None or (len(parts) == 3 and (parts[0], parts[2]) == scope.workload)


# ---------------------------------------------------------------------- views
def source_label(s: Mapping[str, Any]) -> str:
    what = s["remoteKey"] or f"find({s['find']})"
    prop = f"#{s['property']}" if s["property"] else ""
    return f"{s['provider'] or '?'}:{s['store']['name']}/{what}{prop}"


def _consumer_label(c: Mapping[str, Any]) -> str:
    detail = c["via"]
    if c["keys"]:
        detail += ":" + ",".join(c["keys"])
    if c["optional"]:
        detail += ",optional"
    return f"{c['kind']}/{c['name']}({detail})"


def _is_system(s: Mapping[str, Any]) -> bool:
    from .inventory import Subject

    return is_system(Subject(s["kind"], s["name"], s.get("namespace")))


def _grant_rows(grants: Sequence[Mapping[str, Any]], where: str) -> list[list[str]]:
    rows = []
    for g in grants:
        s = g["subject"]
        if _is_system(s) and g["how"] != HOW_SUPERUSER:
            continue
        subject = f"{s['kind']}/{s['namespace']}/{s['name']}" if s.get("namespace") else f"{s['kind']}/{s['name']}"
        names = ",".join(g["resourceNames"]) if g["resourceNames"] is not None else "*"
        via = "; ".join(_step_label(v) for v in g["via"]) or "-"
        what = ",".join(g["verbs"]) if g["how"] != HOW_ESCALATION else g["reason"]
        rows.append([where, subject, names, g["how"], what, via])
    return rows


def _step_label(v: Mapping[str, Any]) -> str:
    rule = f" rules[{v['rule']}]" if v["rule"] is not None else ""
    agg = f" (from {v['aggregatedFrom']})" if v["aggregatedFrom"] else ""
    return f"{v['binding']} -> {v['role']}{rule}{agg}"


def render_text(doc: Mapping[str, Any], width: int | None = None) -> str:
    """The human view: secrets, then who could read them, who did, and the findings."""
    parts: list[str] = []
    rows = [[f"{s['namespace']}/{s['name']}", s["state"], s["managedBy"] or "-",
             ", ".join(source_label(x) for x in s["sources"]) or "-",
             ", ".join(_consumer_label(c) for c in s["consumers"]) or "-"] for s in doc["secrets"]]
    parts.append(format_table(rows, ["SECRET", "STATE", "MANAGED-BY", "FROM", "CONSUMERS"], width)
                 if rows else "No Secrets.")
    if doc.get("rbac") is not None:
        grows = _grant_rows(doc["rbac"]["cluster"], "*")
        for ns, grants in doc["rbac"]["namespaces"].items():
            grows += _grant_rows(grants, ns)
        hidden = sum(1 for gs in (doc["rbac"]["cluster"], *doc["rbac"]["namespaces"].values()) for g in gs
                     if _is_system(g["subject"]) and g["how"] != HOW_SUPERUSER)
        note = (f"\n({hidden} grants to Kubernetes' own components (system:* users and groups, kube-system "
                "ServiceAccounts) not shown; -o json lists them)") if hidden else ""
        parts.append("Who could read (RBAC):\n" + format_table(
            grows, ["NAMESPACE", "SUBJECT", "SECRETS", "HOW", "WHAT", "VIA"], width) + note)
    if doc.get("access") is not None:
        arows = [[a["user"] + (f" (by {a['impersonator']})" if a["impersonator"] else ""), a["verb"],
                  f"{a['namespace'] or '*'}/{a['name'] or '*'}", a["decision"], str(a["count"]), a["last"] or "-"]
                 for a in doc["access"]["reads"]]
        parts.append("Who did read (audit log):\n" + (format_table(
            arows, ["USER", "VERB", "SECRET", "DECISION", "COUNT", "LAST"], width) if arows else "No Secret reads."))
    if doc["findings"]:
        frows = [[f["severity"], f["type"], f["object"], f.get("location") or f["field"] or "-", f["message"]]
                 for f in doc["findings"]]
        parts.append("Findings:\n" + format_table(frows, ["SEVERITY", "TYPE", "OBJECT", "WHERE", "MESSAGE"], width))
    c = doc["summary"]["findings"]
    parts.append(f"{doc['summary']['secrets']} Secrets, {doc['summary']['workloads']} workloads; findings: "
                 f"{c['error']} error, {c['warning']} warning, {c['info']} info")
    return "\n\n".join(parts)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(doc: Mapping[str, Any]) -> str:
    """Graphviz: provider secret -> ExternalSecret -> Secret -> consumer -> ServiceAccount."""
    lines = ["digraph secretsync_audit {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
    edges: set[tuple[str, str, str]] = set()
    for s in doc["secrets"]:
        sid = f"Secret/{s['namespace']}/{s['name']}"
        style = {"present": "", "pending": ", style=dashed", "missing": ", style=dashed, color=red"}[s["state"]]
        lines.append(f"  {_q(sid)} [shape=note{style}];")
        for src in s["sources"]:
            pid = source_label(src)
            edges.add((pid, src["externalSecret"], ""))
            edges.add((src["externalSecret"], sid, ""))
        for c in s["consumers"]:
            cid = f"{c['kind']}/{c['namespace']}/{c['name']}" if c.get("namespace") else f"{c['kind']}/{c['name']}"
            edges.add((sid, cid, c["via"]))
            if c["serviceAccount"]:
                edges.add((cid, f"ServiceAccount/{c['serviceAccount']}", "runs as"))
    for a, b, label in sorted(edges):
        attr = f" [label={_q(label)}]" if label else ""
        lines.append(f"  {_q(a)} -> {_q(b)}{attr};")
    lines.append("}")
    return "\n".join(lines)


def render_provider_key(doc: Mapping[str, Any], key: str, width: int | None = None) -> str:
    """``--provider-key``: which pods run with this provider value, one row per pod or workload."""
    workloads = {f"{w['kind']}/{w['namespace']}/{w['name']}": w for w in doc["workloads"]}
    rows = []
    for s in doc["secrets"]:
        sources = [x for x in s["sources"]
                   if key_matches(key, x["provider"], x["store"]["name"], x["remoteKey"], x["property"])]
        src = ", ".join(sorted({source_label(x) for x in sources})) or "-"
        secret = f"{s['namespace']}/{s['name']}"
        users = [c for c in s["consumers"] if c["kind"] != "ServiceAccount" or not c.get("via", "").startswith(
            "serviceAccount")]
        if not users:
            rows.append([src, secret, s["state"], "-", "-", "-"])
        for c in users:
            wid = f"{c['kind']}/{c.get('namespace')}/{c['name']}"
            w = workloads.get(wid)
            pods = [m.split("/")[-1] for m in (w["members"] if w else []) if m.startswith("Pod/")]
            rows.append([src, secret, s["state"], wid.replace("/None/", "/"), ", ".join(pods) or "-",
                         c.get("serviceAccount") or "-"])
    if not rows:
        return f"No Secret in scope is fed from provider key {key!r}."
    n_pods = sum(len([p for p in r[4].split(", ") if p != "-"]) for r in rows)
    n_wl = len({r[3] for r in rows if r[3] != "-"})
    return (format_table(rows, ["PROVIDER-KEY", "SECRET", "STATE", "WORKLOAD", "PODS", "RUNS-AS"], width)
            + f"\n\n{key}: {len(doc['secrets'])} Secrets, {n_wl} workloads, {n_pods} pods in the input")


def problems_text(problems: Sequence[Problem]) -> list[str]:
    return [str(p) for p in problems]
