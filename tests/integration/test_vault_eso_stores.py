"""ESO users' Vault SecretStores on the real kube-apiserver, synced from OpenBao by the controller.

What an ESO user does when switching: apply their stores with only the apiVersion changed (and
the server pointed at this OpenBao), and expect the ExternalSecrets behind them to sync. One
controller run serves every store here, each logging in its own way:

* ESO's token and AppRole examples (``../shared/eso-examples``, skipped when absent);
* ESO's cert example: ``cert`` auth over TLS, the CA from a ConfigMap (``caProvider``), the
  client pair from a kubernetes.io/tls Secret, as a ClusterSecretStore;
* ``userPass`` over mutual TLS (``tls.certSecretRef``/``keySecretRef``) with an inline
  ``caBundle``; and a store with a wrong password, whose ExternalSecret reports the refusal;
* ESO's kubernetes and jwt examples with per-store ServiceAccount identities: OpenBao's
  kubernetes method reviews the TokenRequest token at this apiserver, its jwt method checks
  the apiserver's signature (mount paths made unique on the shared server).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsync.api.models import API_VERSION
from secretsync.controller.settings import ScopeSettings
from secretsync.core.values import SecretValue
from secretsync.kube.client import CONFIGMAPS, SERVICE_ACCOUNTS
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.vault import OpenBao, encode

pytestmark = pytest.mark.kube

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"
READ_POLICY = 'path "secret/data/*" { capabilities = ["read"] }\npath "secret/metadata/*" { capabilities = ["read"] }\n'


def eso_store(name: str, namespace: str | None, server: str) -> dict[str, Any]:
    """The ESO example's store with only apiVersion (and the place it lives and points at) changed."""
    path = SHARED / name
    if not path.is_file():
        pytest.skip("../shared/eso-examples is absent")
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"].endswith("SecretStore")]
    doc["apiVersion"] = API_VERSION
    doc["spec"]["provider"]["vault"]["server"] = server
    if namespace is None:
        doc["metadata"]["name"] = f"{doc['metadata']['name']}-{uuid.uuid4().hex[:6]}"
    else:
        doc["metadata"]["namespace"] = namespace
    return dict(doc)


def _enable(openbao: OpenBao, method: str, path: str) -> None:
    try:
        openbao.raw().sys.enable_auth_method(method, path=path)
    except Exception as exc:  # another test of this session enabled it first
        if "path is already in use" not in str(exc):
            raise


def secret(name: str, ns: str, data: dict[str, str], type_: str = "Opaque") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": type_, "metadata": {"name": name, "namespace": ns},
            "stringData": data}


def seed(openbao: OpenBao, value: str) -> tuple[str, str, str]:
    """A policy that reads the KV mount, and one secret: (run id, policy, key)."""
    run = uuid.uuid4().hex[:6]
    policy = f"eso-read-{run}"
    openbao.raw().sys.create_or_update_policy(policy, READ_POLICY)
    key = f"eso-{run}/db"
    openbao.kv2_write(key, encode(SecretValue(value)))
    return run, policy, key


def test_eso_vault_stores_sync_with_token_approle_cert_and_userpass(kube: KubeCluster, openbao: OpenBao) -> None:
    assert openbao.ca is not None
    raw = openbao.raw()
    run, policy, key = seed(openbao, '{"password":"pw-1"}')

    # OpenBao side of each ESO example: the AppRole with the example's own role id, cert and userpass.
    approle = eso_store("vault-approle-store.yaml", "x", openbao.address)["spec"]["provider"]["vault"]["auth"]
    role_id = approle["appRole"]["roleId"]
    raw.write("auth/approle/role/eso-example", token_policies=[policy])
    raw.write("auth/approle/role/eso-example/role-id", role_id=role_id)
    secret_id = raw.write("auth/approle/role/eso-example/secret-id")["data"]["secret_id"]
    _enable(openbao, "cert", "cert")
    raw.write(f"auth/cert/certs/eso-{run}", certificate=openbao.ca.cert_pem, token_policies=[policy])
    userpass = f"userpass-{run}"
    _enable(openbao, "userpass", userpass)
    raw.write(f"auth/{userpass}/users/app", password="app-password-1", token_policies=[policy])
    client_cert, client_key = openbao.ca.issue("secretsync-client")

    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("eso-vault", labels={"secretsync-test": label})
    create(api, secret("my-secret", ns, {"vault-token": openbao.root_token, "secret-id": secret_id}))
    create(api, secret("vault-tls-cert", ns, {"tls.crt": client_cert, "tls.key": client_key}, "kubernetes.io/tls"))
    create(api, secret("app-login", ns, {"password": "app-password-1", "wrong": "not-the-password"}))
    api.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "vault-ca-bundle", "namespace": ns},
                            "data": {"ca.crt": openbao.ca.cert_pem}}, ns)

    token_store = eso_store("vault-token-store.yaml", ns, openbao.address)
    token_store["metadata"]["name"] = "token"
    approle_store = eso_store("vault-approle-store.yaml", ns, openbao.address)
    approle_store["metadata"]["name"] = "approle"
    cert_store = eso_store("vault-cert-store.yaml", None, openbao.tls_address)
    cert_block = cert_store["spec"]["provider"]["vault"]
    for ref in (cert_block["caProvider"], cert_block["auth"]["cert"]["clientCert"],
                cert_block["auth"]["cert"]["secretRef"]):
        ref["namespace"] = ns
    ca_bundle = base64.b64encode(openbao.ca.cert_pem.encode()).decode()

    def userpass_store(name: str, password_key: str) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": name, "namespace": ns},
                "spec": {"provider": {"vault": {
                    "server": openbao.mtls_address, "path": "secret", "version": "v2", "caBundle": ca_bundle,
                    "tls": {"certSecretRef": {"name": "vault-tls-cert", "key": "tls.crt"},
                            "keySecretRef": {"name": "vault-tls-cert", "key": "tls.key"}},
                    "auth": {"userPass": {"path": userpass, "username": "app",
                                          "secretRef": {"name": "app-login", "key": password_key}}}}}}}

    for store in (token_store, approle_store, cert_store, userpass_store("userpass", "password"),
                  userpass_store("userpass-wrong", "wrong")):
        create(api, store)
    stores = {"token": "SecretStore", "approle": "SecretStore", cert_store["metadata"]["name"]: "ClusterSecretStore",
              "userpass": "SecretStore", "userpass-wrong": "SecretStore"}
    for i, (store_name, kind) in enumerate(stores.items()):
        es = es_manifest(f"es-{i}", ns, store_name, store_kind=kind, refresh="1h")
        es["spec"]["data"] = [{"secretKey": "password", "remoteRef": {"key": key, "property": "password"}}]
        create(api, es)

    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings):
        for i in range(4):
            wait_for(lambda i=i: secret_data(api, ns, f"es-{i}") == {"password": "pw-1"},  # type: ignore[misc]
                     timeout=30, message=f"{list(stores)[i]} synced")
        cond = wait_for(es_ready(api, ns, "es-4", "False"), timeout=20, message="wrong password reported")
    assert cond["reason"] == "AuthenticationFailed", cond
    assert "userpass login" in cond["message"] and "not-the-password" not in cond["message"]
    assert secret_data(api, ns, "es-4") is None
    api.close()


