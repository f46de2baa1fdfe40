"""Listing KV v2 on OpenBao with ``LIST detailed-metadata`` (a page of secrets' metadata per call),
and the classic walk (LIST names + one metadata read per secret) where that endpoint is missing
(HashiCorp Vault) or not granted by the token's policy."""

from __future__ import annotations

import uuid

import pytest
from secretsync_providers.vault import client as vault_client

from secretsync.core.contract import ListFilter, SecretMetadata
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.harness.vault import OpenBao

pytestmark = pytest.mark.integration


def _seed(openbao: OpenBao, base: str) -> list[str]:
    """25 secrets in base/, 3 in base/sub/, one soft-deleted and one tagged; the live names, sorted."""
    client = openbao.open()
    names = [f"{base}/s{i:02d}" for i in range(25)] + [f"{base}/sub/t{i}" for i in range(3)]
    for name in names:
        client.put(name, SecretValue("v1"))
    client.put(names[3], SecretValue("v2"), tags={"team": "pay"})
    client.delete(names[5])
    return sorted(n for n in names if n != names[5])


def _by_name(metas: list[SecretMetadata]) -> dict[str, tuple[str | None, dict[str, str]]]:
    return {m.name: (m.version, dict(m.tags)) for m in metas}


def test_openbao_lists_a_page_of_metadata_per_call_and_no_read_per_secret(
        openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_client, "LIST_PAGE", 10)
    base = f"dl-{uuid.uuid4().hex[:8]}"
    live = _seed(openbao, base)
    settings = ClientSettings()
    client = openbao.open(settings=settings)
    client.describe(live[0])  # the session's token lookup and mount detection, out of the count
    settings.calls.reset()
    listed = list(client.list(ListFilter(prefix=f"{base}/")))
    assert [m.name for m in listed] == live  # the soft-deleted one left out, sub/ walked
    # base/ holds 26 keys (25 names + sub/): pages of 10, 10, 6; base/sub/: one page.
    assert settings.calls.total(operation="list") == 4
    monkeypatch.setattr(vault_client, "LIST_PAGE", 13)
    settings.calls.reset()
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/"))] == live
    assert settings.calls.total(operation="list") == 3  # exactly two pages of 13: no empty third one
    assert settings.calls.total(operation="read_metadata") == 0
    # The same versions and tags as one metadata read per secret gives.
    assert _by_name(listed) == _by_name([client.describe(n) for n in live])
    assert _by_name(listed)[f"{base}/s03"] == ("2", {"team": "pay"})
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/", tags={"team": "pay"}))] == [f"{base}/s03"]


def test_a_server_without_detailed_metadata_gets_the_classic_walk_and_is_not_asked_again(
        openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenBao answers an unknown KV v2 path exactly as HashiCorp Vault answers detailed-metadata:
    # 404 with the warning "Invalid path for a versioned K/V secrets engine".
    monkeypatch.setattr(vault_client, "DETAILED_METADATA", "no-such-endpoint")
    base = f"dl-{uuid.uuid4().hex[:8]}"
    live = _seed(openbao, base)
    settings = ClientSettings()
    client = openbao.open(settings=settings)
    client.describe(live[0])
    settings.calls.reset()
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/"))] == live
    assert settings.calls.total(operation="list") == 3  # the refused detailed LIST, base/, base/sub/
    assert settings.calls.total(operation="read_metadata") == len(live) + 1  # + the soft-deleted one
    settings.calls.reset()
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/"))] == live
    assert settings.calls.total(operation="list") == 2  # remembered: no second try


def test_a_policy_granting_only_metadata_lists_through_the_classic_walk(openbao: OpenBao) -> None:
    base = f"dl-{uuid.uuid4().hex[:8]}"
    live = _seed(openbao, base)
    raw = openbao.raw()
    policy = f"metadata-only-{base}"
    raw.sys.create_or_update_policy(name=policy, policy=f'''
path "secret/data/{base}/*" {{ capabilities = ["read"] }}
path "secret/metadata/{base}/*" {{ capabilities = ["read", "list"] }}
''')
    token = raw.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    settings = ClientSettings()
    client = openbao.open(token=token, settings=settings)
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/"))] == live
    settings.calls.reset()
    assert [m.name for m in client.list(ListFilter(prefix=f"{base}/"))] == live
    assert settings.calls.total(operation="list") == 2
    assert settings.calls.total(operation="lookup_self") == 0  # the denial is not re-checked each time
