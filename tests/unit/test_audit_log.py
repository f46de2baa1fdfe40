"""Who did read Secrets: the audit-log reader counts get/list/watch on secrets per user and
outcome, never reads or echoes bodies, and flags an audit policy that logs Secret values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from secretsync.audit import read_audit_logs


def event(verb: str, user: str, ns: str | None = "app", name: str | None = "db", *, code: int = 200,
          audit_id: str | None = None, stage: str = "ResponseComplete", resource: str = "secrets",
          ts: str = "2024-05-01T10:00:00.000000Z", **extra: Any) -> dict[str, Any]:
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if ns:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    return {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "stage": stage,
            "auditID": audit_id or f"{verb}-{user}-{ns}-{name}-{ts}", "verb": verb,
            "user": {"username": user, "groups": ["system:authenticated"]}, "objectRef": ref,
            "responseStatus": {"metadata": {}, "code": code}, "requestReceivedTimestamp": ts,
            "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid",
                            "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"b/app\""}, **extra}


def write(tmp_path: Path, events: list[Any], name: str = "audit.log") -> Path:
    path = tmp_path / name
    path.write_text("".join((json.dumps(e) if not isinstance(e, str) else e) + "\n" for e in events))
    return path


def test_reads_are_counted_per_user_verb_secret_and_decision(tmp_path: Path) -> None:
    log = write(tmp_path, [
        event("get", "alice", ts="2024-05-01T10:00:00Z"),
        event("get", "alice", ts="2024-05-01T11:00:00Z"),
        event("get", "alice", ts="2024-05-01T09:00:00Z"),
        event("list", "bob", name=None),
        event("get", "mallory", code=403),
        event("create", "alice"),  # a write, not a read
        event("get", "alice", resource="configmaps"),
        event("get", "alice", ns="other"),
    ])
    result = read_audit_logs([log], namespaces={"app"})
    rows = {(a.user, a.verb, a.name, a.decision): a for a in result.accesses}
    assert set(rows) == {("alice", "get", "db", "allow"), ("bob", "list", None, "allow"),
                         ("mallory", "get", "db", "forbid")}
    alice = rows[("alice", "get", "db", "allow")]
    assert (alice.count, alice.first, alice.last) == (3, "2024-05-01T09:00:00Z", "2024-05-01T11:00:00Z")
    assert alice.reason == 'RBAC: allowed by RoleBinding "b/app"'
    assert result.events == 5 and result.body_events == 0


def test_stages_of_one_request_count_once(tmp_path: Path) -> None:
    log = write(tmp_path, [event("watch", "ctrl", name=None, audit_id="w1", stage="ResponseStarted"),
                           event("watch", "ctrl", name=None, audit_id="w1", stage="ResponseComplete")])
    (a,) = read_audit_logs([log]).accesses
    assert a.count == 1


def test_impersonated_reads_name_both_users(tmp_path: Path) -> None:
    log = write(tmp_path, [event("get", "admin", impersonatedUser={"username": "system:serviceaccount:app:ci"})])
    (a,) = read_audit_logs([log]).accesses
    assert (a.user, a.impersonator) == ("system:serviceaccount:app:ci", "admin")


def test_secret_filter_keeps_that_secret_and_collection_reads(tmp_path: Path) -> None:
    log = write(tmp_path, [event("get", "a", name="db"), event("get", "b", name="cache"),
                           event("list", "c", ns=None, name=None)])
    assert sorted(a.user for a in read_audit_logs([log], secret="db").accesses) == ["a", "c"]


def test_bad_lines_are_reported_by_number_and_never_echoed(tmp_path: Path, canary: str) -> None:
    log = write(tmp_path, [f"not json {canary}", event("get", "alice")])
    result = read_audit_logs([log])
    assert len(result.accesses) == 1
    (p,) = result.problems
    assert p.object.endswith("audit.log:1") and canary not in str(p)


def test_event_lists_are_read(tmp_path: Path) -> None:
    log = write(tmp_path, [{"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                            "items": [event("get", "a"), event("get", "b")]}])
    assert sorted(a.user for a in read_audit_logs([log]).accesses) == ["a", "b"]


def test_policy_logging_secret_bodies_is_flagged_and_bodies_stay_unread(tmp_path: Path, canary: str) -> None:
    leaky = event("get", "alice", level="RequestResponse",
                  responseObject={"kind": "Secret", "data": {"password": canary}})
    log = write(tmp_path, [leaky])
    result = read_audit_logs([log])
    assert result.body_events == 1
    assert canary not in repr(result)
