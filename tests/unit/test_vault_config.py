"""Vault store URLs, config validation and the VAULT_* / BAO_* environment (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("hvac")
from secretsync_providers.vault.config import config_from_url, endpoint, validate_config

from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import parse_store_url


def test_url_without_host_leaves_the_address_to_the_environment() -> None:
    assert config_from_url("vault:///secret") == {"mount": "secret"}
    assert config_from_url("vault://") == {"mount": "secret"}


def test_url_with_host_is_https_unless_tls_false() -> None:
    assert config_from_url("vault://vault.example:8200/kv")["address"] == "https://vault.example:8200"
    assert config_from_url("vault://127.0.0.1:8200/kv?tls=false")["address"] == "http://127.0.0.1:8200"
    assert config_from_url("vault://127.0.0.1:8200/kv?tls=0")["address"] == "http://127.0.0.1:8200"


def test_url_path_is_the_whole_mount_and_query_sets_the_rest() -> None:
    config = config_from_url("openbao://h:1/team-a/kv?prefix=apps/web&kvVersion=1&namespace=ns1"
                             "&auth=kubernetes&role=web&authMount=k8s-prod")
    assert config == {
        "address": "https://h:1", "mount": "team-a/kv", "prefix": "apps/web", "kvVersion": "1",
        "namespace": "ns1", "auth": {"method": "kubernetes", "role": "web", "mountPath": "k8s-prod"},
    }
    validate_config(config)


@pytest.mark.parametrize("url", ["vault:///secret?bogus=1", "vault://h:1/s?tls=maybe",
                                 "vault:///secret?tls=false", "aws://us-east-1"])
def test_bad_urls_name_the_problem(url: str) -> None:
    with pytest.raises(InvalidConfig):
        config_from_url(url)


def test_registry_routes_openbao_and_bao_schemes_to_vault() -> None:
    for scheme in ("vault", "openbao", "bao"):
        assert parse_store_url(f"{scheme}:///secret").provider == "vault"


@pytest.mark.parametrize(("config", "field"), [
    ({"address": "vault.example:8200"}, "address"),
    ({"mount": ""}, "mount"),
    ({"mount": "a/../b"}, "mount"),
    ({"prefix": 3}, "prefix"),
    ({"kvVersion": 3}, "kvVersion"),
    ({"kvVersion": "two"}, "kvVersion"),
    ({"tlsSkipVerify": "yes"}, "tlsSkipVerify"),
    ({"auth": {"method": "iam"}}, "auth.method"),
    ({"auth": {"method": "kubernetes"}}, "auth.role"),
    ({"auth": {"method": "ldap"}}, "auth.username"),
    ({"auth": {"method": "userpass", "username": "a/../b"}}, "auth.username"),
    ({"caBundle": "bm90IGEgY2VydA=="}, "caBundle"),
    ({"forwardInconsistent": "yes"}, "forwardInconsistent"),
    ({"auth": {"method": "approle", "secretId": "x"}}, "secretId"),
    ({"token": "x"}, "token"),
])
def test_invalid_config_names_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidConfig, match=field.replace(".", r"\.")):
        validate_config(config)


def test_endpoint_prefers_config_then_vault_then_bao_env(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    environ = {"VAULT_ADDR": "https://v:8200", "BAO_ADDR": "https://b:8200", "BAO_NAMESPACE": "ns",
               "VAULT_CACERT": str(ca)}
    ep = endpoint({}, environ)
    assert (ep.address, ep.namespace, ep.verify) == ("https://v:8200", "ns", str(ca))
    assert endpoint({"address": "http://c:1", "namespace": "own"}, environ).address == "http://c:1"
    assert endpoint({}, {"BAO_ADDR": "http://b:1/"}).address == "http://b:1"
    assert endpoint({}, {"BAO_ADDR": "http://b:1", "VAULT_SKIP_VERIFY": "true"}).verify is False


def test_endpoint_without_any_address_says_how_to_give_one() -> None:
    with pytest.raises(InvalidConfig, match="VAULT_ADDR"):
        endpoint({}, {})


def test_missing_ca_file_is_invalid_config(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="CA certificate"):
        endpoint({"address": "https://v:1", "caCert": str(tmp_path / "absent.pem")}, {})
