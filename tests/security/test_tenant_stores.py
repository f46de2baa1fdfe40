"""A namespace tenant attacks the controller with the SecretStores it may create.

The tenant is the harness's unprivileged user, bound to a Role in its own namespace only
(SecretStores, ExternalSecrets, Secrets, ServiceAccounts): the RBAC of a team on a shared
cluster. The controller runs with cluster-admin and an identity of its own, planted as
canaries in its process environment (AWS keys, VAULT_TOKEN, a ServiceAccount token file, a
GCP and an Azure token). Each hostile store points at a loopback listener that records every
request. What must hold (docs/security.md):

* every hostile store is refused with Ready=False and a message naming the store and the
  field, and no Secret is written from it;
* the listener receives nothing at all from a refused store, and no canary ever;
* a tenant store that brings its own credentials may point anywhere: only what the tenant
  supplied arrives there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsync.controller.settings import ScopeSettings, TrustSettings
from secretsync.kube.client import SECRETS, KubeApi, KubeError, Resource
from tests.harness.canned import CannedServer, Reply
from tests.harness.controller import (
    create,
    es_manifest,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    store_manifest,
    store_refused,
    wait_for,
)
from tests.harness.env import environ
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube

ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
CANARY = "ctlcanary" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def trap() -> Iterator[CannedServer]:
    """Where hostile stores point: must receive nothing."""
    with CannedServer() as server:
        server.respond(Reply(403, {"Content-Type": "application/json"}, b'{"errors":["no"]}'))
        yield server


@pytest.fixture(scope="module")
def own() -> Iterator[CannedServer]:
    """Where a store with the tenant's own credentials points: may receive only those."""
    with CannedServer() as server:
        server.respond(Reply(400, {"Content-Type": "application/x-amz-json-1.1"},
                             b'{"__type":"InvalidRequestException","message":"no"}'))
        yield server


def _tenant(kube: KubeCluster, admin: KubeApi) -> tuple[str, KubeApi]:
    """A namespace and an API client with only namespace-scoped rights in it."""
    ns = kube.new_namespace("tenant")
    admin.create(ROLES, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "tenant", "namespace": ns},
        "rules": [{"apiGroups": ["secretsync.io"], "resources": ["secretstores", "externalsecrets"], "verbs": ["*"]},
                  {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": ["*"]}]}, ns)
    admin.create(BINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "tenant", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"kind": "User", "name": kube.user_name}]}, ns)
    return ns, KubeApi(kube.configuration(kube.user_token))


