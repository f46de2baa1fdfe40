"""RBAC evaluation for "who could read Secrets": matching rules as the Kubernetes RBAC
authorizer does (wildcards, resourceNames, subresources, aggregation, subjects and their
implicit groups) and the escalation paths that imply Secret read, each with its reason."""

from __future__ import annotations

from typing import Any

import pytest

from secretsync.audit import Scope, audit, build_inventory
from secretsync.audit.inventory import PolicyRule
from secretsync.audit.rbac import Grant, Rbac, rule_allows

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC = f"{RBAC_GROUP}/v1"
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:app", "system:authenticated"]


def role(name: str, rules: list[dict[str, Any]], ns: str | None = "app", labels: dict[str, str] | None = None,
         aggregate: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "labels": labels or {}}
    if ns:
        md["namespace"] = ns
    obj: dict[str, Any] = {"apiVersion": RBAC, "kind": "Role" if ns else "ClusterRole", "metadata": md,
                           "rules": rules}
    if aggregate is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": aggregate}
    return obj


def binding(name: str, role_kind: str, role_name: str, subjects: list[dict[str, Any]],
            ns: str | None = "app") -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": RBAC, "kind": "RoleBinding" if ns else "ClusterRoleBinding", "metadata": md,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": subjects}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def group(name: str) -> dict[str, str]:
    return {"kind": "Group", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def sa(name: str, ns: str | None = None) -> dict[str, str]:
    d = {"kind": "ServiceAccount", "name": name}
    if ns:
        d["namespace"] = ns
    return d


def rbac(*objs: dict[str, Any], builtin: bool = False) -> Rbac:
    inv = build_inventory(objs)
    assert not inv.problems, inv.problems
    return Rbac(inv.roles, inv.bindings, builtin_roles=builtin)


def read_secrets(**extra: Any) -> dict[str, Any]:
    return {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["secrets"], **extra}


def subjects(grants: list[Grant], how: str | None = None) -> set[str]:
    return {str(g.subject) for g in grants if how is None or g.how == how}


# ---------------------------------------------------------------------- rule matching
@pytest.mark.parametrize(("rule", "request_", "allowed"), [
    ({"verbs": ("get",), "api_groups": ("",), "resources": ("secrets",)}, ("get", "", "secrets", "x"), True),
    ({"verbs": ("get",), "api_groups": ("",), "resources": ("secrets",)}, ("list", "", "secrets", None), False),
    ({"verbs": ("*",), "api_groups": ("",), "resources": ("secrets",)}, ("watch", "", "secrets", None), True),
    ({"verbs": ("get",), "api_groups": ("*",), "resources": ("*",)}, ("get", "", "secrets", "x"), True),
    ({"verbs": ("get",), "api_groups": ("apps",), "resources": ("secrets",)}, ("get", "", "secrets", "x"), False),
    ({"verbs": ("get",), "api_groups": ("",), "resources": ("secrets",), "resource_names": ("a",)},
     ("get", "", "secrets", "a"), True),
    ({"verbs": ("get",), "api_groups": ("",), "resources": ("secrets",), "resource_names": ("a",)},
     ("get", "", "secrets", "b"), False),
    ({"verbs": ("list",), "api_groups": ("",), "resources": ("secrets",), "resource_names": ("a",)},
     ("list", "", "secrets", None), False),
    ({"verbs": ("create",), "api_groups": ("",), "resources": ("pods",)}, ("create", "", "pods/exec", None), False),
    ({"verbs": ("create",), "api_groups": ("",), "resources": ("*/exec",)}, ("create", "", "pods/exec", None), True),
    ({"verbs": ("create",), "api_groups": ("",), "resources": ("*",)}, ("create", "", "pods/exec", None), True),
    ({"verbs": ("get",), "api_groups": ("",), "resources": ("secrets/status",)}, ("get", "", "secrets", "x"), False),
    ({"verbs": ("get",), "non_resource_urls": ("*",)}, ("get", "", "secrets", "x"), False),
])
def test_rule_matching(rule: dict[str, Any], request_: tuple[str, str, str, str | None], allowed: bool) -> None:
    assert rule_allows(PolicyRule(0, **rule), *request_) is allowed


# ---------------------------------------------------------------------- subjects and scopes
def test_rolebinding_grants_only_in_its_namespace() -> None:
    r = rbac(role("reader", [read_secrets()], ns=None), binding("b", "ClusterRole", "reader", [user("alice")]))
    assert r.allowed("alice", [], "get", "", "secrets", "app", "x")
    assert not r.allowed("alice", [], "get", "", "secrets", "other", "x")
    assert subjects(r.secret_readers("app"), "rbac") == {"User/alice"}
    assert subjects(r.secret_readers("other"), "rbac") == set()


def test_clusterrolebinding_grants_everywhere_and_is_listed_once_at_cluster_scope() -> None:
    r = rbac(role("reader", [read_secrets()], ns=None), binding("b", "ClusterRole", "reader", [group("ops")], ns=None))
    assert r.allowed("bob", ["ops"], "list", "", "secrets", "anything")
    assert subjects(r.secret_readers(None), "rbac") == {"Group/ops"}
    assert subjects(r.secret_readers("app")) == set()


def test_service_account_subject_defaults_to_the_binding_namespace_and_matches_its_user() -> None:
    r = rbac(role("reader", [read_secrets()]), binding("b", "Role", "reader", [sa("ci")]))
    (g,) = r.secret_readers("app")
    assert str(g.subject) == "ServiceAccount/app/ci"
    assert r.allowed("system:serviceaccount:app:ci", SA_GROUPS, "get", "", "secrets", "app", "x")
    assert not r.allowed("system:serviceaccount:other:ci", [], "get", "", "secrets", "app", "x")


def test_service_account_groups_match_group_subjects() -> None:
    r = rbac(role("reader", [read_secrets()]), binding("b", "Role", "reader", [group("system:serviceaccounts:app")]))
    assert r.allowed("system:serviceaccount:app:anyone", SA_GROUPS, "get", "", "secrets", "app", "x")


def test_system_masters_reads_everything_without_rbac() -> None:
    r = rbac()
    assert r.allowed("root", ["system:masters"], "get", "", "secrets", "app", "x")
    (g,) = r.secret_readers(None)
    assert (str(g.subject), g.how) == ("Group/system:masters", "superuser")


def test_resource_names_restrict_the_grant_to_those_secrets() -> None:
    r = rbac(role("one", [read_secrets(resourceNames=["db"])]), binding("b", "Role", "one", [user("alice")]))
    (g,) = r.secret_readers("app")
    assert g.resource_names == ("db",) and g.covers("db") and not g.covers("other")
    assert r.allowed("alice", [], "get", "", "secrets", "app", "db")
    assert not r.allowed("alice", [], "get", "", "secrets", "app", "other")
    assert not r.allowed("alice", [], "list", "", "secrets", "app")


def test_wildcard_everything_is_a_direct_read_with_its_rule() -> None:
    r = rbac(role("god", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}], ns=None),
             binding("b", "ClusterRole", "god", [user("ci-bot")], ns=None))
    grants = [g for g in r.secret_readers(None) if str(g.subject) == "User/ci-bot"]
    assert [(g.how, g.verbs) for g in grants] == [("rbac", ("get", "list", "watch"))]
    (step,) = grants[0].via
    assert (step.binding, step.role, step.rule, step.rule_text) == (
        "ClusterRoleBinding/b", "ClusterRole/god", 0, "verbs=* apiGroups=* resources=*")


