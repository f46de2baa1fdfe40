"""Azure store URLs, config validation and credential selection (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("azure.identity")

from azure import identity
from secretsync_providers.azure import factory
from secretsync_providers.azure.auth import StaticTokenCredential, build_credential
from secretsync_providers.azure.factory import AzureConfig

from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import parse_store_url
from secretsync.core.values import SecretValue


@pytest.fixture(autouse=True)
def _no_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SECRETSYNC_AZURE_TEST_ENDPOINT", "SECRETSYNC_AZURE_TEST_CA_CERT", "SECRETSYNC_AZURE_ACCESS_TOKEN",
                "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("url", "vault_url"),
    [
        ("azure://myvault", "https://myvault.vault.azure.net"),
        ("azure://myvault/", "https://myvault.vault.azure.net"),
        ("azkv://myvault", "https://myvault.vault.azure.net"),
        ("azure://myvault.vault.azure.cn", "https://myvault.vault.azure.cn"),
        ("https://myvault.vault.azure.net", "https://myvault.vault.azure.net"),
        ("https://myvault.vault.azure.net/", "https://myvault.vault.azure.net"),
    ],
)
def test_store_urls_name_the_vault(url: str, vault_url: str) -> None:
    spec = parse_store_url(url)
    assert spec.provider == "azure"
    assert spec.config["vaultUrl"] == vault_url


def test_url_query_parameters_become_config_fields() -> None:
    config = factory.config_from_url("azure://myvault?authType=managedIdentity&clientId=abc&purgeOnDelete=true")
    assert config == {"vaultUrl": "https://myvault.vault.azure.net", "authType": "managedIdentity",
                      "clientId": "abc", "purgeOnDelete": "true"}
    cfg = AzureConfig.parse(config)
    assert cfg.purge_on_delete is True and cfg.auth_type == "managedIdentity"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("azure://", "names no vault"),
        ("azure://myvault/some/path", "no path"),
        ("azure://myvault?colour=blue", "unknown parameter 'colour'"),
        ("azure://1vault", "not a Key Vault name"),
        ("azure://v", "not a Key Vault name"),
        ("azure://myvault?authType=magic", "authType"),
    ],
)
def test_bad_store_urls_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        parse_store_url(url)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "vaultUrl"),
        ({"vaultUrl": "http://v.vault.azure.net"}, "vaultUrl"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "purgeOnDelete": "perhaps"}, "purgeOnDelete"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "nameEncoding": "base32"}, "nameEncoding"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "maxConcurrency": 0}, "maxConcurrency"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "caCert": "/nonexistent/ca.pem"}, "caCert"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "endpoint": "127.0.0.1:8443"}, "endpoint"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "tenantId": 42}, "tenantId"),
        ({"vaultUrl": "https://myvault.vault.azure.net", "vaultName": "x"}, "vaultName"),
    ],
)
def test_invalid_config_names_the_field(config: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidConfig, match=field):
        factory.validate_config(config)


def test_external_secrets_spellings_of_auth_type_are_accepted() -> None:
    for spelling, canonical in [("WorkloadIdentity", "workloadIdentity"), ("ManagedIdentity", "managedIdentity"),
                                ("ServicePrincipal", "servicePrincipal")]:
        cfg = AzureConfig.parse({"vaultUrl": "https://myvault.vault.azure.net", "authType": spelling})
        assert cfg.auth_type == canonical


def test_test_hooks_come_from_the_environment_never_from_the_store(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here")
    monkeypatch.setenv("SECRETSYNC_AZURE_TEST_ENDPOINT", "https://127.0.0.1:9443")
    monkeypatch.setenv("SECRETSYNC_AZURE_TEST_CA_CERT", str(ca))
    monkeypatch.setenv("SECRETSYNC_AZURE_ACCESS_TOKEN", "t")
    config = factory.config_from_url("azure://myvault")
    assert "endpoint" not in config and "caCert" not in config
    assert AzureConfig.parse(config).endpoint == "https://127.0.0.1:9443"
    assert config["authType"] == "accessToken"
    with pytest.raises(InvalidConfig, match="'endpoint'"):
        factory.validate_config({"vaultUrl": "https://myvault.vault.azure.net", "endpoint": "https://evil.test"})
    assert factory.config_from_url("azure://myvault?authType=default")["authType"] == "default"


def test_capabilities_declare_what_key_vault_cannot_do() -> None:
    caps = factory.capabilities
    assert caps.max_value_bytes == 25 * 1024
    assert caps.soft_delete and caps.versions and caps.tags and caps.binary
    assert not caps.compare_and_set and not caps.batch_get and not caps.versions_in_list
    assert caps.as_dict()["maxValueBytes"] == 25600


def _build(auth_type: str, **kw: object) -> object:
    args: dict[str, object] = {"tenant_id": None, "client_id": None, "authority_host": None,
                               "credentials": None, "transport": {"connection_timeout": 1}}
    args.update(kw)
    return build_credential(auth_type, **args)  # type: ignore[arg-type]


def test_each_auth_type_builds_its_azure_identity_credential(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tenant, client = "00000000-0000-0000-0000-00000000000t", "00000000-0000-0000-0000-00000000000c"
    assert isinstance(_build("default"), identity.DefaultAzureCredential)
    assert isinstance(_build("managedIdentity", client_id=client), identity.ManagedIdentityCredential)
    sp = _build("servicePrincipal", tenant_id=tenant, client_id=client,
                credentials={"clientSecret": SecretValue("s" * 20)})
    assert isinstance(sp, identity.ClientSecretCredential)
    token_file = tmp_path / "token"
    token_file.write_text("jwt")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    wi = _build("workloadIdentity", tenant_id=tenant, client_id=client)
    assert isinstance(wi, identity.WorkloadIdentityCredential)
    static = _build("accessToken", credentials={"accessToken": SecretValue("tok-123")})
    assert isinstance(static, StaticTokenCredential)
    assert static.get_token("https://vault.azure.net/.default").token == "tok-123"
    assert "tok-123" not in repr(static)


@pytest.mark.parametrize(
    ("auth_type", "kw", "message"),
    [
        ("servicePrincipal", {"client_id": "c"}, "tenantId"),
        ("servicePrincipal", {"tenant_id": "t"}, "clientId"),
        ("servicePrincipal", {"tenant_id": "t", "client_id": "c"}, "clientSecret"),
        ("workloadIdentity", {"tenant_id": "t", "client_id": "c"}, "AZURE_FEDERATED_TOKEN_FILE"),
        ("accessToken", {}, "SECRETSYNC_AZURE_ACCESS_TOKEN"),
    ],
)
def test_a_credential_missing_a_setting_is_invalid_config_naming_it(
    auth_type: str, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidConfig, match=message):
        _build(auth_type, **kw)


def test_the_access_token_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSYNC_AZURE_ACCESS_TOKEN", "from-env")
    cred = _build("accessToken")
    assert cred.get_token("scope").token == "from-env"  # type: ignore[attr-defined]
