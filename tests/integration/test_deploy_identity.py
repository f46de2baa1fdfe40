"""The controller runs as the chart's ServiceAccount, with the chart's RBAC, on a real kube-apiserver.

What a platform team installing the chart gets: the manifests Helm renders for the live cluster
(its version and API list, as ``helm install`` would) are applied as they are (CRDs,
ServiceAccount, RBAC, Deployment, PodDisruptionBudget, Service, NetworkPolicy); a token for the
chart's ServiceAccount comes from the TokenRequest API; and ``secretsync controller`` runs with
that token and the Deployment's own arguments. It then has to do the whole job (store
credentials from a Secret, sync, rotation, drift repair, delete on a definite NotFound, status,
leader election) with no forbidden call, per the apiserver's audit log; and the same token is
refused (403) what the role does not grant. Twice: cluster-wide and namespaced-only.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsync.api.models import KINDS
from secretsync.controller.runtime import ES_RES
from secretsync.kube.client import EVENTS, LEASES, SECRETS, KubeApi, KubeError, Resource
from tests.conftest import CANARY
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, raw_boto3
from tests.harness.controller import create, es_manifest, es_ready, kube_api, secret_data, store_manifest, wait_for
from tests.harness.helm import by_kind, render
from tests.harness.kube import KubeCluster, audit_events
from tests.harness.kube import _spawn as spawn
from tests.harness.kube import _stop as stop_process
from tests.harness.ports import free_port

pytestmark = [pytest.mark.kube, pytest.mark.slow]
pytest.importorskip("helm_python", reason="helm-python-sdk (test extra) renders the chart")

PODS = Resource("", "v1", "pods", "Pod")
#: What namespaced-only mode is expected to find forbidden (and then serves --namespaces without).
CLUSTER_SCOPED_PROBES = {"namespaces", "clustersecretstores", "clusterexternalsecrets"}


def _online_capabilities(api: KubeApi) -> tuple[str, list[str]]:
    """The cluster's version and group/versions: what ``helm install`` reads before rendering."""
    version = str(api.request("GET", "/version")["gitVersion"])
    groups = [f"v{v[1:]}" for v in api.request("GET", "/api")["versions"]]
    for group in api.request("GET", "/apis")["groups"]:
        groups += [v["groupVersion"] for v in group["versions"]]
    return version, groups


def _apply(cluster: KubeCluster, docs: list[dict[str, Any]]) -> None:
    """``kubectl apply`` for the rendered objects, through the official dynamic client."""
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    with cluster.api_client() as client:
        dyn = dynamic.DynamicClient(client)
        for doc in docs:
            res = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            ns = doc["metadata"].get("namespace") if res.namespaced else None
            try:
                res.create(body=doc, namespace=ns)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                current = res.get(name=doc["metadata"]["name"], namespace=ns)
                doc = {**doc, "metadata": {**doc["metadata"], "resourceVersion": current.metadata.resourceVersion}}
                res.replace(body=doc, namespace=ns)


def _wait_crds_served(api: KubeApi) -> None:
    def served() -> bool:
        try:
            api.list(ES_RES, limit=1)
            return True
        except KubeError:
            return False

    wait_for(served, 30, message="ExternalSecrets served")


def _token(api: KubeApi, namespace: str, service_account: str) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600}}
    out = api.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token", body=body)
    return str(out["status"]["token"])


