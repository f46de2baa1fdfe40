"""Each ``authType`` end to end: real azure-identity + MSAL against the fake Entra ID token
endpoint, then the real SDK against the fake vault with the token it issued."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.identity")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from secretsync_providers.azure import factory

from secretsync.core.errors import AuthenticationFailed, InvalidConfig, PermissionDenied
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.fakes.azure_keyvault import SECRETS_USER, FakeKeyVault
from tests.harness.azure import azure_config

CLIENT_ID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(autouse=True)
def _clean_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                "AZURE_AUTHORITY_HOST", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME",
                "SECRETSYNC_AZURE_ACCESS_TOKEN", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)


def _open(fake: FakeKeyVault, auth_type: str, credentials: dict[str, SecretValue] | None = None,
          **config: Any) -> Any:
    cfg = azure_config(fake, authType=auth_type, tenantId=fake.tenant, clientId=CLIENT_ID,
                       authorityHost=fake.url, **config)
    return factory.open(cfg, ClientSettings(), credentials)


def _certificate_pem() -> bytes:
    """A client certificate and its private key in one PEM, as Entra ID app credentials are."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "secretsync-test-app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)


def test_service_principal_with_a_client_secret(fake_keyvault: FakeKeyVault) -> None:
    secret = "sp-" + "s" * 30
    fake_keyvault.register_app(CLIENT_ID, secret=secret)
    client = _open(fake_keyvault, "servicePrincipal", {"clientSecret": SecretValue(secret)})
    client.put("sp/db", SecretValue("v"))
    assert client.get("sp/db").reveal() == b"v"
    tenant = fake_keyvault.tenant
    assert [r[2] for r in fake_keyvault.requests("GET", f"/{tenant}/v2.0/.well-known")] == [200]
    assert [r[2] for r in fake_keyvault.requests("POST", f"/{tenant}/oauth2/v2.0/token")] == [200]

    wrong = _open(fake_keyvault, "servicePrincipal", {"clientSecret": SecretValue("not-it")})
    with pytest.raises(AuthenticationFailed, match="AADSTS7000215"):
        wrong.get("sp/db")


def test_service_principal_with_a_client_certificate(fake_keyvault: FakeKeyVault) -> None:
    pem = _certificate_pem()
    fake_keyvault.register_app(CLIENT_ID, certificate_pem=pem.split(b"-----END PRIVATE KEY-----\n")[1])
    client = _open(fake_keyvault, "servicePrincipal", {"clientCertificate": SecretValue(pem)})
    client.put("cert/db", SecretValue("v"))
    assert client.get("cert/db").reveal() == b"v"

    other = _open(fake_keyvault, "servicePrincipal", {"clientCertificate": SecretValue(_certificate_pem())})
    with pytest.raises(AuthenticationFailed, match="AADSTS700027"):
        other.get("cert/db")


def test_workload_identity_exchanges_the_projected_service_account_token(
    fake_keyvault: FakeKeyVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    fake_keyvault.register_app(CLIENT_ID, federated_token=token_file.read_text())
    client = _open(fake_keyvault, "workloadIdentity")
    client.put("wi/db", SecretValue("v"))
    assert client.get("wi/db").reveal() == b"v"

    token_file.write_text("a-token-entra-does-not-trust")
    stale = _open(fake_keyvault, "workloadIdentity")
    with pytest.raises(AuthenticationFailed):
        stale.get("wi/db")


def test_default_chain_picks_up_the_environment_credential(
    fake_keyvault: FakeKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "env-" + "e" * 30
    fake_keyvault.register_app(CLIENT_ID, secret=secret)
    monkeypatch.setenv("AZURE_TENANT_ID", fake_keyvault.tenant)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", secret)
    client = _open(fake_keyvault, "default")
    client.put("dflt/db", SecretValue("v"))
    assert client.get("dflt/db").reveal() == b"v"


def test_a_secrets_user_identity_reads_but_cannot_write(fake_keyvault: FakeKeyVault) -> None:
    secret = "ro-" + "r" * 30
    fake_keyvault.register_app(CLIENT_ID, secret=secret, permissions=SECRETS_USER)
    fake_keyvault.add_token("writer", {"get", "list", "set"})
    factory.open(azure_config(fake_keyvault), ClientSettings(),
                 {"accessToken": SecretValue("writer")}).put("ro/db", SecretValue("v"), tags={})
    reader = _open(fake_keyvault, "servicePrincipal", {"clientSecret": SecretValue(secret)})
    assert reader.get("ro/db").reveal() == b"v"
    with pytest.raises(PermissionDenied):
        reader.put("ro/db", SecretValue("w"), tags={})


def test_eso_certificate_store_with_client_id_from_a_secret_and_object_prefixes(
    fake_keyvault: FakeKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ESO's azkv-secret-store-spn-certificate.yaml block (tenantId set to the fake's): the client
    id and the certificate are Secret keys; remoteRef keys read as ESO reads them."""
    pem = _certificate_pem()
    fake_keyvault.register_app(CLIENT_ID, certificate_pem=pem.split(b"-----END PRIVATE KEY-----\n")[1])
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", fake_keyvault.url)
    block = {"tenantId": fake_keyvault.tenant, "vaultUrl": "https://kvtestpushsecret.vault.azure.net",
             "authSecretRef": {"clientId": {"name": "azure-secret-sp", "key": "ClientID"},
                               "clientCertificate": {"name": "azure-secret-sp", "key": "ClientCertificate"}}}
    reading = factory.store_block(block)
    resolved = {"ClientID": SecretValue(CLIENT_ID), "ClientCertificate": SecretValue(pem)}
    client = factory.open(reading.config, ClientSettings(),
                          {src.credential: resolved[src.key] for src in reading.credentials})
    client.put("database-password", SecretValue("pw"))
    assert client.get("secret/database-password").reveal() == b"pw"
    assert client.get("database-password").reveal() == b"pw"
    der = x509.load_pem_x509_certificate(pem.split(b"-----END PRIVATE KEY-----\n")[1]).public_bytes(
        serialization.Encoding.DER)
    fake_keyvault.put_certificate("db-client-cert", der)
    fake_keyvault.put_key("encryption-pubkey", {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "d": "ZA"})
    assert client.get("cert/db-client-cert").reveal() == der
    assert b'"crv":"P-256"' in client.get("key/encryption-pubkey").reveal()
    with pytest.raises(InvalidConfig, match="'cert/' names a Key Vault certificate"):
        client.put("cert/db-client-cert", SecretValue("not a certificate"))
