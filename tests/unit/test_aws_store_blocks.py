"""An ESO user's ``aws`` SecretStore blocks, as ESO documents them, read by the aws provider.

Written from the outside: a team copies its ESO SecretStores over with only ``apiVersion``
changed and expects them accepted, or refused with the field path that is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("boto3")

from secretsync_providers.aws import factory
from secretsync_providers.aws.config import parse_config
from secretsync_providers.aws.names import check_name, check_parameter_name

from secretsync.api.models import API_VERSION, InvalidSpec, parse_secret_store
from secretsync.core.contract import CredentialSource
from secretsync.core.errors import InvalidConfig

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"


def _store(block: dict[str, Any], kind: str = "SecretStore") -> dict[str, Any]:
    meta = {"name": "s", "namespace": "team"} if kind == "SecretStore" else {"name": "s"}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": {"provider": {"aws": block}}}


def _as_ours(doc: dict[str, Any]) -> dict[str, Any]:
    assert str(doc["apiVersion"]).startswith("external-secrets.io/")
    return {**doc, "apiVersion": API_VERSION}


@pytest.mark.parametrize("name", ["aws-sm-store.yaml", "aws-sm-store-secretsmanager-config.yaml"])
def test_eso_documented_aws_stores_are_accepted_with_only_the_api_version_changed(name: str) -> None:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip("../shared/eso-examples is absent")
    store = parse_secret_store(_as_ours(yaml.safe_load(path.read_text())), default_namespace="team")
    provider = store.spec.provider
    assert provider.config["service"] == "SecretsManager"
    assert provider.config["region"] == "eu-central-1"
    assert provider.config["role"] == "arn:aws:iam::123456789012:role/external-secrets"
    factory.validate_config(provider.config)
    if name == "aws-sm-store.yaml":
        assert {(c.credential, c.field, c.name, c.key) for c in provider.credentials} == {
            ("accessKeyID", "auth.secretRef.accessKeyIDSecretRef", "awssm-secret", "access-key"),
            ("secretAccessKey", "auth.secretRef.secretAccessKeySecretRef", "awssm-secret", "secret-access-key"),
        }
    else:
        assert provider.config["forceDeleteWithoutRecovery"] is True
        assert parse_config(provider.config).force_delete


@pytest.mark.parametrize("name", ["full-secret-store.yaml", "full-cluster-secret-store.yaml"])
def test_eso_catalogue_stores_list_several_providers_and_are_refused_as_such(name: str) -> None:
    """They list aws, vault, gcpsm... in one block: ESO's catalogue of fields, not a valid store."""
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip("../shared/eso-examples is absent")
    with pytest.raises(InvalidSpec, match="exactly one provider block"):
        parse_secret_store(_as_ours(yaml.safe_load(path.read_text())), default_namespace="example-ns")


def test_the_aws_block_of_eso_catalogue_stores_is_read_on_its_own() -> None:
    """Picking the aws block out of the catalogue: accepted, but its ``role: iam-role`` is no ARN."""
    path = EXAMPLES / "full-secret-store.yaml"
    if not path.is_file():
        pytest.skip("../shared/eso-examples is absent")
    block = yaml.safe_load(path.read_text())["spec"]["provider"]["aws"]
    with pytest.raises(InvalidConfig, match="role: 'iam-role' is not an IAM role ARN"):
        factory.store_block(block)
    read = factory.store_block({**block, "role": "arn:aws:iam::123456789012:role/iam-role"})
    assert {c.credential for c in read.credentials} == {"accessKeyID", "secretAccessKey"}


def test_jwt_service_account_asks_for_an_sts_token_and_the_irsa_role_annotation() -> None:
    read = factory.store_block({"service": "SecretsManager", "region": "us-east-1", "auth": {"jwt": {
        "serviceAccountRef": {"name": "app-sa", "audiences": ["extra"]}}}})
    assert set(read.credentials) == {
        CredentialSource("jwt", "auth.jwt.serviceAccountRef", "token", "app-sa", None,
                         audiences=("sts.amazonaws.com", "extra")),
        CredentialSource("webIdentityRole", "auth.jwt.serviceAccountRef", "annotation", "app-sa", None,
                         key="eks.amazonaws.com/role-arn"),
    }
    # The store's own token: not the controller's identity.
    assert factory.credential_use(read.config, frozenset({"jwt", "webIdentityRole"})).ambient is None