def _sa_token(api: Any, ns: str, name: str, audiences: list[str]) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": audiences, "expirationSeconds": 600}}
    return str(api.request("POST", SERVICE_ACCOUNTS.path(ns, name, "token"), body=body)["status"]["token"])


def test_eso_kubernetes_and_jwt_examples_log_in_as_the_stores_service_account(kube: KubeCluster,
                                                                              openbao: OpenBao) -> None:
    from cryptography.hazmat.primitives import serialization

    raw = openbao.raw()
    run, policy, key = seed(openbao, '{"password":"pw-sa"}')
    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("eso-vault-sa", labels={"secretsync-test": label})
    api.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                  "metadata": {"name": "my-sa", "namespace": ns}}, ns)

    k8s_mount, jwt_mount = f"kubernetes-{run}", f"jwt-{run}"
    raw.sys.enable_auth_method("kubernetes", path=k8s_mount)
    raw.write(f"auth/{k8s_mount}/config", kubernetes_host=kube.server, kubernetes_ca_cert=kube.ca_file.read_text(),
              token_reviewer_jwt=kube.token)
    raw.write(f"auth/{k8s_mount}/role/demo", bound_service_account_names=["my-sa"],
              bound_service_account_namespaces=[ns], token_policies=[policy])
    signing = serialization.load_pem_private_key((kube.workdir / "sa.key").read_bytes(), password=None)
    public = signing.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    raw.sys.enable_auth_method("jwt", path=jwt_mount)
    raw.write(f"auth/{jwt_mount}/config", jwt_validation_pubkeys=[public],
              bound_issuer="https://kubernetes.default.svc.cluster.local")
    raw.write(f"auth/{jwt_mount}/role/vault-jwt-role", role_type="jwt", user_claim="sub", bound_audiences=["vault"],
              bound_subject=f"system:serviceaccount:{ns}:my-sa", token_policies=[policy])
    # The jwt example reads its JWT from a Secret first: a token of the same ServiceAccount.
    create(api, secret("my-secret", ns, {"jwt-token": _sa_token(api, ns, "my-sa", ["vault"])}))

    k8s_store = eso_store("vault-kubernetes-store.yaml", ns, openbao.address)
    k8s_store["metadata"]["name"] = "kubernetes"
    k8s_store["spec"]["provider"]["vault"]["auth"]["kubernetes"]["mountPath"] = k8s_mount
    jwt_store = eso_store("vault-jwt-store.yaml", ns, openbao.address)
    jwt_store["metadata"]["name"] = "jwt-secret"
    jwt_store["spec"]["provider"]["vault"]["auth"]["jwt"]["path"] = jwt_mount
    token_store = eso_store("vault-jwt-store.yaml", ns, openbao.address)
    token_store["metadata"]["name"] = "jwt-token-request"
    token_auth = token_store["spec"]["provider"]["vault"]["auth"]["jwt"]
    token_auth["path"] = jwt_mount
    del token_auth["secretRef"], token_auth["kubernetesServiceAccountToken"]["audiences"]  # ESO's default: vault
    for store in (k8s_store, jwt_store, token_store):
        create(api, store)
    names = [store["metadata"]["name"] for store in (k8s_store, jwt_store, token_store)]
    for store_name in names:
        es = es_manifest(store_name, ns, store_name, refresh="1h")
        es["spec"]["data"] = [{"secretKey": "password", "remoteRef": {"key": key, "property": "password"}}]
        create(api, es)

    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings):
        for store_name in names:
            wait_for(lambda n=store_name: secret_data(api, ns, n) == {"password": "pw-sa"},  # type: ignore[misc]
                     timeout=30, message=f"{store_name} synced")
    api.close()