def test_reason_path_names_binding_role_and_rule() -> None:
    r = rbac(role("mixed", [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}, read_secrets()]),
             binding("devs", "Role", "mixed", [group("devs")]))
    (g,) = r.secret_readers("app")
    assert str(g.via[0]) == "RoleBinding/app/devs -> Role/app/mixed rules[1]"


def test_missing_role_grants_nothing_and_is_reported() -> None:
    r = rbac(binding("b", "ClusterRole", "nope", [user("alice")]))
    assert r.secret_readers("app") == []
    assert [str(p) for p in r.problems] == ["RoleBinding/app/b: roleRef: ClusterRole/nope not found: "
                                            "the binding grants nothing"]


def test_builtin_roles_resolve_for_manifest_trees() -> None:
    objs = (binding("e", "ClusterRole", "edit", [user("dev")]), binding("v", "ClusterRole", "view", [user("viewer")]))
    assert subjects(rbac(*objs, builtin=True).secret_readers("app"), "rbac") == {"User/dev"}
    assert subjects(rbac(*objs).secret_readers("app")) == set()


# ---------------------------------------------------------------------- aggregation
def test_aggregated_cluster_role_holds_the_rules_of_the_roles_it_selects() -> None:
    r = rbac(
        role("agg", [], ns=None, aggregate=[{"matchLabels": {"example.com/aggregate-to-agg": "true"}}]),
        role("piece", [read_secrets()], ns=None, labels={"example.com/aggregate-to-agg": "true"}),
        role("unrelated", [read_secrets()], ns=None),
        binding("b", "ClusterRole", "agg", [user("alice")]),
    )
    (g,) = r.secret_readers("app")
    assert str(g.subject) == "User/alice"
    assert g.via[0].aggregated_from == "ClusterRole/piece"
    assert r.allowed("alice", [], "get", "", "secrets", "app", "x")