def test_role_options_and_parameter_store_are_read_into_the_canonical_config() -> None:
    read = factory.store_block({
        "service": "ParameterStore", "region": "eu-west-1", "prefix": "/prod/",
        "role": "arn:aws:iam::123456789012:role/reader", "externalID": "tenant-42",
        "sessionTags": [{"key": "team", "value": "a"}], "transitiveTagKeys": ["team"],
        "additionalRoles": ["arn:aws:iam::123456789012:role/hop"],
    })
    cfg = parse_config(read.config)
    assert (cfg.service, cfg.head, cfg.external_id) == ("ParameterStore", "/prod/", "tenant-42")
    assert cfg.session_tags == (("team", "a"),) and cfg.transitive_tag_keys == ("team",)
    assert cfg.additional_roles == ("arn:aws:iam::123456789012:role/hop",)
    # With no credentials the store runs on the controller's identity: declared, so a tenant cannot.
    assert factory.credential_use(read.config, frozenset()).ambient


@pytest.mark.parametrize(("block", "path"), [
    ({"service": "SecretsManager", "auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "a", "key": "b"}}}},
     "auth.secretRef.secretAccessKeySecretRef: required"),
    ({"service": "SecretsManager", "auth": {"jwt": {}}}, "auth.jwt.serviceAccountRef: required"),
    ({"service": "SecretsManager", "auth": {"kerberos": {}}}, "auth.kerberos: unknown field"),
    ({"service": "SecretsManager", "secretsManager": {"forceDeleteWithoutRecovery": True,
                                                      "recoveryWindowInDays": 9}}, "secretsManager: "),
    ({"service": "SecretsManager", "secretsManager": {"recoveryWindowInDays": 3}},
     "secretsManager.recoveryWindowInDays: 3 is outside"),
    ({"service": "S3"}, "service: 'S3' is not one of"),
    ({"service": "SecretsManager", "externalID": "x1"}, "role: required when externalID"),
    ({"service": "SecretsManager", "role": "arn:aws:iam::1:role/x"}, "role: "),
    ({"service": "SecretsManager", "sessionTags": [{"key": 5}], "role": "arn:aws:iam::123456789012:role/r"},
     "sessionTags[0]: must be an object"),
    ({"service": "SecretsManager", "auth": {}, "secretRef": {}}, "secretRef: unknown field in ESO's aws block"),
])
def test_bad_eso_blocks_name_the_eso_field_path(block: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        factory.store_block(block)
    assert path in str(err.value)
    # Through the SecretStore parser: the whole path from spec.
    with pytest.raises(InvalidSpec) as spec_err:
        parse_secret_store(_store(block), default_namespace="team")
    assert f"spec.provider.aws.{path.split(':')[0]}" in str(spec_err.value)


def test_a_credential_never_appears_in_a_block_error(canary: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        factory.store_block({"service": "SecretsManager", "auth": {"secretRef": {
            "accessKeyIDSecretRef": {"name": "a", "key": "b"}, "secretAccessKeySecretRef": canary}}})
    assert canary not in str(err.value)


def test_secretsync_own_block_keeps_its_meaning() -> None:
    read = factory.store_block({"region": "us-east-1", "prefix": "team", "secretRef": {
        "accessKeyID": {"name": "c", "key": "id"}, "secretAccessKey": {"name": "c", "key": "key"}}})
    assert read.config == {"region": "us-east-1", "prefix": "team"}
    assert parse_config(read.config).wire_name("db") == "team/db"
    assert {c.field for c in read.credentials} == {"secretRef.accessKeyID", "secretRef.secretAccessKey"}


def test_secretsync_blocks_that_name_service_keep_their_dialect() -> None:
    read = factory.store_block({"region": "us-east-1", "service": "SecretsManager", "prefix": "team",
                                "secretRef": {"accessKeyID": {"name": "c", "key": "id"},
                                              "secretAccessKey": {"name": "c", "key": "key"}}})
    assert parse_config(read.config).wire_name("db") == "team/db"
    assert len(read.credentials) == 2


def test_eso_prefix_is_prepended_as_written() -> None:
    read = factory.store_block({"service": "SecretsManager", "prefix": "team-"})
    assert parse_config(read.config).wire_name("db") == "team-db"


def test_parameter_names_follow_ssm_rules() -> None:
    cfg = parse_config({"service": "ParameterStore"})
    assert check_parameter_name(cfg, "/prod/db/password", "get") == "/prod/db/password"
    assert check_parameter_name(cfg, "plain_name.v1", "get") == "plain_name.v1"
    for bad in ("prod/db", "/a b", "/x//y", "/aws/reserved", "ssm-thing", "/" + "/".join("abcdefghijklmnopq")):
        with pytest.raises(InvalidConfig):
            check_parameter_name(cfg, bad, "get")
    ours = parse_config({"service": "ParameterStore", "prefix": "team"})
    assert check_parameter_name(ours, "db", "get") == "/team/db"
    rules = factory.name_rules_for({"service": "ParameterStore"})
    assert rules.max_len == 1011 and "+" not in rules.allowed


@pytest.mark.parametrize("config", [{"service": "ParameterStore"}, {"service": "ParameterStore", "prefix": "team"},
                                    {"service": "ParameterStore", "namePrefix": "/eso/"},
                                    {"service": "ParameterStore", "namePrefix": "app-"},
                                    {}, {"prefix": "team"}])
def test_names_the_migrator_chooses_for_a_store_are_names_that_store_accepts(config: dict[str, Any]) -> None:
    """What the migrator's template can give (a monorepo's ``aws/`` or ``ssm/`` folder, deep
    kustomize units, odd characters, very long names) made legal by the store's own rules."""
    from secretsync.migrator.naming import sanitize

    cfg = parse_config(config)
    check = check_parameter_name if cfg.service == "ParameterStore" else check_name
    rules = factory.name_rules_for(config)
    for raw in ("aws/payments/shop/api/DB_PASSWORD", "ssm/x", "SSM-agent/k", "/already/rooted/k",
                "/".join("abcdefghijklmnopqrstu") + "/KEY", "team+1/a=b@c/k", "x" * 1500, "y/" * 600 + "k"):
        chosen = sanitize(raw, rules)
        check(cfg, chosen, "put")  # raises InvalidConfig when the store would refuse it


def test_a_parameter_store_url_opens_the_ssm_client_without_calling_aws() -> None:
    from secretsync_providers.aws.parameters import ParameterStoreClient

    from secretsync.core.values import SecretValue

    cfg = factory.config_from_url("aws://us-east-1/team?service=ParameterStore&endpoint=http://127.0.0.1:9")
    client = factory.open(cfg, credentials={"accessKeyID": SecretValue("AKIAX"), "secretAccessKey": SecretValue("k")})
    assert isinstance(client, ParameterStoreClient)
    assert not client.capabilities.binary and client.capabilities.max_batch == 10
    assert "AKIAX" not in repr(client) and "/team/" in repr(client)
    client.close()


def test_a_tenant_store_cannot_borrow_another_namespaces_service_account() -> None:
    block = {"service": "ParameterStore", "region": "us-east-1",
             "auth": {"jwt": {"serviceAccountRef": {"name": "controller", "namespace": "secretsync-system"}}}}
    with pytest.raises(InvalidSpec) as err:
        parse_secret_store(_store(block), default_namespace="team")
    assert "spec.provider.aws.auth.jwt.serviceAccountRef" in str(err.value)
    # A ClusterSecretStore (the platform team's) may name it.
    store = parse_secret_store(_store(block, kind="ClusterSecretStore"))
    assert {c.namespace for c in store.spec.provider.credentials} == {"secretsync-system"}
