"""An ESO user's AWS SecretStores, as written, on the real kube-apiserver with the controller and moto.

Two stores in one tenant namespace, one controller run:

* ESO's documented ``aws-sm-store.yaml`` with only ``apiVersion`` changed: static keys from a
  Secret (``auth.secretRef``), then ``role`` assumed in moto's STS; Secrets Manager.
* per-store IRSA on Parameter Store: ``auth.jwt.serviceAccountRef`` names the tenant's own
  ServiceAccount; the controller asks the TokenRequest API for a ``sts.amazonaws.com`` token,
  exchanges it with AssumeRoleWithWebIdentity for the role in the ServiceAccount's
  ``eks.amazonaws.com/role-arn`` annotation, then assumes each of ``additionalRoles`` and
  finally ``role`` with ``externalID`` and ``sessionTags``, as ESO does.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsync.api.models import API_VERSION
from secretsync.controller.runtime import SS_RES
from secretsync.controller.settings import ScopeSettings
from secretsync.kube.client import SERVICE_ACCOUNTS, KubeApi
from tests.harness.aws import ACCESS_KEY, SECRET_KEY
from tests.harness.controller import (
    create,
    es_manifest,
    fast_settings,
    install_crds,
    kube_api,
    ready_condition,
    running_controller,
    secret_data,
    wait_for,
)
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube
pytest.importorskip("boto3")

ESO_ROLE = "arn:aws:iam::123456789012:role/external-secrets"
IRSA_ROLE = "arn:aws:iam::123456789012:role/team-irsa"
READER_ROLE = "arn:aws:iam::123456789012:role/team-reader"
HOP_ROLE = "arn:aws:iam::123456789012:role/team-hop"


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    yield a
    a.close()


def _boto(service: str, region: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


def _assumed(endpoint: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as resp:
        return list(json.load(resp)["sts"]["AssumedRole"])


def test_eso_stores_with_static_keys_and_per_store_irsa_sync(
    kube: KubeCluster, api: KubeApi, aws_endpoint: str, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ESO's stores name no endpoint: the controller's environment points boto3 at moto, as
    # AWS_ENDPOINT_URL would point it at a VPC endpoint.
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    _boto("secretsmanager", "eu-central-1", aws_endpoint).create_secret(Name="prod/db", SecretString="sm-value")
    ssm = _boto("ssm", "us-east-1", aws_endpoint)
    ssm.put_parameter(Name="/team/db/password", Value="ps-value", Type="SecureString")
    ssm.put_parameter(Name="/team/api/token", Value="tok-value", Type="SecureString")
    ssm.put_parameter(Name="/teamless/x", Value="not-ours", Type="SecureString")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("aws-eso", labels={"secretsync-test": label})

    eso = yaml.safe_load((shared_dir / "eso-examples" / "aws-sm-store.yaml").read_text())
    eso["apiVersion"] = API_VERSION
    eso["metadata"]["namespace"] = ns
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "awssm-secret", "namespace": ns},
                 "stringData": {"access-key": ACCESS_KEY, "secret-access-key": SECRET_KEY}})
    create(api, eso)

    api.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
        "name": "team-sa", "namespace": ns, "annotations": {"eks.amazonaws.com/role-arn": IRSA_ROLE}}}, ns)
    create(api, {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": "params", "namespace": ns},
                 "spec": {"provider": {"aws": {
                     "service": "ParameterStore", "region": "us-east-1", "role": READER_ROLE,
                     "externalID": "team-ext", "sessionTags": [{"key": "team", "value": "a"}],
                     "additionalRoles": [HOP_ROLE],
                     "auth": {"jwt": {"serviceAccountRef": {"name": "team-sa"}}}}}}})

    create(api, es_manifest("from-sm", ns, "aws-secretsmanager", [("password", "prod/db")]))
    create(api, es_manifest("from-ps", ns, "params", [("password", "/team/db/password")]))
    create(api, es_manifest("found", ns, "params", dataFrom=[{"find": {"path": "/team/", "name": {"regexp": ".*"}}}]))

    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings):
        wait_for(lambda: secret_data(api, ns, "from-sm") == {"password": "sm-value"}, message="ESO example synced")
        wait_for(lambda: secret_data(api, ns, "from-ps") == {"password": "ps-value"}, message="IRSA store synced")
        found = wait_for(lambda: secret_data(api, ns, "found"), message="dataFrom.find over a path synced")
        assert sorted(found.values()) == ["ps-value", "tok-value"], found
        for store in ("aws-secretsmanager", "params"):
            wait_for(lambda s=store: (ready_condition(api, SS_RES, ns, s) or {}).get("status") == "True",
                     message=f"{store} ready")

    roles = [(r["role_arn"], r.get("external_id")) for r in _assumed(aws_endpoint)]
    assert (ESO_ROLE, None) in roles
    # The ServiceAccount's role by web identity, then the chain, the store's role last with its external id.
    chain = [arn for arn, _ in roles if arn in (IRSA_ROLE, HOP_ROLE, READER_ROLE)]
    assert chain[:3] == [IRSA_ROLE, HOP_ROLE, READER_ROLE], roles
    assert (READER_ROLE, "team-ext") in roles
