"""The audit's secret graph on synthetic objects: every way a pod names a Secret, owner
attribution, the ExternalSecret chain, and the findings (broken/optional refs, missing keys,
orphans, unmanaged Secrets), with malformed objects reported by object and field."""

from __future__ import annotations

import base64
from typing import Any

from secretsync.audit import Scope, audit, build_graph, build_inventory
from secretsync.audit.graph import Graph
from secretsync.audit.inventory import ObjRef

NS = "app"


def secret(name: str, ns: str = NS, keys: tuple[str, ...] = ("password",), **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns, **meta},
            "type": "Opaque", "data": {k: base64.b64encode(b"x").decode() for k in keys}}


def deployment(name: str, spec: dict[str, Any], ns: str = NS, uid: str | None = None) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if uid:
        md["uid"] = uid
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md,
            "spec": {"selector": {}, "template": {"spec": spec}}}


def owned(kind: str, name: str, owner_kind: str, owner: str, spec: dict[str, Any], *, api: str = "apps/v1",
          uid: str | None = None, owner_uid: str | None = None, replicas: int | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "controller": True}
    if owner_uid:
        ref["uid"] = owner_uid
    md: dict[str, Any] = {"name": name, "namespace": NS, "ownerReferences": [ref]}
    if uid:
        md["uid"] = uid
    body: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": md}
    if kind == "Pod":
        body["spec"] = spec
    else:
        body["spec"] = {"template": {"spec": spec}, **({"replicas": replicas} if replicas is not None else {})}
    return body


def container(**extra: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", **extra}


def env_ref(secret_name: str, key: str = "password", optional: bool | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret_name, "key": key}
    if optional is not None:
        ref["optional"] = optional
    return {"name": "V", "valueFrom": {"secretKeyRef": ref}}


def graph(*objs: dict[str, Any]) -> Graph:
    return build_graph(build_inventory(objs))


def consumers(g: Graph, name: str, ns: str = NS) -> list[tuple[str, str]]:
    return sorted((str(c.ref), c.use.via) for c in g.secrets[(ns, name)].consumers)


def findings(g: Graph, type_: str | None = None) -> list[tuple[str, str, str | None]]:
    return [(f.type, f.object, f.field) for f in g.findings if type_ is None or f.type == type_]


# ---------------------------------------------------------------------- pod spec references
def test_every_pod_spec_reference_kind_is_found_with_its_path() -> None:
    spec = {
        "initContainers": [container(name="init", envFrom=[{"secretRef": {"name": "s-envfrom"}}])],
        "containers": [container(env=[{"name": "PLAIN", "value": "v"}, env_ref("s-env")],
                                 volumeMounts=[{"name": "vol", "mountPath": "/s"},
                                               {"name": "proj", "mountPath": "/p"}])],
        "ephemeralContainers": [container(name="debug", env=[env_ref("s-ephemeral")])],
        "volumes": [
            {"name": "vol", "secret": {"secretName": "s-volume", "items": [{"key": "password", "path": "p"}]}},
            {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                                                       {"secret": {"name": "s-projected"}},
                                                       {"configMap": {"name": "cm"}}]}},
            {"name": "az", "azureFile": {"secretName": "s-azure", "shareName": "x"}},
            {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "s-csi"}}},
            {"name": "ceph", "cephfs": {"monitors": [], "secretRef": {"name": "s-ceph"}}},
        ],
        "imagePullSecrets": [{"name": "s-pull"}],
    }
    g = graph(deployment("web", spec))
    uses = {c.use.secret: c.use for n in g.secrets.values() for c in n.consumers}
    assert {k: u.via for k, u in uses.items()} == {
        "s-envfrom": "envFrom", "s-env": "env", "s-ephemeral": "env", "s-volume": "volume",
        "s-projected": "projected", "s-azure": "volumePlugin", "s-csi": "volumePlugin", "s-ceph": "volumePlugin",
        "s-pull": "imagePullSecret"}
    assert uses["s-env"].path == "spec.template.spec.containers[0].env[1].valueFrom.secretKeyRef"
    assert uses["s-env"].keys == ("password",)
    assert uses["s-projected"].path == "spec.template.spec.volumes[1].projected.sources[1].secret"
    assert uses["s-projected"].containers == ("main",)
    assert uses["s-volume"].keys == ("password",)
    assert uses["s-envfrom"].containers == ("init",)
    assert uses["s-csi"].path == "spec.template.spec.volumes[3].csi.nodePublishSecretRef"


