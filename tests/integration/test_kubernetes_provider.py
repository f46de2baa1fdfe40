"""The ``kubernetes`` provider, from ESO's fan-out example, on the real kube-apiserver.

An ESO user's ClusterSecretStore (``kubernetes`` block: remoteNamespace, caProvider
ConfigMap, auth.serviceAccount) and ClusterExternalSecret, with only apiVersion changed, copy
one namespace's Secret into every labelled namespace. The reads go with the store's own
ServiceAccount token, so that ServiceAccount's RBAC is the store's reach: a tenant's
SecretStore whose ServiceAccount may not read another namespace gets a 403, never the data.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsync.api.models import API_VERSION, parse_secret_store
from secretsync.controller.settings import ScopeSettings
from secretsync.core.calls import CallRecorder
from secretsync.kube.client import CONFIGMAPS, SECRETS, SERVICE_ACCOUNTS, KubeApi, Resource
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
from tests.harness.kube import KubeCluster

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "eso-examples" / "cluster-external-secret-fanout.yaml"
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")


def _example_docs() -> list[dict[str, Any]]:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} is absent (../shared/eso-examples)")
    text = EXAMPLE.read_text().replace("{% raw %}", "").replace("{% endraw %}", "")
    return [d for d in yaml.safe_load_all(text) if d]


def test_esos_fanout_store_block_is_read_as_written() -> None:
    store = next(d for d in _example_docs() if d["kind"] == "ClusterSecretStore")
    store["apiVersion"] = API_VERSION
    parsed = parse_secret_store(store)
    assert parsed.spec.provider.name == "kubernetes"
    assert parsed.spec.provider.config == {"remoteNamespace": "eso-fanout-source"}
    assert sorted((s.credential, s.kind, s.field) for s in parsed.spec.provider.credentials) == [
        ("caBundle", "configmap", "server.caProvider"), ("token", "token", "auth.serviceAccount")]


@pytest.fixture
def env(kube: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[KubeApi, str]]:
    """CRDs, a scoped controller label, and "this cluster" as the controller's configuration."""
    install_crds(kube)
    monkeypatch.setenv("SECRETSYNC_KUBERNETES_SERVER", kube.server)
    monkeypatch.setenv("SECRETSYNC_KUBERNETES_CA_FILE", str(kube.ca_file))
    api = kube_api(kube)
    yield api, uuid.uuid4().hex[:10]
    api.close()


def _reader(api: KubeApi, ns: str, sa: str) -> None:
    """ServiceAccount ``sa`` in ``ns`` that may read that namespace's Secrets, nothing else."""
    api.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}}, ns)
    api.create(ROLES, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": sa},
                       "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]}, ns)
    api.create(BINDINGS, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                          "metadata": {"name": sa},
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
                          "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}, ns)


def _secret(api: KubeApi, ns: str, name: str, data: dict[str, str]) -> None:
    api.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                         "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}, ns)


@pytest.mark.kube
def test_esos_fanout_example_copies_one_namespaces_secret_into_labelled_namespaces(
        kube: KubeCluster, env: tuple[KubeApi, str]) -> None:
    api, label = env
    docs = _example_docs()
    src = kube.new_namespace("fan-src", labels={"secretsync-test": label})
    dst = kube.new_namespace("fan-dst", labels={"secretsync-test": label, "shared-credentials": "true"})
    _secret(api, src, "shared-credentials", {"username": "svc", "password": "fan-out-pw"})
    _reader(api, src, "eso-fanout-reader")
    # No controller-manager here publishes kube-root-ca.crt: create it as it would.
    api.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"},
                            "data": {"ca.crt": kube.ca_file.read_text()}}, src)
    store = next(d for d in docs if d["kind"] == "ClusterSecretStore")
    ces = next(d for d in docs if d["kind"] == "ClusterExternalSecret")
    text = yaml.safe_dump([store, ces]).replace("eso-fanout-source", src)
    text = text.replace("shared-credentials-store", f"fan-{label}").replace("name: shared-credentials\n",
                                                                            f"name: shared-credentials-{label}\n")
    store, ces = yaml.safe_load(text)
    for obj in (store, ces):
        obj["apiVersion"] = API_VERSION
    ces["spec"]["namespaceSelectors"][0]["matchLabels"]["secretsync-test"] = label
    create(api, store)
    create(api, ces)
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    target = ces["spec"]["externalSecretSpec"]["target"]["name"]
    with running_controller(kube, settings, CallRecorder()):
        wait_for(lambda: secret_data(api, dst, target) == {"username": "svc", "password": "fan-out-pw"},
                 message="the source Secret fanned out into the labelled namespace", timeout=30)


@pytest.mark.kube
def test_a_tenants_store_reaches_only_what_its_service_account_may_read(
        kube: KubeCluster, env: tuple[KubeApi, str]) -> None:
    api, label = env
    victim = kube.new_namespace("victim", labels={"secretsync-test": label})
    tenant = kube.new_namespace("tenant", labels={"secretsync-test": label})
    _secret(api, victim, "crown-jewels", {"key": "victim-only-value"})
    _reader(api, tenant, "reader")  # may read the tenant's own Secrets only
    create(api, store_manifest("peek", tenant, "kubernetes", {
        "remoteNamespace": victim, "auth": {"serviceAccount": {"name": "reader"}}}))
    create(api, es_manifest("stolen", tenant, "peek", [("key", "crown-jewels")], refresh="1h"))
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings, CallRecorder()):
        cond = wait_for(es_ready(api, tenant, "stolen", status="False"), message="refused", timeout=30)
        assert "403" in cond["message"] or "PermissionDenied" in cond.get("reason", "") + cond["message"]
        assert secret_data(api, tenant, "stolen") is None


@pytest.mark.kube
def test_a_stores_ca_is_the_only_trust_even_for_an_api_server_the_machine_trusts(
        kube: KubeCluster, env: tuple[KubeApi, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that brings its own CA (server.caBundle / caProvider) trusts that CA alone: the
    machine's bundle trusting the API server (as it would a public CA) must not make a store
    pinned to another CA accept it. The refusal is a TLS configuration error, not an outage."""
    from secretsync.core.errors import InvalidConfig
    from secretsync.core.registry import get_factory
    from secretsync.core.values import SecretValue
    from tests.harness.vault import ThrowawayCA

    api, _ = env
    ns = kube.new_namespace("pinned-ca")
    _secret(api, ns, "db", {"password": "pinned-pw"})
    monkeypatch.setenv("SSL_CERT_FILE", str(kube.ca_file))
    token = {"token": SecretValue(kube.token)}
    other = ThrowawayCA.create("the store's own CA").cert_pem
    factory = get_factory("kubernetes")
    with factory.open({"remoteNamespace": ns, "url": kube.server, "caBundle": kube.ca_file.read_text()},
                      credentials=token) as client:
        assert "pinned-pw" in client.get("db").reveal_text()
    for config, creds in (({"caBundle": other}, {}), ({}, {"caBundle": SecretValue(other)})):
        with factory.open({"remoteNamespace": ns, "url": kube.server, **config},
                          credentials={**token, **creds}) as client, \
                pytest.raises(InvalidConfig, match="certificate is not trusted") as info:
            client.get("db")
        assert "caBundle" in str(info.value) and "pinned-pw" not in str(info.value)
