"""ESO's gcpsm store with a service-account key (``auth.secretRef.secretAccessKeySecretRef``) on
the real kube-apiserver, against the Secret Manager fake driven by the real SDK.

ESO's own pair of examples (gcpsm-sa-secret-store.yaml and gcpsm-sa-credentials-secret.yaml;
an inline copy when ../shared is absent) with apiVersion, namespace and the placeholder
``projectID`` changed, and the placeholder key replaced by a real one: a fresh RSA key the fake
issued for a service account, as IAM's ``keys.create`` would. google-auth signs its own access
token with it (a self-signed JWT with the cloud-platform scope: what the Secret Manager client
makes of a key, and why no OAuth2 token endpoint is called at all); the fake verifies that
signature with the key's public half and lets the service account read only the projects it was
granted.

Behaviours: the example syncs, every call carried the key's token, and the ``token_uri`` the
key's JSON names (a dead port here) is never called; a key of another
project's service account is refused by Secret Manager (PermissionDenied); when the Secret's key
is swapped for a forged one (same key id, another private key) the ExternalSecret turns
Ready=False with AuthenticationFailed and the Secret it had written stays; a store whose key
Secret is in another namespace is refused naming the field.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsync.api.models import API_VERSION
from secretsync.controller.settings import ScopeSettings
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_refused,
    wait_for,
)
from tests.harness.env import environ
from tests.harness.gcp import PROJECT
from tests.harness.kube import KubeCluster
from tests.harness.ports import closed_port

pytestmark = pytest.mark.kube

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"
READER = f"eso-reader@{PROJECT}.iam.gserviceaccount.com"
STRANGER = "reader@other-project.iam.gserviceaccount.com"
#: ESO's examples as published, for when ../shared is absent.
STORE = """
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata: {name: demo-store, namespace: demo}
spec:
  provider:
    gcpsm:
      auth:
        secretRef:
          secretAccessKeySecretRef: {name: gcp-sa-secret, key: secret-access-credentials}
      projectID: [PROJECT_ID]
"""
CREDENTIALS = """
apiVersion: v1
kind: Secret
metadata: {name: gcp-sa-secret, namespace: demo}
type: Opaque
stringData: {secret-access-credentials: '{"type": "service_account"}'}
"""


def _example(name: str, inline: str, ns: str) -> dict[str, Any]:
    path = EXAMPLES / name
    doc: dict[str, Any] = yaml.safe_load(path.read_text() if path.is_file() else inline)
    if doc["apiVersion"].startswith("external-secrets.io/"):
        doc["apiVersion"] = API_VERSION
    doc["metadata"]["namespace"] = ns
    return doc


def _forged(key_json: str) -> str:
    """The same key JSON (key id, service account) with another private key: a bad signature."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = json.loads(key_json)
    info["private_key"] = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
    return json.dumps(info)


@pytest.fixture
def controller_env(gcp_server: Any) -> Iterator[None]:
    with environ(SECRETSYNC_GCP_INSECURE_ENDPOINT=gcp_server.address, SECRETSYNC_GCP_ACCESS_TOKEN=None):
        yield


def test_eso_service_account_key_store_syncs_with_the_keys_own_signed_token(
        kube: KubeCluster, gcp_server: Any, controller_env: None, caplog: pytest.LogCaptureFixture) -> None:
    from google.cloud.secretmanager_v1 import types

    from tests.fakes.gcp_secretmanager import sdk_client

    sdk = sdk_client(gcp_server.address, gcp_server.token)
    parent = f"projects/{PROJECT}"
    sdk.create_secret(parent=parent, secret_id="db-password", secret=types.Secret(
        replication=types.Replication(automatic=types.Replication.Automatic())))
    sdk.add_secret_version(parent=f"{parent}/secrets/db-password",
                           payload=types.SecretPayload(data=SecretValue("sa-pw-1").reveal()))
    sdk.transport.close()
    # The tenant's JSON names a token endpoint where nothing listens: the sync only works if
    # the controller calls no URL the key names.
    reader_key = json.dumps({**json.loads(gcp_server.create_service_account_key(READER, {PROJECT})),
                             "token_uri": f"http://127.0.0.1:{closed_port()}/token"})
    stranger_key = gcp_server.create_service_account_key(STRANGER, {"other-project"})

    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("gcpsm-sa", labels={"secretsync-test": label})
    elsewhere = kube.new_namespace("gcpsm-sa-other")
    credentials = _example("gcpsm-sa-credentials-secret.yaml", CREDENTIALS, ns)
    (field,) = credentials["stringData"]
    for name, where, key in (("gcp-sa-secret", ns, reader_key), ("stranger-key", ns, stranger_key),
                             ("gcp-sa-secret", elsewhere, reader_key)):
        doc = json.loads(json.dumps(credentials))
        doc["metadata"].update(name=name, namespace=where)
        doc["stringData"][field] = key
        create(api, doc)

    store = _example("gcpsm-sa-secret-store.yaml", STORE, ns)
    store["spec"]["provider"]["gcpsm"]["projectID"] = PROJECT  # the doc's `[PROJECT_ID]` is a YAML list
    ref = store["spec"]["provider"]["gcpsm"]["auth"]["secretRef"]["secretAccessKeySecretRef"]
    variants = {"stranger": {"name": "stranger-key"}, "foreign": {"namespace": elsewhere}}
    create(api, store)
    for name, change in variants.items():
        other = json.loads(json.dumps(store))
        other["metadata"]["name"] = name
        other["spec"]["provider"]["gcpsm"]["auth"]["secretRef"]["secretAccessKeySecretRef"] = {**ref, **change}
        create(api, other)
    store_name = store["metadata"]["name"]
    for es_name, store_ref, refresh in (("demo", store_name, "1s"), ("stranger", "stranger", "1h"),
                                        ("foreign", "foreign", "1h")):
        create(api, es_manifest(es_name, ns, store_ref, [("password", "db-password")], refresh=refresh))

    caplog.set_level(logging.DEBUG)
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings):
        wait_for(lambda: secret_data(api, ns, "demo") == {"password": "sa-pw-1"}, timeout=30,
                 message="ESO's service-account-key store synced")
        assert gcp_server.principals[READER] > 0
        denied = wait_for(es_ready(api, ns, "stranger", "False"), timeout=20, message="the other project's key")
        refused = wait_for(lambda: store_refused(api, ns, "foreign"), timeout=20, message="the foreign key refused")

        api.patch(SECRETS, ref["name"], {"stringData": {field: _forged(reader_key)}}, ns)
        forged = wait_for(es_ready(api, ns, "demo", "False"), timeout=20, message="the forged key reported")
    assert denied["reason"] == "PermissionDenied", denied
    assert gcp_server.principals[STRANGER] > 0  # authenticated as itself, refused on this project
    assert "secretAccessKeySecretRef" in refused["message"] and "namespace" in refused["message"], refused
    assert forged["reason"] == "AuthenticationFailed", forged
    assert secret_data(api, ns, "demo") == {"password": "sa-pw-1"}  # stale, not deleted
    assert secret_data(api, ns, "stranger") is None and secret_data(api, ns, "foreign") is None
    key_lines = {line for key in (reader_key, stranger_key)
                 for line in json.loads(key)["private_key"].splitlines() if "PRIVATE KEY" not in line}
    for text in (caplog.text, *(cond["message"] for cond in (denied, refused, forged))):
        assert "PRIVATE KEY" not in text and not any(line in text for line in key_lines)
    api.close()

