"""An ESO user's Vault SecretStores, as ESO documents them, read by secretsync with only the apiVersion changed.

Written as an ESO user would check a switch: every ``vault`` store of ESO's own examples parses
(``../shared/eso-examples``, skipped when absent), each credential comes from the field ESO
reads it from, and a block ESO would refuse (or secretsync does not support) is named field by
field. Also the login requests of the password and cert methods, against a scripted transport.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("hvac")
from secretsync_providers.vault.auth import authenticator
from secretsync_providers.vault.config import credential_use, endpoint, store_block

from secretsync.api.models import API_VERSION, InvalidSpec, parse_secret_store
from secretsync.core.errors import AuthenticationFailed, InvalidConfig
from secretsync.core.values import SecretValue

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "eso-examples"
EXAMPLES = ["vault-token-store.yaml", "vault-approle-store.yaml", "vault-kubernetes-store.yaml",
            "vault-jwt-store.yaml", "vault-cert-store.yaml"]


def eso_stores(name: str) -> list[dict[str, Any]]:
    """The (Cluster)SecretStores of one ESO example file, with only the apiVersion changed."""
    path = SHARED / name
    if not path.is_file():
        pytest.skip("../shared/eso-examples is absent")
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") in ("SecretStore",
                                                                                      "ClusterSecretStore")]
    for d in docs:
        d["apiVersion"] = API_VERSION
    return docs


def sources(store: Any) -> dict[str, tuple[str, str, str | None, str]]:
    return {s.credential: (s.kind, s.name, s.namespace, s.key or ",".join(s.audiences))
            for s in store.spec.provider.credentials}


def test_token_example_reads_the_token_from_tokenSecretRef() -> None:
    (doc,) = eso_stores("vault-token-store.yaml")
    store = parse_secret_store(doc)
    assert store.spec.provider.config == {"address": "https://vault.acme.org", "mount": "secret", "kvVersion": 2,
                                          "auth": {"method": "token"}}
    assert sources(store) == {"token": ("secret", "my-secret", None, "vault-token")}


def test_approle_example_takes_the_inline_role_id_and_the_secret_id_from_a_secret() -> None:
    (doc,) = eso_stores("vault-approle-store.yaml")
    store = parse_secret_store(doc)
    assert store.spec.provider.config["auth"] == {"method": "approle", "mountPath": "approle",
                                                  "roleId": "db02de05-fa39-4855-059b-67221c5c2f63"}
    assert sources(store) == {"secretId": ("secret", "my-secret", None, "secret-id")}


def test_kubernetes_example_prefers_the_service_account_token_as_eso_does() -> None:
    (doc,) = eso_stores("vault-kubernetes-store.yaml")
    store = parse_secret_store(doc)
    assert store.spec.provider.config["auth"] == {"method": "kubernetes", "mountPath": "kubernetes", "role": "demo"}
    assert sources(store) == {"jwt": ("token", "my-sa", None, "")}


def test_jwt_example_prefers_the_secret_and_defaults_the_audience_to_vault() -> None:
    (doc,) = eso_stores("vault-jwt-store.yaml")
    store = parse_secret_store(doc)
    assert store.spec.provider.config["auth"] == {"method": "jwt", "mountPath": "jwt", "role": "vault-jwt-role"}
    assert sources(store) == {"jwt": ("secret", "my-secret", None, "jwt-token")}
    auth = doc["spec"]["provider"]["vault"]["auth"]["jwt"]
    del auth["secretRef"], auth["kubernetesServiceAccountToken"]["audiences"]
    assert sources(parse_secret_store(doc)) == {"jwt": ("token", "my-sa", None, "vault")}


def test_cert_example_reads_ca_from_a_configmap_and_the_client_pair_from_a_secret() -> None:
    (doc,) = eso_stores("vault-cert-store.yaml")
    store = parse_secret_store(doc)
    assert store.spec.provider.config["auth"] == {"method": "cert"}
    assert sources(store) == {
        "caBundle": ("configmap", "vault-ca-bundle", "external-secrets", "ca.crt"),
        "clientCert": ("secret", "vault-tls-cert", "external-secrets", "tls.crt"),
        "clientKey": ("secret", "vault-tls-cert", "external-secrets", "tls.key"),
    }


def test_full_example_vault_block_reads_every_field_once_its_placeholders_are_filled() -> None:
    """ESO's reference store sets every option; its ``...`` placeholders are not valid values
    (not base64, not a namespace name), so they are filled as a user would."""
    (doc,) = eso_stores("full-secret-store.yaml")
    block = doc["spec"]["provider"]["vault"]
    with pytest.raises(InvalidConfig, match="caBundle"):
        store_block(block)
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    block["caBundle"] = base64.b64encode(pem.encode()).decode()
    for ref in (block["tls"]["certSecretRef"], block["tls"]["keySecretRef"], block["auth"]["cert"]["clientCert"],
                block["auth"]["cert"]["secretRef"]):
        del ref["namespace"]
    doc["spec"] = {"provider": {"vault": block}}  # the other providers and spec fields are not Vault's
    store = parse_secret_store(doc)
    config = store.spec.provider.config
    assert (config["namespace"], config["auth"]) == ("a-team", {"method": "token"})  # ESO's order: token first
    assert set(sources(store)) == {"caBundle", "tlsCert", "tlsKey", "token"}


@pytest.mark.parametrize(("auth", "problem"), [
    ({"iam": {"region": "eu-west-1"}}, "auth.iam: AWS IAM auth is not supported"),
    ({"kubernetes": {"mountPath": "k8s"}}, "auth.kubernetes.role: required"),
    ({"appRole": {"secretRef": {"name": "s", "key": "k"}}}, "auth.appRole.roleId: roleId or roleRef"),
    ({"userPass": {"username": "u"}}, "auth.userPass.secretRef: required"),
    ({"ldap": {"secretRef": {"name": "s", "key": "k"}}}, "auth.ldap.username: required"),
    ({"cert": {"clientCert": {"name": "c", "key": "tls.crt"}}}, "auth.cert.secretRef: required"),
    ({"jwt": {"role": "r"}}, "auth.jwt: secretRef or kubernetesServiceAccountToken is required"),
    ({"tokenSecretRef": {"name": "s", "key": "k", "bogus": 1}}, "auth.tokenSecretRef.bogus: unknown"),
])
def test_eso_block_problems_name_the_field(auth: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        store_block({"server": "https://vault:8200", "path": "secret", "auth": auth})
    assert problem in str(info.value)


def test_eso_block_without_path_is_refused_rather_than_read_under_another_mount() -> None:
    with pytest.raises(InvalidConfig, match="path: required"):
        store_block({"server": "https://vault:8200", "auth": {"tokenSecretRef": {"name": "s", "key": "k"}}})


def test_a_tenant_namespace_in_an_eso_ref_is_refused_in_a_namespaced_store() -> None:
    doc = {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": "v", "namespace": "team-a"},
           "spec": {"provider": {"vault": {"server": "https://vault:8200", "path": "secret", "auth": {
               "userPass": {"username": "u", "secretRef": {"name": "s", "key": "p", "namespace": "team-b"}}}}}}}
    with pytest.raises(InvalidSpec, match=r"spec\.provider\.vault\.auth\.userPass\.secretRef"):
        parse_secret_store(doc)


def test_password_and_cert_methods_need_no_controller_identity() -> None:
    for method in ("userpass", "ldap", "cert"):
        use = credential_use({"address": "https://v:1", "auth": {"method": method, "username": "u"}},
                             frozenset({"password", "clientCert", "clientKey"}))
        assert use.ambient is None and use.local_files == ()


def test_eso_auth_namespace_and_forward_inconsistent_reach_the_endpoint() -> None:
    config = store_block({"server": "https://vault:8200", "path": "secret", "namespace": "team/kv",
                          "forwardInconsistent": True, "readYourWrites": True,
                          "auth": {"namespace": "team", "tokenSecretRef": {"name": "s", "key": "k"}}}).config
    ep = endpoint(config, {})
    assert (ep.namespace, ep.auth_namespace) == ("team/kv", "team")
    assert ("X-Vault-Inconsistent", "forward-active-node") in ep.headers


class Recorder:
    """A Transport that records login requests and answers with a token."""

    def __init__(self, answer: Any = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any] | None, bool]] = []
        self.answer = answer

    def request(self, method: str, path: str, *, operation: str, key: str | None = None,
                body: Any = None, params: Any = None, authenticated: bool = True) -> Any:
        self.calls.append((method, path, body, authenticated))
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"auth": {"client_token": "t-1", "lease_duration": 60, "renewable": True}}

    def set_token(self, token: str | None) -> None: ...

    def close(self) -> None: ...


def test_ldap_login_posts_the_password_to_the_users_login_path_unauthenticated() -> None:
    config = store_block({"server": "https://v:1", "path": "secret", "auth": {
        "ldap": {"path": "corp-ldap", "username": "j.doe@corp", "secretRef": {"name": "s", "key": "p"}}}}).config
    transport = Recorder()
    login = authenticator(config, {"password": SecretValue("hunter2")}).login(transport)
    assert transport.calls == [("POST", "auth/corp-ldap/login/j.doe%40corp", {"password": "hunter2"}, False)]
    assert login.token.reveal_text() == "t-1"


def test_a_refused_password_login_is_authentication_failed_without_the_password() -> None:
    config = {"auth": {"method": "ldap", "username": "u"}}
    refused = InvalidConfig("ldap operation failed: invalid credentials", provider="vault", operation="login")
    with pytest.raises(AuthenticationFailed) as info:
        authenticator(config, {"password": SecretValue("hunter2")}).login(Recorder(refused))
    assert "ldap login at auth/ldap was rejected" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_cert_login_without_the_client_pair_says_which_fields_supply_it() -> None:
    with pytest.raises(AuthenticationFailed, match=r"auth\.cert\.clientCert"):
        authenticator({"auth": {"method": "cert"}}, {}).login(Recorder())


def test_client_key_never_shows_in_reprs_errors_or_left_over_files(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from secretsync_providers.vault.sdk import ssl_context

    from tests.harness.vault import ThrowawayCA

    ca = ThrowawayCA.create()
    cert, key = ca.issue("client")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    creds = {"tlsCert": SecretValue(cert), "tlsKey": SecretValue(key), "caBundle": SecretValue(ca.cert_pem)}
    ep = endpoint({"address": "https://v:1"}, {}, creds)
    assert ssl_context(ep) is not None
    assert list(tmp_path.iterdir()) == []  # the key's temporary file is gone
    body = key.splitlines()[1]
    assert body not in repr(ep)
    _, other_key = ca.issue("other")
    mismatched = endpoint({"address": "https://v:1"}, {}, {"tlsCert": SecretValue(cert),
                                                           "tlsKey": SecretValue(other_key)})
    with pytest.raises(InvalidConfig, match="not a matching PEM certificate and private key") as info:
        ssl_context(mismatched)
    assert other_key.splitlines()[1] not in str(info.value)
