"""A tenant's ExternalSecret tries to read outside a ClusterSecretStore's allowedKeyPrefix by
spelling a key the way the provider will rewrite it, on the real kube-apiserver with the
controller, the Azure wire-level fake and OpenBao.

* Azure: ESO's ``secret/NAME`` reads the secret ``NAME``, so under ``allowedKeyPrefix: secret``
  the key ``secret/team-b-db`` would read any secret of the vault;
* Vault: ``team-a/../team-b/x`` starts with ``team-a/`` but a URL path resolves it to
  ``team-b/x``.

Both must end Ready=False (KeyNotAllowed) naming the ExternalSecret field, with no request
for the outside secret, while a key really inside the prefix still syncs; a PushSecret to
``secret/OTHER`` is refused the same way and the other team's secret is not overwritten.
"""

from __future__ import annotations

import uuid

import pytest

from secretsync.api.models import API_VERSION
from secretsync.controller.pushsecret import PS_RES
from secretsync.controller.settings import PushSettings, ScopeSettings
from secretsync.core.calls import CallRecorder
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeError
from tests.fakes.azure_keyvault import FakeKeyVault
from tests.harness.azure import VAULT_URL, sdk_client
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    ready_condition,
    running_controller,
    store_manifest,
    wait_for,
)
from tests.harness.env import environ
from tests.harness.kube import KubeCluster
from tests.harness.vault import OpenBao, encode

pytestmark = pytest.mark.kube

CLIENT_ID = "5a0c4c1e-0000-4000-8000-00000000a11e"
CLIENT_SECRET = "sp-" + "p" * 30


