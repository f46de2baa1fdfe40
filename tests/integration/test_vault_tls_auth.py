"""TLS and namespaces against a real OpenBao: CA bundles as data, mutual TLS, cert auth, and an auth
method in another namespace than the secrets (ESO's ``auth.namespace``). No Kubernetes here: the
stores are opened as the controller opens them, with resolved credentials."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from secretsync.core.errors import AuthenticationFailed, InvalidConfig
from secretsync.core.values import SecretValue
from tests.harness.vault import OpenBao, ThrowawayCA, encode

READ = 'path "secret/data/*" { capabilities = ["read"] }\npath "secret/metadata/*" { capabilities = ["read"] }\n'


def _ca_bundle(openbao: OpenBao) -> str:
    assert openbao.ca is not None
    return base64.b64encode(openbao.ca.cert_pem.encode()).decode()


def _enable(openbao: OpenBao, method: str, path: str, namespace: str | None = None) -> None:
    client = openbao.raw()
    if namespace:
        client.adapter.namespace = namespace
    try:
        client.sys.enable_auth_method(method, path=path)
    except Exception as exc:  # another test of this session enabled it first
        if "path is already in use" not in str(exc):
            raise


def _seed(openbao: OpenBao) -> tuple[str, str]:
    name = f"tls-{uuid.uuid4().hex[:6]}/db"
    openbao.kv2_write(name, encode(SecretValue("pw-1")))
    policy = f"tls-read-{uuid.uuid4().hex[:6]}"
    openbao.raw().sys.create_or_update_policy(policy, READ)
    return name, policy


def test_server_signed_by_an_unknown_ca_is_refused_until_the_ca_bundle_is_given(openbao: OpenBao) -> None:
    name, _ = _seed(openbao)
    token = {"token": SecretValue(openbao.root_token)}
    with openbao.open({"address": openbao.tls_address}, credentials=token) as client, \
            pytest.raises(InvalidConfig, match="certificate is not trusted; give its CA"):
        client.get(name)
    with openbao.open({"address": openbao.tls_address, "caBundle": _ca_bundle(openbao)}, credentials=token) as client:
        assert client.get(name).reveal_text() == "pw-1"


def test_mutual_tls_needs_the_client_certificate(openbao: OpenBao) -> None:
    assert openbao.ca is not None
    name, _ = _seed(openbao)
    config = {"address": openbao.mtls_address, "caBundle": _ca_bundle(openbao)}
    with openbao.open(config, credentials={"token": SecretValue(openbao.root_token)}) as client, \
            pytest.raises(InvalidConfig, match="TLS handshake failed"):
        client.get(name)
    cert, key = openbao.ca.issue("secretsync-client")
    creds = {"token": SecretValue(openbao.root_token), "tlsCert": SecretValue(cert), "tlsKey": SecretValue(key)}
    with openbao.open(config, credentials=creds) as client:
        assert client.get(name).reveal_text() == "pw-1"


def test_cert_auth_accepts_the_trusted_ca_and_refuses_another(openbao: OpenBao) -> None:
    assert openbao.ca is not None
    name, policy = _seed(openbao)
    _enable(openbao, "cert", "cert")
    role = f"r-{uuid.uuid4().hex[:6]}"
    openbao.raw().write(f"auth/cert/certs/{role}", certificate=openbao.ca.cert_pem, token_policies=[policy])
    config: dict[str, Any] = {"address": openbao.tls_address, "caBundle": _ca_bundle(openbao),
                              "auth": {"method": "cert", "role": role}}
    cert, key = openbao.ca.issue("app")
    with openbao.open(config, credentials={"clientCert": SecretValue(cert), "clientKey": SecretValue(key)}) as client:
        assert client.get(name).reveal_text() == "pw-1"
    foreign_cert, foreign_key = ThrowawayCA.create("someone else").issue("app")
    with openbao.open(config, credentials={"clientCert": SecretValue(foreign_cert),
                                           "clientKey": SecretValue(foreign_key)}) as client, \
            pytest.raises(AuthenticationFailed, match="cert login at auth/cert was rejected"):
        client.get(name)


def test_auth_namespace_logs_in_apart_from_the_secrets_namespace(openbao: OpenBao) -> None:
    """Users in namespace ``org`` (userpass there), secrets in its child ``org/apps``."""
    org = f"org{uuid.uuid4().hex[:6]}"
    raw = openbao.raw()
    raw.write(f"sys/namespaces/{org}")
    parent = openbao.raw()
    parent.adapter.namespace = org
    parent.write("sys/namespaces/apps")
    apps = openbao.raw()
    apps.adapter.namespace = f"{org}/apps"
    apps.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    apps.secrets.kv.v2.create_or_update_secret(path="db", secret=encode(SecretValue("pw-ns")), mount_point="secret")
    _enable(openbao, "userpass", "userpass", namespace=org)
    parent.sys.create_or_update_policy("apps-read", READ.replace('"secret/', '"apps/secret/'))
    parent.write("auth/userpass/users/app", password="pw-of-app", token_policies=["apps-read"])
    config: dict[str, Any] = {"address": openbao.address, "namespace": f"{org}/apps", "kvVersion": 2,
                              "auth": {"method": "userpass", "username": "app", "namespace": org}}
    with openbao.open(config, credentials={"password": SecretValue("pw-of-app")}) as client:
        assert client.get("db").reveal_text() == "pw-ns"
    # Without auth.namespace the login goes to org/apps, where no such user exists.
    del config["auth"]["namespace"]
    with openbao.open(config, credentials={"password": SecretValue("pw-of-app")}) as client, \
            pytest.raises((AuthenticationFailed, InvalidConfig)) as info:
        client.get("db")
    assert "pw-of-app" not in str(info.value)


def test_a_store_ca_is_the_only_trust_even_for_a_server_the_machine_trusts(
        openbao: OpenBao, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """ESO's rule: a store that names its CA (caBundle, caProvider) trusts that CA alone. Here the
    machine's bundles (OpenSSL's and requests') trust the server's CA, as they would a public CA; a
    store pinned to another CA must still refuse the server, never fall back to those bundles."""
    assert openbao.ca is not None
    name, _ = _seed(openbao)
    machine = tmp_path / "machine-bundle.pem"
    machine.write_text(openbao.ca.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(machine))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(machine))
    token = {"token": SecretValue(openbao.root_token)}
    with openbao.open({"address": openbao.tls_address}, credentials=token) as client:
        assert client.get(name).reveal_text() == "pw-1"  # the machine's trust, when the store names no CA
    other = ThrowawayCA.create("the store's own CA").cert_pem
    pinned = ({"caBundle": base64.b64encode(other.encode()).decode()}, {}),  ({}, {"caBundle": SecretValue(other)})
    for config, creds in pinned:
        with openbao.open({"address": openbao.tls_address, **config}, credentials={**token, **creds}) as client, \
                pytest.raises(InvalidConfig, match="certificate is not trusted"):
            client.get(name)