def _hostile_stores(trap: CannedServer, own: CannedServer, canary_file: Path) -> dict[str, tuple[str, dict[str, Any],
                                                                                               str]]:
    """name -> (provider, block, the field the refusal must name)."""
    host_port = f"127.0.0.1:{trap.port}"
    tenant_token = {"secretRef": {"token": {"name": "tenant-creds", "key": "token"}}}
    return {
        # Vault: the controller's own ServiceAccount token (or VAULT_TOKEN) posted to the tenant's Vault.
        "vault-sa-token": ("vault", {"address": trap.url, "auth": {"method": "kubernetes", "role": "x"}},
                           "spec.provider.vault.secretRef"),
        "vault-env-token": ("vault", {"address": trap.url}, "spec.provider.vault.secretRef"),
        # ...or any file of the controller's pod, named by the store.
        "vault-jwt-path": ("vault", {"address": trap.url, "auth": {"method": "jwt", "role": "x",
                                                                   "jwtPath": str(canary_file)}}, "'jwtPath'"),
        "vault-token-path": ("vault", {"address": trap.url, "auth": {"method": "kubernetes", "role": "x",
                                                                     "tokenPath": str(canary_file)}}, "'tokenPath'"),
        "vault-ca-file": ("vault", {"address": trap.url, "caCert": str(canary_file), **tenant_token},
                          "spec.provider.vault.caCert"),
        # GCP: an external_account key makes google-auth read a local file and post it to token_url.
        "gcp-external-account": ("gcp", {"project": "victim-project", "secretRef": {
            "serviceAccountKey": {"name": "tenant-creds", "key": "gcp-key"}}}, "'serviceAccountKey'"),
        "gcp-insecure-endpoint": ("gcp", {"project": "victim-project", "insecureEndpoint": host_port},
                                  "'insecureEndpoint'"),
        "gcp-adc-endpoint": ("gcp", {"project": "victim-project", "endpoint": host_port},
                             "spec.provider.gcp.secretRef"),
        # Azure: the test hook that picked the host (and the token's resource) is no store field.
        "azure-endpoint": ("azure", {"vaultUrl": "https://victim.vault.azure.net", "endpoint": f"https://{host_port}",
                                     "authType": "accessToken"}, "'endpoint'"),
        "azure-managed-identity": ("azure", {"vaultUrl": f"https://{host_port}", "authType": "managedIdentity"},
                                   "spec.provider.azure.secretRef"),
        # AWS: SigV4 with the controller's keys to a URL of the tenant's choice.
        "aws-endpoint": ("aws", {"region": "us-east-1", "endpoint": trap.url}, "spec.provider.aws.secretRef"),
        "aws-profile": ("aws", {"region": "us-east-1", "profile": "default", "endpoint": trap.url, "secretRef": {
            "accessKeyID": {"name": "tenant-creds", "key": "id"},
            "secretAccessKey": {"name": "tenant-creds", "key": "secret"}}}, "spec.provider.aws.profile"),
        # The embedded file store: a file of the controller, opened with the controller's key.
        "file-path": ("file", {"path": str(canary_file)}, "spec.provider.file.path"),
        # Another namespace's credentials.
        "other-namespace": ("vault", {"address": trap.url, "secretRef": {
            "token": {"name": "admin-token", "key": "token", "namespace": "kube-system"}}},
                            "spec.provider.vault.secretRef.token.namespace"),
    }


def test_hostile_tenant_stores_are_refused_and_nothing_of_the_controller_leaves(
        kube: KubeCluster, trap: CannedServer, own: CannedServer, tmp_path: Path) -> None:
    install_crds(kube)
    admin = kube_api(kube)
    ns, tenant = _tenant(kube, admin)
    canary_file = tmp_path / "controller-token"
    canary_file.write_text(CANARY + "-file")
    # The tenant's own material: a GCP key of type external_account aimed at the trap, and AWS keys.
    gcp_key = {"type": "external_account", "audience": "//iam.googleapis.com/x",
               "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": f"{trap.url}/token",
               "credential_source": {"file": str(canary_file)}}
    create(tenant, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tenant-creds", "namespace": ns},
                    "stringData": {"token": "tenant-vault-token", "gcp-key": json.dumps(gcp_key),
                                   "id": "AKIATENANTOWNKEY", "secret": "tenant-secret-key"}})
    stores = _hostile_stores(trap, own, canary_file)
    for name, (provider, block, _) in stores.items():
        try:
            create(tenant, store_manifest(name, ns, provider, block))
        except KubeError as exc:  # the CRD schema may refuse a field outright: as good
            pytest.fail(f"the apiserver refused {name} ({exc.status}); the controller should say why")
        create(tenant, es_manifest(name, ns, name, [("k", "some/key")], refresh="1h"))
    # A store with the tenant's own keys may point anywhere: only those keys arrive.
    create(tenant, store_manifest("aws-own-keys", ns, "aws", {
        "region": "us-east-1", "endpoint": own.url,
        "secretRef": {"accessKeyID": {"name": "tenant-creds", "key": "id"},
                      "secretAccessKey": {"name": "tenant-creds", "key": "secret"}}}))
    create(tenant, es_manifest("aws-own-keys", ns, "aws-own-keys", [("k", "some/key")], refresh="1h"))

    identity = {
        "AWS_ACCESS_KEY_ID": "AKIA" + CANARY.upper(), "AWS_SECRET_ACCESS_KEY": CANARY + "-aws",
        "VAULT_TOKEN": CANARY + "-vault", "BAO_TOKEN": None, "VAULT_ADDR": None,
        "SECRETSYNC_VAULT_SA_TOKEN_PATH": str(canary_file), "SECRETSYNC_VAULT_JWT_PATH": str(canary_file),
        "SECRETSYNC_GCP_ACCESS_TOKEN": CANARY + "-gcp", "SECRETSYNC_GCP_INSECURE_ENDPOINT": None,
        "SECRETSYNC_AZURE_ACCESS_TOKEN": CANARY + "-azure", "SECRETSYNC_AZURE_TEST_ENDPOINT": None,
        "SECRETSYNC_FILE_KEY": CANARY + "-filekey",
    }
    settings = fast_settings(scope=ScopeSettings(namespaces=(ns,)))
    with environ(**identity), running_controller(kube, settings):
        for name, (_, _, field) in stores.items():
            cond = wait_for(lambda n=name: store_refused(admin, ns, n), timeout=30, message=f"{name} refused")
            assert field in cond["message"], (name, cond)
            assert f"SecretStore/{ns}/{name}" in cond["message"] or cond["reason"] == "InvalidSpec", (name, cond)
        wait_for(lambda: own.requests, timeout=30, message="the tenant's own store was used")
    for name in stores:
        assert _secret(admin, ns, name) is None, f"{name}: a Secret was written from a refused store"
    assert trap.requests == [], [(r.method, r.path) for r in trap.requests]
    seen = b"".join(r.body + json.dumps(dict(r.headers)).encode() for r in own.requests)
    assert b"AKIATENANTOWNKEY" in seen
    assert CANARY.encode() not in seen and CANARY.upper().encode() not in seen
    tenant.close()
    admin.close()



