"""Least-privilege advice: who *did* read Secrets (audit log) against who *could* (RBAC).

Why here and not a separate tool: both halves are already in the report, and the useful
answer is the difference. For each ServiceAccount that read Secrets in the log window,
:func:`least_privilege` writes the Role it actually needs (``resourceNames`` where the log
names the Secrets; ``list``/``watch`` of a whole collection cannot be narrowed by name) and
its binding, as YAML ready for ``kubectl apply``; for every binding that grants Secret read,
whether any read in the window went through it.

A binding counts as *used* when the RBAC evaluator says it allows a read the log shows
(with the groups the log recorded for that user), or the authorizer's reason on the event
names it. That is deliberately generous: a binding that could have served an observed read
is never called unused, so removing the ones reported breaks nothing the log saw. What the
log window did not see (a monthly job) it cannot vouch for: the advice says which window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from secretsync.kube.kinds import RBAC_GROUP

from .auditlog import AuditLogResult, SecretAccess
from .graph import Finding
from .inventory import Subject
from .rbac import HOW_RBAC, Grant, Rbac, is_system

FINDING_UNUSED_PERMISSION: Final = "unused-permission"
_SA_PREFIX: Final = "system:serviceaccount:"
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: ``RBAC: allowed by RoleBinding "name/ns" of Role "r" to ...`` (the RBAC authorizer's reason).
_REASON: Final = re.compile(r'allowed by (ClusterRoleBinding|RoleBinding) "([^"/]+)(?:/([^"]+))?"')


def sa_of(user: str) -> tuple[str, str] | None:
    """``system:serviceaccount:NS:NAME`` -> (NS, NAME)."""
    if not user.startswith(_SA_PREFIX):
        return None
    ns, _, name = user.removeprefix(_SA_PREFIX).partition(":")
    return (ns, name) if ns and name and ":" not in name else None


def _groups(user: str, logged: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    groups = set(logged.get(user, ()))
    sa = sa_of(user)
    if sa is not None:
        groups |= {"system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"}
    return tuple(sorted(groups | {"system:authenticated"}))


@dataclass
class _Need:
    """What one ServiceAccount read, per namespace (None: cluster-wide collection reads)."""

    named: dict[str | None, dict[str, set[str]]] = field(default_factory=dict)  # ns -> verb -> names
    collection: dict[str | None, set[str]] = field(default_factory=dict)  # ns -> verbs
    refused: list[str] = field(default_factory=list)
    requests: int = 0


def used_bindings(rbac: Rbac, reads: Iterable[SecretAccess], groups: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Bindings (``Kind/ns/name``) that allow (or, by the log's own reason, did allow) a read seen."""
    used: set[str] = set()
    for a in reads:
        if a.decision == "forbid":
            continue
        for step in rbac.allowed(a.user, _groups(a.user, groups), a.verb, "", "secrets", a.namespace, a.name):
            if step.binding:
                used.add(step.binding)
        m = _REASON.search(a.reason or "")
        if m:
            kind, name, ns = m.groups()
            used.add(f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}")
    return used


def _window(reads: Sequence[SecretAccess]) -> str:
    firsts = [a.first for a in reads if a.first]
    lasts = [a.last for a in reads if a.last]
    return f"{min(firsts)} .. {max(lasts)}" if firsts and lasts else "the whole log"


