"""What a store author may draw on, decided before a client is opened (no server needed).

Written as a hostile namespace tenant would: each store below tries to reach something of
the controller (its files, its own cloud identity, or that identity sent to a host the
tenant picks). The same stores written by the cluster admin as ClusterSecretStores open.
The attacks on the real kube-apiserver, with a listener, are in tests/security/.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from secretsync.api.models import SecretStore, parse_secret_store
from secretsync.controller.settings import ControllerSettings, TrustSettings
from secretsync.controller.stores import StoreManager
from secretsync.core.calls import CallRecorder
from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import get_factory, providers
from secretsync.core.values import SecretValue

LISTENER = "http://127.0.0.1:9"
TENANT_KEYS = {"accessKeyID": SecretValue("AKIATENANT"), "secretAccessKey": SecretValue("tenant-secret")}


def _store(provider: str, block: dict[str, Any], namespace: str | None = "tenant") -> SecretStore:
    md: dict[str, Any] = {"name": "hostile"}
    if namespace:
        md["namespace"] = namespace
    return parse_secret_store({"apiVersion": "secretsync.io/v1alpha1",
                               "kind": "SecretStore" if namespace else "ClusterSecretStore",
                               "metadata": md, "spec": {"provider": {provider: block}}})


def _manager(ambient: bool = False, files: bool = False) -> StoreManager:
    settings = replace(ControllerSettings(), trust=TrustSettings(namespaced_ambient_identity=ambient,
                                                                 cluster_store_files=files))
    return StoreManager(api=None, settings=settings, hash_key=b"k" * 32,  # type: ignore[arg-type]
                        usage=lambda *_: None,  # type: ignore[arg-type,return-value]
                        on_changed=lambda *_: None, call_listeners=[])


def _open(store: SecretStore, creds: dict[str, SecretValue] | None = None, ambient: bool = False,
          files: bool = False) -> None:
    client = _manager(ambient, files)._open(store, creds or {}, CallRecorder())
    client.close()


def _installed(name: str) -> bool:
    return any(p.name == name and p.available for p in providers())


#: (provider, store block, credentials the tenant brings, the field the refusal must name)
ATTACKS: list[tuple[str, dict[str, Any], dict[str, SecretValue], str]] = [
    ("aws", {"region": "us-east-1", "endpoint": LISTENER}, {}, "spec.provider.aws.secretRef"),
    ("aws", {"region": "us-east-1", "role": "arn:aws:iam::123456789012:role/other-team"}, {},
     "spec.provider.aws.secretRef"),
    ("aws", {"region": "us-east-1", "profile": "default"}, TENANT_KEYS, "spec.provider.aws.profile"),
    ("gcp", {"project": "other-team", "endpoint": "127.0.0.1:9"}, {}, "spec.provider.gcp.secretRef"),
    ("azure", {"vaultUrl": "https://other.vault.azure.net", "authType": "managedIdentity"}, {},
     "spec.provider.azure.secretRef"),
    ("azure", {"vaultUrl": "https://other.vault.azure.net", "authType": "workloadIdentity"}, {},
     "spec.provider.azure.secretRef"),
    ("azure", {"vaultUrl": "https://other.vault.azure.net", "authType": "accessToken", "caCert": "/etc/hostname"},
     {"accessToken": SecretValue("t")}, "spec.provider.azure.caCert"),
    ("vault", {"address": LISTENER, "auth": {"method": "kubernetes", "role": "r"}}, {},
     "spec.provider.vault.secretRef"),
    ("vault", {"address": LISTENER, "auth": {"method": "jwt", "role": "r"}}, {}, "spec.provider.vault.secretRef"),
    ("vault", {"address": LISTENER}, {}, "spec.provider.vault.secretRef"),
    ("vault", {"address": LISTENER, "auth": {"method": "approle", "roleId": "r"}}, {},
     "spec.provider.vault.secretRef"),
    ("vault", {"address": LISTENER, "caCert": "/etc/hostname"}, {"token": SecretValue("t")},
     "spec.provider.vault.caCert"),
    ("file", {"path": "/etc/secretsync/other-team.store"}, {}, "spec.provider.file.path"),
]


@pytest.mark.parametrize(("provider", "block", "creds", "field"), ATTACKS,
                         ids=[f"{a[0]}-{a[3].rsplit('.', 1)[-1]}-{i}" for i, a in enumerate(ATTACKS)])
def test_a_tenant_store_that_would_reach_the_controller_is_refused_naming_the_field(
        provider: str, block: dict[str, Any], creds: dict[str, SecretValue], field: str) -> None:
    if not _installed(provider):
        pytest.skip(f"{provider} not installed")
    with pytest.raises(InvalidConfig) as err:
        _open(_store(provider, block), creds)
    assert f"SecretStore/tenant/hostile: {field}" in str(err.value)


@pytest.mark.parametrize(("provider", "block", "creds", "field"), [a for a in ATTACKS if a[0] != "file"])
def test_the_same_store_written_by_the_admin_as_a_cluster_store_opens(
        provider: str, block: dict[str, Any], creds: dict[str, SecretValue], field: str, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    if not _installed(provider):
        pytest.skip(f"{provider} not installed")
    for var in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.setenv(var, "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACONTROLLER")  # the controller's own identity
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "controller-secret")
    cluster = _store(provider, block, namespace=None)
    if field.endswith(("caCert", "profile")):  # a file of the controller: only with the admin's flag
        with pytest.raises(InvalidConfig, match=rf"ClusterSecretStore/hostile: {field}: .*--allow-cluster-store-files"):
            _open(cluster, creds)
    _open(cluster, creds, files=True)  # opening sends nothing


def test_with_the_admin_flag_a_tenant_may_use_the_controller_identity_but_not_send_it_elsewhere() -> None:
    if not _installed("aws"):
        pytest.skip("aws not installed")
    _open(_store("aws", {"region": "us-east-1"}), ambient=True)
    with pytest.raises(InvalidConfig, match=r"spec\.provider\.aws\.endpoint: a SecretStore that uses the "
                                            r"controller's identity may not choose where requests go"):
        _open(_store("aws", {"region": "us-east-1", "endpoint": LISTENER}), ambient=True)
    if _installed("vault"):
        with pytest.raises(InvalidConfig, match=r"spec\.provider\.vault\.address"):
            _open(_store("vault", {"address": LISTENER, "auth": {"method": "kubernetes", "role": "r"}}), ambient=True)


@pytest.mark.parametrize(("provider", "block", "creds"), [
    ("aws", {"region": "us-east-1", "endpoint": LISTENER}, TENANT_KEYS),
    ("aws", {"region": "us-east-1", "role": "arn:aws:iam::123456789012:role/mine"}, {"jwt": SecretValue("t")}),
    ("gcp", {"project": "my-project", "endpoint": "127.0.0.1:9"}, {"accessToken": SecretValue("t")}),
    ("azure", {"vaultUrl": "https://127.0.0.1:9", "authType": "servicePrincipal", "tenantId": "t",
               "clientId": "c"}, {"clientSecret": SecretValue("s")}),
    ("vault", {"address": LISTENER}, {"token": SecretValue("t")}),
    ("vault", {"address": LISTENER, "auth": {"method": "kubernetes", "role": "r"}}, {"jwt": SecretValue("t")}),
    ("vault", {"address": LISTENER, "auth": {"method": "approle", "roleId": "r"}}, {"secretId": SecretValue("s")}),
    ("memory", {"name": "tenant-demo"}, {}),
])
def test_a_tenant_store_with_its_own_credentials_opens_wherever_it_points(
        provider: str, block: dict[str, Any], creds: dict[str, SecretValue]) -> None:
    """Only what the tenant supplied can travel to a host the tenant chose: that is allowed."""
    if not _installed(provider):
        pytest.skip(f"{provider} not installed")
    _open(_store(provider, block), creds)


def test_store_fields_that_chose_files_or_test_hosts_are_gone() -> None:
    """Vault jwtPath/tokenPath, Azure endpoint and GCP insecureEndpoint are not store fields at all."""
    for provider, block, field in [
        ("vault", {"address": LISTENER, "auth": {"method": "jwt", "role": "r", "jwtPath": "/etc/passwd"}}, "jwtPath"),
        ("vault", {"address": LISTENER, "auth": {"method": "kubernetes", "role": "r", "tokenPath": "/x"}},
         "tokenPath"),
        ("azure", {"vaultUrl": "https://v.vault.azure.net", "endpoint": "https://127.0.0.1:9"}, "endpoint"),
        ("gcp", {"project": "my-project", "insecureEndpoint": "127.0.0.1:9"}, "insecureEndpoint"),
    ]:
        if _installed(provider):
            with pytest.raises(InvalidConfig, match=field):
                get_factory(provider).validate_config(block)
