"""The rollout restart permissions are opt-in, and work in namespaced-only mode (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.helm import by_kind as _by_kind
from tests.harness.helm import render as render_chart

pytest.importorskip("helm_python", reason="helm-python-sdk (test extra) renders the chart")

NAMESPACED_EXAMPLE = {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app"]}}


def _rules(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for role in _by_kind(docs, kind) for r in role["rules"]]


def _verbs(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {v for r in rules if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}

WORKLOADS = ("deployments", "statefulsets", "daemonsets")


def _args(docs: list[dict[str, Any]]) -> list[str]:
    (dep,) = _by_kind(docs, "Deployment")
    args: list[str] = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_by_default_the_controller_can_neither_see_nor_restart_workloads() -> None:
    docs = render_chart()
    rules = _rules(docs, "ClusterRole")
    for plural in WORKLOADS:
        assert not _verbs(rules, "apps", plural)
    assert not _verbs(rules, "argoproj.io", "rollouts")
    assert "--rollout" not in _args(docs) and "--rotation" not in _args(docs)


def test_rollout_enabled_grants_watch_and_patch_on_workload_kinds_only() -> None:
    docs = render_chart({"rollout": {"enabled": True}})
    rules = _rules(docs, "ClusterRole")
    for plural in WORKLOADS:
        assert _verbs(rules, "apps", plural) == {"list", "watch", "patch"}
    assert _verbs(rules, "argoproj.io", "rollouts") == {"list", "watch", "patch"}
    assert not _verbs(rules, "apps", "replicasets") and not _verbs(rules, "", "pods")
    assert "--rollout" in _args(docs)


def test_rollout_in_namespaced_mode_is_a_role_per_namespace() -> None:
    docs = render_chart({**NAMESPACED_EXAMPLE, "rollout": {"enabled": True}, "rotation": {"enabled": True}})
    assert not _by_kind(docs, "ClusterRole")
    rules = [r for role in _by_kind(docs, "Role") if role["metadata"]["namespace"] == "app" for r in role["rules"]]
    assert _verbs(rules, "apps", "deployments") == {"list", "watch", "patch"}
    assert _verbs(rules, "secretsync.io", "secretrotations") == {"list", "watch"}
    assert {"--rollout", "--rotation"} <= set(_args(docs))
