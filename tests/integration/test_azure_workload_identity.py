"""ESO's azurekv workload identity per store, on the real kube-apiserver with the controller.

The store's ServiceAccount token (TokenRequest, audience ``api://AzureADTokenExchange``) is
sent by the real azure-identity to the fake Entra ID as ``client_assertion``; the client and
tenant ids come from the ServiceAccount's annotations (ESO's azkv-workload-identity.yaml) or
from a Secret (azkv-workload-identity-secretref.yaml). The fake accepts the assertion only for
the app's federated subject ``system:serviceaccount:NS:NAME``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from secretsync.api.models import API_VERSION
from secretsync.kube.client import SERVICE_ACCOUNTS, KubeApi
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
from tests.harness.env import environ
from tests.harness.kube import KubeCluster

pytest.importorskip("azure.identity")

EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"
CLIENT_ID = "7d8cdf74-0000-4000-8000-274d963d358b"


def _example_docs(name: str, ns: str) -> list[dict[str, Any]]:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip("shared ESO examples not present")
    docs = [d for d in YAML(typ="safe").load_all(path.read_text()) if isinstance(d, dict)]
    for doc in docs:
        if doc["apiVersion"].startswith("external-secrets.io/"):
            doc["apiVersion"] = API_VERSION
        doc["metadata"]["namespace"] = ns
    return docs


@pytest.fixture
def world(kube: KubeCluster, fake_keyvault: Any) -> Iterator[tuple[KubeApi, str]]:
    install_crds(kube)
    api = kube_api(kube)
    ns = kube.new_namespace("azwi")
    fake_keyvault.register_app(CLIENT_ID, federated_subject=f"system:serviceaccount:{ns}:workload-identity-sa")
    from tests.harness.azure import sdk_client

    raw = sdk_client(fake_keyvault)
    raw.set_secret("database-username", "wi-user")
    raw.set_secret("database-password", "wi-pass")
    with environ(AZURE_AUTHORITY_HOST=fake_keyvault.url, SECRETSYNC_AZURE_ACCESS_TOKEN=None,
                 AZURE_CLIENT_ID=None, AZURE_TENANT_ID=None, AZURE_FEDERATED_TOKEN_FILE=None), \
            running_controller(kube, fast_settings()):
        yield api, ns


def _es(api: KubeApi, ns: str, name: str) -> None:
    create(api, es_manifest(name, ns, "azure-store", [("user", "database-username"),
                                                      ("password", "secret/database-password")]))
    wait_for(es_ready(api, ns, name), 30, message=f"{name} Ready")
    assert secret_data(api, ns, name) == {"user": "wi-user", "password": "wi-pass"}


def test_eso_workload_identity_example_reads_ids_from_the_service_account(world: tuple[KubeApi, str],
                                                                          fake_keyvault: Any) -> None:
    api, ns = world
    sa, store = _example_docs("azkv-workload-identity.yaml", ns)
    sa["metadata"]["annotations"] = {"azure.workload.identity/client-id": CLIENT_ID,
                                     "azure.workload.identity/tenant-id": fake_keyvault.tenant}
    api.create(SERVICE_ACCOUNTS, sa, ns)
    create(api, store)
    _es(api, ns, "from-annotations")


def test_eso_workload_identity_example_reads_ids_from_a_secret(world: tuple[KubeApi, str],
                                                               fake_keyvault: Any) -> None:
    api, ns = world
    sa, store = _example_docs("azkv-workload-identity-secretref.yaml", ns)
    api.create(SERVICE_ACCOUNTS, sa, ns)
    store["spec"]["provider"]["azurekv"]["tenantId"] = fake_keyvault.tenant
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "umi-secret", "namespace": ns},
                 "stringData": {"clientId": CLIENT_ID, "tenantId": fake_keyvault.tenant}})
    create(api, store)
    _es(api, ns, "from-secret")


def test_another_service_account_is_not_the_federated_subject(world: tuple[KubeApi, str],
                                                              fake_keyvault: Any) -> None:
    api, ns = world
    sa, store = _example_docs("azkv-workload-identity.yaml", ns)
    sa["metadata"] = {"name": "intruder", "namespace": ns, "annotations": {
        "azure.workload.identity/client-id": CLIENT_ID, "azure.workload.identity/tenant-id": fake_keyvault.tenant}}
    api.create(SERVICE_ACCOUNTS, sa, ns)
    store["spec"]["provider"]["azurekv"]["serviceAccountRef"] = {"name": "intruder"}
    create(api, store)
    create(api, es_manifest("intruder-es", ns, "azure-store", [("user", "database-username")]))
    wait_for(es_ready(api, ns, "intruder-es", status="False"), 30, message="not Ready")
    assert secret_data(api, ns, "intruder-es") is None


def test_eso_service_principal_example_reads_client_id_and_secret_from_its_secret(
        world: tuple[KubeApi, str], fake_keyvault: Any) -> None:
    """azkv-secret-store-spn-secret.yaml (tenantId set to the fake's): no literal clientId at all."""
    api, ns = world
    fake_keyvault.register_app(CLIENT_ID, secret="sp-" + "s" * 30)
    (store,) = _example_docs("azkv-secret-store-spn-secret.yaml", ns)
    store["spec"]["provider"]["azurekv"]["tenantId"] = fake_keyvault.tenant
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "azure-secret-sp", "namespace": ns},
                 "stringData": {"ClientID": CLIENT_ID, "ClientSecret": "sp-" + "s" * 30}})
    create(api, store)
    create(api, es_manifest("spn-es", ns, store["metadata"]["name"], [("user", "database-username")]))
    wait_for(es_ready(api, ns, "spn-es"), 30, message="spn-es Ready")
    assert secret_data(api, ns, "spn-es") == {"user": "wi-user"}
