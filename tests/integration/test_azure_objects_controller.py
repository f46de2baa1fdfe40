"""An ESO user's ExternalSecret reading ``cert/NAME`` and ``key/NAME`` from Azure Key Vault, on
the real kube-apiserver with the controller and the real SDKs against the wire-level fake.

The store is ESO's azkv-secret-store-spn-secret.yaml block (tenantId set to the fake's); the
ExternalSecret is the object-prefix part of ESO's azkv-external-secret.yaml.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

pytest.importorskip("azure.keyvault.certificates")
pytest.importorskip("azure.keyvault.keys")

from cryptography.hazmat.primitives.asymmetric import ec

from secretsync.api.models import API_VERSION
from secretsync.kube.client import SECRETS, KubeApi
from tests.fakes.azure_keyvault import SECRETS_USER, FakeKeyVault, certificate_der, private_jwk
from tests.harness.azure import VAULT_URL, sdk_client
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    wait_for,
)
from tests.harness.env import environ
from tests.harness.kube import KubeCluster

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"
CLIENT_ID = "5a0c4c1e-0000-4000-8000-0000c3e7a11e"
CLIENT_SECRET = "sp-" + "k" * 30


def _data(api: KubeApi, ns: str, name: str) -> dict[str, bytes]:
    obj = api.get(SECRETS, name, ns)
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


@pytest.fixture
def world(kube: KubeCluster, fake_keyvault: FakeKeyVault) -> Iterator[tuple[KubeApi, str]]:
    install_crds(kube)
    api = kube_api(kube)
    ns = kube.new_namespace("azobj")
    fake_keyvault.register_app(CLIENT_ID, secret=CLIENT_SECRET)
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azure-secret-sp", "namespace": ns},
                 "stringData": {"ClientID": CLIENT_ID, "ClientSecret": CLIENT_SECRET}})
    create(api, {"apiVersion": API_VERSION, "kind": "SecretStore",
                 "metadata": {"name": "azure-store", "namespace": ns},
                 "spec": {"provider": {"azurekv": {
                     "tenantId": fake_keyvault.tenant, "vaultUrl": VAULT_URL,
                     "authSecretRef": {"clientId": {"name": "azure-secret-sp", "key": "ClientID"},
                                       "clientSecret": {"name": "azure-secret-sp", "key": "ClientSecret"}}}}}})
    with environ(AZURE_AUTHORITY_HOST=fake_keyvault.url, SECRETSYNC_AZURE_ACCESS_TOKEN=None,
                 AZURE_CLIENT_ID=None, AZURE_TENANT_ID=None, AZURE_FEDERATED_TOKEN_FILE=None), \
            running_controller(kube, fast_settings()):
        yield api, ns


def test_an_external_secret_syncs_a_certificate_and_a_key_and_follows_a_renewed_certificate(
        world: tuple[KubeApi, str], fake_keyvault: FakeKeyVault) -> None:
    api, ns = world
    first = certificate_der("db-client v1")
    fake_keyvault.put_certificate("db-client-cert", first)
    held = private_jwk(ec.generate_private_key(ec.SECP256R1()))
    fake_keyvault.put_key("encryption-pubkey", held)
    sdk_client(fake_keyvault).set_secret("database-password", "pw")
    create(api, es_manifest("objects", ns, "azure-store", [
        ("db-client-cert", "cert/db-client-cert"), ("encryption-pubkey", "key/encryption-pubkey"),
        ("database-password", "secret/database-password")]))
    wait_for(es_ready(api, ns, "objects"), 30, message="objects Ready")
    data = _data(api, ns, "objects")
    assert data["db-client-cert"] == first
    assert data["database-password"] == b"pw"
    jwk = json.loads(data["encryption-pubkey"])
    assert list(jwk) == ["kid", "kty", "key_ops", "crv", "x", "y"]
    assert (jwk["x"], jwk["y"]) == (held["x"], held["y"]) and held["d"] not in data["encryption-pubkey"].decode()

    # The certificate is renewed (a new version): the next refresh brings it.
    renewed = certificate_der("db-client v2")
    fake_keyvault.put_certificate("db-client-cert", renewed)
    wait_for(lambda: _data(api, ns, "objects")["db-client-cert"] == renewed or None, 20,
             message="renewed certificate synced")

    # The identity loses its certificate and key reads (403): the ExternalSecret says so and
    # the Secret keeps what it had; a 403 never empties or deletes anything.
    with fake_keyvault.state.lock:
        fake_keyvault.state.apps[CLIENT_ID].permissions = SECRETS_USER
        for token in [t for t in fake_keyvault.state.tokens if t.startswith("entra-")]:
            fake_keyvault.state.tokens[token] = SECRETS_USER
    cond: dict[str, Any] = wait_for(es_ready(api, ns, "objects", status="False"), 20, message="objects not Ready")
    assert "403" in cond.get("message", "") or "denied" in cond.get("message", "").lower()
    kept = _data(api, ns, "objects")
    assert kept["db-client-cert"] == renewed and kept["encryption-pubkey"] == data["encryption-pubkey"]
    assert kept["database-password"] == b"pw"


def test_esos_azkv_external_secret_example_syncs_as_written(world: tuple[KubeApi, str],
                                                            fake_keyvault: FakeKeyVault) -> None:
    """ESO's azkv-external-secret.yaml with only its apiVersion changed: plain and ``secret/``
    keys, metadataPolicy Fetch (all tags, one tag), ``cert/`` and ``key/``."""
    path = EXAMPLES / "azkv-external-secret.yaml"
    if not path.is_file():
        pytest.skip("shared ESO examples not present")
    api, ns = world
    (es,) = [d for d in YAML(typ="safe").load_all(path.read_text()) if isinstance(d, dict)]
    es["apiVersion"] = API_VERSION
    es["metadata"]["namespace"] = ns
    raw = sdk_client(fake_keyvault)
    raw.set_secret("database-username", "admin")
    raw.set_secret("database-password", "pw")
    raw.set_secret("database-credentials", "{}", tags={"environment": "prod", "team": "payments"})
    der = certificate_der("db-client-cert")
    fake_keyvault.put_certificate("db-client-cert", der)
    fake_keyvault.put_key("encryption-pubkey", private_jwk(ec.generate_private_key(ec.SECP256R1())))
    create(api, es)
    name = es["metadata"]["name"]
    wait_for(es_ready(api, ns, name), 30, message=f"{name} Ready")
    data = _data(api, ns, es["spec"]["target"]["name"])
    assert data["database-username"] == b"admin" and data["database-password"] == b"pw"
    assert json.loads(data["database-credentials-metadata"]) == {"environment": "prod", "team": "payments"}
    assert data["database-credentials"] == b"prod"
    assert data["db-client-cert"] == der
    assert json.loads(data["encryption-pubkey"])["kty"] == "EC" and b'"d"' not in data["encryption-pubkey"]
