"""The Helm chart in deploy/, rendered and strict-linted by Helm's own engine (helm-python-sdk).

Written as the platform team that installs it would check it: every values combination that
matters lints clean under ``--strict``, wrong types and nonsense combinations are refused before
anything reaches a cluster, the PodDisruptionBudget is one today's clusters serve, CRDs follow
Helm's rules, and deploy/manifests/ is the chart's own output. Least privilege is in
test_deploy_rbac.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from secretsync.api.schema import rendered_crds
from tests.harness.helm import (
    CHART,
    MANIFESTS,
    RELEASE_NAMESPACE,
    REPO,
    by_kind,
    chart_crds,
    lint,
    manifest_files,
    render,
)

helm_python = pytest.importorskip("helm_python", reason="helm-python-sdk (test extra) renders the chart")

NAMESPACED_ONE = {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app"]}}
NAMESPACED_MANY = {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app", "billing", "shop"]}}

#: Every combination a platform team is likely to install with; each must pass `helm lint --strict`.
COMBINATIONS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced-one": NAMESPACED_ONE,
    "namespaced-several": NAMESPACED_MANY,
    "replicas-3-leader-election": {"replicaCount": 3, "leaderElection": {"enabled": True}},
    "single-replica-no-election": {"replicaCount": 1, "leaderElection": {"enabled": False}},
    "servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "irsa": {"serviceAccount": {"annotations": {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/secretsync"}}},
    "gke-workload-identity": {"serviceAccount": {"annotations": {
        "iam.gke.io/gcp-service-account": "secretsync@my-project.iam.gserviceaccount.com"}}},
    "azure-workload-identity": {
        "serviceAccount": {"annotations": {
            "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000"}},
        "podLabels": {"azure.workload.identity/use": "true"}},
    "existing-serviceaccount": {"serviceAccount": {"create": False, "name": "platform-secretsync"}},
    "no-rbac": {"rbac": {"create": False}},
    "templated-crds": {"installCRDs": True},
    "image-digest": {"image": {"digest": "sha256:" + "ab" * 32}},
    "restricted-egress": {"networkPolicy": {"restrictEgress": True, "egress": [{"ports": [{"port": 443}]}]}},
}


@pytest.fixture(scope="module")
def default_docs() -> list[dict[str, Any]]:
    return render()


# --------------------------------------------------------------------------- lint and schema
@pytest.mark.parametrize("values", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_every_supported_combination_passes_strict_lint(values: dict[str, Any]) -> None:
    assert lint(values or None) == []
    assert render(values or None)  # and renders: lint does not run `fail` guards


def test_strict_lint_passes_against_the_oldest_supported_kubernetes() -> None:
    assert lint({"replicaCount": 3}, kube_version="v1.20.2") == []


@pytest.mark.parametrize(("values", "field"), [
    ({"replicaCount": "two"}, "/replicaCount"),
    ({"replicaCount": 0}, "/replicaCount"),
    ({"rbac": {"clusterWide": "no"}}, "/rbac/clusterWide"),
    ({"controller": {"watchNamespaces": "app"}}, "/controller/watchNamespaces"),
    ({"controller": {"logLevel": "verbose"}}, "/controller/logLevel"),
    ({"image": {"digest": "latest"}}, "/image/digest"),
    ({"replicaCont": 3}, "replicaCont"),  # a typo is not silently ignored
])
def test_values_schema_rejects_wrong_types_naming_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(field)):
        render(values)


def test_strict_lint_reports_a_wrong_type_too() -> None:
    assert any("/replicaCount" in m and "want integer" in m for m in lint({"replicaCount": "two"}))


@pytest.mark.parametrize(("values", "says"), [
    ({"rbac": {"clusterWide": False}}, "needs controller.watchNamespaces"),
    ({"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app"], "namespaceSelector": "team=a"}},
     "controller.namespaceSelector needs rbac.clusterWide=true"),
    ({"replicaCount": 2, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled=true"),
    ({"serviceAccount": {"create": False}}, "needs serviceAccount.name"),
    ({"serviceMonitor": {"enabled": True}, "metrics": {"service": {"enabled": False}}},
     "needs metrics.service.enabled"),
])
def test_nonsense_combinations_are_refused_with_the_reason(values: dict[str, Any], says: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(says)):
        render(values)


# --------------------------------------------------------------------------- PDB
def test_pdb_is_policy_v1_offline(default_docs: list[dict[str, Any]]) -> None:
    """`helm template`, Argo CD, Flux and client-side dry runs render without a cluster."""
    (pdb,) = by_kind(default_docs, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1


def test_pdb_is_policy_v1_online_on_current_clusters() -> None:
    docs = render(kube_version="v1.31.0", api_versions=["policy/v1", "policy/v1/PodDisruptionBudget"])
    assert [d["apiVersion"] for d in by_kind(docs, "PodDisruptionBudget")] == ["policy/v1"]


def test_pdb_falls_back_to_v1beta1_only_on_kubernetes_1_20() -> None:
    docs = render(kube_version="v1.20.2", api_versions=["policy/v1beta1", "policy/v1beta1/PodDisruptionBudget"])
    assert [d["apiVersion"] for d in by_kind(docs, "PodDisruptionBudget")] == ["policy/v1beta1"]


def test_single_replica_has_no_pdb_that_would_block_drains() -> None:
    assert not by_kind(render({"replicaCount": 1, "leaderElection": {"enabled": False}}), "PodDisruptionBudget")


# --------------------------------------------------------------------------- CRDs
def test_chart_crds_folder_is_exactly_the_generated_crds() -> None:
    """If this fails: secretsync crds -o deploy/crds && secretsync crds -o deploy/helm/secretsync/crds"""
    assert chart_crds() == rendered_crds()


def test_crds_are_never_templated_unless_asked(default_docs: list[dict[str, Any]]) -> None:
    """Helm installs crds/ once and never upgrades them; templates would make upgrades own them."""
    assert not by_kind(default_docs, "CustomResourceDefinition")


def test_templated_crds_are_the_generated_crds_and_survive_uninstall() -> None:
    crds = by_kind(render({"installCRDs": True}), "CustomResourceDefinition")
    expected = {yaml.safe_load(text)["metadata"]["name"]: yaml.safe_load(text) for text in rendered_crds().values()}
    assert {c["metadata"]["name"] for c in crds} == set(expected)
    for crd in crds:
        md = crd["metadata"]
        assert md["annotations"]["helm.sh/resource-policy"] == "keep", md["name"]
        assert md["labels"]["app.kubernetes.io/part-of"] == "secretsync"
        want = expected[md["name"]]
        assert crd["spec"] == want["spec"], md["name"]


# --------------------------------------------------------------------------- the workload
def test_deployment_runs_two_hardened_replicas_with_leader_election(default_docs: list[dict[str, Any]]) -> None:
    (dep,) = by_kind(default_docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert "--leader-elect" in c["args"] and "controller" in c["args"]
    assert "--lease-namespace=$(POD_NAMESPACE)" in c["args"]
    assert c["image"] == "ghcr.io/secretsync/secretsync:0.1.0"
    assert pod["affinity"]["podAntiAffinity"]


def test_image_digest_pins_what_runs_whatever_the_tag() -> None:
    digest = "sha256:" + "0f" * 32
    (dep,) = by_kind(render({"image": {"digest": digest, "tag": "latest"}}), "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/secretsync/secretsync@{digest}"


def test_workload_identity_annotations_land_on_the_service_account() -> None:
    values = COMBINATIONS["irsa"]
    (sa,) = by_kind(render(values), "ServiceAccount")
    assert sa["metadata"]["annotations"] == values["serviceAccount"]["annotations"]


def test_existing_service_account_is_used_and_not_created() -> None:
    docs = render(COMBINATIONS["existing-serviceaccount"])
    assert not by_kind(docs, "ServiceAccount")
    (dep,) = by_kind(docs, "Deployment")
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "platform-secretsync"
    subjects = {s["name"] for b in by_kind(docs, "ClusterRoleBinding") + by_kind(docs, "RoleBinding")
                for s in b["subjects"]}
    assert subjects == {"platform-secretsync"}


def test_rbac_create_false_renders_no_rbac_at_all() -> None:
    docs = render({"rbac": {"create": False}})
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]


def test_namespaced_mode_serves_exactly_the_listed_namespaces() -> None:
    docs = render(NAMESPACED_MANY)
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    served = {r["metadata"]["namespace"] for r in by_kind(docs, "Role")
              if r["metadata"]["name"].endswith("-controller")}
    assert served == {"app", "billing", "shop"}
    (dep,) = by_kind(docs, "Deployment")
    assert "--namespaces=app,billing,shop" in dep["spec"]["template"]["spec"]["containers"][0]["args"]


def test_network_policy_metrics_service_and_service_monitor(default_docs: list[dict[str, Any]]) -> None:
    (np,) = by_kind(default_docs, "NetworkPolicy")
    assert np["spec"]["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]
    (svc,) = by_kind(default_docs, "Service")
    assert svc["spec"]["ports"][0]["name"] == "metrics"
    assert not by_kind(default_docs, "ServiceMonitor")
    (mon,) = by_kind(render(COMBINATIONS["servicemonitor"]), "ServiceMonitor")
    assert mon["spec"]["endpoints"][0]["port"] == "metrics"


def test_every_object_is_labelled_and_namespaced_where_needed(default_docs: list[dict[str, Any]]) -> None:
    cluster_kinds = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    for doc in default_docs:
        md = doc["metadata"]
        assert md["labels"]["app.kubernetes.io/part-of"] == "secretsync", doc["kind"]
        if doc["kind"] not in cluster_kinds:
            assert md["namespace"] == RELEASE_NAMESPACE, doc["kind"]


# --------------------------------------------------------------------------- plain manifests
def test_plain_manifests_are_the_rendered_chart() -> None:
    """If this fails: .venv/bin/python -m tests.harness.helm --write"""
    for rel, text in manifest_files().items():
        on_disk = (MANIFESTS / rel).read_text(encoding="utf-8")
        assert list(yaml.safe_load_all(on_disk)) == list(yaml.safe_load_all(text)), rel


@pytest.mark.parametrize("variant", ["cluster-wide", "namespaced"])
def test_kustomizations_install_the_crds_and_the_rendered_chart(variant: str) -> None:
    kdir = MANIFESTS / variant
    kust = yaml.safe_load((kdir / "kustomization.yaml").read_text())
    assert kust["kind"] == "Kustomization"
    resources = [(kdir / r).resolve() for r in kust["resources"]]
    assert all(r.exists() for r in resources), kust["resources"]
    assert (REPO / "deploy" / "crds").resolve() in resources
    crd_kust = yaml.safe_load((REPO / "deploy" / "crds" / "kustomization.yaml").read_text())
    assert sorted(crd_kust["resources"]) == sorted(rendered_crds())


def test_chart_ships_a_values_schema() -> None:
    assert (CHART / "values.schema.json").is_file()


# --------------------------------------------------------------------------- trust flags
def test_stores_get_the_controller_identity_and_files_only_when_the_admin_says_so(
        default_docs: list[dict[str, Any]]) -> None:
    def args(docs: list[dict[str, Any]]) -> list[str]:
        return list(by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"])

    assert not [a for a in args(default_docs) if a.startswith("--allow-")]
    allowed = render({"controller": {"allowNamespacedAmbientIdentity": True, "allowClusterStoreFiles": True}})
    assert {"--allow-namespaced-ambient-identity", "--allow-cluster-store-files"} <= set(args(allowed))
