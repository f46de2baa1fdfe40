"""Vault/OpenBao authentication against a real OpenBao: approle, jwt, kubernetes-shaped login,
token renewal and re-login, and where the token comes from (credentials, env, ~/.vault-token)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from secretsync.core.errors import AuthenticationFailed
from secretsync.core.registry import open_store
from secretsync.core.settings import ClientSettings
from secretsync.core.values import SecretValue
from tests.harness.env import environ
from tests.harness.vault import APPROLE_MOUNT, OpenBao

RW_POLICY = 'path "secret/*" { capabilities = ["create", "read", "update", "delete", "list"] }\n' \
            'path "sys/internal/ui/mounts/*" { capabilities = ["read"] }'


@pytest.fixture(scope="module")
def rw_policy(openbao: OpenBao) -> str:
    openbao.raw().sys.create_or_update_policy(name="secretsync-rw", policy=RW_POLICY)
    return "secretsync-rw"


def _approle(openbao: OpenBao, policy: str, name: str | None = None, **role: Any) -> tuple[str, str]:
    raw = openbao.raw()
    name = name or f"r{uuid.uuid4().hex[:8]}"
    raw.auth.approle.create_or_update_approle(role_name=name, token_policies=[policy],
                                              mount_point=APPROLE_MOUNT, **role)
    role_id = raw.auth.approle.read_role_id(role_name=name, mount_point=APPROLE_MOUNT)["data"]["role_id"]
    secret_id = raw.auth.approle.generate_secret_id(role_name=name, mount_point=APPROLE_MOUNT)["data"][
        "secret_id"]
    return role_id, secret_id


def test_approle_login_reads_and_writes(openbao: OpenBao, rw_policy: str) -> None:
    role_id, secret_id = _approle(openbao, rw_policy)
    settings = ClientSettings()
    client = openbao.open({"auth": {"method": "approle"}}, settings=settings,
                          credentials={"roleId": SecretValue(role_id), "secretId": SecretValue(secret_id)})
    client.put("approle/x", SecretValue("v"))
    assert client.get("approle/x").reveal_text() == "v"
    assert settings.calls.total(operation="login") == 1


def test_approle_with_wrong_secret_id_is_authentication_failed(openbao: OpenBao, rw_policy: str) -> None:
    role_id, _ = _approle(openbao, rw_policy)
    client = openbao.open({"auth": {"method": "approle"}},
                          credentials={"roleId": SecretValue(role_id), "secretId": SecretValue("wrong")})
    with pytest.raises(AuthenticationFailed, match="approle login"):
        client.get("approle/x")


def test_login_at_a_missing_auth_mount_names_the_mount(openbao: OpenBao) -> None:
    client = openbao.open({"auth": {"method": "approle", "mountPath": "no-such-approle"}},
                          credentials={"roleId": SecretValue("r"), "secretId": SecretValue("s")})
    with pytest.raises(AuthenticationFailed, match="no approle auth method mounted"):
        client.get("x/y")


def test_renewable_token_is_renewed_before_it_expires(openbao: OpenBao, rw_policy: str) -> None:
    token = openbao.raw().auth.token.create(policies=[rw_policy], ttl="2s", renewable=True,
                                            explicit_max_ttl="60s")["auth"]["client_token"]
    settings = ClientSettings()
    client = openbao.open(token=token, settings=settings)
    client.put("renew/x", SecretValue("v"))
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:  # well past the 2 s TTL
        assert client.get("renew/x").reveal_text() == "v"
        time.sleep(0.4)
    assert settings.calls.total(operation="renew_self") >= 2


def test_login_token_at_max_ttl_is_replaced_by_a_fresh_login(openbao: OpenBao, rw_policy: str) -> None:
    role_id, secret_id = _approle(openbao, rw_policy, token_ttl="2s", token_max_ttl="3s")
    settings = ClientSettings()
    client = openbao.open({"auth": {"method": "approle"}}, settings=settings,
                          credentials={"roleId": SecretValue(role_id), "secretId": SecretValue(secret_id)})
    client.put("relogin/x", SecretValue("v"))
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:  # beyond the 3 s max TTL
        assert client.get("relogin/x").reveal_text() == "v"
        time.sleep(0.3)
    assert settings.calls.total(operation="login") >= 2


def test_revoked_login_token_triggers_one_relogin(openbao: OpenBao, rw_policy: str) -> None:
    role = f"revoke{uuid.uuid4().hex[:6]}"
    role_id, secret_id = _approle(openbao, rw_policy, role)
    settings = ClientSettings()
    client = openbao.open({"auth": {"method": "approle"}}, settings=settings,
                          credentials={"roleId": SecretValue(role_id), "secretId": SecretValue(secret_id)})
    client.put("revoked/x", SecretValue("v"))
    raw = openbao.raw()
    for accessor in raw.auth.token.list_accessors()["data"]["keys"]:
        meta = raw.auth.token.lookup_accessor(accessor)["data"].get("meta") or {}
        if meta.get("role_name") == role:
            raw.auth.token.revoke_accessor(accessor)
    assert client.get("revoked/x").reveal_text() == "v"
    assert settings.calls.total(operation="login") == 2


# -- jwt / kubernetes-shaped login with a locally generated key ------------------------------------
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sign_jwt(key: rsa.RSAPrivateKey, claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signature = key.sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


@pytest.fixture(scope="module")
def jwt_setup(openbao: OpenBao, rw_policy: str) -> dict[str, Any]:
    """JWT auth at ``jwt/`` and at ``k8s-like/`` (same request shape as the kubernetes method)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    raw = openbao.raw()
    for mount in ("jwt", "k8s-like"):
        raw.sys.enable_auth_method("jwt", path=mount)
        raw.write_data(f"auth/{mount}/config", data={"jwt_validation_pubkeys": [pem],
                                                      "bound_issuer": "secretsync-test"})
        raw.write_data(f"auth/{mount}/role/app", data={
            "role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vault"],
            "token_policies": [rw_policy], "token_ttl": "5m"})
    return {"key": key}


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "secretsync-test", "aud": "vault", "sub": "system:serviceaccount:apps:app",
            "iat": now, "nbf": now - 5, "exp": now + 300, **extra}


