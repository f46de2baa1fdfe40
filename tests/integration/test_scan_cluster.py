"""``secretsync scan --cluster`` against a real kube-apiserver (1.20: CronJobs are batch/v1beta1)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from secretsync.cli.main import cli
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

PW = "Xq7-pw-" + "u3Vt9"


def post(api: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = api.param_serialize("POST", path, body=body,
                                  header_params={"Content-Type": "application/json", "Accept": "application/json"},
                                  auth_settings=["BearerToken"])
    response = api.call_api(*request)
    response.read()
    assert 200 <= response.status < 300, (path, response.status)
    return json.loads(response.data)  # type: ignore[no-any-return]


def pod_spec(name: str) -> dict[str, Any]:
    return {"containers": [{"name": name, "image": "busybox",
                            "env": [{"name": "DB_PASSWORD", "value": PW}, {"name": "DB_USER", "value": "app"}]}]}


@pytest.fixture
def populated(kube: KubeCluster, kube_namespace: str) -> str:
    ns = kube_namespace
    b64 = base64.b64encode(PW.encode()).decode()
    with kube.api_client() as api:
        labels = {"app": "web"}
        dep = post(api, f"/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec("web")}}})
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": dep["metadata"]["uid"],
                 "controller": True}
        rs = post(api, f"/apis/apps/v1/namespaces/{ns}/replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-1", "ownerReferences": [owner]},
            "spec": {"selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod_spec("web")}}})
        rs_owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": rs["metadata"]["uid"],
                    "controller": True}
        post(api, f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1-abc", "ownerReferences": [rs_owner]},
            "spec": pod_spec("web")})
        post(api, f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "standalone"}, "spec": pod_spec("solo")})
        post(api, f"/apis/batch/v1beta1/namespaces/{ns}/cronjobs", {
            "apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
                "spec": {**pod_spec("job"), "restartPolicy": "Never"}}}}}})
        post(api, f"/api/v1/namespaces/{ns}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
            "data": {"application.properties": f"a=b\nspring.datasource.password={PW}\n", "LOG_LEVEL": "info"}})
        post(api, f"/api/v1/namespaces/{ns}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": b64}})
        post(api, f"/api/v1/namespaces/{ns}/secrets", {
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "synced", "labels": {"app.kubernetes.io/managed-by": "secretsync"}},
            "data": {"password": b64}})
        post(api, f"/api/v1/namespaces/{ns}/secrets", {
            "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.web.v1"}, "data": {"release": b64}})
    return ns


def scan_json(kubeconfig: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(cli, ["--kubeconfig", str(kubeconfig), "scan", "--cluster", "-o", "json", *args],
                                catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_cluster_scan_finds_live_plaintext_and_skips_managed_and_owned(kube: KubeCluster, populated: str,
                                                                       canary: str) -> None:
    code, doc, err = scan_json(kube.kubeconfig, "-n", populated)
    assert code == 1, err
    got = {(f["resource"], f["path"], f.get("subkey")) for f in doc["findings"]}
    ns = populated
    assert got == {
        (f"Deployment/{ns}/web", "spec.template.spec.containers[0].env[0].value", None),
        (f"Pod/{ns}/standalone", "spec.containers[0].env[0].value", None),
        (f"CronJob/{ns}/nightly", "spec.jobTemplate.spec.template.spec.containers[0].env[0].value", None),
        (f"ConfigMap/{ns}/app", 'data["application.properties"]', "spring.datasource.password"),
        (f"Secret/{ns}/db", "data.password", None),
    }
    for f in doc["findings"]:
        assert f["source"] == "cluster" and f["file"] is None and f["line"] is None
    assert doc["errors"] == []
    assert PW not in json.dumps(doc) + err


def test_all_namespaces(kube: KubeCluster, populated: str) -> None:
    code, doc, _ = scan_json(kube.kubeconfig, "-A")
    assert code == 1
    assert any(f["resource"] == f"Secret/{populated}/db" for f in doc["findings"])


SCANNED_KINDS = ("Pod", "ReplicationController", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                 "CronJob", "ConfigMap", "Secret")


def test_forbidden_kinds_are_errors_not_a_crash(kube: KubeCluster, populated: str, tmp_path: Path) -> None:
    """A kind the caller may not list is unread input: exit 8 (README, exit codes), never a clean 0,
    each forbidden kind named, and the kinds that can be listed are still scanned."""
    ns = populated
    kubeconfig = kube.kubeconfig_for(kube.user_token, tmp_path / "user.kubeconfig")
    code, doc, err = scan_json(kubeconfig, "-n", ns)
    assert code == 8, err  # nothing found, but nothing was read either: a CI gate must not pass
    assert doc["findings"] == []
    assert len(doc["errors"]) == 10 and all("403" in e["message"] and e["unread"] for e in doc["errors"])
    for kind in SCANNED_KINDS:
        assert f"cannot list {kind} objects in namespace {ns}" in err, kind
        assert any(e["message"].startswith(f"cannot list {kind} objects") for e in doc["errors"]), kind
    assert doc["summary"]["unread"] == 10
    # The user may list ConfigMaps only: that kind is scanned, the other nine are still named.
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    with kube.api_client() as api:
        post(api, f"{rbac}/roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                    "metadata": {"name": "list-configmaps"},
                                    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]})
        post(api, f"{rbac}/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "list-configmaps"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "list-configmaps"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": kube.user_name}]})
    code, doc, err = scan_json(kubeconfig, "-n", ns)
    assert code == 1, err  # findings decide the exit code; the unread kinds are still reported
    assert {(f["resource"], f.get("subkey")) for f in doc["findings"]} == {
        (f"ConfigMap/{ns}/app", "spring.datasource.password")}
    assert len(doc["errors"]) == 9 and all("403" in e["message"] and e["unread"] for e in doc["errors"])
    assert "cannot list ConfigMap objects" not in err and "cannot list Secret objects" in err
    assert PW not in json.dumps(doc) + err


def test_unreachable_cluster_is_a_clear_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    proc = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kubeconfig), "scan",
                           "--cluster"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 5  # unavailable: an unreachable cluster is not a clean one
    assert "cannot reach the Kubernetes API server" in proc.stderr
