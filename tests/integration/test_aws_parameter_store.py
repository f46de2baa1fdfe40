"""ESO's ``service: ParameterStore`` on moto's SSM, through the real boto3: what an ESO user reads
from Parameter Store (SecureString decrypted, versions, labels, paths) and what the migrator or
a PushSecret writes there."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from secretsync.core.contract import Fetched, ListFilter
from secretsync.core.errors import InvalidConfig, NotFound
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, client_env, open_aws

pytest.importorskip("boto3")


def _ssm(endpoint: str) -> Any:
    import boto3

    return boto3.client("ssm", region_name=REGION, endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY)


def test_reads_secure_strings_versions_labels_and_paths(aws_endpoint: str) -> None:
    raw = _ssm(aws_endpoint)
    raw.put_parameter(Name="/prod/db/password", Value="first", Type="SecureString")
    raw.put_parameter(Name="/prod/db/password", Value="second", Type="SecureString", Overwrite=True)
    raw.label_parameter_version(Name="/prod/db/password", ParameterVersion=1, Labels=["golden"])
    raw.put_parameter(Name="/prod/db/user", Value="app", Type="String")
    raw.put_parameter(Name="/prod/api/nested/key", Value='{"token": "t1"}', Type="SecureString")
    raw.put_parameter(Name="/staging/db/password", Value="other", Type="SecureString")
    settings = ClientSettings()
    client = open_aws(aws_endpoint, settings=settings, service="ParameterStore")

    assert client.get("/prod/db/password").reveal_text() == "second"
    assert client.get("/prod/db/password", version="1").reveal_text() == "first"
    assert client.get("/prod/db/password", version="golden").reveal_text() == "first"
    assert client.get("/prod/api/nested/key", prop="token").reveal_text() == "t1"
    with pytest.raises(NotFound):
        client.get("/prod/db/absent")
    with pytest.raises(NotFound):
        client.get("/prod/db/password", version="9")

    many = client.get_many(["/prod/db/password", "/prod/db/user", "/prod/db/absent"])
    assert isinstance(many["/prod/db/password"], Fetched) and many["/prod/db/password"].version == "2"
    assert isinstance(many["/prod/db/absent"], NotFound)
    assert settings.calls.total("aws", "GetParameters") == 1

    listed = {m.name: m.version for m in client.list(ListFilter(prefix="/prod/"))}
    assert listed == {"/prod/db/password": "2", "/prod/db/user": "1", "/prod/api/nested/key": "1"}
    assert client.describe("/prod/db/password").version == "2"

    by_path = client.get_by_path("/prod/db", recursive=True)  # type: ignore[attr-defined]
    assert {k: v.value.reveal_text() for k, v in by_path.items()} == {
        "/prod/db/password": "second", "/prod/db/user": "app"}
    assert set(client.get_by_path("/prod", recursive=False)) == set()  # type: ignore[attr-defined]


def test_writes_are_secure_strings_and_deletes_are_definite(aws_endpoint: str, canary: str) -> None:
    raw = _ssm(aws_endpoint)
    client = open_aws(aws_endpoint, service="ParameterStore", prefix="team")
    put = client.put("app/key", SecretValue(canary), tags={"owner": "secretsync"})
    assert put.version == "1"
    stored = raw.get_parameter(Name="/team/app/key", WithDecryption=True)["Parameter"]
    assert (stored["Type"], stored["Value"]) == ("SecureString", canary)
    assert client.put("app/key", SecretValue("v2"), tags={"owner": "x"}).version == "2"
    assert raw.list_tags_for_resource(ResourceType="Parameter", ResourceId="/team/app/key")["TagList"] == [
        {"Key": "owner", "Value": "x"}]
    assert [m.name for m in client.list()] == ["app/key"]
    from secretsync.core.errors import Conflict

    with pytest.raises(Conflict):
        client.put("app/key", SecretValue("v3"), if_absent=True)
    with pytest.raises(Conflict):
        client.put("app/key", SecretValue("v3"), expected_version="1")
    with pytest.raises(InvalidConfig, match="text"):
        client.put("app/bin", SecretValue(b"\xff\xfe"))
    with pytest.raises(InvalidConfig, match="must start with '/'"):
        open_aws(aws_endpoint, service="ParameterStore").put("no/leading/slash", SecretValue("v"))
    client.delete("app/key")
    with pytest.raises(NotFound):
        client.delete("app/key")
    with pytest.raises(NotFound):
        client.describe("app/key")
    assert canary not in repr(client)


def test_an_ssm_error_that_echoes_the_written_value_shows_it_nowhere(canary: str) -> None:
    """A proxy or an SSM-compatible endpoint that quotes the request in its error."""
    import json
    import traceback

    from tests.harness.canned import CannedServer, Reply, Request

    json_type = {"Content-Type": "application/x-amz-json-1.1"}

    def answer(request: Request) -> Reply:
        if request.headers.get("x-amz-target", "").endswith("DescribeParameters"):
            return Reply(200, json_type, json.dumps({"Parameters": []}).encode())
        echo = json.loads(request.body)
        return Reply(400, json_type, json.dumps({"__type": "ParameterPatternMismatchException",
                                                 "message": f"cannot store {json.dumps(echo)}"}).encode())

    with CannedServer() as server:
        server.respond(answer)
        client = open_aws(server.url, service="ParameterStore")
        with pytest.raises(InvalidConfig) as info:
            client.put("/app/db", SecretValue(canary))
    text = "".join(traceback.format_exception(info.value))
    assert "ParameterPatternMismatchException" in text and canary not in text


_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: payments, namespace: shop}
spec:
  selector: {matchLabels: {app: payments}}
  template:
    metadata: {labels: {app: payments}}
    spec:
      containers:
        - name: app
          image: registry.local/payments:1.0
          env:
            - name: DB_PASSWORD
              value: "Wq7-rT2v!Lp9-ssm-demo"
"""