def test_jwt_login_with_credentials(openbao: OpenBao, jwt_setup: dict[str, Any]) -> None:
    jwt = _sign_jwt(jwt_setup["key"], _claims())
    client = openbao.open({"auth": {"method": "jwt", "role": "app"}}, credentials={"jwt": SecretValue(jwt)})
    client.put("jwt/x", SecretValue("v"))
    assert client.get("jwt/x").reveal_text() == "v"


def test_jwt_with_a_foreign_signature_is_authentication_failed(openbao: OpenBao,
                                                              jwt_setup: dict[str, Any]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = openbao.open({"auth": {"method": "jwt", "role": "app"}},
                          credentials={"jwt": SecretValue(_sign_jwt(other, _claims()))})
    with pytest.raises(AuthenticationFailed):
        client.get("jwt/x")


def test_kubernetes_login_reads_the_service_account_token_file(openbao: OpenBao, jwt_setup: dict[str, Any],
                                                               tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(_sign_jwt(jwt_setup["key"], _claims()) + "\n")
    with environ(SECRETSYNC_VAULT_SA_TOKEN_PATH=str(token_file)):  # controller configuration
        client = openbao.open({"auth": {"method": "kubernetes", "role": "app", "mountPath": "k8s-like"}},
                              credentials={})
    client.put("k8s/x", SecretValue("v"))
    assert client.get("k8s/x").reveal_text() == "v"


def test_kubernetes_login_without_a_token_file_is_authentication_failed(openbao: OpenBao,
                                                                        tmp_path: Path) -> None:
    with environ(SECRETSYNC_VAULT_SA_TOKEN_PATH=str(tmp_path / "absent")):
        client = openbao.open({"auth": {"method": "kubernetes", "role": "app", "mountPath": "k8s-like"}},
                              credentials={})
    with pytest.raises(AuthenticationFailed, match=r"token file|JWT file"):
        client.get("k8s/x")


# -- where the address and token come from -----------------------------------------------------
def test_vault_env_and_bao_env_are_honoured(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VAULT_ADDR", "VAULT_TOKEN", "BAO_ADDR", "BAO_TOKEN", "VAULT_NAMESPACE", "BAO_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BAO_ADDR", openbao.address)
    monkeypatch.setenv("BAO_TOKEN", openbao.root_token)
    open_store("openbao:///secret").put("env/bao", SecretValue("b"))
    monkeypatch.setenv("VAULT_ADDR", openbao.address)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    monkeypatch.setenv("BAO_TOKEN", "wrong")
    assert open_store("vault:///secret").get("env/bao").reveal_text() == "b"


def test_credentials_override_the_environment(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULT_ADDR", openbao.address)
    monkeypatch.setenv("VAULT_TOKEN", "wrong-token")
    with pytest.raises(AuthenticationFailed):
        open_store("vault:///secret").get("env/bao")
    client = open_store("vault:///secret", credentials={"token": SecretValue(openbao.root_token)})
    client.put("env/creds", SecretValue("c"))


def test_token_file_in_home_is_the_last_resort(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    for var in ("VAULT_TOKEN", "BAO_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VAULT_ADDR", openbao.address)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(AuthenticationFailed, match="no Vault token"):
        open_store("vault:///secret").get("x/y")
    (tmp_path / ".vault-token").write_text(openbao.root_token + "\n")
    open_store("vault:///secret").put("env/home", SecretValue("h"))


def test_url_with_host_and_tls_false(openbao: OpenBao, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    hostport = openbao.address.removeprefix("http://")
    client = open_store(f"vault://{hostport}/secret?tls=false&prefix=urltest")
    client.put("a", SecretValue("u"))
    assert openbao.open().get("urltest/a").reveal_text() == "u"


# -- tokens are not hoarded: an hour of a controller's credential refreshes ---------------------------
class _TokenRequests:
    """The TokenRequest API as the controller sees it: a new signed ServiceAccount JWT per request."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.count = 0

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        self.count += 1
        return {"spec": (body or {}).get("spec", {}),
                "status": {"token": _sign_jwt(self.key, _claims(jti=str(self.count)))}}


def test_an_hour_of_store_refreshes_leaves_no_extra_vault_tokens(openbao: OpenBao, jwt_setup: dict[str, Any]) -> None:
    from dataclasses import replace

    from secretsync.api.models import parse_secret_store
    from secretsync.controller.settings import ControllerSettings, RefreshSettings
    from secretsync.controller.stores import StoreManager

    openbao.kv2_write("hour/x", {"value": "v"})
    api, now = _TokenRequests(jwt_setup["key"]), [1000.0]
    settings = replace(ControllerSettings(), refresh=RefreshSettings(credentials_ttl=60.0))
    stores = StoreManager(api, settings, b"k" * 32, usage=lambda *_: None,  # type: ignore[arg-type,return-value]
                          on_changed=lambda *_: None, call_listeners=[], clock=lambda: now[0])
    store = parse_secret_store({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "SecretStore", "metadata": {"name": "s", "namespace": "apps"},
        "spec": {"provider": {"vault": {"address": openbao.address, "mount": "secret", "kvVersion": 2,
                                        "auth": {"method": "jwt", "role": "app"},
                                        "serviceAccountRef": {"name": "app", "audiences": ["vault"]}}}}})
    def accessors() -> set[str]:
        return set(openbao.raw().auth.token.list_accessors()["data"]["keys"])

    # Sets, not counts: tokens of earlier tests on this shared server may expire meanwhile.
    before = accessors()
    for _ in range(60):  # one simulated hour, a credentials refresh a minute
        assert stores.handle(store).client.get("hour/x").reveal_text() == "v"
        now[0] += 61
    assert api.count == 2  # the ServiceAccount token is reused until 2/3 of its hour
    ours = accessors() - before
    assert len(ours) == 1  # the live one: every earlier login was reused, not repeated
    stores.close()
    assert not (accessors() & ours)  # revoked on close
