"""The kube harness itself: a real apiserver that the official client can drive end to end."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.harness.kube import KubeCluster, audit_events

pytestmark = pytest.mark.kube


def test_admin_creates_namespace_and_secret(kube: KubeCluster) -> None:
    ns = kube.new_namespace("harness")
    with kube.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_secret(ns, client.V1Secret(
            metadata=client.V1ObjectMeta(name="s1"), string_data={"k": "v"}))
        got = core.read_namespaced_secret("s1", ns)
    assert got.data == {"k": "dg=="}


def test_custom_resource_roundtrip(kube: KubeCluster) -> None:
    ns = kube.new_namespace("harness")
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.harness.secretsync.io"},
        "spec": {
            "group": "harness.secretsync.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object",
                                               "x-kubernetes-preserve-unknown-fields": True}},
            }],
        },
    }
    with kube.api_client() as api:
        ext = client.ApiextensionsV1Api(api)
        try:
            ext.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
        custom = client.CustomObjectsApi(api)
        deadline = time.monotonic() + 20
        while True:  # the CRD is served once Established
            try:
                custom.create_namespaced_custom_object(
                    "harness.secretsync.io", "v1", ns, "widgets",
                    {"apiVersion": "harness.secretsync.io/v1", "kind": "Widget",
                     "metadata": {"name": "w1"}, "spec": {"size": 3}})
                break
            except ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        obj = custom.get_namespaced_custom_object("harness.secretsync.io", "v1", ns, "widgets", "w1")
    assert obj["spec"] == {"size": 3}


def test_unprivileged_user_is_forbidden_secrets(kube: KubeCluster) -> None:
    ns = kube.new_namespace("harness")
    with kube.user_api_client() as api, pytest.raises(ApiException) as err:
        client.CoreV1Api(api).list_namespaced_secret(ns)
    assert err.value.status == 403


def test_kubeconfig_loads_with_the_official_loader(kube: KubeCluster) -> None:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    with api:
        assert client.VersionApi(api).get_code().git_version == "v1.20.2"


def test_audit_log_records_secret_access_at_metadata_level(kube: KubeCluster) -> None:
    ns = kube.new_namespace("harness")
    with kube.api_client() as api:
        client.CoreV1Api(api).create_namespaced_secret(ns, client.V1Secret(
            metadata=client.V1ObjectMeta(name="audited"), string_data={"k": "audit-canary-value"}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the audit backend writes in batches
        hits = [e for e in audit_events(kube)
                if e.get("objectRef", {}).get("namespace") == ns
                and e.get("objectRef", {}).get("name") == "audited"]
        if hits:
            break
        time.sleep(0.2)
    assert hits, "no audit event for the secret create"
    assert all(e["level"] == "Metadata" for e in hits)
    assert "audit-canary-value" not in kube.audit_log.read_text()
