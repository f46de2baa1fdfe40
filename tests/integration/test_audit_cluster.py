"""``secretsync audit`` against a real kube-apiserver: the graph, the RBAC answers (checked
against the API server's own SubjectAccessReview), the audit log, and a canary Secret whose
value never reaches the process, let alone its output."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from secretsync.audit import Inventory, Scope, audit, load_cluster
from secretsync.audit.rbac import Rbac
from secretsync.kube.client import KubeApi
from tests.conftest import CANARY
from tests.harness.controller import install_crds
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

#: In an annotation: the one place metadata can carry a copy of the value.
APPLIED_CANARY = "applied-canary-" + "5e1d0c"
RBAC_API = "/apis/rbac.authorization.k8s.io/v1"


def call(api: Any, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = api.param_serialize(method, path, body=body, auth_settings=["BearerToken"],
                                  header_params={"Content-Type": "application/json", "Accept": "application/json"})
    response = api.call_api(*request)
    response.read()
    assert 200 <= response.status < 300, (method, path, response.status, response.data[:300])
    return json.loads(response.data)  # type: ignore[no-any-return]


def secret(name: str, data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "annotations": annotations or {}},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def pod_spec() -> dict[str, Any]:
    return {
        "serviceAccountName": "web",
        "containers": [{
            "name": "web", "image": "nginx",
            "env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "MAYBE", "valueFrom": {"secretKeyRef": {"name": "maybe", "key": "k", "optional": True}}}],
            "envFrom": [{"secretRef": {"name": "api"}}],
            "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}],
        }],
        "volumes": [{"name": "cfg", "projected": {"sources": [{"secret": {"name": "applied"}},
                                                               {"secret": {"name": "missing"}}]}}],
    }


def rule(verbs: list[str], resources: list[str], groups: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups if groups is not None else [""], "resources": resources, **extra}


def binding(kind: str, name: str, role_kind: str, role: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": subjects}


def user(name: str) -> dict[str, str]:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


@pytest.fixture(scope="module")
def world(kube: KubeCluster) -> dict[str, str]:
    """One namespace with Secrets, a Deployment -> ReplicaSet -> Pod chain, an ExternalSecret,
    and RBAC of every shape; cluster-scoped names carry the namespace so runs never collide."""
    install_crds(kube)
    ns = kube.new_namespace("audit")
    other = kube.new_namespace("audit-other")
    sfx = ns  # unique suffix for cluster-scoped objects
    canary = CANARY
    with kube.api_client() as api:
        core = f"/api/v1/namespaces/{ns}"
        call(api, "POST", f"{core}/secrets", secret("db", {"password": canary}))
        last_applied = json.dumps({"apiVersion": "v1", "kind": "Secret", "stringData": {"k": APPLIED_CANARY}})
        call(api, "POST", f"{core}/secrets", secret("applied", {"k": APPLIED_CANARY},
                                                    {"kubectl.kubernetes.io/last-applied-configuration": last_applied}))
        call(api, "POST", f"{core}/secrets", secret("lonely", {"k": canary}))
        call(api, "POST", f"/api/v1/namespaces/{other}/secrets", secret("elsewhere", {"k": canary}))
        call(api, "POST", f"{core}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                      "metadata": {"name": "web"}})
        labels = {"app": "web"}
        dep = call(api, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}})
        rs = call(api, "POST", f"/apis/apps/v1/namespaces/{ns}/replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": dep["metadata"]["uid"],
                "controller": True}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}})
        call(api, "POST", f"{core}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1-abcde", "labels": labels, "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": rs["metadata"]["uid"],
                "controller": True}]},
            "spec": pod_spec()})
        call(api, "POST", f"/apis/secretsync.io/v1alpha1/namespaces/{ns}/secretstores", {
            "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretStore", "metadata": {"name": "aws"},
            "spec": {"provider": {"aws": {"region": "eu-west-1"}}}})
        call(api, "POST", f"/apis/secretsync.io/v1alpha1/namespaces/{ns}/externalsecrets", {
            "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret", "metadata": {"name": "api"},
            "spec": {"secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                     "data": [{"secretKey": "API_KEY", "remoteRef": {"key": "prod/api", "property": "key"}}]}})
        # RBAC of every shape.
        rbac = f"{RBAC_API}/namespaces/{ns}"
        call(api, "POST", f"{rbac}/roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                            "metadata": {"name": "db-only"},
                                            "rules": [rule(["get"], ["secrets"], resourceNames=["db"])]})
        call(api, "POST", f"{rbac}/rolebindings", binding("RoleBinding", "alice-db", "Role", "db-only",
                                                          [user(f"alice-{sfx}")]))
        crs = {
            f"ns-reader-{sfx}": {"rules": [rule(["get", "list", "watch"], ["secrets"])]},
            f"pod-maker-{sfx}": {"rules": [rule(["create"], ["pods"])]},
            f"wild-{sfx}": {"rules": [rule(["*"], ["*"], ["*"])]},
            f"agg-{sfx}": {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"audit-agg": sfx}}]},
                           "rules": []},
            f"agg-piece-{sfx}": {"metadata": {"labels": {"audit-agg": sfx}}, "rules": [rule(["get"], ["secrets"])]},
        }
        for name, body in crs.items():
            md = {"name": name, **body.pop("metadata", {})}
            call(api, "POST", f"{RBAC_API}/clusterroles",
                 {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": md, **body})
        # A ServiceAccount subject without namespace: defaults to the RoleBinding's.
        call(api, "POST", f"{rbac}/rolebindings", binding("RoleBinding", "ci-reads", "ClusterRole", f"ns-reader-{sfx}",
                                                          [{"kind": "ServiceAccount", "name": "ci"}]))
        call(api, "POST", f"{rbac}/rolebindings", binding("RoleBinding", "sas-read", "ClusterRole",
                                                          f"ns-reader-{sfx}", [{
                                                              "kind": "Group", "name": f"system:serviceaccounts:{ns}",
                                                              "apiGroup": "rbac.authorization.k8s.io"}]))
        call(api, "POST", f"{rbac}/rolebindings", binding("RoleBinding", "bob-pods", "ClusterRole",
                                                          f"pod-maker-{sfx}", [user(f"bob-{sfx}")]))
        call(api, "POST", f"{rbac}/rolebindings", binding("RoleBinding", "carol-agg", "ClusterRole", f"agg-{sfx}",
                                                          [user(f"carol-{sfx}")]))
        call(api, "POST", f"{RBAC_API}/clusterrolebindings", binding("ClusterRoleBinding", f"root-{sfx}", "ClusterRole",
                                                                     f"wild-{sfx}", [user(f"root-{sfx}")]))
        # Reads for the audit log: one allowed (admin), one denied (the unprivileged user).
        client.CoreV1Api(api).read_namespaced_secret("db", ns)
    with kube.user_api_client() as uapi, pytest.raises(client.ApiException):
        client.CoreV1Api(uapi).read_namespaced_secret("db", ns)
    return {"ns": ns, "other": other, "sfx": sfx}


def run_cli(kube: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kube.kubeconfig),
                           "--log-level", "debug", "audit", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_reports_the_graph_readers_and_reads(kube: KubeCluster, world: dict[str, str], canary: str) -> None:
    ns, sfx = world["ns"], world["sfx"]
    proc = run_cli(kube, "-n", ns, "--who-can", "--audit-log", str(kube.audit_log), "-o", "json",
                   "--fail-on", "broken-ref")
    assert proc.returncode == 1, proc.stderr  # 'missing' is a broken reference
    doc = json.loads(proc.stdout)
    assert doc["source"]["mode"] == "cluster" and doc["source"]["incomplete"] == []
    secrets = {s["name"]: s for s in doc["secrets"]}
    assert set(secrets) == {"db", "applied", "lonely", "api", "maybe", "missing"}
    # Deployment -> ReplicaSet -> Pod collapse into the Deployment; its ServiceAccount rides along.
    (db_use,) = secrets["db"]["consumers"]
    assert (db_use["kind"], db_use["name"], db_use["via"], db_use["serviceAccount"]) == (
        "Deployment", "web", "env", f"{ns}/web")
    assert secrets["db"]["keys"] is None and secrets["db"]["state"] == "present"
    assert secrets["api"]["state"] == "pending"
    assert [(s["provider"], s["remoteKey"], s["property"]) for s in secrets["api"]["sources"]] == [
        ("aws", "prod/api", "key")]
    (w,) = doc["workloads"]
    assert w["members"] == [f"Pod/{ns}/web-1-abcde", f"ReplicaSet/{ns}/web-1"]
    found = {(f["type"], f["secret"]) for f in doc["findings"]}
    assert {("broken-ref", f"{ns}/missing"), ("broken-optional-ref", f"{ns}/maybe"), ("orphan", f"{ns}/lonely"),
            ("unmanaged", f"{ns}/db")} <= found
    # RBAC: who could read, and why.
    readers = {(g["subject"]["kind"], g["subject"]["name"], g["how"]): g for g in doc["rbac"]["namespaces"][ns]}
    assert readers[("User", f"alice-{sfx}", "rbac")]["resourceNames"] == ["db"]
    assert readers[("ServiceAccount", "ci", "rbac")]["subject"]["namespace"] == ns
    assert readers[("User", f"bob-{sfx}", "escalation")]["reason"].startswith("create pods")
    carol = readers[("User", f"carol-{sfx}", "rbac")]
    assert carol["via"][0]["aggregatedFrom"] == f"ClusterRole/agg-piece-{sfx}"
    cluster = {(g["subject"]["name"], g["how"]) for g in doc["rbac"]["cluster"]}
    assert {(f"root-{sfx}", "rbac"), ("system:masters", "superuser")} <= cluster
    assert ("broad-reader", None) in {(f["type"], f["secret"]) for f in doc["findings"]}
    # Who did read: the admin's get, the unprivileged user's denied get.
    reads = {(r["user"], r["verb"], r["name"], r["decision"]) for r in doc["access"]["reads"]}
    assert ("secretsync-test-admin", "get", "db", "allow") in reads
    assert ("secretsync-test-user", "get", "db", "forbid") in reads
    assert doc["access"]["bodyEvents"] == 0
    for text in (proc.stdout, proc.stderr):
        assert canary not in text and APPLIED_CANARY not in text
        assert base64.b64encode(canary.encode()).decode() not in text


def test_rbac_answers_agree_with_subject_access_review(kube: KubeCluster, world: dict[str, str]) -> None:
    ns, other, sfx = world["ns"], world["other"], world["sfx"]
    inv = Inventory()
    load_cluster(KubeApi(kube.configuration()), inv, None, rbac=True)
    rbac = Rbac(inv.roles, inv.bindings)
    with kube.api_client() as api:
        sa_groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        identities = [
            (f"alice-{sfx}", ["system:authenticated"]),
            (f"bob-{sfx}", ["system:authenticated"]),
            (f"root-{sfx}", ["system:authenticated"]),
            (f"system:serviceaccount:{ns}:ci", sa_groups),
            (f"system:serviceaccount:{ns}:anyone", sa_groups),
            (f"system:serviceaccount:{other}:ci",
             ["system:serviceaccounts", f"system:serviceaccounts:{other}", "system:authenticated"]),
            (kube.user_name, ["system:authenticated"]),
            ("someone", ["system:masters", "system:authenticated"]),
        ]
        checks = [(verb, "", "secrets", n, name) for verb in ("get", "list", "watch") for n in (ns, other)
                  for name in ("db", "applied", None)]
        checks += [("create", "", "pods", ns, None), ("create", "", "pods", other, None),
                   ("delete", "apps", "deployments", ns, "web"), ("get", "", "nodes", None, None)]
        authz = client.AuthorizationV1Api(api)
        compared = 0
        for username, groups in identities:
            for verb, group, resource, namespace, name in checks:
                attrs = {"verb": verb, "group": group, "resource": resource}
                if namespace:
                    attrs["namespace"] = namespace
                if name:
                    attrs["name"] = name
                review = authz.create_subject_access_review(client.V1SubjectAccessReview(
                    spec=client.V1SubjectAccessReviewSpec(user=username, groups=groups, resource_attributes=attrs)))
                ours = bool(rbac.allowed(username, groups, verb, group, resource, namespace, name))
                assert ours == review.status.allowed, (username, verb, resource, namespace, name,
                                                       review.status.reason)
                compared += 1
    assert compared == len(identities) * len(checks)


def test_aggregated_role_is_resolved_where_no_controller_manager_does_it(kube: KubeCluster,
                                                                         world: dict[str, str]) -> None:
    """The harness runs no kube-controller-manager, so the API server never fills in the
    aggregated ClusterRole and its SubjectAccessReview denies; a real cluster allows, as we do."""
    ns, sfx = world["ns"], world["sfx"]
    inv = Inventory()
    load_cluster(KubeApi(kube.configuration()), inv, ns, rbac=True)
    rbac = Rbac(inv.roles, inv.bindings)
    (step,) = rbac.allowed(f"carol-{sfx}", [], "get", "", "secrets", ns, "db")
    assert step.aggregated_from == f"ClusterRole/agg-piece-{sfx}"


def test_secret_values_never_reach_the_process(kube: KubeCluster, world: dict[str, str], canary: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every byte the API server sends is recorded at the HTTP pool: the canary is not among them
    (Secrets are listed metadata-only), and the annotation copy, which metadata does carry, goes
    no further."""
    import urllib3

    bodies: list[bytes] = []
    send = urllib3.PoolManager.request

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = send(self, *args, **kwargs)
        bodies.append(response.data)
        return response

    monkeypatch.setattr(urllib3.PoolManager, "request", recording)
    inv = Inventory()
    load_cluster(KubeApi(kube.configuration()), inv, None, rbac=True)
    seen = b"".join(bodies)
    assert f"{world['ns']}".encode() in seen and APPLIED_CANARY.encode() in seen  # the recorder works
    assert canary.encode() not in seen
    assert base64.b64encode(canary.encode()) not in seen
    doc = audit(inv, Scope(), who_can=True)
    for thing in (repr(inv), json.dumps(doc), repr(inv.secrets)):
        assert canary not in thing and APPLIED_CANARY not in thing


def test_user_without_rights_gets_errors_not_a_crash(kube: KubeCluster, world: dict[str, str],
                                                     tmp_path: Path) -> None:
    kubeconfig = kube.kubeconfig_for(kube.user_token, tmp_path / "user.kubeconfig")
    proc = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kubeconfig), "audit",
                           "-n", world["ns"], "--who-can", "-o", "json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert "Secret" in doc["source"]["incomplete"] and "ClusterRole" in doc["source"]["incomplete"]
    assert "cannot list: forbidden" in proc.stderr
    # With Secrets unlisted, nothing may be called missing.
    assert not [f for f in doc["findings"] if f["type"] == "broken-ref" and f["secret"]]
