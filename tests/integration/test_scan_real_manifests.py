"""``scan`` on trees nobody wrote for this project: kubernetes/examples, microservices-demo, kustomize's
examples and Bitnami charts.

Every true find below was verified by reading the file: plaintext passwords and keys in env
values, and Secret objects whose base64 data sits in git. The exact set is pinned, so a new
false positive (a ``secretName`` reference, an ``INSERT_..._TOKEN`` placeholder, a name that
merely contains "secret" or "key") fails the test as surely as a missed secret does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsync.manifests import helm
from secretsync.scan import ScanResult, scan_paths

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "real-manifests"

ARCHIVED = "examples/_archived"
KUSTOMIZE = "kustomize-examples/examples"
BITNAMI = "bitnami-charts/bitnami"

#: (file, key) of every plaintext secret in the tree.
TRUE_FINDS: set[tuple[str, str]] = {
    # Plaintext passwords and keys in container env.
    (f"{ARCHIVED}/javaee/mysql-pod.yaml", "MYSQL_PASSWORD"),
    (f"{ARCHIVED}/javaee/mysql-pod.yaml", "MYSQL_ROOT_PASSWORD"),
    (f"{ARCHIVED}/storage/minio/minio-standalone-deployment.yaml", "MINIO_ACCESS_KEY"),
    (f"{ARCHIVED}/storage/minio/minio-standalone-deployment.yaml", "MINIO_SECRET_KEY"),
    (f"{ARCHIVED}/storage/minio/minio-distributed-statefulset.yaml", "MINIO_ACCESS_KEY"),
    (f"{ARCHIVED}/storage/minio/minio-distributed-statefulset.yaml", "MINIO_SECRET_KEY"),
    *{(f"{ARCHIVED}/storage/mysql-galera/pxc-node{n}.yaml", key)
      for n in (1, 2, 3) for key in ("WSREP_SST_PASSWORD", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD")},
    (f"{ARCHIVED}/sysdig-cloud/sysdig-rc.yaml", "ACCESS_KEY"),
    (f"{ARCHIVED}/sysdig-cloud/sysdig-daemonset.yaml", "ACCESS_KEY"),
    ("examples/databases/mysql-cinder-pd/mysql.yaml", "MYSQL_ROOT_PASSWORD"),  # "yourpassword": low
    # Secret objects: every value is plaintext in git.
    *{(f"{ARCHIVED}/volumes/iscsi/chap-secret.yaml", f"{prefix}.auth.{field}")
      for prefix in ("discovery.sendtargets", "node.session")
      for field in ("username", "password", "username_in", "password_in")},
    (f"{ARCHIVED}/volumes/rbd/secret/ceph-secret.yaml", "key"),
    (f"{ARCHIVED}/volumes/cephfs/secret/ceph-secret.yaml", "key"),
    (f"{ARCHIVED}/volumes/azure_file/secret/azure-secret.yaml", "azurestorageaccountname"),
    (f"{ARCHIVED}/volumes/azure_file/secret/azure-secret.yaml", "azurestorageaccountkey"),
    (f"{ARCHIVED}/volumes/storageos/storageos-secret.yaml", "apiAddress"),
    (f"{ARCHIVED}/volumes/storageos/storageos-secret.yaml", "apiUsername"),
    (f"{ARCHIVED}/volumes/storageos/storageos-secret.yaml", "apiPassword"),
    (f"{ARCHIVED}/volumes/scaleio/secret.yaml", "username"),
    (f"{ARCHIVED}/volumes/scaleio/secret.yaml", "password"),
    (f"{ARCHIVED}/persistent-volume-provisioning/glusterfs/glusterfs-secret.yaml", "key"),
    (f"{ARCHIVED}/persistent-volume-provisioning/rbd/ceph-secret-admin.yaml", "key"),
    (f"{ARCHIVED}/persistent-volume-provisioning/rbd/ceph-secret-user.yaml", "key"),
    (f"{ARCHIVED}/persistent-volume-provisioning/quobyte/quobyte-admin-secret.yaml", "password"),
    (f"{ARCHIVED}/persistent-volume-provisioning/quobyte/quobyte-admin-secret.yaml", "user"),
    # kustomize examples: demo credentials in generator env files, properties files, patches and Secrets.
    *{(f"{KUSTOMIZE}/ldap/base/env.startup.txt", key)
      for key in ("LDAP_ADMIN_PASSWORD", "LDAP_CONFIG_PASSWORD", "LDAP_READONLY_USER_PASSWORD")},
    (f"{KUSTOMIZE}/ldap/overlays/staging/config.env", "DB_PASSWORD"),
    (f"{KUSTOMIZE}/mySql/secret.yaml", "password"),
    (f"{KUSTOMIZE}/wordpress/mysql/secret.yaml", "password"),
    (f"{KUSTOMIZE}/transformerconfigs/crd/resources.yaml", "PATH"),  # a Secret value: plaintext in git
    *{(f"{KUSTOMIZE}/springboot/{where}", "spring.datasource.password")
      for where in ("base/application.properties", "overlays/production/patch.yaml",
                    "overlays/staging/application.properties")},
    # Bitnami charts: chart defaults in values.yaml (the two usernames only rendering shows: Helm
    # puts them into Secrets), nothing in the templates (shell $(...) and {{ }} are references).
    *{(f"{BITNAMI}/harbor/values.yaml", key) for key in ("accountkey", "password", "htpasswd", "postgresPassword")},
    *({(f"{BITNAMI}/harbor/values.yaml", "username"), (f"{BITNAMI}/minio/values.yaml", "rootUser")}
      if helm.available() else set()),
}


@pytest.fixture(scope="module")
def real() -> Path:
    if not REAL.is_dir():
        pytest.skip("../shared/real-manifests is absent")
    return REAL


@pytest.fixture(scope="module")
def result(real: Path) -> ScanResult:
    return scan_paths([real])


def test_finds_exactly_the_verified_plaintext_secrets(result: ScanResult) -> None:
    found = {(d.finding.file, d.finding.key) for d in result.detections}
    assert found - TRUE_FINDS == set(), "false positives"
    assert TRUE_FINDS - found == set(), "missed secrets"


def test_lines_point_at_the_values(result: ScanResult, real: Path) -> None:
    for d in result.detections:
        f = d.finding
        assert f.file is not None and f.line is not None
        line = (real / f.file).read_text().splitlines()[f.line - 1]
        if f.location == "env":
            assert "value:" in line, f
        else:
            assert f.key in line, f


def test_env_paths_and_rules(result: ScanResult) -> None:
    by = {(d.finding.file, d.finding.key): d.finding for d in result.detections}
    root_pw = by[(f"{ARCHIVED}/javaee/mysql-pod.yaml", "MYSQL_ROOT_PASSWORD")]
    assert (root_pw.path, root_pw.line, root_pw.rule, root_pw.resource, root_pw.container) == (
        "spec.containers[0].env[3].value", 20, "keyword-password", "Pod//mysql-pod", "mysql")
    minio = by[(f"{ARCHIVED}/storage/minio/minio-standalone-deployment.yaml", "MINIO_SECRET_KEY")]
    assert minio.path == "spec.template.spec.containers[0].env[1].value" and minio.line == 36
    galera = by[(f"{ARCHIVED}/storage/mysql-galera/pxc-node1.yaml", "MYSQL_ROOT_PASSWORD")]
    assert galera.resource == "ReplicationController//pxc-node1"
    chap = by[(f"{ARCHIVED}/volumes/iscsi/chap-secret.yaml", "node.session.auth.password")]
    assert (chap.path, chap.rule, chap.location) == ('data["node.session.auth.password"]', "secret-object", "secret")
    assert by[("examples/databases/mysql-cinder-pd/mysql.yaml", "MYSQL_ROOT_PASSWORD")].confidence == "low"


def test_secret_values_decode_to_what_the_migrator_moves(result: ScanResult) -> None:
    by = {(d.finding.file, d.finding.key): d for d in result.detections}
    quobyte = by[(f"{ARCHIVED}/persistent-volume-provisioning/quobyte/quobyte-admin-secret.yaml", "password")]
    assert quobyte.value.reveal() == b"quobyte"


def test_no_finding_in_microservices_demo(real: Path) -> None:
    result = scan_paths([real / "microservices-demo"])
    assert result.detections == []
    assert result.errors == []  # Helm templates parse through the tolerant pass


def test_references_placeholders_and_templates_are_not_findings(result: ScanResult) -> None:
    files = {d.finding.file for d in result.detections}
    for quiet in (
        f"{ARCHIVED}/openshift-origin/etcd-controller.yaml",       # INSERT_ETCD_..._TOKEN placeholders
        f"{ARCHIVED}/newrelic/newrelic-config-template.yaml",      # data: {{config_data}}
        f"{ARCHIVED}/persistent-volume-provisioning/glusterfs/glusterfs-storageclass.yaml",  # secretName refs
        f"{ARCHIVED}/persistent-volume-provisioning/rbd/rbd-storage-class.yaml",
        f"{ARCHIVED}/volumes/azure_file/azure-pv.yaml",
        f"{ARCHIVED}/https-nginx/nginx-app.yaml",                  # secret volume
        f"{ARCHIVED}/elasticsearch/es-rc.yaml",                    # .../serviceaccount/ca.crt path
        "examples/AI/vllm-deployment/vllm-deployment.yaml",         # secretKeyRef hf_token
    ):
        assert quiet not in files


def test_the_whole_tree_scans_with_only_the_two_files_that_are_broken_upstream(result: ScanResult) -> None:
    assert {(e.file, e.unread) for e in result.errors} == {
        # kustomize's validation example is invalid on purpose (``data`` is a list)
        (f"{KUSTOMIZE}/validationTransformer/invalid.yaml", False),
        # both branches of an if/else are YAML only once rendered (the chart pass renders it)
        (f"{BITNAMI}/redis/templates/networkpolicy.yaml", True),
    }
    assert result.files_scanned > 300


def test_demo_and_placeholder_like_values_are_low_confidence(result: ScanResult) -> None:
    low = {(d.finding.file, d.finding.key) for d in result.detections if d.finding.confidence == "low"}
    assert low == {("examples/databases/mysql-cinder-pd/mysql.yaml", "MYSQL_ROOT_PASSWORD"),  # yourpassword
                   (f"{ARCHIVED}/volumes/iscsi/chap-secret.yaml", "discovery.sendtargets.auth.password"),  # demo
                   (f"{BITNAMI}/harbor/values.yaml", "accountkey"), (f"{BITNAMI}/harbor/values.yaml", "password")}


@pytest.mark.skipif(not helm.available(), reason="the Helm engine is not installed (secretsync[helm])")
def test_rendered_charts_report_at_their_values_lines(result: ScanResult) -> None:
    rendered = {(d.finding.file, d.finding.line, d.finding.key) for d in result.detections
                if "rendered" in d.finding.extra}
    assert rendered == {(f"{BITNAMI}/harbor/values.yaml", 2469, "username"),
                        (f"{BITNAMI}/minio/values.yaml", 115, "rootUser")}


def test_eso_examples_parse_and_placeholders_stay_quiet() -> None:
    """The ESO docs' examples: Jekyll ``{% raw %}`` wrappers, ``<your-client-private-key>`` PEMs."""
    eso = REPO.parent / "shared" / "eso-examples"
    if not eso.is_dir():
        pytest.skip("../shared/eso-examples is absent")
    result = scan_paths([eso])
    assert result.errors == []
    found = {(d.finding.file, d.finding.key, d.finding.confidence) for d in result.detections}
    assert found == {
        # Sample values that name their own field: reported, with low confidence.
        ("azkv-credentials-secret.yaml", "ClientID", "low"),
        ("azkv-credentials-secret.yaml", "ClientSecret", "low"),
        # A real (if playful) Secret value.
        ("full-cluster-push-secret.yaml", "best-pokemon-src", "medium"),
        ("full-pushsecret.yaml", "best-pokemon-src", "medium"),
    }