def test_cronjob_pod_spec_is_under_job_template() -> None:
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": NS},
          "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": {
              "containers": [container(env=[env_ref("db")])]}}}}}}
    g = graph(cj, secret("db"))
    assert consumers(g, "db") == [("CronJob/app/nightly", "env")]
    assert g.secrets[(NS, "db")].consumers[0].use.path.startswith("spec.jobTemplate.spec.template.spec.")


# ---------------------------------------------------------------------- owner attribution
def test_pods_and_replicasets_are_attributed_to_their_deployment() -> None:
    spec = {"containers": [container(env=[env_ref("db")])]}
    g = graph(  # Pods first, as a cluster lists them: the Deployment's own field still wins.
        owned("Pod", "web-1-abc", "ReplicaSet", "web-1", spec, api="v1", owner_uid="r1"),
        owned("ReplicaSet", "web-1", "Deployment", "web", spec, uid="r1", owner_uid="d1", replicas=1),
        deployment("web", spec, uid="d1"),
        secret("db"),
    )
    assert consumers(g, "db") == [("Deployment/app/web", "env")]
    (c,) = g.secrets[(NS, "db")].consumers
    assert c.found_in is None and c.use.path.startswith("spec.template.spec.containers[0]")
    web = g.workloads[ObjRef("Deployment", "web", NS)]
    assert sorted(str(m) for m in web.members) == ["Pod/app/web-1-abc", "ReplicaSet/app/web-1"]
    assert set(g.workloads) == {ObjRef("Deployment", "web", NS)}


def test_pod_whose_owner_is_not_in_the_input_is_its_own_workload() -> None:
    spec = {"containers": [container(env=[env_ref("db")])]}
    g = graph(owned("Pod", "web-1-abc", "ReplicaSet", "gone", spec, api="v1"), secret("db"))
    assert consumers(g, "db") == [("Pod/app/web-1-abc", "env")]


def test_owner_with_same_name_but_other_uid_is_not_the_owner() -> None:
    spec = {"containers": [container(env=[env_ref("db")])]}
    g = graph(deployment("web", {"containers": [container()]}, uid="new"),
              owned("ReplicaSet", "web-1", "Deployment", "web", spec, owner_uid="old", replicas=1), secret("db"))
    assert consumers(g, "db") == [("ReplicaSet/app/web-1", "env")]


def test_reference_only_in_a_pod_is_reported_with_the_pod_it_was_found_in() -> None:
    g = graph(deployment("web", {"containers": [container()]}),
              owned("Pod", "web-x", "Deployment", "web", {"containers": [container(env=[env_ref("db")])]}, api="v1"),
              secret("db"))
    (c,) = g.secrets[(NS, "db")].consumers
    assert str(c.ref) == "Deployment/app/web" and str(c.found_in) == "Pod/app/web-x"


def test_old_replicaset_revision_is_not_a_consumer() -> None:
    g = graph(deployment("web", {"containers": [container(env=[env_ref("db-v2")])]}),
              owned("ReplicaSet", "web-1", "Deployment", "web", {"containers": [container(env=[env_ref("db-v1")])]},
                    replicas=0),
              secret("db-v1"), secret("db-v2"))
    assert consumers(g, "db-v1") == []
    assert ("orphan", "Secret/app/db-v1", None) in findings(g)


