"""The controller against AWS Secrets Manager (moto server) with credentials from a Kubernetes Secret."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from secretsync.controller.runtime import SS_RES
from secretsync.controller.settings import ScopeSettings
from secretsync.core.calls import CallRecorder
from secretsync.kube.client import SECRETS, KubeApi
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, raw_boto3
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    ready_condition,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.ports import closed_port

pytestmark = pytest.mark.kube


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    yield a
    a.close()


def _aws_store(api: KubeApi, ns: str, endpoint: str) -> None:
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": ns},
                 "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
    create(api, store_manifest("aws", ns, "aws", {
        "region": REGION, "endpoint": endpoint,
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}))


def test_aws_sync_steady_state_and_outage(kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    prefix = f"ctl-{uuid.uuid4().hex[:6]}/"
    for i in range(30):
        sm.create_secret(Name=f"{prefix}k{i}", SecretString=f"v{i}")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("ctl-aws", labels={"secretsync-test": label})
    calls = CallRecorder()
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    # Everything exists before the controller starts: a cold start.
    _aws_store(api, ns, aws_endpoint)
    for i in range(30):
        create(api, es_manifest(f"s{i}", ns, "aws", [("v", f"{prefix}k{i}")], refresh="1s"))
    with running_controller(kube, settings, calls) as ctl:
        for i in range(30):
            wait_for(lambda i=i: secret_data(api, ns, f"s{i}") == {"v": f"v{i}"}, message=f"s{i} synced")
        wait_for(lambda: (ready_condition(api, SS_RES, ns, "aws") or {}).get("status") == "True",
                 message="store ready")
        # Cold start: 30 keys in 2 BatchGetSecretValue calls, not 30 GetSecretValue.
        assert calls.total("aws", "GetSecretValue") == 0, calls.snapshot()
        assert calls.total("aws", "BatchGetSecretValue") == 2, calls.snapshot()
        # Steady state: one ListSecrets per cycle, and one batch for the one changed key.
        sm.put_secret_value(SecretId=f"{prefix}k3", SecretString="changed")
        wait_for(lambda: secret_data(api, ns, "s3") == {"v": "changed"}, timeout=10, message="change synced")
        stats = ctl.store_stats()[f"SecretStore/{ns}/aws"]
        assert stats["mode"] == "list"
        calls.reset()
        cycles_before = stats["cycles"]
        wait_for(lambda: ctl.store_stats()[f"SecretStore/{ns}/aws"]["cycles"] >= cycles_before + 3, timeout=20,
                 message="three more cycles")
        cycles = ctl.store_stats()[f"SecretStore/{ns}/aws"]["cycles"] - cycles_before
        fetches = sum(n for (p, op, _), n in calls.snapshot().items() if p == "aws" and op != "ListSecrets")
        assert fetches == 0, calls.snapshot()
        assert calls.total("aws", "ListSecrets") <= cycles + 1

        # Outage: the store now points at a closed port. The Secrets stay, status says why.
        api.patch(SS_RES, "aws", {"spec": {"provider": {"aws": {"endpoint": f"http://127.0.0.1:{closed_port()}"}}}},
                  ns)
        cond = wait_for(es_ready(api, ns, "s0", "False"), timeout=20, message="outage reported")
        assert cond["reason"] in ("Unavailable", "StoreUnavailable")
        wait_for(lambda: (ready_condition(api, SS_RES, ns, "aws") or {}).get("status") == "False", timeout=20,
                 message="store not ready")
        assert secret_data(api, ns, "s0") == {"v": "v0"}
        assert api.get(SECRETS, "s5", ns)["data"]
        # Recovery.
        sm.put_secret_value(SecretId=f"{prefix}k0", SecretString="after")
        api.patch(SS_RES, "aws", {"spec": {"provider": {"aws": {"endpoint": aws_endpoint}}}}, ns)
        wait_for(lambda: secret_data(api, ns, "s0") == {"v": "after"}, timeout=20, message="recovered")
        wait_for(es_ready(api, ns, "s1", "True"), timeout=10, message="others ready again")


def test_a_quiet_cycle_of_a_find_over_50_secrets_costs_only_the_listing(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    prefix = f"find-{uuid.uuid4().hex[:6]}/"
    for i in range(50):
        sm.create_secret(Name=f"{prefix}k{i:02d}", SecretString=f"v{i}")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("ctl-find", labels={"secretsync-test": label})
    calls = CallRecorder()
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    _aws_store(api, ns, aws_endpoint)
    es = es_manifest("all", ns, "aws", refresh="1s")
    es["spec"]["dataFrom"] = [{"find": {"path": prefix}}]
    create(api, es)
    store = f"SecretStore/{ns}/aws"
    with running_controller(kube, settings, calls) as ctl:
        wait_for(lambda: len(secret_data(api, ns, "all") or {}) == 50, message="50 found keys synced")
        cycles_before = ctl.store_stats()[store]["cycles"]
        wait_for(lambda: ctl.store_stats()[store]["cycles"] >= cycles_before + 1, timeout=10, message="a cycle")
        calls.reset()
        cycles_before = ctl.store_stats()[store]["cycles"]
        wait_for(lambda: ctl.store_stats()[store]["cycles"] >= cycles_before + 3, timeout=20,
                 message="three quiet cycles")
        cycles = ctl.store_stats()[store]["cycles"] - cycles_before
        reads = {op: n for (p, op, _), n in calls.snapshot().items() if p == "aws" and op != "ListSecrets"}
        assert reads == {}, calls.snapshot()
        assert calls.total("aws", "ListSecrets") <= cycles + 1, calls.snapshot()

        # A rotation under the find is still seen, and only that secret is read again.
        calls.reset()
        sm.put_secret_value(SecretId=f"{prefix}k07", SecretString="rotated")
        wait_for(lambda: (secret_data(api, ns, "all") or {}).get(f"{prefix.replace('/', '_')}k07") == "rotated",
                 timeout=10, message="rotation under the find synced")
        fetched = sum(n for (p, op, _), n in calls.snapshot().items() if p == "aws" and op != "ListSecrets")
        assert fetched == 1, calls.snapshot()


def test_a_parameter_store_find_path_is_a_folder_not_a_name_prefix(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    """ESO reads ``find.path`` on Parameter Store with GetParametersByPath (recursive): ``/prod``
    is a folder, so a neighbour ``/production`` (another team's parameters) is not pulled in."""
    import boto3

    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=aws_endpoint, aws_access_key_id=ACCESS_KEY,
                       aws_secret_access_key=SECRET_KEY)
    root = f"/prod{uuid.uuid4().hex[:6]}"
    ssm.put_parameter(Name=f"{root}/db/password", Value="ours-1", Type="SecureString")
    ssm.put_parameter(Name=f"{root}/api/token", Value="ours-2", Type="SecureString")
    ssm.put_parameter(Name=f"{root}uction/db/password", Value="the-neighbours", Type="SecureString")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("ctl-ps-find", labels={"secretsync-test": label})
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws-creds", "namespace": ns},
                 "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
    create(api, store_manifest("params", ns, "aws", {
        "region": REGION, "endpoint": aws_endpoint, "service": "ParameterStore",
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}))
    es = es_manifest("found", ns, "params", refresh="1h")
    es["spec"]["dataFrom"] = [{"find": {"path": root}}]
    create(api, es)
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings):
        found = wait_for(lambda: secret_data(api, ns, "found"), message="dataFrom.find over a path synced")
    assert sorted(found.values()) == ["ours-1", "ours-2"], found
