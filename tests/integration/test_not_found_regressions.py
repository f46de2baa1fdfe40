"""Only true absence is NotFound: secrets that exist, named the way other tools name them.

Each case was a NotFound for a secret that exists (so a deletion under ``deletionPolicy:
Delete``, or a key dropped from a ``find``), found on the real server or the wire-level fake:
moto for AWS, OpenBao for Vault, the Key Vault fake for Azure. Also here: Vault login tokens
do not pile up on the server (issue 8 §5).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from secretsync.core.contract import Fetched, ListFilter
from secretsync.core.errors import InvalidConfig, NotFound
from secretsync.core.registry import get_factory
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.harness.aws import open_aws, raw_boto3
from tests.harness.canned import CannedServer, Reply, Request
from tests.harness.vault import APPROLE_MOUNT, KV1_MOUNT, OpenBao

JSON = {"Content-Type": "application/json"}


def _uid() -> str:
    return uuid.uuid4().hex[:8]


# -- AWS (moto) -----------------------------------------------------------------------------------
def test_aws_a_long_staging_label_is_a_label_not_a_version_id(aws_endpoint: str) -> None:
    sm, name = raw_boto3(aws_endpoint), f"label-{_uid()}"
    sm.create_secret(Name=name, SecretString="v1")
    label = "release-2024-candidate-for-prod-rollout-" + "x" * 8  # 48 characters, was sent as a VersionId
    put = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=[label])
    sm.put_secret_value(SecretId=name, SecretString="v3")
    client = open_aws(aws_endpoint)
    assert client.get(name, version=label).reveal_text() == "v2"
    # ESO's rule for ids: uuid/ID; a bare id of UUID shape works too.
    assert client.get(name, version="uuid/" + put["VersionId"]).reveal_text() == "v2"
    assert client.get(name, version=put["VersionId"]).reveal_text() == "v2"


def test_aws_names_with_a_leading_slash_arns_and_managed_names_read(aws_endpoint: str) -> None:
    sm, uid = raw_boto3(aws_endpoint), _uid()
    slash, managed = f"/prod/{uid}/db", f"rds!cluster-{uid}"
    sm.create_secret(Name=slash, SecretString="slash")
    arn = sm.create_secret(Name=f"arn-{uid}", SecretString="by-arn")["ARN"]
    sm.create_secret(Name=managed, SecretString='{"username":"admin","password":"pw"}')
    client = open_aws(aws_endpoint)
    assert client.get(slash).reveal_text() == "slash"
    assert client.get(arn).reveal_text() == "by-arn"
    assert client.get(managed, prop="password").reveal_text() == "pw"
    got = client.get_many([slash, arn, managed, f"absent-{uid}"])
    assert isinstance(got[slash], Fetched) and got[slash].value.reveal_text() == "slash"
    assert isinstance(got[arn], Fetched) and got[arn].value.reveal_text() == "by-arn"
    assert isinstance(got[managed], Fetched)
    assert isinstance(got[f"absent-{uid}"], NotFound)
    assert client.describe(arn).name == arn
    with pytest.raises(InvalidConfig):  # AWS-managed names are read-only for us
        client.put(managed, SecretValue("x"))


# -- Vault (OpenBao) ------------------------------------------------------------------------------
def test_vault_keys_written_with_the_mount_read_as_eso_reads_them(openbao: OpenBao) -> None:
    name = f"mnt-{_uid()}/db"
    openbao.kv2_write(name, {"value": "v"})
    client = openbao.open()
    for key in (name, f"secret/{name}", f"secret/data/{name}"):
        assert client.get(key).reveal_text() == "v", key
        assert client.describe(key).version == "1", key
    got = client.get_many([f"secret/{name}", f"secret/absent-{_uid()}"])
    assert isinstance(got[f"secret/{name}"], Fetched)
    assert isinstance(next(v for k, v in got.items() if "absent" in k), NotFound)
    # A secret really named secret/... inside the mount is still found under its own name.
    literal = f"secret/lit-{_uid()}"
    openbao.kv2_write(literal, {"value": "literal"})
    assert client.get(literal).reveal_text() == "literal"


def test_vault_kv1_keys_with_the_mount_read_too(openbao: OpenBao) -> None:
    name = f"mnt1-{_uid()}"
    openbao.raw().secrets.kv.v1.create_or_update_secret(path=name, secret={"value": "v1"}, mount_point=KV1_MOUNT)
    client = openbao.open({"mount": KV1_MOUNT})
    assert client.get(f"{KV1_MOUNT}/{name}").reveal_text() == "v1"


@pytest.mark.parametrize("refusal", [403, 404])
def test_vault_refused_version_detection_is_never_a_guess(refusal: int) -> None:
    """A v1 mount read with v2 paths answers 404 for every key; the adapter used to assume v2
    when detection was refused, so every key of a v1 mount read NotFound (wire level: the
    detection refused, every data path 404, as a v1 mount answers v2 paths)."""
    def respond(request: Request) -> Reply:
        if "auth/token/lookup-self" in request.path:
            return Reply(200, JSON, json.dumps({"data": {"ttl": 0}}).encode())
        if "sys/internal/ui/mounts" in request.path:
            return Reply(refusal, JSON, b'{"errors":["permission denied"]}')
        return Reply(404, JSON, b'{"errors":[]}')

    with CannedServer() as server:
        server.respond(respond)
        client = get_factory("vault").open({"address": server.url, "mount": "kv1"}, ClientSettings(),
                                           {"token": SecretValue("s.token")})
        with pytest.raises(InvalidConfig, match="kvVersion"):
            client.get("app/db")
        with pytest.raises(InvalidConfig, match="kvVersion"):
            client.get_many(["app/db"])


def test_vault_kv_version_given_reads_a_v1_mount_behind_a_narrow_policy(openbao: OpenBao) -> None:
    name = f"det-{_uid()}"
    raw = openbao.raw()
    raw.secrets.kv.v1.create_or_update_secret(path=name, secret={"value": "v"}, mount_point=KV1_MOUNT)
    policy = f"narrow-{_uid()}"
    raw.sys.create_or_update_policy(name=policy, policy=f'path "{KV1_MOUNT}/{name}" {{ capabilities = ["read"] }}')
    token = raw.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    assert openbao.open({"mount": KV1_MOUNT, "kvVersion": 1}, token=token).get(name).reveal_text() == "v"


@pytest.fixture
def approle(openbao: OpenBao) -> Iterator[dict[str, SecretValue]]:
    raw = openbao.raw()
    role = f"revoke-{_uid()}"
    raw.sys.create_or_update_policy(name=role, policy='path "secret/*" { capabilities = ["read", "list"] }')
    raw.write(f"auth/{APPROLE_MOUNT}/role/{role}", token_policies=[role], token_ttl="20m")
    role_id = raw.read(f"auth/{APPROLE_MOUNT}/role/{role}/role-id")["data"]["role_id"]
    secret_id = raw.write(f"auth/{APPROLE_MOUNT}/role/{role}/secret-id")["data"]["secret_id"]
    yield {"roleId": SecretValue(role_id), "secretId": SecretValue(secret_id)}


def _accessors(openbao: OpenBao) -> int:
    return len(openbao.raw().list("auth/token/accessors")["data"]["keys"])


def test_vault_login_tokens_are_revoked_on_close(openbao: OpenBao, approle: dict[str, SecretValue]) -> None:
    name = f"rev-{_uid()}"
    openbao.kv2_write(name, {"value": "v"})
    config = {"address": openbao.address, "mount": "secret", "kvVersion": 2,
              "auth": {"method": "approle", "mountPath": APPROLE_MOUNT}}
    before = _accessors(openbao)
    for _ in range(5):  # what a controller does when a store's credentials rotate
        client = get_factory("vault").open(config, ClientSettings(), approle)
        assert client.get(name).reveal_text() == "v"
        client.close()
    assert _accessors(openbao) == before
    # A token that was given (not logged in for) is not ours to revoke.
    given = openbao.raw().auth.token.create(ttl="10m")["auth"]["client_token"]
    client = openbao.open(token=given)
    client.get(name)
    client.close()
    assert openbao.raw().auth.token.lookup(given)["data"]["id"] == given


# -- Azure (Key Vault fake) -----------------------------------------------------------------------
@pytest.fixture
def azure(fake_keyvault: Any) -> Any:
    return fake_keyvault


def test_azure_names_other_tools_wrote_read_verbatim_by_default(azure: Any) -> None:
    from secretsync_providers.azure import factory

    from tests.harness.azure import VAULT_URL, sdk_client

    raw = sdk_client(azure)
    for name in ("my-db-password", "ApiKey", "x" * 127):
        raw.set_secret(name, f"value-of-{name[:10]}")
    client = factory.open({"vaultUrl": VAULT_URL, "authType": "accessToken"}, ClientSettings(),
                          {"accessToken": SecretValue(azure.token)})
    assert client.get("my-db-password").reveal_text() == "value-of-my-db-pass"
    assert client.get("ApiKey").reveal_text() == "value-of-ApiKey"
    listed = {m.name for m in client.list(ListFilter())}
    assert {"my-db-password", "ApiKey", "x" * 127} <= listed  # find skips nothing
    with pytest.raises(InvalidConfig):  # a name Key Vault cannot hold is a bad name, not "absent"
        client.get("app/db.password")
    with pytest.raises(NotFound):
        client.get("really-absent")


def test_azure_escape_encoding_is_opt_in_and_round_trips(azure: Any) -> None:
    from secretsync_providers.azure import factory

    from tests.harness.azure import VAULT_URL

    client = factory.open({"vaultUrl": VAULT_URL, "authType": "accessToken", "nameEncoding": "escape"},
                          ClientSettings(), {"accessToken": SecretValue(azure.token)})
    for name in ("app/db.password", "My_Key", "plain"):
        client.put(name, SecretValue(name))
        assert client.get(name).reveal_text() == name
    assert {"app/db.password", "My_Key", "plain"} <= {m.name for m in client.list(ListFilter())}