def test_workload_records_its_service_account() -> None:
    g = graph(deployment("web", {"serviceAccountName": "web-sa", "containers": [container(env=[env_ref("db")])]}),
              {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web-sa", "namespace": NS}},
              secret("db"))
    assert g.secrets[(NS, "db")].consumers[0].service_account == "app/web-sa"
    assert not findings(g, "broken-ref")


def test_missing_service_account_is_a_broken_ref() -> None:
    g = graph(deployment("web", {"serviceAccountName": "nope", "containers": [container()]}))
    assert findings(g, "broken-ref") == [("broken-ref", "Deployment/app/web", "spec.template.spec.serviceAccountName")]


# ---------------------------------------------------------------------- findings
def test_missing_secret_is_a_broken_ref_and_optional_one_is_flagged_as_such() -> None:
    spec = {"containers": [container(env=[env_ref("gone"), env_ref("maybe", optional=True)])],
            "imagePullSecrets": [{"name": "pull-gone"}]}
    g = graph(deployment("web", spec))
    got = {(f.type, f.severity, f.secret) for f in g.findings}
    assert ("broken-ref", "error", "app/gone") in got
    assert ("broken-optional-ref", "info", "app/maybe") in got
    assert ("broken-ref", "warning", "app/pull-gone") in got


def test_missing_key_is_found_when_key_names_are_known() -> None:
    spec = {"containers": [container(env=[env_ref("db", key="passwd"), env_ref("db", key="opt", optional=True)])],
            "volumes": [{"name": "v", "secret": {"secretName": "db", "items": [{"key": "tls.crt", "path": "c"}]}}]}
    g = graph(deployment("web", spec), secret("db", keys=("password",)))
    got = sorted((f.type, f.message) for f in g.findings if f.type in ("missing-key", "broken-optional-ref"))
    assert got == [("broken-optional-ref", "Secret app/db has no key 'opt' (optional)"),
                   ("missing-key", "Secret app/db has no key 'passwd'"),
                   ("missing-key", "Secret app/db has no key 'tls.crt'")]


def test_metadata_only_secrets_are_never_checked_for_keys() -> None:
    inv = build_inventory([])
    inv.secret_keys_known = False
    inv.add({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": NS}})
    inv.add(deployment("web", {"containers": [container(env=[env_ref("db", key="anything")])]}))
    g = build_graph(inv)
    assert inv.secrets[(NS, "db")].keys is None
    assert not findings(g, "missing-key")


def test_orphan_and_unmanaged_secrets() -> None:
    g = graph(secret("lonely"))
    assert ("orphan", "Secret/app/lonely", None) in findings(g)
    assert ("unmanaged", "Secret/app/lonely", None) in findings(g)


def test_system_secrets_are_neither_orphans_nor_unmanaged() -> None:
    sa_token = secret("sa-token", annotations={"kubernetes.io/service-account.name": "builder"})
    sa_token["type"] = "kubernetes.io/service-account-token"
    helm = secret("sh.helm.release.v1.web.v1", labels={"owner": "helm"})
    generated = secret("tls", ownerReferences=[{"kind": "SealedSecret", "name": "tls", "controller": True}])
    g = graph(sa_token, helm, generated)
    assert not [f for f in findings(g) if f[1] != "Secret/app/tls"]
    assert g.secrets[(NS, "sa-token")].managed_by == "kubernetes"
    assert consumers(g, "sa-token") == [("ServiceAccount/app/builder", "serviceAccountToken")]
    assert g.secrets[(NS, "tls")].managed_by == "controller:SealedSecret"
    assert findings(g) == [("orphan", "Secret/app/tls", None)]


def test_service_account_image_pull_secrets_are_consumed_by_it() -> None:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder", "namespace": NS},
          "imagePullSecrets": [{"name": "registry"}]}
    g = graph(sa, secret("registry"))
    assert consumers(g, "registry") == [("ServiceAccount/app/builder", "imagePullSecret")]


def test_ingress_tls_and_storage_class_secrets_are_consumed() -> None:
    ing = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS},
           "spec": {"tls": [{"hosts": ["a"], "secretName": "web-tls"}]}}
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
          "parameters": {"adminSecretName": "ceph-admin", "adminSecretNamespace": "kube-system",
                         "csi.storage.k8s.io/node-stage-secret-name": "${pvc.name}"}}
    g = graph(ing, sc, secret("web-tls"), secret("ceph-admin", ns="kube-system"))
    assert consumers(g, "web-tls") == [("Ingress/app/web", "ingressTLS")]
    assert consumers(g, "ceph-admin", "kube-system") == [("StorageClass/fast", "storage")]


