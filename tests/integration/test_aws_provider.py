"""The AWS adapter against moto in server mode, through the real boto3 client.

What the shared conformance suite does not cover: how values land on the wire
(SecretString vs SecretBinary), the prefix, soft delete with its recovery window and
restore-on-put, tag replacement, the API-call budget per operation, and where credentials,
endpoints, regions and roles come from (env, profile, STS).
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from secretsync.core.contract import Fetched, ListFilter
from secretsync.core.errors import NotFound
from secretsync.core.registry import open_store
from secretsync.core.settings import ClientSettings, RateLimitSettings
from secretsync.core.values import SecretValue
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, client_env, open_aws, raw_boto3
from tests.harness.ports import closed_port

pytest.importorskip("boto3")


@pytest.fixture
def raw(aws_endpoint: str) -> Any:
    client = raw_boto3(aws_endpoint)
    yield client
    client.close()


def calls(settings: ClientSettings, operation: str) -> int:
    return settings.calls.total("aws", operation)


def test_text_goes_to_secretstring_and_bytes_to_secretbinary(aws_endpoint: str, raw: Any) -> None:
    client = open_aws(aws_endpoint)
    client.put("app/text", SecretValue("plain-text"))
    client.put("app/blob", SecretValue(b"\xff\x00\xfe"))
    text = raw.get_secret_value(SecretId="app/text")
    blob = raw.get_secret_value(SecretId="app/blob")
    assert text["SecretString"] == "plain-text" and "SecretBinary" not in text
    assert blob["SecretBinary"] == b"\xff\x00\xfe" and "SecretString" not in blob
    assert client.get("app/blob").reveal() == b"\xff\x00\xfe"


def test_prefix_scopes_names_on_the_wire_and_list_strips_it(aws_endpoint: str, raw: Any) -> None:
    client = open_aws(aws_endpoint, prefix="team")
    client.put("app/db", SecretValue("v"))
    raw.create_secret(Name="teamx/other", SecretString="x")
    raw.create_secret(Name="elsewhere/app", SecretString="x")
    assert raw.get_secret_value(SecretId="team/app/db")["SecretString"] == "v"
    assert [m.name for m in client.list()] == ["app/db"]
    assert [m.name for m in client.list(ListFilter(prefix="app/"))] == ["app/db"]
    with pytest.raises(NotFound):
        client.get("other")


def test_list_metadata_carries_the_awscurrent_version_and_last_change(aws_endpoint: str) -> None:
    client = open_aws(aws_endpoint)
    client.put("meta/a", SecretValue("1"))
    second = client.put("meta/a", SecretValue("2"))
    (meta,) = list(client.list(ListFilter(prefix="meta/")))
    assert meta.version == second.version
    assert meta.updated is not None


def test_list_costs_one_listsecrets_call_per_page_of_100(aws_endpoint: str, raw: Any) -> None:
    for i in range(230):
        raw.create_secret(Name=f"bulk/s{i:03d}", SecretString="v")
    settings = ClientSettings()
    client = open_aws(aws_endpoint, settings=settings)
    names = [m.name for m in client.list(ListFilter(prefix="bulk/"))]
    assert len(names) == 230
    assert calls(settings, "ListSecrets") == 3
    assert calls(settings, "GetSecretValue") == 0


def test_get_many_costs_one_batch_call_per_twenty_names(aws_endpoint: str, raw: Any) -> None:
    names = [f"many/s{i:02d}" for i in range(45)]
    for i, name in enumerate(names):
        raw.create_secret(Name=name, SecretString=f"value-{i}")
    raw.create_secret(Name="many/gone", SecretString="x")
    raw.delete_secret(SecretId="many/gone", RecoveryWindowInDays=7)
    settings = ClientSettings()
    client = open_aws(aws_endpoint, settings=settings)
    got = client.get_many([*names, "many/missing", "many/gone", "bad name"])
    assert all(isinstance(got[n], Fetched) for n in names)
    item = got["many/s07"]
    assert isinstance(item, Fetched) and item.value.reveal() == b"value-7" and item.version
    assert isinstance(got["many/missing"], NotFound)
    assert isinstance(got["many/gone"], NotFound)  # in its recovery window: absent
    assert got["bad name"].__class__.__name__ == "InvalidConfig"
    assert calls(settings, "BatchGetSecretValue") == 3  # 47 valid names -> 20 + 20 + 7
    assert calls(settings, "GetSecretValue") == 0


def test_delete_is_soft_with_the_configured_recovery_window(aws_endpoint: str, raw: Any) -> None:
    client = open_aws(aws_endpoint, recoveryWindowDays=10)
    client.put("soft/a", SecretValue("v"))
    client.delete("soft/a")
    described = raw.describe_secret(SecretId="soft/a")
    scheduled = described["DeletedDate"]
    expected = datetime.now(UTC) + timedelta(days=10)
    assert abs((scheduled - expected).total_seconds()) < 3600
    assert not client.exists("soft/a")
    assert [m.name for m in client.list(ListFilter(prefix="soft/"))] == []
    with pytest.raises(NotFound):
        client.delete("soft/a")  # already deleted: a definite NotFound


def test_force_delete_removes_the_secret_at_once(aws_endpoint: str, raw: Any) -> None:
    client = open_aws(aws_endpoint)
    client.put("hard/a", SecretValue("v"))
    client.delete("hard/a", force=True)
    with pytest.raises(raw.exceptions.ResourceNotFoundException):
        raw.describe_secret(SecretId="hard/a")


def test_eso_force_delete_without_recovery_store_deletes_at_once(aws_endpoint: str, raw: Any) -> None:
    """ESO's secretsManager.forceDeleteWithoutRecovery: the store's deletes skip the recovery window."""
    from secretsync_providers.aws import factory

    block = factory.store_block({"service": "SecretsManager", "region": REGION, "endpoint": aws_endpoint,
                                 "secretsManager": {"forceDeleteWithoutRecovery": True}})
    client = open_aws(aws_endpoint, **{k: v for k, v in block.config.items() if k not in ("region", "endpoint")})
    client.put("eso-hard/a", SecretValue("v"))
    client.delete("eso-hard/a")
    with pytest.raises(raw.exceptions.ResourceNotFoundException):
        raw.describe_secret(SecretId="eso-hard/a")
    with pytest.raises(NotFound):
        client.delete("eso-hard/a")


def test_put_restores_a_secret_in_its_recovery_window_then_adds_the_version(aws_endpoint: str) -> None:
    client = open_aws(aws_endpoint)
    first = client.put("restore/a", SecretValue("old"), tags={"team": "a"})
    client.delete("restore/a")
    second = client.put("restore/a", SecretValue("new"))
    assert client.get("restore/a").reveal() == b"new"
    assert client.get("restore/a", version=first.version).reveal() == b"old"  # history came back
    assert client.describe("restore/a").version == second.version
    assert dict(client.describe("restore/a").tags) == {"team": "a"}


def test_put_with_tags_replaces_them_and_without_tags_keeps_them(aws_endpoint: str) -> None:
    client = open_aws(aws_endpoint)
    client.put("tags/a", SecretValue("1"), tags={"a": "1", "b": "2"})
    client.put("tags/a", SecretValue("2"), tags={"b": "3", "c": "4"})
    assert dict(client.describe("tags/a").tags) == {"b": "3", "c": "4"}
    client.put("tags/a", SecretValue("3"))
    assert dict(client.describe("tags/a").tags) == {"b": "3", "c": "4"}


def test_put_if_absent_is_a_single_create_call(aws_endpoint: str) -> None:
    settings = ClientSettings()
    client = open_aws(aws_endpoint, settings=settings)
    client.put("once/a", SecretValue("v"), if_absent=True, tags={"k": "v"})
    assert settings.calls.total("aws") == 1
    assert calls(settings, "CreateSecret") == 1


def test_staging_labels_read_older_versions(aws_endpoint: str) -> None:
    client = open_aws(aws_endpoint)
    client.put("stage/a", SecretValue("v1"))
    client.put("stage/a", SecretValue("v2"))
    assert client.get("stage/a", version="AWSPREVIOUS").reveal() == b"v1"
    assert client.get("stage/a", version="AWSCURRENT").reveal() == b"v2"


def test_calls_are_counted_under_aws_api_names(aws_endpoint: str) -> None:
    settings = ClientSettings()
    client = open_aws(aws_endpoint, settings=settings)
    client.put("count/a", SecretValue("v"))
    client.get("count/a")
    with pytest.raises(NotFound):
        client.get("count/missing")
    snap = settings.calls.snapshot()
    assert snap[("aws", "GetSecretValue", "OK")] == 1
    assert snap[("aws", "GetSecretValue", "NotFound")] == 1
    assert snap[("aws", "CreateSecret", "OK")] == 1


def test_rate_limit_paces_every_api_call(aws_endpoint: str) -> None:
    settings = ClientSettings(rate_limit=RateLimitSettings(rate=20.0, burst=1))
    client = open_aws(aws_endpoint, settings=settings)
    client.put("rate/a", SecretValue("v"))
    start = time.monotonic()
    for _ in range(6):
        client.get("rate/a")
    assert time.monotonic() - start >= 0.2  # 6 calls at 20/s with no burst


def test_endpoint_region_and_keys_come_from_the_environment(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in client_env(aws_endpoint).items():
        monkeypatch.setenv(key, value)
    client = open_store("aws://")
    client.put("env/a", SecretValue("v"))
    assert client.get("env/a").reveal() == b"v"


def test_service_specific_endpoint_variable_wins_over_the_global_one(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in client_env(f"http://127.0.0.1:{closed_port()}").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws_endpoint)
    client = open_store("aws://us-east-1")
    client.put("env/b", SecretValue("v"))
    assert client.get("env/b").reveal() == b"v"


def test_profile_supplies_keys_and_region(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "config").write_text("[profile moto]\nregion = eu-west-1\n")
    (tmp_path / "credentials").write_text(
        f"[moto]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = open_store(f"aws://?profile=moto&endpoint={aws_endpoint}")
    client.put("prof/a", SecretValue("v"))
    import boto3

    in_profile_region = boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=aws_endpoint,
                                     aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    assert in_profile_region.get_secret_value(SecretId="prof/a")["SecretString"] == "v"
    # AWS_PROFILE works the same way.
    monkeypatch.setenv("AWS_PROFILE", "moto")
    assert open_store(f"aws://?endpoint={aws_endpoint}").get("prof/a").reveal() == b"v"


def test_role_is_assumed_through_sts_with_a_secretsync_session(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws_endpoint)
    role = "arn:aws:iam::123456789012:role/secretsync-reader"
    client = open_aws(aws_endpoint, role=role)
    client.put("role/a", SecretValue("v"))
    assert client.get("role/a").reveal() == b"v"
    with urllib.request.urlopen(f"{aws_endpoint}/moto-api/data.json", timeout=10) as resp:
        assumed = json.load(resp)["sts"]["AssumedRole"]
    assert [(r["role_arn"], r["session_name"]) for r in assumed] == [(role, "secretsync")]


def test_explicit_credentials_must_name_both_keys(aws_endpoint: str) -> None:
    from secretsync.core.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match="secretAccessKey"):
        open_aws(aws_endpoint, credentials={"accessKeyID": SecretValue(ACCESS_KEY)})


def test_region_in_the_url_is_where_secrets_land(aws_endpoint: str, raw: Any) -> None:
    client = open_aws(aws_endpoint, region="eu-central-1")
    client.put("where/a", SecretValue("v"))
    with pytest.raises(raw.exceptions.ResourceNotFoundException):
        raw.describe_secret(SecretId="where/a")  # raw client is in us-east-1
    assert REGION == "us-east-1"


def test_values_aws_cannot_hold_are_refused_as_invalid_config_without_the_value(aws_endpoint: str) -> None:
    from secretsync.core.errors import InvalidConfig

    client = open_aws(aws_endpoint)
    too_big = "canary-" + "y" * 70_000
    with pytest.raises(InvalidConfig) as info:
        client.put("limits/big", SecretValue(too_big))
    assert "canary-yyyy" not in str(info.value)
    with pytest.raises(InvalidConfig):
        client.put("limits/empty", SecretValue(b""))
    assert not client.exists("limits/big") and not client.exists("limits/empty")


def test_missing_region_is_an_invalid_config_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    from secretsync.core.errors import InvalidConfig

    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    with pytest.raises(InvalidConfig, match="'region'"):
        open_store("aws://")


def test_service_account_token_assumes_the_role_with_web_identity(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws_endpoint)
    role = "arn:aws:iam::123456789012:role/secretsync-irsa"
    token = "eyJhbGciOiJSUzI1NiJ9." + "e30" + ".sig"  # shape only: moto does not verify it
    client = open_aws(aws_endpoint, role=role, credentials={"jwt": SecretValue(token)})
    client.put("wi/a", SecretValue("v"))
    assert client.get("wi/a").reveal() == b"v"
    with urllib.request.urlopen(f"{aws_endpoint}/moto-api/data.json", timeout=10) as resp:
        assumed = json.load(resp)["sts"]["AssumedRole"]
    assert [(r["role_arn"], r["session_name"]) for r in assumed] == [(role, "secretsync")]


def test_service_account_token_without_a_role_is_invalid_config(aws_endpoint: str) -> None:
    from secretsync.core.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match="'role'"):
        open_aws(aws_endpoint, credentials={"jwt": SecretValue("t.o.k")})


def test_the_sts_call_behind_a_role_is_counted_and_rate_limited(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws_endpoint)
    settings = ClientSettings(rate_limit=RateLimitSettings(rate=10, burst=1))
    client = open_aws(aws_endpoint, settings=settings, role="arn:aws:iam::123456789012:role/secretsync-reader")
    start = time.monotonic()
    with pytest.raises(NotFound):
        client.get("role/absent")
    assert settings.calls.total("aws", "AssumeRole") == 1
    assert settings.calls.total("aws", "GetSecretValue") == 1
    assert time.monotonic() - start >= 0.09  # two HTTP calls at 10/s with no burst


def test_esos_aws_push_options_reach_the_secret_and_unknown_ones_are_refused(aws_endpoint: str, raw: Any) -> None:
    """ESO's PushSecretMetadata for AWS (kmsKeyID, description, replicationLocations) as the
    one write path hands them over: applied on create, key and description kept on update."""
    from secretsync.core.contract import read_current, write_version
    from secretsync.core.errors import InvalidConfig

    client = open_aws(aws_endpoint)
    options = {"kmsKeyID": "alias/team-a", "description": "pushed by secretsync", "replicationLocations": ["eu-west-2"]}
    write_version(client, "push/opts", SecretValue("v1"), None, tags={"team": "a"}, options=options)
    desc = raw.describe_secret(SecretId="push/opts")
    assert (desc.get("KmsKeyId"), desc.get("Description")) == ("alias/team-a", "pushed by secretsync")
    assert [r.get("Region") for r in desc.get("ReplicationStatus") or []] == ["eu-west-2"]
    write_version(client, "push/opts", SecretValue("v2"), read_current(client, "push/opts"),
                  options={"description": "changed"})
    assert raw.describe_secret(SecretId="push/opts")["Description"] == "changed"
    assert client.get("push/opts").reveal_text() == "v2"
    with pytest.raises(InvalidConfig, match="resourcePolicy: this store does not apply it"):
        write_version(client, "push/other", SecretValue("v"), None, options={"resourcePolicy": "{}"})
    with pytest.raises(InvalidConfig, match="kmsKeyID: this store does not apply it"):
        write_version(open_store("memory://push-opts"), "k", SecretValue("v"), None, options={"kmsKeyID": "x"})
