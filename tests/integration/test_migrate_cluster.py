"""``migrate --cluster`` on a real kube-apiserver, with the real controller, into moto and OpenBao.

A namespace is seeded with workloads holding plaintext env literals and a flag, a ConfigMap with a
secret key and an embedded properties file (read through configMapKeyRef, envFrom and a volume),
and a Secret (with kubectl's last-applied annotation, which repeats the plaintext). No pods run.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsync.controller.runtime import ES_RES
from secretsync.controller.settings import ScopeSettings
from secretsync.core.registry import open_store
from secretsync.kube.client import KubeApi, Resource
from secretsync.migrator.apply import ApplyOptions
from secretsync.migrator.cluster import plan_cluster
from secretsync.migrator.journal import CRASH_ENV
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.workflow import apply_plan, rollback_journal, write_plan
from secretsync.scan import scan_objects
from secretsync.scan.cluster import list_live_objects
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, client_env
from tests.harness.controller import create, fast_settings, install_crds, kube_api, running_controller, store_manifest
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
STATEFULSETS = Resource("apps", "v1", "statefulsets", "StatefulSet")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

VALUES = {
    "db": "Wq7-rT2v!Lp9-cluster",
    "token": "tok_Qm4vX9pL2sW8nR6tY1cB5hK3",
    "session": "8d1f0c5b7e9a4d3f2b6c8e0a1d7f5b3c",
    "props": "server.port=8080\ndb.password=Hn4-xQ8s-cluster-props\n",
    "api_key": "pk_live_9fQ2LwXr7Tn4Vb8Zc1Hy6Mj3",
    "worker": "Zk3-mN8q-worker-Lp4",
}


def _seed(api: KubeApi, ns: str) -> dict[str, dict[str, Any]]:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-config", "namespace": ns},
          "data": {"LOG_LEVEL": "info", "SESSION_SECRET": VALUES["session"], "app.properties": VALUES["props"]}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payments", "namespace": ns},
              "type": "Opaque", "data": {"API_KEY": base64.b64encode(VALUES["api_key"].encode()).decode()}}
    secret["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(secret)}
    container = {
        "name": "app", "image": "registry.local/api:1",
        "args": ["--listen=:8080", f"--api-token={VALUES['token']}"],
        "env": [{"name": "DB_HOST", "value": "postgres"}, {"name": "DB_PASSWORD", "value": VALUES["db"]},
                {"name": "SESSION_SECRET", "valueFrom": {"configMapKeyRef": {"name": "api-config",
                                                                             "key": "SESSION_SECRET"}}}],
        "envFrom": [{"configMapRef": {"name": "api-config"}}],
        "volumeMounts": [{"name": "config", "mountPath": "/etc/api"}],
    }
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": ns},
              "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
                  "metadata": {"labels": {"app": "api"}},
                  "spec": {"containers": [container], "volumes": [
                      {"name": "config", "configMap": {"name": "api-config", "items": [
                          {"key": "app.properties", "path": "app.properties"}, {"key": "LOG_LEVEL", "path": "level"}]}}
                  ]}}}}
    deploy["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(deploy)}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "worker", "namespace": ns},
           "spec": {"serviceName": "worker", "selector": {"matchLabels": {"app": "worker"}}, "template": {
               "metadata": {"labels": {"app": "worker"}},
               "spec": {"containers": [{"name": "w", "image": "registry.local/worker:1",
                                        "env": [{"name": "WORKER_PASSWORD", "value": VALUES["worker"]}]}]}}}}
    out = {}
    for res, body in ((CONFIGMAPS, cm), (SECRETS, secret), (DEPLOYMENTS, deploy), (STATEFULSETS, sts)):
        got = api.create(res, body, ns)
        out[f"{body['kind']}/{ns}/{body['metadata']['name']}"] = got
    return out


def _touched(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj.get("metadata") or {}
    return {"spec": obj.get("spec"), "data": obj.get("data"), "labels": md.get("labels"),
            "annotations": md.get("annotations")}


def _res(kind: str) -> Resource:
    return {"ConfigMap": CONFIGMAPS, "Secret": SECRETS, "Deployment": DEPLOYMENTS, "StatefulSet": STATEFULSETS}[kind]


def _current(api: KubeApi, resource: str) -> dict[str, Any]:
    kind, ns, name = resource.split("/", 2)
    return api.get(_res(kind), name, ns)


@pytest.fixture(scope="module")
def cluster(kube: KubeCluster) -> Iterator[tuple[KubeCluster, KubeApi, str]]:
    install_crds(kube)
    label = uuid.uuid4().hex[:10]
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-migrate={label}"))
    api = kube_api(kube)
    with running_controller(kube, settings):
        yield kube, api, label
    api.close()


def _namespace(kube: KubeCluster, label: str) -> str:
    return kube.new_namespace("mig", labels={"secretsync-migrate": label})


def _aws_store(api: KubeApi, ns: str, endpoint: str) -> None:
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": ns},
                 "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
    create(api, store_manifest("provider", ns, "aws", {
        "region": REGION, "endpoint": endpoint,
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}))


def _vault_store(api: KubeApi, ns: str, openbao: Any) -> None:
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bao-token", "namespace": ns},
                 "stringData": {"token": openbao.root_token}})
    create(api, store_manifest("provider", ns, "vault", {
        "address": openbao.address, "mount": "secret", "secretRef": {"token": {"name": "bao-token", "key": "token"}}}))


def _plan(kube: KubeCluster, ns: str, url: str, tmp: Path) -> Path:
    opts = PlanOptions(store_url=url, store_name="provider", store_manifest=False)
    client = open_store(url)
    plan = plan_cluster(str(kube.kubeconfig), None, ns, False, opts, client)
    client.close()
    # The store's own credentials are found but stay: moving them would lock the controller out.
    assert {m["resource"].split("/")[2] for m in plan.doc["manual"]} <= {"aws-creds", "bao-token"}
    assert all("credentials of SecretStore provider" in m["reason"] for m in plan.doc["manual"])
    write_plan(plan, tmp / "plan.json")
    return tmp / "plan.json"


def _check_migrated(api: KubeApi, ns: str, url: str, plan_file: Path) -> None:
    doc = json.loads(plan_file.read_text())
    seeded = set(VALUES.values())
    # every pod spec reads Secrets now; no literal holds a value; the flag goes through $(VAR)
    for res, name in ((DEPLOYMENTS, "api"), (STATEFULSETS, "worker")):
        obj = api.get(res, name, ns)
        assert LAST_APPLIED not in ((obj["metadata"].get("annotations")) or {})
        for c in obj["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env") or []:
                assert e.get("value") not in seeded
                if "SECRET" in e["name"] or "PASSWORD" in e["name"] or "TOKEN" in e["name"]:
                    assert "secretKeyRef" in e["valueFrom"], e
            assert not any(v in a for a in c.get("args") or [] for v in seeded)
    api_pod = api.get(DEPLOYMENTS, "api", ns)["spec"]["template"]["spec"]
    assert "--api-token=$(SECRETSYNC_API_TOKEN)" in api_pod["containers"][0]["args"]
    assert "projected" in api_pod["volumes"][0]
    assert {"secretRef": {"name": "api-config-secrets"}} in api_pod["containers"][0]["envFrom"]
    cm = api.get(CONFIGMAPS, "api-config", ns)
    assert set(cm["data"]) == {"LOG_LEVEL"}
    # ExternalSecrets exist; the provider holds the originals; the Secrets are synced
    es_names = {o["metadata"]["name"] for o in api.list(ES_RES, ns)["items"]}
    assert es_names == {g["externalSecret"]["name"] for g in doc["groups"]}
    store = open_store(url)
    assert {store.get(s["providerKey"]).reveal_text() for s in doc["secrets"]} == seeded
    for g in doc["groups"]:
        data = api.get(SECRETS, g["externalSecret"]["target"], ns)["data"]
        for sid in g["secrets"]:
            s = next(x for x in doc["secrets"] if x["id"] == sid)
            assert base64.b64decode(data[s["secretKey"]]) == store.get(s["providerKey"]).reveal()
    store.close()
    # and a scan of the namespace finds nothing left
    from secretsync.scan.cluster import api_client_for

    client, _ = api_client_for(str(api_kubeconfig(api)), None)
    objects, _ = list_live_objects(client, ns)
    left = [f for f in scan_objects(objects, source="cluster").findings
            if f.resource.split("/")[2] not in ("aws-creds", "bao-token")]
    assert left == [], [(f.resource, f.path) for f in left]


def api_kubeconfig(api: KubeApi) -> str:
    return os.environ["SECRETSYNC_TEST_KUBECONFIG"]


def _check_rolled_back(api: KubeApi, seeded: dict[str, dict[str, Any]]) -> None:
    for resource, original in seeded.items():
        now = _current(api, resource)
        assert _touched(now) == _touched(original), resource


@pytest.fixture
def kubeconfig_env(cluster: tuple[KubeCluster, KubeApi, str], monkeypatch: pytest.MonkeyPatch) -> str:
    kube = cluster[0]
    monkeypatch.setenv("SECRETSYNC_TEST_KUBECONFIG", str(kube.kubeconfig))
    return str(kube.kubeconfig)


@pytest.mark.parametrize("backend", ["aws", "vault"])
def test_cluster_migration_switches_workloads_and_rollback_restores_them(
        backend: str, cluster: tuple[KubeCluster, KubeApi, str], kubeconfig_env: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    kube, api, label = cluster
    ns = _namespace(kube, label)
    if backend == "aws":
        endpoint = request.getfixturevalue("aws_endpoint")
        for k, v in client_env(endpoint).items():
            monkeypatch.setenv(k, v)
        _aws_store(api, ns, endpoint)
        url = f"aws://{REGION}"
    else:
        openbao = request.getfixturevalue("openbao")
        for k, v in openbao.env().items():
            monkeypatch.setenv(k, v)
        _vault_store(api, ns, openbao)
        url = "vault:///secret"
    seeded = _seed(api, ns)
    plan_file = _plan(kube, ns, url, tmp_path)
    dry = apply_plan(plan_file, ApplyOptions(dry_run=True), kubeconfig=kubeconfig_env)
    assert any(a.startswith("would patch Deployment/") for a in dry.actions)
    assert api.list(ES_RES, ns)["items"] == [] and not (tmp_path / "plan.journal").exists()
    _check_rolled_back(api, seeded)  # i.e. nothing changed
    report = apply_plan(plan_file, ApplyOptions(sync_timeout=60), kubeconfig=kubeconfig_env)
    assert report.problems == []
    _check_migrated(api, ns, url, plan_file)
    rb = rollback_journal(tmp_path / "plan.journal", kubeconfig=kubeconfig_env)
    assert rb.problems == [], rb.problems
    _check_rolled_back(api, seeded)
    assert api.list(ES_RES, ns)["items"] == []


def test_a_value_changed_after_planning_is_not_switched_and_its_source_kept(
        cluster: tuple[KubeCluster, KubeApi, str], kubeconfig_env: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, aws_endpoint: str) -> None:
    kube, api, label = cluster
    ns = _namespace(kube, label)
    for k, v in client_env(aws_endpoint).items():
        monkeypatch.setenv(k, v)
    _aws_store(api, ns, aws_endpoint)
    _seed(api, ns)
    plan_file = _plan(kube, ns, f"aws://{REGION}", tmp_path)
    # Someone edits the Deployment between plan and apply (the replica count, and the password).
    dep = api.get(DEPLOYMENTS, "api", ns)
    dep["spec"]["replicas"] = 3
    api.replace(DEPLOYMENTS, "api", dep, ns)
    report = apply_plan(plan_file, ApplyOptions(sync_timeout=60), kubeconfig=kubeconfig_env)
    assert report.problems == []
    assert api.get(DEPLOYMENTS, "api", ns)["spec"]["replicas"] == 3  # the concurrent edit survived
    # A second namespace: the value itself changes after it was stored -> that workload is left alone.
    ns2 = _namespace(kube, label)
    _aws_store(api, ns2, aws_endpoint)
    _seed(api, ns2)
    (tmp_path / "two").mkdir()
    plan2 = _plan(kube, ns2, f"aws://{REGION}", tmp_path / "two")
    n_secrets = len(json.loads(plan2.read_text())["secrets"])
    # Stop right after every value was stored (crash points: the start line, then 3 per value).
    env = {**os.environ, CRASH_ENV: str(1 + 3 * n_secrets), "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", kubeconfig_env, "migrate",
                        "apply", str(plan2), "--yes"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    sts = api.get(STATEFULSETS, "worker", ns2)
    sts["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "Zk3-mN8q-worker-CHANGED"
    api.replace(STATEFULSETS, "worker", sts, ns2)
    report = apply_plan(plan2, ApplyOptions(sync_timeout=60), kubeconfig=kubeconfig_env)
    assert any("StatefulSet" in p and "changed after it was stored" in p for p in report.problems), report.problems
    worker_env = api.get(STATEFULSETS, "worker", ns2)["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert worker_env == {"name": "WORKER_PASSWORD", "value": "Zk3-mN8q-worker-CHANGED"}
    # everything else went through
    assert "projected" in api.get(DEPLOYMENTS, "api", ns2)["spec"]["template"]["spec"]["volumes"][0]


def test_kill_9_during_cluster_apply_then_resume_and_rollback(
        cluster: tuple[KubeCluster, KubeApi, str], kubeconfig_env: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, aws_endpoint: str) -> None:
    kube, api, label = cluster
    for k, v in client_env(aws_endpoint).items():
        monkeypatch.setenv(k, v)
    url = f"aws://{REGION}"
    # after a provider write / a snapshot / an ExternalSecret creation / a workload patch
    crashed_in: set[str] = set()
    for point in (3, 22, 31, 50):
        ns = _namespace(kube, label)
        _aws_store(api, ns, aws_endpoint)
        seeded = _seed(api, ns)
        work = tmp_path / f"p{point}"
        work.mkdir()
        plan_file = work / "plan.json"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        r = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", kubeconfig_env,
                            "migrate", "plan", "--cluster", "-n", ns, "--to", url, "--store-ref", "provider", "-o",
                            str(plan_file)], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "MANUAL" in r.stderr and "aws-creds" in r.stderr  # the store's credentials stay
        env[CRASH_ENV] = str(point)
        r = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", kubeconfig_env, "migrate",
                            "apply", str(plan_file), "--yes"], env=env, capture_output=True, text=True, timeout=180)
        assert r.returncode == -signal.SIGKILL, r.stderr
        records = [json.loads(line) for line in (work / "plan.journal").read_text().splitlines()]
        crashed_in.add(records[-1].get("step", "").split(":")[0])
        report = apply_plan(plan_file, ApplyOptions(sync_timeout=60), kubeconfig=kubeconfig_env)
        assert report.problems == []
        _check_migrated(api, ns, url, plan_file)
        doc = json.loads(plan_file.read_text())
        store = open_store(url)
        for s in doc["secrets"]:
            assert store.describe(s["providerKey"]).version is not None
        store.close()
        rb = rollback_journal(work / "plan.journal", kubeconfig=kubeconfig_env)
        assert rb.problems == [], rb.problems
        _check_rolled_back(api, seeded)
    assert crashed_in == {"store", "snapshot", "create", "patch"}, crashed_in

