"""Who *did* read Secrets: get/list/watch on ``secrets`` in API server audit logs.

Reads ``audit.k8s.io/v1`` Events, one JSON object per line (the log backend's
``--audit-log-format=json``; an ``EventList`` per line, as webhook backends batch them, works
too), streaming, so a log of any size needs constant memory per distinct reader. From each
event only the user, impersonated user, verb, namespace, name, decision, status code,
user agent and time are read; ``requestObject``/``responseObject`` are never looked at, and
a line that does not parse is reported by its line number, never echoed (it may hold a body).

An event whose level is ``Request`` or ``RequestResponse`` on Secrets means the audit
policy writes Secret values into the log: that is counted and reported as a finding.
Stages of one request (``ResponseStarted`` and ``ResponseComplete`` of a watch) count once,
by ``auditID``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .inventory import Problem

READ_VERBS: Final = frozenset({"get", "list", "watch"})
_BODY_LEVELS: Final = frozenset({"Request", "RequestResponse"})
_MAX_PROBLEMS: Final = 20


@dataclass(frozen=True, slots=True)
class SecretAccess:
    """Reads of one Secret (or collection: ``name`` None) by one user with one verb and outcome."""

    user: str
    verb: str
    namespace: str | None  # None: across all namespaces
    name: str | None  # None: the whole collection (list/watch)
    decision: str  # allow | forbid | unknown
    code: int | None
    count: int
    first: str | None
    last: str | None
    #: The authenticated user when ``user`` was impersonated.
    impersonator: str | None = None
    #: The authorizer's reason on the last event (e.g. ``RBAC: allowed by ClusterRoleBinding ...``).
    reason: str | None = None
    user_agent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "impersonator": self.impersonator, "verb": self.verb,
                "namespace": self.namespace, "name": self.name, "decision": self.decision, "code": self.code,
                "count": self.count, "first": self.first, "last": self.last, "reason": self.reason,
                "userAgent": self.user_agent}


@dataclass
class AuditLogResult:
    accesses: list[SecretAccess] = field(default_factory=list)
    lines: int = 0
    #: Secret read requests counted (after the scope filter).
    events: int = 0
    #: Events on Secrets logged with bodies (policy level Request/RequestResponse).
    body_events: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Groups the authenticator gave each user (for RBAC group subjects), as the log recorded them.
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class _Acc:
    count: int = 0
    first: str | None = None
    last: str | None = None
    code: int | None = None
    reason: str | None = None
    user_agent: str | None = None


def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, dict) else {}


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def read_audit_logs(paths: Iterable[Path], *, namespaces: set[str] | None = None,
                    secret: str | None = None) -> AuditLogResult:
    """Secret reads in the logs at ``paths``, within ``namespaces`` (None: all) and ``secret``.

    Collection reads (``list``/``watch`` without a name) count for every Secret they return,
    and cluster-wide ones for every namespace. Raises ``OSError`` when a file cannot be read.
    """
    result = AuditLogResult()
    acc: dict[tuple[str, str | None, str, str | None, str | None, str], _Acc] = {}
    seen: set[str] = set()
    bad = 0
    for path in paths:
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                result.lines += 1
                if b'"secrets"' not in raw and raw.lstrip()[:1] in (b"{", b""):
                    continue  # blank, or an event about something else: most of a log, never decoded
                try:
                    doc = json.loads(raw)
                except ValueError:
                    bad += 1
                    if bad <= _MAX_PROBLEMS:
                        result.problems.append(Problem(f"{path}:{lineno}", "", "not a JSON audit event"))
                    continue
                events = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "EventList" else [doc]
                for ev in events if isinstance(events, list) else ():
                    if isinstance(ev, dict):
                        _add(ev, acc, seen, result, namespaces, secret)
    if bad > _MAX_PROBLEMS:
        result.problems.append(Problem("audit log", "", f"{bad - _MAX_PROBLEMS} more lines are not JSON audit events"))
    for (user, imp, verb, ns, name, decision), a in acc.items():
        result.accesses.append(SecretAccess(user, verb, ns, name, decision, a.code, a.count, a.first, a.last,
                                            imp, a.reason, a.user_agent))
    result.accesses.sort(key=lambda x: (x.namespace or "", x.name or "", x.user, x.verb, x.decision))
    return result


def _add(ev: Mapping[str, Any], acc: dict[tuple[str, str | None, str, str | None, str | None, str], _Acc],
         seen: set[str], result: AuditLogResult, namespaces: set[str] | None, secret: str | None) -> None:
    ref = ev.get("objectRef")
    if not isinstance(ref, dict) or ref.get("resource") != "secrets" or ref.get("apiGroup") not in (None, ""):
        return
    if ev.get("level") in _BODY_LEVELS or "requestObject" in ev or "responseObject" in ev:
        result.body_events += 1
    verb = ev.get("verb")
    if verb not in READ_VERBS or ref.get("subresource"):
        return
    ns, name = _str(ref.get("namespace")), _str(ref.get("name"))
    if namespaces is not None and ns is not None and ns not in namespaces:
        return
    if secret is not None and name is not None and name != secret:
        return
    audit_id = _str(ev.get("auditID"))
    if audit_id is not None:
        if audit_id in seen:
            return
        seen.add(audit_id)
    user_block = _map(ev.get("user"))
    user = _str(user_block.get("username")) or "<unknown>"
    imp_block = ev.get("impersonatedUser")
    impersonator = None
    groups_raw = user_block.get("groups")
    if isinstance(imp_block, dict) and _str(imp_block.get("username")):
        impersonator, user = user, str(imp_block["username"])
        groups_raw = imp_block.get("groups")
    if isinstance(groups_raw, list) and user not in result.groups:
        result.groups[user] = tuple(str(g) for g in groups_raw if isinstance(g, str))
    annotations = _map(ev.get("annotations"))
    status = _map(ev.get("responseStatus"))
    code = status.get("code") if isinstance(status.get("code"), int) else None
    decision = _str(annotations.get("authorization.k8s.io/decision"))
    if decision is None:
        decision = "unknown" if code is None else ("forbid" if code in (401, 403) else "allow")
    when = _str(ev.get("requestReceivedTimestamp")) or _str(ev.get("stageTimestamp"))
    a = acc.setdefault((user, impersonator, str(verb), ns, name, decision), _Acc())
    a.count += 1
    result.events += 1
    if when is not None:
        a.first = when if a.first is None or when < a.first else a.first
        a.last = when if a.last is None or when > a.last else a.last
    a.code = code if code is not None else a.code
    a.reason = _str(annotations.get("authorization.k8s.io/reason")) or a.reason
    a.user_agent = _str(ev.get("userAgent")) or a.user_agent