# ---------------------------------------------------------------------- ExternalSecrets
def store(name: str = "aws", kind: str = "SecretStore", ns: str | None = NS, **provider: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "secretsync.io/v1alpha1", "kind": kind, "metadata": md,
            "spec": {"provider": provider or {"aws": {"region": "eu-west-1"}}}}


def external_secret(name: str, target: str | None = None, store_name: str = "aws",
                    store_kind: str = "SecretStore", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "secretStoreRef": {"name": store_name, "kind": store_kind},
        "data": [{"secretKey": "password", "remoteRef": {"key": "prod/db", "property": "pw"}}], **spec}
    if target:
        body["target"] = {"name": target}
    return {"apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": NS}, "spec": body}


def test_provider_to_pod_chain() -> None:
    g = graph(store(), external_secret("db-es", target="db"),
              deployment("web", {"containers": [container(env=[env_ref("db")])]}))
    node = g.secrets[(NS, "db")]
    assert not node.exists and node.managed_by == "secretsync"
    (src,) = node.sources
    assert (str(src.store), src.provider, src.remote_key, src.property) == (
        "SecretStore/app/aws", "aws", "prod/db", "pw")
    assert consumers(g, "db") == [("Deployment/app/web", "env")]
    # Pending (the controller will create it), so not a broken reference.
    assert not findings(g, "broken-ref")


def test_external_secret_with_missing_store_is_a_broken_ref() -> None:
    g = graph(external_secret("db-es", store_name="nope"))
    assert findings(g, "broken-ref") == [("broken-ref", "ExternalSecret/app/db-es", "spec.secretStoreRef")]


def test_cluster_store_credentials_and_conditions() -> None:
    css = store("shared", "ClusterSecretStore", None,
                aws={"region": "eu-west-1", "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id",
                                                                          "namespace": "ops"}}})
    css["spec"]["conditions"] = [{"namespaces": ["other"]}]
    ns_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    g = graph(css, ns_obj, external_secret("db-es", store_name="shared", store_kind="ClusterSecretStore"),
              secret("aws-creds", ns="ops", keys=("id",)))
    assert consumers(g, "aws-creds", "ops") == [("ClusterSecretStore/shared", "storeCredential")]
    (f,) = [f for f in g.findings if f.type == "broken-ref"]
    assert "does not serve namespace app" in f.message


