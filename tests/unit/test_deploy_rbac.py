"""The chart's RBAC is exactly what the controller's code calls: nothing missing, nothing extra.

The calls are read from the code (tests/harness/kubecalls.py parses secretsync/controller/ for
every KubeApi call), the rules from the chart as Helm renders it. A new call without a rule
fails here naming the rule to add and the line that needs it; a rule no code needs fails naming
the rule to drop. tests/integration/test_deploy_identity.py then runs the controller as the
chart's ServiceAccount on a real apiserver.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.harness.helm import by_kind, render
from tests.harness.kubecalls import NOT_CALLS, VERBS, Call, Permission, controller_calls

pytest.importorskip("helm_python", reason="helm-python-sdk (test extra) renders the chart")

#: Every optional permission switched on: the chart at its widest.
ALL_FEATURES = {"rbac": {"configMapTemplates": True, "serviceAccountTokens": True, "clusterExternalSecrets": True},
                "rollout": {"enabled": True}, "rotation": {"enabled": True, "jobHooks": True},
                "pushSecrets": {"enabled": True}}
NAMESPACED = {"rbac": {"clusterWide": False, "configMapTemplates": True, "serviceAccountTokens": True},
              "controller": {"watchNamespaces": ["app", "shop"]},
              "rollout": {"enabled": True}, "rotation": {"enabled": True, "jobHooks": True},
              "pushSecrets": {"enabled": True}}

#: Call sites that exist only for a cluster-scoped kind (ClusterExternalSecret fan-out): not
#: needed, and not grantable, in namespaced-only mode.
CLUSTER_ONLY_CODE = ("secretsync/controller/clusterexternal.py",)


@pytest.fixture(scope="module")
def calls() -> list[Call]:
    found, unresolved = controller_calls()
    assert not unresolved, ("cannot tell which resource these calls touch; pass a Resource constant "
                            "(or hand one through a constructor parameter):\n  " + "\n  ".join(unresolved))
    assert found, "no KubeApi call found in secretsync/controller/: the analysis is broken"
    return found


def _granted(docs: list[dict[str, Any]], kinds: tuple[str, ...] = ("ClusterRole", "Role")) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    for role in (r for kind in kinds for r in by_kind(docs, kind)):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], (role["metadata"], rule)
            out |= {(g, res, v) for g in rule["apiGroups"] for res in rule["resources"] for v in rule["verbs"]}
    return out


def _key(p: Permission) -> tuple[str, str, str]:
    return (p.group, p.resource, p.verb)


def _compare(needed: dict[tuple[str, str, str], list[str]], granted: set[tuple[str, str, str]]) -> None:
    missing = {k: v for k, v in needed.items() if k not in granted}
    extra = granted - set(needed)
    lines = [f"missing rule: apiGroups [{g!r}] resources [{r}] verbs [{v}]  needed by {', '.join(sorted(w))}"
             for (g, r, v), w in sorted(missing.items())]
    lines += [f"rule grants what no code calls: apiGroups [{g!r}] resources [{r}] verbs [{v}]"
              for g, r, v in sorted(extra)]
    assert not lines, "\n".join(lines)


def _needed(calls: list[Call], *, skip_cluster: bool = False) -> dict[tuple[str, str, str], list[str]]:
    out: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for c in calls:
        if skip_cluster and (c.permission.cluster_scoped or c.where.startswith(CLUSTER_ONLY_CODE)):
            continue
        out[_key(c.permission)].append(c.where)
    return out


def test_the_code_analysis_sees_the_calls_we_know_about(calls: list[Call]) -> None:
    """A guard on the analysis itself: a few calls every version of the controller makes."""
    keys = {_key(c.permission) for c in calls}
    assert {("", "secrets", "create"), ("", "secrets", "watch"), ("coordination.k8s.io", "leases", "update"),
            ("secretsync.io", "externalsecrets/status", "patch"), ("", "events", "create")} <= keys


def test_every_kubeapi_method_is_mapped_to_an_rbac_verb() -> None:
    """A new KubeApi method (say, server-side apply) must be taught to the analysis, not missed."""
    from secretsync.kube.client import KubeApi

    public = {name for name in vars(KubeApi) if not name.startswith("_")}
    assert public <= set(VERBS) | NOT_CALLS, public - set(VERBS) - NOT_CALLS


def test_cluster_wide_rules_are_exactly_the_calls_the_code_makes(calls: list[Call]) -> None:
    _compare(_needed(calls), _granted(render(ALL_FEATURES)))


def test_namespaced_rules_are_the_calls_minus_cluster_scoped_kinds(calls: list[Call]) -> None:
    docs = render(NAMESPACED)
    assert not by_kind(docs, "ClusterRole")
    _compare(_needed(calls, skip_cluster=True), _granted(docs))


def test_each_namespaced_role_grants_the_same_rules() -> None:
    roles = [r for r in by_kind(render(NAMESPACED), "Role") if r["metadata"]["name"].endswith("-controller")]
    assert {r["metadata"]["namespace"] for r in roles} == {"app", "shop"}
    assert roles[0]["rules"] == roles[1]["rules"]


@pytest.mark.parametrize(("flag", "dropped"), [
    ("configMapTemplates", {("", "configmaps", "get")}),
    ("serviceAccountTokens", {("", "serviceaccounts/token", "create"), ("", "serviceaccounts", "get")}),
    ("clusterExternalSecrets",
     {("secretsync.io", "externalsecrets", v) for v in ("get", "create", "update", "delete")}),
])
def test_optional_features_take_away_exactly_their_rules(flag: str, dropped: set[tuple[str, str, str]]) -> None:
    full = _granted(render(ALL_FEATURES))
    off = _granted(render({**ALL_FEATURES, "rbac": {**ALL_FEATURES["rbac"], flag: False}}))
    assert full - off == dropped


JOB_HOOK_RULES = {("batch", "jobs", v) for v in ("get", "list", "create", "delete")} | {("", "podtemplates", "get")}


def test_job_hooks_are_opt_in_within_rotation() -> None:
    full = _granted(render(ALL_FEATURES))
    off = _granted(render({**ALL_FEATURES, "rotation": {"enabled": True, "jobHooks": False}}))
    assert full - off == JOB_HOOK_RULES


@pytest.mark.parametrize(("feature", "dropped"), [
    ("rollout", {(g, r, v) for g, r in (("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"),
                                        ("argoproj.io", "rollouts")) for v in ("list", "watch", "patch")}),
    ("rotation", {("secretsync.io", "secretrotations", v) for v in ("list", "watch")}
     | {("secretsync.io", "secretrotations/status", "patch")} | JOB_HOOK_RULES),
    ("pushSecrets", {("secretsync.io", "pushsecrets", v) for v in ("get", "list", "watch", "create", "patch", "delete")}
     | {("secretsync.io", "pushsecrets/status", "patch"), ("secretsync.io", "clusterpushsecrets", "list"),
        ("secretsync.io", "clusterpushsecrets", "watch"), ("secretsync.io", "clusterpushsecrets/status", "patch")}),
])
def test_opt_in_features_add_exactly_their_rules(feature: str, dropped: set[tuple[str, str, str]]) -> None:
    full = _granted(render(ALL_FEATURES))
    off = _granted(render({**ALL_FEATURES, feature: {"enabled": False}}))
    assert full - off == dropped


def test_the_controllers_own_namespace_role_is_narrowed_by_name(calls: list[Call]) -> None:
    """Leases and the hash-key Secret: only create is unnamed (a create's name is in its body)."""
    (role,) = [r for r in by_kind(render(), "Role") if r["metadata"]["name"].endswith("-leader-election")]
    for rule in role["rules"]:
        assert rule.get("resourceNames") or rule["verbs"] == ["create"], rule
    named = {(r["resources"][0], tuple(r["resourceNames"])) for r in role["rules"] if r.get("resourceNames")}
    assert named == {("leases", ("secretsync-controller",)), ("secrets", ("secretsync-controller-hash-key",))}


def test_nothing_cluster_wide_touches_leases_and_no_wildcards() -> None:
    for docs in (render(ALL_FEATURES), render(NAMESPACED)):
        cluster = _granted(docs, ("ClusterRole",))
        assert not {k for k in cluster if k[1] == "leases"}
        _granted(docs)  # asserts no "*"


def test_every_rule_in_the_templates_names_the_code_that_needs_it() -> None:
    """A rule without a comment pointing at secretsync/controller/ code is a rule nobody can check."""
    from tests.harness.helm import CHART

    for name in ("_helpers.tpl", "rbac.yaml"):
        lines = (CHART / "templates" / name).read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("- apiGroups:"):
                above = [ln.strip() for ln in lines[max(0, i - 8):i]]
                comments = [ln for ln in above if ln.startswith("#")]
                assert any(".py" in c for c in comments), f"{name}:{i + 1}: rule without a code path comment"