def test_aggregation_is_transitive_and_survives_cycles_and_live_copies() -> None:
    r = rbac(
        role("top", [read_secrets()], ns=None, aggregate=[{"matchLabels": {"l": "mid"}}]),  # a live copy of the rule
        role("mid", [], ns=None, labels={"l": "mid"},
             aggregate=[{"matchExpressions": [{"key": "l", "operator": "In", "values": ["leaf", "mid"]}]}]),
        role("leaf", [read_secrets()], ns=None, labels={"l": "leaf"}),
        binding("b", "ClusterRole", "top", [user("alice")]),
    )
    rules = r.rules_of(next(k for k in r.roles if k.name == "top"))
    assert [origin for _rule, origin in rules] == ["ClusterRole/leaf"]


# ---------------------------------------------------------------------- escalations
@pytest.mark.parametrize(("rule", "reason_start"), [
    ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}, "create pods"),
    ({"verbs": ["patch"], "apiGroups": ["apps"], "resources": ["deployments"]}, "create or change workloads"),
    ({"verbs": ["create"], "apiGroups": ["batch"], "resources": ["cronjobs"]}, "create or change workloads"),
    ({"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]}, "exec into pods"),
    ({"verbs": ["create"], "apiGroups": [""], "resources": ["serviceaccounts/token"]}, "create ServiceAccount tokens"),
    ({"verbs": ["impersonate"], "apiGroups": [""], "resources": ["serviceaccounts"]}, "impersonate ServiceAccounts"),
    ({"verbs": ["bind"], "apiGroups": [RBAC_GROUP], "resources": ["clusterroles"]}, "bind or escalate"),
    ({"verbs": ["escalate"], "apiGroups": [RBAC_GROUP], "resources": ["roles"]}, "bind or escalate"),
])
def test_namespaced_escalations_imply_secret_read(rule: dict[str, Any], reason_start: str) -> None:
    r = rbac(role("r", [rule]), binding("b", "Role", "r", [user("mallory")]))
    (g,) = r.secret_readers("app")
    assert (str(g.subject), g.how) == ("User/mallory", "escalation")
    assert g.reason.startswith(reason_start)
    assert g.via[0].rule == 0


@pytest.mark.parametrize(("rule", "reason_start"), [
    ({"verbs": ["impersonate"], "apiGroups": [""], "resources": ["users"]}, "impersonate users or groups"),
    ({"verbs": ["get"], "apiGroups": [""], "resources": ["nodes/proxy"]}, "nodes/proxy"),
])
def test_cluster_scoped_escalations_count_only_from_cluster_role_bindings(rule: dict[str, Any],
                                                                          reason_start: str) -> None:
    r = rbac(role("r", [rule], ns=None), binding("crb", "ClusterRole", "r", [user("mallory")], ns=None),
             binding("rb", "ClusterRole", "r", [user("eve")]))
    grants = [g for g in r.secret_readers(None) if g.how == "escalation"]
    assert [(str(g.subject), g.reason.startswith(reason_start)) for g in grants] == [("User/mallory", True)]
    assert not [g for g in r.secret_readers("app") if str(g.subject) == "User/eve"]


def test_direct_readers_are_not_listed_again_as_escalations() -> None:
    r = rbac(role("admin", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
             binding("b", "Role", "admin", [user("alice")]))
    assert [(str(g.subject), g.how) for g in r.secret_readers("app")] == [("User/alice", "rbac")]


# ---------------------------------------------------------------------- findings
def test_everyone_groups_and_cluster_wide_readers_are_broad_reader_findings() -> None:
    inv = build_inventory([
        role("reader", [read_secrets()], ns=None),
        binding("oops", "ClusterRole", "reader", [group("system:authenticated")]),
        binding("ci", "ClusterRole", "reader", [sa("ci", "build")], ns=None),
        binding("ctrl", "ClusterRole", "reader", [sa("expand-controller", "kube-system")], ns=None),
    ])
    doc = audit(inv, Scope(frozenset({"app"})), who_can=True)
    got = sorted((f["severity"], f["object"]) for f in doc["findings"] if f["type"] == "broad-reader")
    assert got == [("error", "RoleBinding/app/oops"), ("warning", "ClusterRoleBinding/ci")]


def test_secret_scope_keeps_only_grants_covering_that_secret() -> None:
    inv = build_inventory([
        role("one", [read_secrets(resourceNames=["db"])]), binding("b1", "Role", "one", [user("alice")]),
        role("other", [read_secrets(resourceNames=["cache"])]), binding("b2", "Role", "other", [user("bob")]),
    ])
    doc = audit(inv, Scope(frozenset({"app"}), secret="db"), who_can=True)
    assert [g["subject"]["name"] for g in doc["rbac"]["namespaces"]["app"]] == ["alice"]
