"""allowedKeyPrefix bounds what the provider reads, not the key as a tenant spelled it.

Written as a hostile tenant would: each key below starts with (or plays with) the store's
prefix but, as the provider canonicalises it, reads something else.
"""

from __future__ import annotations

from typing import Any

import pytest

from secretsync.api.models import API_VERSION, SecretStore, parse_secret_store


def _store(provider: dict[str, Any], prefix: str) -> SecretStore:
    return parse_secret_store({"apiVersion": API_VERSION, "kind": "SecretStore",
                               "metadata": {"name": "s", "namespace": "team-a"},
                               "spec": {"provider": provider, "allowedKeyPrefix": prefix}})


AZURE = {"azurekv": {"vaultUrl": "https://team-a-kv.vault.azure.net", "authType": "ManagedIdentity"}}
AZURE_ESCAPE = {"azure": {"vaultUrl": "https://team-a-kv.vault.azure.net", "nameEncoding": "escape"}}


@pytest.mark.parametrize("prefix", ["secret", "se", "secret/", "s", "Secret"])
def test_azure_secret_slash_reads_the_bare_name_so_a_prefix_of_secret_slash_bounds_nothing(prefix: str) -> None:
    why = _store(AZURE, prefix).key_refusal("secret/other-team-db")
    assert why is not None and "'other-team-db'" in why and "allowedKeyPrefix" in why


def test_azure_secret_slash_inside_the_prefix_is_allowed_and_cert_key_keep_their_prefix() -> None:
    store = _store(AZURE, "team-a-")
    assert store.key_refusal("secret/team-a-db") is None
    assert store.key_refusal("team-a-db") is None
    assert store.key_refusal("cert/team-a-tls") is not None  # the certificate is 'cert/team-a-tls'
    assert _store(AZURE, "cert/team-a-").key_refusal("cert/team-a-tls") is None
    assert _store(AZURE, "key/").key_refusal("key/any") is None
    # the admin's ESO spelling of the prefix bounds the same secrets
    assert _store(AZURE, "secret/team-a-").key_refusal("team-a-db") is None
    assert _store(AZURE, "secret/team-a-").key_refusal("secret/team-a-db") is None
    assert _store(AZURE, "secret/team-a-").key_refusal("secret/team-b-db") is not None


def test_azure_key_that_is_no_vault_name_is_refused_under_a_prefix() -> None:
    why = _store(AZURE, "team-a").key_refusal("team-a/x y")
    assert why is not None and "names no single object" in why


def test_azure_escape_mode_reads_every_key_as_written() -> None:
    store = _store(AZURE_ESCAPE, "secret")
    assert store.key_refusal("secret/other") is None  # escape: the secret 'secret/other' (secret-sother)
    assert store.key_refusal("cert/other") is not None


VAULT = {"vault": {"address": "https://bao:8200", "mount": "secret", "kvVersion": 2}}


@pytest.mark.parametrize("key", [
    "team-a/../team-b/db", "team-a/./x", "team-a//x", "/team-a/x", "team-a/x/", "team-a/x/..",
])
def test_vault_keys_a_url_would_resolve_elsewhere_are_refused(key: str) -> None:
    why = _store(VAULT, "team-a/").key_refusal(key)
    assert why is not None and repr(key) in why


def test_vault_percent_encoded_dots_are_a_literal_name_inside_the_prefix() -> None:
    from secretsync_providers.vault.names import quote_path

    assert _store(VAULT, "team-a/").key_refusal("team-a/%2e%2e/team-b") is None
    assert quote_path("team-a/%2e%2e/team-b") == "team-a/%252e%252e/team-b"  # what is sent: still team-a's


def test_vault_key_starting_with_the_mount_reads_the_path_after_it_first() -> None:
    apps = {"vault": {"address": "https://bao:8200", "mount": "apps", "kvVersion": 2}}
    why = _store(apps, "app").key_refusal("apps/team-b/db")
    assert why is not None and "'team-b/db'" in why
    # ESO's spelling with the mount is read as both paths: only a prefix both start with allows it
    assert _store(VAULT, "team-a/").key_refusal("secret/team-a/db") is not None
    assert _store(VAULT, "secret/").key_refusal("secret/data/x") is not None
    assert _store(VAULT, "team-a/").key_refusal("team-a/db") is None


def test_vault_unknown_kv_version_counts_both_readings_of_mount_data() -> None:
    from secretsync_providers.vault.names import read_paths

    assert read_paths("secret/data/x", "secret", lambda: None) == ["x", "data/x", "secret/data/x"]
    assert read_paths("secret/data/x", "secret", lambda: True) == ["x", "secret/data/x"]
    assert read_paths("secret/data/x", "secret", lambda: False) == ["data/x", "secret/data/x"]
    assert read_paths("other/x", "secret", lambda: None) == ["other/x"]


def test_aws_arn_and_dot_segments_do_not_pass_a_name_prefix() -> None:
    aws = {"aws": {"region": "eu-west-1"}}
    store = _store(aws, "team-a/")
    assert store.key_refusal("arn:aws:secretsmanager:eu-west-1:123456789012:secret:team-b/db") is not None
    assert store.key_refusal("team-a/../team-b/db") is not None
    assert store.key_refusal("team-a/db") is None


def test_gcp_full_resource_names_and_dot_segments_do_not_pass_a_name_prefix() -> None:
    from secretsync_providers.gcp.names import encode_secret_id

    gcp = {"gcpsm": {"projectID": "p"}}
    store = _store(gcp, "team-a/")
    assert store.key_refusal("projects/p/secrets/team-b-db") is not None
    assert store.key_refusal("team-a/../team-b") is not None
    # a key inside the prefix is one secret id of its own (the escape is injective)
    assert encode_secret_id("team-a/projects/p/secrets/x") == "team-a_2F_projects_2F_p_2F_secrets_2F_x"


def test_find_path_is_bounded_without_dot_segments_and_a_find_without_path_is_refused() -> None:
    store = _store(VAULT, "team-a/")
    assert store.key_refusal("team-a/", listing=True) is None
    assert store.key_refusal("team-a/../", listing=True) is not None
    assert store.key_refusal(None, listing=True) is not None


def test_without_a_prefix_nothing_is_refused() -> None:
    store = parse_secret_store({"apiVersion": API_VERSION, "kind": "SecretStore",
                                "metadata": {"name": "s", "namespace": "team-a"}, "spec": {"provider": AZURE}})
    assert store.key_refusal("secret/anything") is None
