"""Many AWS stores in one controller: botocore's data is parsed once, credentials stay per store."""

from __future__ import annotations

import tracemalloc

import pytest

pytest.importorskip("boto3")

from secretsync_providers.aws.auth import build_session
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
