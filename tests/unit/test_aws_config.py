"""AWS store config: URL parsing, field validation naming the field, names and version ids."""

from __future__ import annotations

import pytest

pytest.importorskip("boto3")

from secretsync_providers.aws.client import CAPABILITIES, current_version, version_argument
from secretsync_providers.aws.config import AwsConfig, config_from_url, parse_config
from secretsync_providers.aws.names import check_name

from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import get_factory, parse_store_url


def test_url_gives_region_prefix_and_query_options() -> None:
    cfg = config_from_url("aws://eu-central-1/team/app?endpoint=http://127.0.0.1:5000&recoveryWindowDays=10")
    assert cfg == {"region": "eu-central-1", "prefix": "team/app", "endpoint": "http://127.0.0.1:5000",
                   "recoveryWindowDays": "10"}
    parsed = parse_config(cfg)
    assert parsed.recovery_window_days == 10
    assert parsed.wire_name("db") == "team/app/db"


def test_url_without_region_leaves_it_to_the_sdk_chain() -> None:
    assert parse_config(config_from_url("aws://")).region is None


def test_registry_resolves_aws_urls_through_the_entry_point() -> None:
    spec = parse_store_url("aws://us-east-1/prod")
    assert spec.provider == "aws"
    assert spec.config == {"region": "us-east-1", "prefix": "prod"}
    assert get_factory("aws").capabilities == CAPABILITIES


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"region": "Mars"}, "region"),
        ({"region": "us-east-1", "prefix": "bad prefix!"}, "prefix"),
        ({"region": "us-east-1", "endpoint": "ftp://x"}, "endpoint"),
        ({"region": "us-east-1", "role": "reader"}, "role"),
        ({"region": "us-east-1", "recoveryWindowDays": 3}, "recoveryWindowDays"),
        ({"region": "us-east-1", "recoveryWindowDays": "soon"}, "recoveryWindowDays"),
        ({"region": "us-east-1", "recoveryWindow": 7}, "recoveryWindow"),
    ],
)
def test_bad_config_is_refused_naming_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_config(config)
    assert repr(field) in str(info.value)


def test_unknown_url_query_parameter_is_refused() -> None:
    with pytest.raises(InvalidConfig, match="'regoin'"):
        config_from_url("aws://us-east-1?regoin=x")


def test_role_arn_in_any_partition_is_accepted() -> None:
    for arn in ("arn:aws:iam::123456789012:role/reader", "arn:aws-us-gov:iam::123456789012:role/a/b"):
        assert parse_config({"role": arn}).role == arn


def test_names_are_relative_to_the_prefix() -> None:
    cfg = AwsConfig(region="us-east-1", prefix="team")
    assert check_name(cfg, "app/db.password", "get") == "team/app/db.password"
    assert cfg.local_name("team/app/db") == "app/db"
    assert cfg.local_name("teamx/app") is None
    assert cfg.local_name("team/") is None


@pytest.mark.parametrize("name", ["", "trail/", "a//b", "spa ce", "ümlaut", "x" * 513, "rds!db"])
def test_names_aws_would_refuse_are_invalid_config_naming_the_key(name: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        check_name(AwsConfig(), name, "put")
    assert info.value.key == name


def test_reads_take_leading_slashes_arns_and_aws_managed_names() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:shared/db-AbCdEf"
    team = AwsConfig(region="us-east-1", prefix="team")
    assert check_name(AwsConfig(), "/prod/db", "get", read=True) == "/prod/db"
    assert check_name(team, arn, "get", read=True) == arn  # another account's secret: no prefix
    assert check_name(AwsConfig(), "rds!cluster-1a2b", "get", read=True) == "rds!cluster-1a2b"
    with pytest.raises(InvalidConfig):
        check_name(team, "/prod/db", "get", read=True)  # team//prod/db


def test_service_picks_secrets_manager_or_parameter_store_and_nothing_else() -> None:
    assert parse_config({"region": "us-east-1"}).service == "SecretsManager"
    assert parse_config({"region": "us-east-1", "service": "ParameterStore"}).service == "ParameterStore"
    with pytest.raises(InvalidConfig, match="'service'"):
        parse_config({"region": "us-east-1", "service": "S3"})


def test_version_ids_and_staging_labels_are_told_apart() -> None:
    assert version_argument("AWSPREVIOUS") == {"VersionStage": "AWSPREVIOUS"}
    assert version_argument("999999") == {"VersionStage": "999999"}
    vid = "0b4a5c6e-1d2f-4a3b-8c9d-0e1f2a3b4c5d"
    assert version_argument(vid) == {"VersionId": vid}
    assert version_argument("uuid/short") == {"VersionId": "short"}
    # Only ESO's uuid/ rule or a UUID shape is an id: a long custom label stays a label.
    label = "release-2024-candidate-" + "x" * 30
    assert version_argument(label) == {"VersionStage": label}
    assert version_argument("a" * 32) == {"VersionStage": "a" * 32}


def test_current_version_is_the_one_labelled_awscurrent() -> None:
    assert current_version({"a": ["AWSPREVIOUS"], "b": ["AWSCURRENT", "custom"]}) == "b"
    assert current_version({}) is None
    assert current_version(None) is None


def test_capabilities_declare_a_batch_of_twenty_and_no_atomic_cas() -> None:
    caps = CAPABILITIES.as_dict()
    assert caps["batchGet"] and caps["maxBatch"] == 20
    assert caps["compareAndSet"] is False
    assert caps["softDelete"] and caps["binary"] and caps["tags"] and caps["versions"]


def test_list_narrows_server_side_by_prefix_and_one_tag_pair() -> None:
    from secretsync_providers.aws import factory
    from secretsync_providers.aws.client import AwsClient

    from secretsync.core.contract import ListFilter
    from secretsync.core.values import SecretValue

    creds = {"accessKeyID": SecretValue("AKIA" + "T" * 16), "secretAccessKey": SecretValue("s" * 40)}
    client = factory.open({"region": "us-east-1", "prefix": "team", "endpoint": "http://127.0.0.1:9"},
                          credentials=creds)
    assert isinstance(client, AwsClient)
    flt = ListFilter(prefix="app/", tags={"env": "prod", "team": "a"})
    assert client._server_filters(flt) == [
        {"Key": "name", "Values": ["team/app/"]},
        {"Key": "tag-key", "Values": ["env"]},
        {"Key": "tag-value", "Values": ["prod"]},
    ]
    # A prefix AWS cannot filter on still narrows to the store's prefix; the rest is client-side.
    assert client._server_filters(ListFilter(prefix="a*b")) == [{"Key": "name", "Values": ["team/"]}]
    client.close()