def test_cluster_external_secret_is_expanded_into_selected_namespaces() -> None:
    ces = {"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterExternalSecret", "metadata": {"name": "shared"},
           "spec": {"namespaceSelectors": [{"matchLabels": {"team": "a"}}],
                    "externalSecretSpec": {"secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
                                           "data": [{"secretKey": "k", "remoteRef": {"key": "shared/k"}}]}}}
    g = graph(ces, store("vault", "ClusterSecretStore", None, vault={"address": "http://v", "mount": "secret"}),
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a1", "labels": {"team": "a"}}},
              {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b1", "labels": {"team": "b"}}})
    assert set(g.secrets) == {("a1", "shared")}
    assert g.secrets[("a1", "shared")].sources[0].provider == "vault"


def test_external_secret_template_from_secret_is_a_consumer() -> None:
    es = external_secret("db-es", target="db")
    es["spec"]["target"]["template"] = {"templateFrom": [{"secret": {"name": "tmpl", "items": [{"key": "cfg"}]}}]}
    g = graph(store(), es, secret("tmpl", keys=("cfg",)))
    assert consumers(g, "tmpl") == [("ExternalSecret/app/db-es", "template")]


# ---------------------------------------------------------------------- bad input
def test_malformed_objects_are_reported_and_the_rest_goes_on() -> None:
    inv = build_inventory([
        deployment("bad", {"containers": "nope"}),
        deployment("bad-env", {"containers": [container(env=[{"name": "X",
                                                              "valueFrom": {"secretKeyRef": {"key": "k"}}}])]}),
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nospec", "namespace": NS}},
        external_secret("bad-es", data=[{"secretKey": "k"}]),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r", "namespace": NS},
         "rules": [{"verbs": "get"}]},
        "not an object",
        deployment("good", {"containers": [container(env=[env_ref("db")])]}),
        secret("db"),
    ])
    got = {(p.object, p.field) for p in inv.problems}
    assert ("Deployment/app/bad", "spec.template.spec.containers") in got
    assert ("Deployment/app/bad-env", "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name") in got
    assert ("Deployment/app/nospec", "spec") in got
    assert ("ExternalSecret/app/bad-es", "spec.data[0].remoteRef") in got
    assert ("Role/app/r", "rules[0].verbs") in got
    assert ("<document>", "") in got
    g = build_graph(inv)
    assert consumers(g, "db") == [("Deployment/app/good", "env")]


def test_secret_values_are_never_held(canary: str) -> None:
    s = secret("db")
    s["data"] = {"password": base64.b64encode(canary.encode()).decode()}
    s["stringData"] = {"token": canary}
    s["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": canary, "note": canary}
    inv = build_inventory([s])
    g = build_graph(inv)
    doc = audit(inv, Scope(), who_can=True)
    for thing in (inv, g, doc, inv.secrets):
        assert canary not in repr(thing)
        assert base64.b64encode(canary.encode()).decode() not in repr(thing)
    assert inv.secrets[(NS, "db")].keys == ("password", "token")


def test_lists_are_unpacked_including_raw_api_lists() -> None:
    raw = {"apiVersion": "v1", "kind": "SecretList", "items": [{"metadata": {"name": "a", "namespace": NS}}]}
    inv = build_inventory([raw, {"apiVersion": "v1", "kind": "List", "items": [secret("b")]}])
    assert set(inv.secrets) == {(NS, "a"), (NS, "b")}


def test_scope_by_workload_keeps_only_its_secrets() -> None:
    inv = build_inventory([deployment("web", {"containers": [container(env=[env_ref("a")])]}),
                           deployment("api", {"containers": [container(env=[env_ref("b")])]}),
                           secret("a"), secret("b")])
    doc = audit(inv, Scope(workload=("Deployment", "web")))
    assert [s["name"] for s in doc["secrets"]] == ["a"]
    assert [w["name"] for w in doc["workloads"]] == ["web"]


def test_a_multi_store_external_secret_attributes_each_key_to_its_own_store() -> None:
    """ESO's per-item ``sourceRef.storeRef``: one ExternalSecret reads its password from the
    namespace's store and its token from a shared ClusterSecretStore (whose credentials come from
    the ExternalSecret's namespace); a third item names a store that does not exist."""
    shared = store("shared", "ClusterSecretStore", None,
                   vault={"address": "http://v", "mount": "secret",
                          "auth": {"method": "token"}, "secretRef": {"token": {"name": "team-token", "key": "t"}}})
    es = external_secret("db-es", target="db", data=[
        {"secretKey": "password", "remoteRef": {"key": "prod/db", "property": "pw"}},
        {"secretKey": "token", "remoteRef": {"key": "shared/api"},
         "sourceRef": {"storeRef": {"name": "shared", "kind": "ClusterSecretStore"}}}],
        dataFrom=[{"extract": {"key": "legacy/all"}, "sourceRef": {"storeRef": {"name": "gone"}}}])
    g = graph(store(), shared, es, secret("team-token", keys=("t",)))
    by_key = {s.remote_key: (str(s.store), s.provider) for s in g.secrets[(NS, "db")].sources}
    assert by_key == {"prod/db": ("SecretStore/app/aws", "aws"),
                      "shared/api": ("ClusterSecretStore/shared", "vault"),
                      "legacy/all": ("SecretStore/app/gone", None)}
    assert consumers(g, "team-token") == [("ClusterSecretStore/shared", "storeCredential")]
    assert findings(g, "broken-ref") == [
        ("broken-ref", "ExternalSecret/app/db-es", "spec.dataFrom[0].sourceRef.storeRef")]
