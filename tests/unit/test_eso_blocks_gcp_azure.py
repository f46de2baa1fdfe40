"""ESO's gcpsm and azurekv SecretStores, as ESO documents them, read by the GCP and Azure providers.

Written as an ESO user moving over: take ESO's own example, change only ``apiVersion``, and
the store must parse into the credentials ESO would use, or fail naming the field (the doc
examples whose placeholders are not valid YAML values fail that way: ESO's doc defect).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from secretsync.api.models import API_VERSION, parse_secret_store
from secretsync.core.contract import CredentialSource
from secretsync.core.errors import InvalidConfig, InvalidInput
from secretsync.core.registry import get_factory

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"
GCP_PROJECT = "demo-project-1"


def _stores(name: str) -> Iterator[dict[str, Any]]:
    path = SHARED / name
    if not path.is_file():
        pytest.skip("shared ESO examples not present")
    for doc in YAML(typ="safe").load_all(path.read_text()):
        if isinstance(doc, dict) and doc.get("kind") in ("SecretStore", "ClusterSecretStore"):
            doc["apiVersion"] = API_VERSION
            yield doc


def _store(name: str, **replace: Any) -> Any:
    (doc,) = _stores(name)
    block = next(iter(doc["spec"]["provider"].values()))
    for path, value in replace.items():
        *head, last = path.split("__")
        target = block
        for part in head:
            target = target[part]
        target[last] = value
    return parse_secret_store(doc, default_namespace="demo")


def _sources(store: Any) -> dict[str, CredentialSource]:
    return {src.credential: src for src in store.spec.provider.reading.credentials}


# -- GCP -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "gcpsm-sa-secret-store.yaml", "gcpsm-wif-core-controller-secret-store.yaml", "gcpsm-wif-iam-secret-store.yaml",
    "gcpsm-wif-sa-secret-store.yaml", "gcpsm-wif-sa-secret-store-with-explicit-name-and-location.yaml",
    "gcpsm-wif-non-native-iam-secret-store.yaml",
])
def test_gcp_doc_placeholder_project_is_refused_naming_projectID(name: str) -> None:
    """ESO's docs write ``projectID: [PROJECT_ID]``: YAML reads a list, so the field is named."""
    with pytest.raises(InvalidInput, match=r"spec\.provider\.gcpsm\.projectID: .*list"):
        _store(name)


def test_gcp_service_account_key_store_reads_the_key_from_its_secret() -> None:
    store = _store("gcpsm-sa-secret-store.yaml", projectID=GCP_PROJECT)
    assert store.spec.provider.name == "gcp"
    assert store.spec.provider.config == {"project": GCP_PROJECT, "secretVersionSelectionPolicy": "LatestOrFail"}
    key = _sources(store)["serviceAccountKey"]
    assert (key.kind, key.name, key.key) == ("secret", "gcp-sa-secret", "secret-access-credentials")
    assert key.field == "auth.secretRef.secretAccessKeySecretRef"


def test_gcp_store_without_auth_uses_the_controllers_identity() -> None:
    store = _store("gcpsm-wif-core-controller-secret-store.yaml", projectID=GCP_PROJECT)
    assert not _sources(store)


@pytest.mark.parametrize("name", ["gcpsm-wif-iam-secret-store.yaml", "gcpsm-wif-sa-secret-store.yaml"])
def test_gcp_workload_identity_asks_a_token_for_the_pool_and_the_gsa_annotation(name: str) -> None:
    store = _store(name, projectID=GCP_PROJECT)
    src = _sources(store)
    assert src["subjectToken"].kind == "token" and src["subjectToken"].name == "demo-secrets-sa"
    assert src["subjectToken"].audiences == (f"{GCP_PROJECT}.svc.id.goog",)
    assert (src["serviceAccountEmail"].kind, src["serviceAccountEmail"].key) == (
        "annotation", "iam.gke.io/gcp-service-account")
    assert store.spec.provider.config["tokenExchange"] == {
        "audience": f"identitynamespace:{GCP_PROJECT}.svc.id.goog", "impersonate": True}


def test_gcp_workload_identity_with_cluster_names_targets_that_clusters_provider() -> None:
    store = _store("gcpsm-wif-sa-secret-store-with-explicit-name-and-location.yaml", projectID=GCP_PROJECT,
                   auth__workloadIdentity__clusterProjectID="cluster-proj", auth__workloadIdentity__clusterLocation=
                   "europe-west1", auth__workloadIdentity__clusterName="prod")
    assert _sources(store)["subjectToken"].audiences == ("cluster-proj.svc.id.goog",)
    assert store.spec.provider.config["tokenExchange"]["audience"] == (
        "identitynamespace:cluster-proj.svc.id.goog:https://container.googleapis.com/v1/projects/cluster-proj/"
        "locations/europe-west1/clusters/prod")


def test_gcp_federation_placeholder_audience_is_refused_and_a_real_one_is_used() -> None:
    # The block's shape is fine; the provider refuses the placeholder where the store is opened.
    placeholder = _store("gcpsm-wif-non-native-iam-secret-store.yaml", projectID=GCP_PROJECT)
    with pytest.raises(InvalidConfig, match=r"tokenExchange.*placeholder"):
        get_factory("gcp").validate_config(placeholder.spec.provider.config)
    audience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/p/providers/k8s"
    store = _store("gcpsm-wif-non-native-iam-secret-store.yaml", projectID=GCP_PROJECT,
                   auth__workloadIdentityFederation__audience=audience)
    token = _sources(store)["subjectToken"]
    assert token.audiences == ("demo-audience",) and token.namespace == "demo"
    assert store.spec.provider.config["tokenExchange"] == {"audience": audience, "impersonate": False}


