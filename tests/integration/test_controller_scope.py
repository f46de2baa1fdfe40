"""Scope: --shard i/n splits namespaces between controllers; --namespaces limits one to a list."""

from __future__ import annotations

import uuid

import pytest

from secretsync.controller.runtime import shard_of
from secretsync.controller.settings import ScopeSettings
from secretsync.core.calls import CallRecorder
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from tests.harness.controller import (
    create,
    es_manifest,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube


def test_two_shards_split_the_namespaces_and_each_namespace_is_synced_once(kube: KubeCluster) -> None:
    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    mem_name = f"shard-{uuid.uuid4().hex[:8]}"
    open_store(f"memory://{mem_name}").put("k", SecretValue("v"))
    namespaces = [kube.new_namespace("shard", labels={"secretsync-test": label}) for _ in range(6)]
    for ns in namespaces:
        create(api, store_manifest("mem", ns, "memory", {"name": mem_name}))
        create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    selector = f"secretsync-test={label}"
    with running_controller(kube, fast_settings(scope=ScopeSettings(namespace_selector=selector, shard=0, shards=2)),
                            CallRecorder()) as c0, \
            running_controller(kube, fast_settings(scope=ScopeSettings(namespace_selector=selector, shard=1,
                                                                       shards=2)), CallRecorder()) as c1:
        for ns in namespaces:
            wait_for(lambda ns=ns: secret_data(api, ns, "s") == {"k": "v"}, message=f"{ns} synced")
        expected = [sum(1 for ns in namespaces if shard_of(ns, 2) == i) for i in (0, 1)]
        written = [c.metrics.secrets_written.labels("create")._value.get() for c in (c0, c1)]
        assert written == expected
    api.close()


def test_namespaces_option_limits_the_controller_to_a_list(kube: KubeCluster) -> None:
    install_crds(kube)
    api = kube_api(kube)
    mem_name = f"nslist-{uuid.uuid4().hex[:8]}"
    open_store(f"memory://{mem_name}").put("k", SecretValue("v"))
    served, ignored = kube.new_namespace("nslist"), kube.new_namespace("nslist")
    for ns in (served, ignored):
        create(api, store_manifest("mem", ns, "memory", {"name": mem_name}))
        create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    with running_controller(kube, fast_settings(scope=ScopeSettings(namespaces=(served,)))) as ctl:
        wait_for(lambda: secret_data(api, served, "s") == {"k": "v"}, message="served namespace synced")
        assert list(ctl.es_informers) == [served]  # one namespaced watch, not a cluster-wide one
        assert secret_data(api, ignored, "s") is None
    api.close()


def test_namespaced_only_rbac_mode_works_without_cluster_scoped_kinds(kube: KubeCluster) -> None:
    """A Role in one namespace only (no namespaces, ClusterSecretStores or ClusterExternalSecrets)."""
    from secretsync.controller import Controller, KubeApi
    from secretsync.kube.client import Resource

    install_crds(kube)
    admin = kube_api(kube)
    ns = kube.new_namespace("nsonly")
    role = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
    binding = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
    admin.create(role, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                        "metadata": {"name": "secretsync", "namespace": ns}, "rules": [
                            {"apiGroups": [""], "resources": ["secrets"],
                             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
                            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                            {"apiGroups": ["secretsync.io"], "resources": ["externalsecrets", "secretstores"],
                             "verbs": ["get", "list", "watch"]},
                            {"apiGroups": ["secretsync.io"],
                             "resources": ["externalsecrets/status", "secretstores/status"],
                             "verbs": ["get", "update", "patch"]}]}, ns)
    admin.create(binding, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                           "metadata": {"name": "secretsync", "namespace": ns},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secretsync"},
                           "subjects": [{"kind": "User", "name": kube.user_name}]}, ns)
    mem_name = f"nsonly-{uuid.uuid4().hex[:8]}"
    open_store(f"memory://{mem_name}").put("k", SecretValue("v"))
    create(admin, store_manifest("mem", ns, "memory", {"name": mem_name}))
    create(admin, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    user_api = KubeApi(kube.configuration(kube.user_token))
    settings = fast_settings(scope=ScopeSettings(namespaces=(ns,)), namespace=ns)
    ctl = Controller(user_api, settings)
    ctl.start()
    try:
        assert ctl.wait_ready(30)
        assert ctl.ns_informer.unavailable and ctl.css_informer.unavailable
        wait_for(lambda: secret_data(admin, ns, "s") == {"k": "v"}, message="synced with namespaced RBAC")
    finally:
        ctl.stop()
        user_api.close()
        admin.close()
