"""``audit --least-privilege`` against a real kube-apiserver: the YAML it prints applies as is,
and afterwards the API server's own SubjectAccessReview allows exactly what the audit log
showed the ServiceAccount reading (named Secrets by name, the collection watch), and nothing
else; the broad binding it replaces is reported as never used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

RBAC = "rbac.authorization.k8s.io"


def _event(i: int, user: str, verb: str, ns: str, name: str | None) -> str:
    ref: dict[str, Any] = {"resource": "secrets", "namespace": ns, "apiVersion": "v1"}
    if name:
        ref["name"] = name
    return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"a{i}",
                       "stage": "ResponseComplete", "verb": verb, "user": {"username": user},
                       "objectRef": ref, "responseStatus": {"code": 200},
                       "requestReceivedTimestamp": f"2026-11-30T10:00:{i:02d}Z"})


def _allowed(api: Any, user: str, ns: str, verb: str, name: str | None) -> bool:
    attrs = {"verb": verb, "group": "", "resource": "secrets", "namespace": ns}
    if name:
        attrs["name"] = name
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
    review = client.AuthorizationV1Api(api).create_subject_access_review(client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user=user, groups=groups, resource_attributes=attrs)))
    return bool(review.status.allowed)


def test_advised_role_applies_and_grants_exactly_what_was_read(kube: KubeCluster, tmp_path: Path) -> None:
    ns = kube.new_namespace("lp")
    sa = f"system:serviceaccount:{ns}:app"
    with kube.api_client() as api:
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        core.create_namespaced_service_account(ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="app")))
        for name in ("db", "api", "other"):
            core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name),
                                                              string_data={"k": "v"}))
        rbac.create_namespaced_role(ns, {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "all"},
                                         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]})
        rbac.create_namespaced_role_binding(ns, {
            "apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": {"name": "legacy"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "all"},
            "subjects": [{"kind": "ServiceAccount", "name": "batch", "namespace": ns}]})
        assert not _allowed(api, sa, ns, "get", "db")

        log = tmp_path / "audit.log"
        log.write_text("\n".join([_event(1, sa, "get", ns, "db"), _event(2, sa, "get", ns, "api"),
                                  _event(3, sa, "watch", ns, None)]) + "\n")
        res = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kube.kubeconfig),
                              "audit", "-n", ns, "--audit-log", str(log), "--least-privilege"],
                             capture_output=True, text=True, timeout=120, check=False)
        assert res.returncode == 0, res.stderr
        assert f"never used for Secret read: RoleBinding/{ns}/legacy" in res.stdout
        for doc in yaml.safe_load_all(res.stdout):
            if doc and doc["kind"] == "Role":
                rbac.create_namespaced_role(ns, doc)
            elif doc and doc["kind"] == "RoleBinding":
                rbac.create_namespaced_role_binding(ns, doc)

        assert _allowed(api, sa, ns, "get", "db") and _allowed(api, sa, ns, "get", "api")
        assert _allowed(api, sa, ns, "watch", None)
        assert not _allowed(api, sa, ns, "get", "other")
        assert not _allowed(api, sa, ns, "list", None)
        assert not _allowed(api, sa, ns, "delete", "db")