def test_a_migration_to_parameter_store_plans_legal_parameter_names_and_applies(
        aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A platform team's monorepo keeps its AWS workloads under ``aws/``: the default name template
    gives ``aws/payments/shop/payments/DB_PASSWORD``, a fine Secrets Manager name but no Parameter
    Store name (a path must start with '/', and may not begin with 'aws'). The plan must already
    show the names Parameter Store will hold, and say which rules made them; apply stores them."""
    from secretsync.migrator.apply import ApplyOptions
    from secretsync.migrator.plan import PlanOptions
    from secretsync.migrator.workflow import apply_plan, plan_paths, write_plan

    for var, value in client_env(aws_endpoint).items():
        monkeypatch.setenv(var, value)
    raw = _ssm(aws_endpoint)
    for url, head in ((f"aws://{REGION}?service=ParameterStore&endpoint={aws_endpoint}", ""),
                      (f"aws://{REGION}/team-{uuid.uuid4().hex[:6]}?service=ParameterStore&endpoint={aws_endpoint}",
                       "team")):
        repo = tmp_path / f"repo{head}"
        (repo / "aws" / "payments").mkdir(parents=True)
        (repo / "aws" / "payments" / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
        (repo / "aws" / "payments" / "deployment.yaml").write_text(_DEPLOYMENT)
        plan_file = tmp_path / f"plan{head}.json"
        write_plan(plan_paths([repo], PlanOptions(store_url=url)), plan_file)
        doc = json.loads(plan_file.read_text())
        assert "Parameter Store" in doc["store"]["names"]
        (key,) = [s["providerKey"] for s in doc["secrets"]]
        wire = f"/{url.split('/')[3].split('?')[0]}/{key}" if head else key
        assert wire.startswith("/") and not wire.lower().lstrip("/").startswith(("aws", "ssm")), key
        assert key.endswith("payments/shop/payments/DB_PASSWORD"), key
        apply_plan(plan_file, ApplyOptions())
        stored = raw.get_parameter(Name=wire, WithDecryption=True)["Parameter"]
        assert stored["Value"] == "Wq7-rT2v!Lp9-ssm-demo"
