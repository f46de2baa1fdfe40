"""Per-store GCP identities on the real kube-apiserver: ESO's gcpsm ``auth.workloadIdentity`` and
``auth.workloadIdentityFederation``, each store with its own ServiceAccount.

The controller asks the apiserver for the ServiceAccount's token (TokenRequest), the real
google-auth exchanges it at the fake STS and (workload identity) impersonates the Google
service account named by the KSA's annotation at the fake IAM Credentials API; the fake
Secret Manager accepts only the token that chain ends with. ESO's own doc example
(gcpsm-wif-sa-secret-store.yaml + gcpsm-wif-externalsecret.yaml) is applied as written,
apart from apiVersion, namespace and its placeholder projectID.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from secretsync.api.models import API_VERSION
from secretsync.core.values import SecretValue
from secretsync.kube.client import SERVICE_ACCOUNTS, KubeApi
from tests.fakes.gcp_sts import FakeGoogleSts
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.env import environ
from tests.harness.gcp import PROJECT
from tests.harness.kube import KubeCluster

pytest.importorskip("google.auth.identity_pool")

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"
POOL = f"{PROJECT}.svc.id.goog"
GSA = f"app-reader@{PROJECT}.iam.gserviceaccount.com"
WIF_AUDIENCE = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/k8s/providers/kind"


@pytest.fixture(scope="module")
def sts() -> Iterator[FakeGoogleSts]:
    fake = FakeGoogleSts().start()
    yield fake
    fake.stop()


@pytest.fixture
def world(kube: KubeCluster, gcp_server: Any, sts: FakeGoogleSts) -> Iterator[tuple[KubeApi, str]]:
    install_crds(kube)
    api = kube_api(kube)
    ns = kube.new_namespace("gcpwi")
    for sa, notes in (("demo-secrets-sa", {"iam.gke.io/gcp-service-account": GSA}),
                            ("stranger", {"iam.gke.io/gcp-service-account": GSA})):
        api.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                      "metadata": {"name": sa, "namespace": ns, "annotations": notes}}, ns)
    from tests.fakes.gcp_secretmanager import sdk_client

    with environ(SECRETSYNC_GCP_INSECURE_ENDPOINT=gcp_server.address, SECRETSYNC_GCP_ACCESS_TOKEN=None,
                 SECRETSYNC_GCP_STS_ENDPOINT=sts.token_url, SECRETSYNC_GCP_IAM_CREDENTIALS_ENDPOINT=sts.url):
        sdk = sdk_client(gcp_server.address, gcp_server.token)
        _put(sdk, "demo-secret", "wi-value-1")
        _put(sdk, "database_username", "app")
        _put(sdk, "database_password", "wi-pw")
        _put(sdk, "all-keys-example-secret", '{"host": "db.internal", "port": "5432"}')
        with running_controller(kube, fast_settings()):
            yield api, ns
    sts.pools.clear()
    sts.bindings.clear()


def _put(sdk: Any, name: str, value: str) -> None:
    from google.cloud.secretmanager_v1 import types

    parent = f"projects/{PROJECT}"
    sdk.create_secret(parent=parent, secret_id=name, secret=types.Secret(
        replication=types.Replication(automatic=types.Replication.Automatic())))
    sdk.add_secret_version(parent=f"{parent}/secrets/{name}",
                           payload=types.SecretPayload(data=SecretValue(value).reveal()))


def _example(name: str, ns: str) -> dict[str, Any]:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip("shared ESO examples not present")
    doc: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    doc["apiVersion"] = API_VERSION
    doc["metadata"]["namespace"] = ns
    return doc


def test_eso_workload_identity_example_syncs_with_the_impersonated_gsa(world: tuple[KubeApi, str],
                                                                       gcp_server: Any, sts: FakeGoogleSts) -> None:
    api, ns = world
    sts.trust(f"identitynamespace:{POOL}", ns, "demo-secrets-sa", POOL)
    sts.allow_impersonation(ns, "demo-secrets-sa", GSA, gcp_server.token)
    store = _example("gcpsm-wif-sa-secret-store.yaml", ns)
    store["spec"]["provider"]["gcpsm"]["projectID"] = PROJECT  # the doc's `[PROJECT_ID]` is a YAML list
    create(api, store)
    create(api, _example("gcpsm-wif-externalsecret.yaml", ns))
    wait_for(es_ready(api, ns, "demo-external-secret"), 30, message="the ESO example ExternalSecret Ready")
    assert secret_data(api, ns, "secret-to-be-created") == {"DEMO_SECRET": "wi-value-1"}
    assert any(p.endswith(f"{GSA}:generateAccessToken") for p in sts.requests)


def test_a_service_account_without_the_iam_binding_gets_no_secret(world: tuple[KubeApi, str], gcp_server: Any,
                                                                  sts: FakeGoogleSts) -> None:
    """The pool trusts the KSA, but the GSA does not let it impersonate: a clear auth error, no Secret."""
    api, ns = world
    sts.trust(f"identitynamespace:{POOL}", ns, "stranger", POOL)
    create(api, store_manifest("denied", ns, "gcpsm", {
        "projectID": PROJECT, "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "stranger"}}}}))
    create(api, es_manifest("denied-es", ns, "denied", [("k", "demo-secret")]))
    cond = wait_for(es_ready(api, ns, "denied-es", status="False"), 30, message="the ExternalSecret not Ready")
    assert "getAccessToken" in cond.get("message", "") or "denied" in cond.get("message", "").lower()
    assert secret_data(api, ns, "denied-es") is None


def test_workload_identity_federation_uses_the_federated_token(world: tuple[KubeApi, str], gcp_server: Any,
                                                               sts: FakeGoogleSts) -> None:
    api, ns = world
    sts.trust(WIF_AUDIENCE, ns, "demo-secrets-sa", "demo-audience", federated_token=gcp_server.token)
    create(api, store_manifest("wif", ns, "gcpsm", {
        "projectID": PROJECT, "auth": {"workloadIdentityFederation": {
            "audience": WIF_AUDIENCE,
            "serviceAccountRef": {"name": "demo-secrets-sa", "audiences": ["demo-audience"]}}}}))
    create(api, es_manifest("wif-es", ns, "wif", [("k", "demo-secret")]))
    wait_for(es_ready(api, ns, "wif-es"), 30, message="the WIF ExternalSecret Ready")
    assert secret_data(api, ns, "wif-es") == {"k": "wi-value-1"}


def test_eso_externalsecret_examples_sync_through_a_workload_identity_store(
        world: tuple[KubeApi, str], gcp_server: Any, sts: FakeGoogleSts) -> None:
    """ESO's gcpsm ExternalSecret examples as written (apiVersion and namespace aside), each
    against a workload-identity store of the name it references."""
    api, ns = world
    sts.trust(f"identitynamespace:{POOL}", ns, "demo-secrets-sa", POOL)
    sts.allow_impersonation(ns, "demo-secrets-sa", GSA, gcp_server.token)
    expected = {"gcpsm-external-secret.yaml": ("database-credentials",
                                               {"database_username": "app", "database_password": "wi-pw"}),
                "gcpsm-data-from-external-secret.yaml": ("secret-to-be-created",
                                                         {"host": "db.internal", "port": "5432"})}
    for name in expected:
        es = _example(name, ns)
        create(api, store_manifest(es["spec"]["secretStoreRef"]["name"], ns, "gcpsm", {
            "projectID": PROJECT, "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "demo-secrets-sa"}}}}))
        create(api, es)
    for name, (target, data) in expected.items():
        es_name = _example(name, ns)["metadata"]["name"]
        wait_for(es_ready(api, ns, es_name), 30, message=f"{name} Ready")
        assert secret_data(api, ns, target) == data


def test_a_refused_exchange_is_an_auth_error_that_never_quotes_the_tokens(
        gcp_server: Any, sts: FakeGoogleSts, caplog: pytest.LogCaptureFixture) -> None:
    """The KSA token and the issued tokens stay out of the error, its causes, reprs and logs."""
    import logging
    import traceback

    from secretsync.core.errors import AuthenticationFailed
    from secretsync.core.registry import get_factory
    from secretsync.core.settings import ClientSettings
    from tests.conftest import CANARY

    subject = f"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.{CANARY}"
    reading = get_factory("gcp").store_block(
        {"projectID": PROJECT, "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "sa"}}}})
    creds = {"subjectToken": SecretValue(subject), "serviceAccountEmail": SecretValue(GSA)}
    caplog.set_level(logging.DEBUG)
    with environ(SECRETSYNC_GCP_INSECURE_ENDPOINT=gcp_server.address, SECRETSYNC_GCP_ACCESS_TOKEN=None,
                 SECRETSYNC_GCP_STS_ENDPOINT=sts.token_url, SECRETSYNC_GCP_IAM_CREDENTIALS_ENDPOINT=sts.url):
        client = get_factory("gcp").open(reading.config, ClientSettings(), creds)
        with pytest.raises(AuthenticationFailed) as info:
            client.get("demo-secret")
    text = "".join(traceback.format_exception(info.value)) + repr(client) + caplog.text
    assert CANARY not in text and "invalid_grant" in text
    client.close()
