"""Many AWS stores in one controller: botocore's data is parsed once, credentials stay per store."""

from __future__ import annotations

import tracemalloc

import pytest

pytest.importorskip("boto3")

import boto3
import botocore.loaders
import botocore.session
from secretsync_providers.aws.auth import (
    ENDPOINT_SERVICES,
    _EndpointData,
    build_session,
    new_session,
    trimmed_endpoints,
)
from secretsync_providers.aws.config import AwsConfig

from secretsync.core.values import SecretValue

_ENDPOINT = "http://127.0.0.1:9"  # never called: clients are only built


def _client(key_id: str) -> object:
    creds = {"accessKeyID": SecretValue(key_id), "secretAccessKey": SecretValue("s" * 40)}
    session = build_session(AwsConfig(region="us-east-1", endpoint=_ENDPOINT), creds)
    return session.client("secretsmanager", endpoint_url=_ENDPOINT)


def test_twenty_stores_hold_one_copy_of_botocores_endpoint_data() -> None:
    """Each store's session parsed endpoints.json (6.9 MB) again: 20 stores held ~150 MB."""
    _client("AKIAWARMUP0000000000")  # the process's one copy
    tracemalloc.start()
    try:
        clients = [_client(f"AKIATENANT{i:010d}") for i in range(20)]
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(clients) == 20
    assert grown < 20 * 1024 * 1024, f"{grown / 1e6:.1f} MB for 20 store clients"


def test_stores_sharing_botocores_data_keep_their_own_credentials_and_search_path() -> None:
    a, b = _client("AKIATENANTAAAAAAAAAA"), _client("AKIATENANTBBBBBBBBBB")
    ka = a._request_signer._credentials.access_key  # type: ignore[attr-defined]
    kb = b._request_signer._credentials.access_key  # type: ignore[attr-defined]
    assert (ka, kb) == ("AKIATENANTAAAAAAAAAA", "AKIATENANTBBBBBBBBBB")
    paths = a._loader.search_paths  # type: ignore[attr-defined]
    assert len(paths) == len(set(paths))  # boto3 adds its data folder on every Session: kept once


_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "il-central-1", "cn-north-1", "us-gov-west-1",
            "us-iso-east-1", "eusc-de-east-1", "xx-future-1")


def _resolved(session: object, service: str, region: str) -> tuple[object, ...]:
    client = session.client(service, region_name=region)  # type: ignore[attr-defined]
    signer = client._request_signer
    return (client.meta.endpoint_url, client.meta.region_name, client.meta.partition,
            signer._signing_name, signer._region_name, signer._signature_version)


@pytest.mark.parametrize("service", sorted(ENDPOINT_SERVICES))
def test_kept_services_resolve_exactly_as_with_botocores_full_endpoint_data(service: str) -> None:
    """The memory cut must not move a single endpoint, region or signing name."""
    full = boto3.Session(botocore_session=botocore.session.Session(), aws_access_key_id="AKIAX",
                         aws_secret_access_key="x")
    trimmed = new_session(aws_access_key_id="AKIAX", aws_secret_access_key="x")
    for region in _REGIONS:
        assert _resolved(trimmed, service, region) == _resolved(full, service, region), region


def test_a_service_outside_the_kept_list_still_gets_a_working_client() -> None:
    session = new_session(aws_access_key_id="AKIAX", aws_secret_access_key="x")
    client = session.client("kms", region_name="eu-west-1")
    assert client.meta.endpoint_url == "https://kms.eu-west-1.amazonaws.com"


def test_botocores_endpoint_data_is_held_for_the_kept_services_only() -> None:
    """endpoints.json parses into 7 MB of objects; the controller keeps what it calls."""
    loader = botocore.loaders.Loader()
    loader.file_loader = _EndpointData(loader.file_loader)
    tracemalloc.start()
    try:
        data = loader.load_data("endpoints")
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 1024 * 1024, f"{held / 1e6:.1f} MB"
    services = {s for p in data["partitions"] for s in p["services"]}
    assert "secretsmanager" in services and "s3" not in services
    assert trimmed_endpoints({"partitions": "odd"}) == {"partitions": "odd"}  # unknown shapes pass through