def _controller_argv(deployment: dict[str, Any], kubeconfig: Path, release_ns: str, port: int) -> list[str]:
    """The Deployment's container args, as the pod would run them ($(POD_NAMESPACE) expanded, a free
    metrics port on loopback), plus the kubeconfig holding the ServiceAccount's token."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [a.replace("$(POD_NAMESPACE)", release_ns) for a in container["args"]]
    args = [f"--metrics-port={port}" if a.startswith("--metrics-port=") else a for a in args]
    return [sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kubeconfig), *args,
            "--metrics-host", "127.0.0.1", "--min-refresh", "0.5"]


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Controller processes, stopped (their whole process group) after the test."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        stop_process(p)


def _forbidden_calls(cluster: KubeCluster, user: str) -> list[tuple[str, str, str]]:
    out = []
    for ev in audit_events(cluster):
        if ev.get("user", {}).get("username") != user or ev.get("stage") != "ResponseComplete":
            continue
        if (ev.get("responseStatus") or {}).get("code") == 403:
            ref = ev.get("objectRef") or {}
            out.append((ev.get("verb", ""), ref.get("resource", ""), ref.get("namespace", "")))
    return out


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_controller_does_the_whole_job_as_the_charts_service_account_and_nothing_more(
        kube: KubeCluster, aws_endpoint: str, procs: list[subprocess.Popen[bytes]], tmp_path: Path,
        mode: str) -> None:
    admin = kube_api(kube)
    label = uuid.uuid4().hex[:8]
    release_ns = kube.new_namespace("rel")
    app_ns = kube.new_namespace("app", labels={"secretsync-test": label})
    other_ns = kube.new_namespace("other")
    release = f"r{label}"
    values: dict[str, Any] = {"installCRDs": True}
    if mode == "namespaced":
        values |= {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": [app_ns]}}
    else:  # cluster-wide, limited to this test's namespace so leftovers of other tests stay alone
        values |= {"controller": {"namespaceSelector": f"secretsync-test={label}"}}

    # -- install: what helm install would apply on this cluster -------------------------------
    kube_version, api_versions = _online_capabilities(admin)
    docs = render(values, name=release, namespace=release_ns, kube_version=kube_version, api_versions=api_versions)
    crds = by_kind(docs, "CustomResourceDefinition")
    assert {c["spec"]["names"]["kind"] for c in crds} == set(KINDS)
    _apply(kube, crds)
    _wait_crds_served(admin)
    _apply(kube, [d for d in docs if d["kind"] != "CustomResourceDefinition"])
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1beta1"  # this apiserver is 1.20: no policy/v1 yet
    (sa,) = by_kind(docs, "ServiceAccount")
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    user = f"system:serviceaccount:{release_ns}:{sa['metadata']['name']}"

    # -- the tenant's objects: a store with credentials in a Secret, an ExternalSecret ---------
    sm = raw_boto3(aws_endpoint)
    remote = f"deploy-{label}/db"
    sm.create_secret(Name=remote, SecretString="v1")
    create(admin, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": app_ns},
                   "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
    create(admin, store_manifest("aws", app_ns, "aws", {
        "region": REGION, "endpoint": aws_endpoint,
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}))
    create(admin, es_manifest("db", app_ns, "aws", [("password", remote)], refresh="1s",
                              target={"deletionPolicy": "Delete"}))

    # -- run as the chart's identity -------------------------------------------------------------
    token = _token(admin, release_ns, sa["metadata"]["name"])
    kubeconfig = kube.kubeconfig_for(token, tmp_path / "kubeconfig")
    log = tmp_path / "controller.log"
    procs.append(spawn(_controller_argv(deployment, kubeconfig, release_ns, free_port()), log))

    def synced(value: str) -> bool:
        assert procs[0].poll() is None, log.read_text()[-3000:]
        return secret_data(admin, app_ns, "db") == {"password": value}

    wait_for(lambda: synced("v1"), timeout=45, message=f"first sync ({mode})")
    wait_for(es_ready(admin, app_ns, "db"), timeout=15, message="Ready status written")
    sm.put_secret_value(SecretId=remote, SecretString=CANARY)
    wait_for(lambda: synced(CANARY), timeout=20, message="rotation")
    current = admin.get(SECRETS, "db", app_ns)
    current["data"] = {"password": base64.b64encode(b"tampered").decode()}
    admin.replace(SECRETS, "db", current, app_ns)
    wait_for(lambda: synced(CANARY), timeout=20, message="drift repaired")
    sm.delete_secret(SecretId=remote, ForceDeleteWithoutRecovery=True)
    wait_for(lambda: secret_data(admin, app_ns, "db") is None, timeout=20, message="deleted on a definite NotFound")
    lease = admin.get(LEASES, "secretsync-controller", release_ns)
    assert lease["spec"]["holderIdentity"], "leader election ran with the chart's Lease rules"

    # -- nothing it did was refused (namespaced mode: only the cluster-scoped probes) -----------
    forbidden = _forbidden_calls(kube, user)
    allowed_refusals = CLUSTER_SCOPED_PROBES if mode == "namespaced" else set()
    assert {res for _, res, _ in forbidden} <= allowed_refusals, forbidden
    if mode == "namespaced":
        assert {res for _, res, _ in forbidden} == CLUSTER_SCOPED_PROBES, forbidden

    # -- and the same identity is refused what the role does not grant ----------------------------
    as_sa = KubeApi(kube.configuration(token))
    outside: list[tuple[str, Any]] = [
        ("patch a Secret (the code only creates, replaces and deletes)",
         lambda: as_sa.patch(SECRETS, "aws-creds", {"metadata": {"labels": {"x": "y"}}}, app_ns)),
        ("list Pods", lambda: as_sa.list(PODS, app_ns)),
        ("delete Events", lambda: as_sa.delete(EVENTS, "nope", app_ns)),
    ]
    if mode == "namespaced":
        outside += [("read Secrets of a namespace it does not serve", lambda: as_sa.list(SECRETS, other_ns)),
                    ("list namespaces", lambda: as_sa.list(Resource("", "v1", "namespaces", "Namespace", False)))]
    for what, call in outside:
        with pytest.raises(KubeError) as err:
            call()
        assert err.value.status == 403, f"{mode}: {what}: {err.value}"
    as_sa.close()
    admin.close()
    assert CANARY not in log.read_text()