@pytest.mark.parametrize(("block", "field"), [
    ({"projectID": GCP_PROJECT, "auth": {"workloadIdentityFederation": {"credConfig": {"name": "c", "key": "k"},
                                                                        "audience": "//iam.googleapis.com/x"}}},
     "auth.workloadIdentityFederation.credConfig"),
    ({"projectID": GCP_PROJECT, "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "s"}}}},
     "auth.secretRef.secretAccessKeySecretRef.key"),
    ({"projectID": GCP_PROJECT, "secretVersionSelectionPolicy": "Newest"}, "secretVersionSelectionPolicy"),
    ({"projectID": GCP_PROJECT, "colour": "blue"}, "colour"),
])
def test_gcp_unsupported_or_wrong_eso_fields_are_named(block: dict[str, Any], field: str) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": "s", "namespace": "demo"},
           "spec": {"provider": {"gcpsm": block}}}
    with pytest.raises(InvalidInput, match=rf"spec\.provider\.gcpsm\.{field}"):
        parse_secret_store(doc)


# -- Azure ---------------------------------------------------------------------------------
def test_azure_managed_identity_store_maps_identityId_to_the_client_id() -> None:
    store = _store("azkv-secret-store-mi.yaml")
    assert store.spec.provider.name == "azure"
    assert store.spec.provider.config == {"vaultUrl": "https://my-keyvault-name.vault.azure.net",
                                          "authType": "managedIdentity",
                                          "clientId": "00000000-0000-0000-0000-000000000000"}
    assert not _sources(store)


@pytest.mark.parametrize(("name", "credential"), [
    ("azkv-secret-store-spn-secret.yaml", "clientSecret"),
    ("azkv-secret-store-spn-certificate.yaml", "clientCertificate"),
])
def test_azure_service_principal_reads_client_id_and_its_credential_from_secrets(name: str, credential: str) -> None:
    store = _store(name)
    src = _sources(store)
    assert store.spec.provider.config["authType"] == "servicePrincipal"
    assert (src["clientId"].kind, src["clientId"].name, src["clientId"].key) == ("secret", "azure-secret-sp",
                                                                                 "ClientID")
    assert src[credential].field == f"authSecretRef.{credential}"


def test_azure_workload_identity_reads_ids_from_the_service_account_annotations() -> None:
    store = _store("azkv-workload-identity.yaml")
    src = _sources(store)
    assert src["federatedToken"].audiences == ("api://AzureADTokenExchange",)
    assert (src["clientId"].kind, src["clientId"].key) == ("annotation", "azure.workload.identity/client-id")
    assert (src["tenantId"].kind, src["tenantId"].key) == ("annotation", "azure.workload.identity/tenant-id")


def test_azure_workload_identity_ids_from_a_secret_take_the_place_of_annotations() -> None:
    src = _sources(_store("azkv-workload-identity-secretref.yaml"))
    assert (src["clientId"].kind, src["clientId"].name) == ("secret", "umi-secret")
    assert (src["tenantId"].kind, src["tenantId"].name) == ("secret", "umi-secret")
    assert src["federatedToken"].name == "workload-identity-sa"


def test_azure_workload_identity_without_a_service_account_is_the_controllers_own() -> None:
    store = _store("azkv-workload-identity-mounted.yaml")
    assert store.spec.provider.config["authType"] == "workloadIdentity" and not _sources(store)


@pytest.mark.parametrize(("block", "field"), [
    ({"vaultUrl": "https://v1.vault.azure.net", "authType": "Kerberos",
      "authSecretRef": {"clientId": {"name": "s", "key": "id"}, "clientSecret": {"name": "s", "key": "pw"}}},
     "authType"),
    ({"vaultUrl": "https://v1.vault.azure.net", "environmentType": "AzureStackCloud"}, "environmentType"),
    ({"vaultUrl": "https://v1.vault.azure.net", "authType": "ManagedIdentity",
      "identityId": "/subscriptions/x/resourceGroups/y"}, "identityId"),
    ({"vaultUrl": "https://v1.vault.azure.net", "authSecretRef": {"clientId": {"name": "s", "key": "id"}}},
     "authSecretRef"),
])
def test_azure_unsupported_or_wrong_eso_fields_are_named(block: dict[str, Any], field: str) -> None:
    doc = {"apiVersion": API_VERSION, "kind": "SecretStore", "metadata": {"name": "s", "namespace": "demo"},
           "spec": {"provider": {"azurekv": block}}}
    with pytest.raises(InvalidInput, match=rf"spec\.provider\.azurekv\.{field}"):
        parse_secret_store(doc)


def test_azure_china_cloud_selects_its_authority() -> None:
    doc = {"apiVersion": API_VERSION, "kind": "ClusterSecretStore", "metadata": {"name": "s"},
           "spec": {"provider": {"azurekv": {"vaultUrl": "https://v1.vault.azure.cn", "authType": "ManagedIdentity",
                                             "environmentType": "ChinaCloud"}}}}
    assert parse_secret_store(doc).spec.provider.config["authorityHost"] == "https://login.chinacloudapi.cn"