def least_privilege(rbac: Rbac, grants: Sequence[Grant], access: AuditLogResult) -> tuple[list[dict[str, Any]],
                                                                                         list[Finding]]:
    """Per-ServiceAccount advice (JSON-shaped, with ``yaml``) and ``unused-permission`` findings.

    ``grants`` are the report's RBAC grants in scope (cluster and per namespace).
    """
    reads = access.accesses
    used = used_bindings(rbac, reads, access.groups)
    window = _window(reads)
    needs: dict[tuple[str, str], _Need] = {}
    for a in reads:
        sa = sa_of(a.user)
        if sa is None:
            continue
        need = needs.setdefault(sa, _Need())
        where = f"{a.namespace or '*'}/{a.name or '*'}"
        if a.decision == "forbid":
            if f"{a.verb} {where}" not in need.refused:
                need.refused.append(f"{a.verb} {where}")
            continue
        need.requests += a.count
        if a.name:
            need.named.setdefault(a.namespace, {}).setdefault(a.verb, set()).add(a.name)
        else:
            need.collection.setdefault(a.namespace, set()).add(a.verb)

    # Bindings that grant Secret read (not escalations: those serve other work too).
    granting: dict[str, set[Subject]] = {}
    grant_text: dict[str, str] = {}
    for g in grants:
        if g.how != HOW_RBAC or is_system(g.subject):
            continue
        for step in g.via:
            if step.binding:
                granting.setdefault(step.binding, set()).add(g.subject)
                names = ",".join(g.resource_names) if g.resource_names else "every Secret"
                where = "every namespace" if g.namespace is None else f"namespace {g.namespace}"
                grant_text[step.binding] = f"{','.join(g.verbs)} on {names} in {where}"
    findings = []
    for binding in sorted(set(granting) - used):
        subjects = ", ".join(sorted(str(s) for s in granting[binding]))
        findings.append(Finding(FINDING_UNUSED_PERMISSION, "warning", binding, "subjects",
                                f"grants {subjects} Secret read ({grant_text[binding]}), and no Secret read in "
                                f"the audit log window ({window}) went through it: remove it, or narrow it"))

    unused_by_sa: dict[tuple[str, str], list[str]] = {}
    for binding, subs in granting.items():
        for s in subs:
            if s.kind == "ServiceAccount":
                bucket = unused_by_sa.setdefault((s.namespace or "", s.name), [])
                if binding not in used:
                    bucket.append(binding)
    out = []
    for ns, name in sorted(set(needs) | set(unused_by_sa)):
        need = needs.get((ns, name), _Need())
        out.append({"serviceAccount": f"{ns}/{name}", "requests": need.requests, "window": window,
                    "needs": _role_docs(ns, name, need), "unusedBindings": sorted(unused_by_sa.get((ns, name), [])),
                    "refused": need.refused})
    return out, findings


def advice_text(advice: Mapping[str, Any]) -> str:
    """One ServiceAccount's advice: why, as comments, then its Role and binding as YAML."""
    header = [f"ServiceAccount {advice['serviceAccount']}: {advice['requests']} Secret reads in the audit log "
              f"window ({advice['window']})"]
    if not advice["needs"]:
        header.append("it read no Secret: it needs no Secret access")
    header += [f"never used for Secret read: {b}" for b in advice["unusedBindings"]]
    header += [f"refused (RBAC already denies it): {r}" for r in advice["refused"]]
    text = "".join(f"# {h}\n" for h in header)
    if advice["needs"]:
        text += yaml.dump_all(advice["needs"], Dumper=_Dumper, sort_keys=False, default_flow_style=None)
    return text


def _rules(named: Mapping[str, set[str]], collection: set[str]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    by_names: dict[tuple[str, ...], set[str]] = {}
    for verb, names_read in named.items():
        if verb in collection:
            continue  # the collection rule covers it
        by_names.setdefault(tuple(sorted(names_read)), set()).add(verb)
    for names, verbs in sorted(by_names.items()):
        rules.append({"apiGroups": [""], "resources": ["secrets"], "resourceNames": list(names),
                      "verbs": sorted(verbs)})
    if collection:
        rules.append({"apiGroups": [""], "resources": ["secrets"], "verbs": sorted(collection)})
    return rules


def _role_docs(sa_ns: str, sa: str, need: _Need) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    role_name = f"{sa}-secret-reader"
    subject = {"kind": "ServiceAccount", "name": sa, "namespace": sa_ns}
    for ns in sorted(set(need.named) | set(need.collection), key=lambda n: n or ""):
        rules = _rules(need.named.get(ns, {}), need.collection.get(ns, set()))
        if ns is None:
            name = f"{sa_ns}-{role_name}"
            docs.append({"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": name},
                         "rules": rules})
            docs.append({"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": name},
                         "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
                         "subjects": [subject]})
            continue
        name = role_name if ns == sa_ns else f"{sa_ns}-{role_name}"
        docs.append({"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns},
                     "rules": rules})
        docs.append({"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
                     "metadata": {"name": name, "namespace": ns},
                     "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": name}, "subjects": [subject]})
    return docs


def advice_yaml(advice: Sequence[Mapping[str, Any]]) -> str:
    """Every ServiceAccount's advice as one multi-document YAML stream (for ``kubectl apply -f -``)."""
    return "---\n".join(advice_text(a) for a in advice)
