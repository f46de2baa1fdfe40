"""The controller against OpenBao (KV v2) with a token from a Kubernetes Secret; a revoked token."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from secretsync.controller.runtime import SS_RES
from secretsync.controller.settings import ControllerSettings, ScopeSettings
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    ready_condition,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.vault import OpenBao, ThrowawayCA, encode

pytestmark = pytest.mark.kube


def _tenant(kube: KubeCluster, openbao: OpenBao, password: str, store: dict[str, Any],
            refresh: str) -> tuple[KubeApi, str, str, ControllerSettings]:
    """A labelled namespace with a token Secret, a vault SecretStore ``bao`` (``store`` on top of
    the token config) and ExternalSecret ``db`` reading ``password`` from a fresh KV secret:
    (api, namespace, the secret's path, settings scoped to that namespace)."""
    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("ctl-vault", labels={"secretsync-test": label})
    path = f"ctl-{uuid.uuid4().hex[:6]}/db"
    openbao.kv2_write(path, encode(SecretValue(json.dumps({"password": password}))))
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bao-token", "namespace": ns},
                 "stringData": {"token": openbao.root_token}})
    create(api, store_manifest("bao", ns, "vault", {
        "address": openbao.address, "mount": "secret", "secretRef": {"token": {"name": "bao-token", "key": "token"}},
        **store}))
    es = es_manifest("db", ns, "bao", refresh=refresh)
    es["spec"]["data"] = [{"secretKey": "password", "remoteRef": {"key": path, "property": "password"}}]
    create(api, es)
    return api, ns, path, fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))


def test_vault_sync_bad_token_keeps_secret_and_recovers(kube: KubeCluster, openbao: OpenBao) -> None:
    api, ns, path, settings = _tenant(kube, openbao, "pw-1", {}, refresh="1s")
    with running_controller(kube, settings):
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "pw-1"}, message="first sync")
        openbao.kv2_write(path, encode(SecretValue('{"password":"pw-2"}')))
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "pw-2"}, timeout=10, message="change synced")
        # The token in the Secret is replaced by a bad one: never a deletion, status says why.
        api.patch(SECRETS, "bao-token", {"data": {"token": base64.b64encode(b"bad-token").decode()}}, ns)
        cond = wait_for(es_ready(api, ns, "db", "False"), timeout=15, message="auth failure reported")
        assert cond["reason"] in ("AuthenticationFailed", "PermissionDenied", "StoreUnavailable"), cond
        assert secret_data(api, ns, "db") == {"password": "pw-2"}
        api.patch(SECRETS, "bao-token", {"data": {"token": base64.b64encode(openbao.root_token.encode()).decode()}},
                  ns)
        openbao.kv2_write(path, encode(SecretValue('{"password":"pw-3"}')))
        wait_for(lambda: secret_data(api, ns, "db") == {"password": "pw-3"}, timeout=20, message="recovered")
    api.close()


def test_a_find_path_is_a_folder_as_in_eso_so_a_neighbour_folder_is_not_pulled_in(
        kube: KubeCluster, openbao: OpenBao) -> None:
    """ESO lists ``find.path`` on Vault as the folder ``path/`` (recursively): an ESO user's
    ``path: prod`` must not also pull in ``production/`` (another team's secrets, or keys that
    clash with theirs), nor a secret named ``prod`` itself."""
    api, ns, _, settings = _tenant(kube, openbao, "pw-1", {}, refresh="1h")
    root = f"prod{uuid.uuid4().hex[:6]}"
    for path, doc in ((f"{root}/db", {"password": "ours-1"}), (f"{root}/api/token", {"token": "ours-2"}),
                      (f"{root}uction/db", {"password": "the-neighbours"}), (root, {"x": "not-in-the-folder"})):
        openbao.kv2_write(path, encode(SecretValue(json.dumps(doc))))
    es = es_manifest("found", ns, "bao", refresh="1h")
    es["spec"]["dataFrom"] = [{"find": {"path": root}}]
    create(api, es)
    with running_controller(kube, settings):
        found = wait_for(lambda: secret_data(api, ns, "found"), message="dataFrom.find over a folder synced")
    assert sorted(found) == [f"{root}_api_token", f"{root}_db"], sorted(found)
    assert "the-neighbours" not in json.dumps(found)
    api.close()


def test_a_store_pinned_to_another_ca_fails_naming_the_store_never_falling_back(
        kube: KubeCluster, openbao: OpenBao, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The machine trusts the server's CA (as it would a public one); the store's caBundle names
    another. The store's status and its ExternalSecret (naming the store) say why; nothing is written."""
    assert openbao.ca is not None
    machine = tmp_path / "machine-bundle.pem"
    machine.write_text(openbao.ca.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(machine))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(machine))
    other = base64.b64encode(ThrowawayCA.create("the store's own CA").cert_pem.encode()).decode()
    api, ns, _, settings = _tenant(kube, openbao, "pinned-pw", {"address": openbao.tls_address, "caBundle": other},
                                   refresh="1h")
    with running_controller(kube, settings):
        cond = wait_for(es_ready(api, ns, "db", "False"), timeout=20, message="untrusted server reported")
        store = wait_for(lambda: (ready_condition(api, SS_RES, ns, "bao") or {}).get("status") == "False"
                         and ready_condition(api, SS_RES, ns, "bao"), timeout=20, message="store not ready")
    assert cond["reason"] == "InvalidConfig" and "certificate is not trusted" in cond["message"], cond
    assert cond["message"].startswith(f"SecretStore/{ns}/bao: "), cond  # which store, for an ExternalSecret
    assert "certificate is not trusted" in store["message"], store
    assert secret_data(api, ns, "db") is None
    api.close()