def test_keys_the_provider_rewrites_outside_the_prefix_are_refused_naming_the_field(
        kube: KubeCluster, fake_keyvault: FakeKeyVault, openbao: OpenBao) -> None:
    install_crds(kube)
    api = kube_api(kube)
    tag = uuid.uuid4().hex[:6]
    admin_ns = kube.new_namespace("kp-admin")
    ns = kube.new_namespace("kp-tenant")
    fake_keyvault.register_app(CLIENT_ID, secret=CLIENT_SECRET)
    vault = sdk_client(fake_keyvault)
    vault.set_secret(f"team-b-db-{tag}", "other-team-value")
    vault.set_secret(f"secretive-{tag}", "inside")
    openbao.kv2_write(f"team-b-{tag}/x", encode(SecretValue('{"v":"other-team-bao"}')))
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": admin_ns},
                 "stringData": {"ClientID": CLIENT_ID, "ClientSecret": CLIENT_SECRET,
                                "token": openbao.root_token}})
    az, bao = f"kp-az-{tag}", f"kp-bao-{tag}"
    create(api, store_manifest(az, None, "azurekv", {
        "tenantId": fake_keyvault.tenant, "vaultUrl": VAULT_URL,
        "authSecretRef": {"clientId": {"name": "creds", "key": "ClientID", "namespace": admin_ns},
                          "clientSecret": {"name": "creds", "key": "ClientSecret", "namespace": admin_ns}}},
        allowedKeyPrefix="secret"))
    create(api, store_manifest(bao, None, "vault", {
        "address": openbao.address, "mount": "secret", "kvVersion": 2,
        "secretRef": {"token": {"name": "creds", "key": "token", "namespace": admin_ns}}},
        allowedKeyPrefix=f"team-a-{tag}/"))
    create(api, es_manifest("az-outside", ns, az, [("db", f"secret/team-b-db-{tag}")],
                            store_kind="ClusterSecretStore"))
    create(api, es_manifest("az-inside", ns, az, [("v", f"secretive-{tag}")], store_kind="ClusterSecretStore"))
    create(api, es_manifest("bao-outside", ns, bao, [
        ("a", f"team-a-{tag}/db"), ("x", f"team-a-{tag}/../team-b-{tag}/x")], store_kind="ClusterSecretStore"))
    # A mount named like the prefix's first segment: a listed ``team/x`` is read as ``x`` (the
    # path after the mount) first, which is outside the prefix however it was listed.
    mount = f"kp{tag}"
    openbao.raw().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    openbao.kv2_write(f"{mount}/x", encode(SecretValue('{"v":"inside"}')), mount=mount)
    openbao.kv2_write("x", encode(SecretValue('{"v":"outside-the-prefix"}')), mount=mount)
    create(api, store_manifest(f"{bao}-m", None, "vault", {
        "address": openbao.address, "mount": mount, "kvVersion": 2,
        "secretRef": {"token": {"name": "creds", "key": "token", "namespace": admin_ns}}},
        allowedKeyPrefix=f"{mount}/"))
    create(api, es_manifest("bao-find", ns, f"{bao}-m", store_kind="ClusterSecretStore",
                            dataFrom=[{"find": {"path": f"{mount}/"}}]))
    # PushSecret remote keys are bounded the same way: no overwrite of the other team's secret.
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "src", "namespace": ns},
                 "stringData": {"v": "tenant-value"}})
    api.create(PS_RES, {
        "apiVersion": API_VERSION, "kind": "PushSecret", "metadata": {"name": "push-outside", "namespace": ns},
        "spec": {"secretStoreRefs": [{"name": az, "kind": "ClusterSecretStore"}],
                 "selector": {"secret": {"name": "src"}},
                 "data": [{"match": {"secretKey": "v", "remoteRef": {"remoteKey": f"secret/team-b-db-{tag}"}}}]}}, ns)
    calls = CallRecorder()
    fake_keyvault.state.requests.clear()
    with environ(AZURE_AUTHORITY_HOST=fake_keyvault.url, SECRETSYNC_AZURE_ACCESS_TOKEN=None,
                 AZURE_CLIENT_ID=None, AZURE_TENANT_ID=None, AZURE_FEDERATED_TOKEN_FILE=None), \
            running_controller(kube, fast_settings(push=PushSettings(enabled=True, tick=0.2, source_poll=0.5),
                                                   # Only this test's namespaces: the call count below
                                                   # must not see other tests' ExternalSecrets on the
                                                   # shared OpenBao.
                                                   scope=ScopeSettings(namespaces=(ns, admin_ns))),
                               calls=calls):
        wait_for(es_ready(api, ns, "az-inside"), 30, message="a key inside the prefix syncs")
        cond = wait_for(es_ready(api, ns, "az-outside", "False", "KeyNotAllowed"), 20, message="azure refusal")
        assert "spec.data[0].remoteRef.key" in cond["message"] and f"'team-b-db-{tag}'" in cond["message"]
        cond = wait_for(es_ready(api, ns, "bao-outside", "False", "KeyNotAllowed"), 20, message="vault refusal")
        assert "spec.data[1].remoteRef.key" in cond["message"] and "'..'" in cond["message"]
        assert "spec.data[0]" not in cond["message"]
        cond = wait_for(es_ready(api, ns, "bao-find", "False"), 20, message="listed alias refused")
        assert "spec.dataFrom[0].find" in cond["message"] and "'x'" in cond["message"], cond
        # (Before the controller's store informer has the ClusterSecretStore, the PushSecret may
        # first say StoreNotFound: wait for the refusal itself.)
        pushed = wait_for(lambda: (c := ready_condition(api, PS_RES, ns, "push-outside")) and c.get("status") == "False"
                          and "remoteKey" in c.get("message", "") and c, 20, message="push refusal")
        assert "spec.data[0].match.remoteRef.remoteKey" in pushed["message"], pushed
        seen = [path for _, path, _ in fake_keyvault.state.requests]
    assert not [p for p in seen if f"team-b-db-{tag}" in p], seen
    assert vault.get_secret(f"team-b-db-{tag}").value == "other-team-value"
    assert calls.total("vault", "read") == 0  # no value read by either Vault store: only listings
    for name in ("az-outside", "bao-outside", "bao-find"):
        with pytest.raises(KubeError) as err:
            api.get(SECRETS, name, ns)
        assert err.value.not_found
    api.close()