def _secret(api: KubeApi, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get(SECRETS, name, ns)
    except KubeError as exc:
        if exc.not_found:
            return None
        raise


def test_with_the_admin_flag_a_tenant_still_cannot_send_the_controller_identity_to_its_server(
        kube: KubeCluster, trap: CannedServer, tmp_path: Path) -> None:
    """``--allow-namespaced-ambient-identity`` lends tenants the controller's identity for the
    provider's own service, never for a host the tenant names."""
    install_crds(kube)
    admin = kube_api(kube)
    ns, tenant = _tenant(kube, admin)
    before = len(trap.requests)
    stores = {
        "aws-endpoint": ("aws", {"region": "us-east-1", "endpoint": trap.url}, "spec.provider.aws.endpoint"),
        "vault-address": ("vault", {"address": trap.url, "auth": {"method": "kubernetes", "role": "x"}},
                          "spec.provider.vault.address"),
        "gcp-endpoint": ("gcp", {"project": "victim-project", "endpoint": f"127.0.0.1:{trap.port}"},
                         "spec.provider.gcp.endpoint"),
    }
    for name, (provider, block, _) in stores.items():
        create(tenant, store_manifest(name, ns, provider, block))
    canary_file = tmp_path / "controller-token"
    canary_file.write_text(CANARY + "-file")
    identity = {"AWS_ACCESS_KEY_ID": "AKIA" + CANARY.upper(), "AWS_SECRET_ACCESS_KEY": CANARY + "-aws",
                "SECRETSYNC_VAULT_SA_TOKEN_PATH": str(canary_file), "SECRETSYNC_GCP_ACCESS_TOKEN": CANARY + "-gcp",
                "SECRETSYNC_GCP_INSECURE_ENDPOINT": None}
    settings = fast_settings(scope=ScopeSettings(namespaces=(ns,)),
                             trust=TrustSettings(namespaced_ambient_identity=True))
    with environ(**identity), running_controller(kube, settings):
        for name, (_, _, field) in stores.items():
            cond = wait_for(lambda n=name: store_refused(admin, ns, n), timeout=30, message=f"{name} refused")
            assert f"SecretStore/{ns}/{name}: {field}: a SecretStore that uses the controller's identity" in \
                cond["message"], cond
    assert trap.requests[before:] == []
    tenant.close()
    admin.close()
