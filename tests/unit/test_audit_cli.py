"""``secretsync audit PATH...`` offline: output formats, the JSON schema, scope options,
``--fail-on`` and exit codes, and that no Secret value from the tree reaches any output."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from secretsync.cli.main import cli

TREE = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: app, annotations: {kubectl.kubernetes.io/last-applied-configuration: "CANARY"}}
data: {password: B64CANARY}
---
apiVersion: v1
kind: Secret
metadata: {name: unused, namespace: app}
stringData: {token: CANARY}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: app}
spec:
  template:
    spec:
      serviceAccountName: web
      containers:
      - name: web
        image: nginx
        env:
        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
        - {name: API_KEY, valueFrom: {secretKeyRef: {name: api, key: key}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: app}
---
apiVersion: secretsync.io/v1alpha1
kind: SecretStore
metadata: {name: aws, namespace: app}
spec: {provider: {aws: {region: eu-west-1}}}
---
apiVersion: secretsync.io/v1alpha1
kind: ExternalSecret
metadata: {name: api, namespace: app}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: key, remoteRef: {key: prod/api}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs-edit, namespace: app}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-reads}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view-secrets}
subjects: [{kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: view-secrets}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list]}]
"""


@pytest.fixture
def tree(tmp_path: Path, canary: str) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    text = TREE.replace("B64CANARY", base64.b64encode(canary.encode()).decode()).replace("CANARY", canary)
    (root / "app.yaml").write_text(text)
    (root / "chart.yaml").write_text("kind: Deployment\nmetadata:\n  name: {{ .Values.name }}\n")
    return root


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", *args], catch_exceptions=False)


def test_json_report_follows_the_documented_schema(tree: Path) -> None:
    res = run(str(tree), "-o", "json", "--who-can")
    assert res.exit_code == 8, res.output
    doc = json.loads(res.stdout)
    assert (doc["apiVersion"], doc["kind"]) == ("secretsync.io/v1alpha1", "AuditReport")
    assert list(doc) == ["apiVersion", "kind", "source", "summary", "secrets", "workloads", "rbac", "findings",
                         "errors"]
    assert doc["source"]["mode"] == "manifests"
    secrets = {s["name"]: s for s in doc["secrets"]}
    assert set(secrets) == {"api", "db", "unused"}
    assert secrets["api"]["state"] == "pending" and secrets["api"]["managedBy"] == "secretsync"
    assert secrets["api"]["sources"][0]["remoteKey"] == "prod/api"
    assert {c["name"] for s in secrets.values() for c in s["consumers"]} == {"web"}
    assert secrets["db"]["consumers"][0]["serviceAccount"] == "app/web"
    types = {(f["type"], f["object"]) for f in doc["findings"]}
    assert ("orphan", "Secret/app/unused") in types
    assert ("unmanaged", "Secret/app/db") in types
    assert ("broad-reader", "ClusterRoleBinding/everyone-reads") in types
    readers = {(g["subject"]["name"], g["how"]) for g in doc["rbac"]["namespaces"]["app"]}
    assert ("devs", "rbac") in readers  # the built-in edit role reads Secrets
    assert any("chart.yaml" in (e["object"] or "") for e in doc["errors"])


def test_table_and_yaml_and_dot_outputs(tree: Path) -> None:
    table = run(str(tree)).stdout
    assert "app/db" in table and "Deployment/web(env:password)" in table and "Findings:" in table
    doc = yaml.safe_load(run(str(tree), "-o", "yaml").stdout)
    assert doc["kind"] == "AuditReport"
    dot = run(str(tree), "-o", "dot").stdout
    assert dot.startswith("digraph") and '"Secret/app/db" -> "Deployment/app/web" [label="env"];' in dot
    assert '"aws:aws/prod/api" -> "ExternalSecret/app/api";' in dot


def test_no_secret_value_reaches_any_output(tree: Path, canary: str) -> None:
    b64 = base64.b64encode(canary.encode()).decode()
    for fmt in ("table", "json", "yaml", "dot"):
        res = run(str(tree), "-o", fmt, "--who-can", "--log-level", "debug")
        assert canary not in res.output and b64 not in res.output


def test_fail_on_findings_exits_1_only_for_the_listed_types(tree: Path) -> None:
    # exit 8 without a listed finding: the tree holds a template (chart.yaml) that was not read
    assert run(str(tree), "--fail-on", "broken-ref").exit_code == 8
    assert run(str(tree), "--fail-on", "orphan,missing-key").exit_code == 1
    assert run(str(tree), "--who-can", "--fail-on", "broad-reader").exit_code == 1
    assert run(str(tree), "--fail-on", "broad-reader").exit_code == 8  # needs --who-can
    assert run(str(tree), "--fail-on", "bogus").exit_code == 2


def test_scope_options(tree: Path) -> None:
    doc = json.loads(run(str(tree), "-o", "json", "--secret", "db").stdout)
    assert [s["name"] for s in doc["secrets"]] == ["db"]
    assert all(f["secret"] == "app/db" for f in doc["findings"])
    doc = json.loads(run(str(tree), "-o", "json", "--workload", "deploy/web").stdout)
    assert sorted(s["name"] for s in doc["secrets"]) == ["api", "db"]
    doc = json.loads(run(str(tree), "-o", "json", "-n", "other").stdout)
    assert doc["secrets"] == []


def test_bad_input_exit_codes(tree: Path, tmp_path: Path) -> None:
    from secretsync.cli.main import main

    with pytest.raises(SystemExit) as err:
        main(["audit", str(tmp_path / "missing")])
    assert err.value.code == 2  # a missing path is a usage error in every command
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit) as err:
        main(["audit", str(empty)])
    assert err.value.code == 6
    assert run(str(tree), "--workload", "web").exit_code == 2
    assert run(str(tree), "-n", "a", "-A").exit_code == 2


def test_unreachable_cluster_exits_5(tmp_path: Path) -> None:
    from secretsync.cli.main import main
    from tests.harness.ports import closed_port

    kubeconfig = tmp_path / "kc.yaml"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": f"https://127.0.0.1:{closed_port()}"}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    with pytest.raises(SystemExit) as err:
        main(["--kubeconfig", str(kubeconfig), "audit", "-A"])
    assert err.value.code == 5


def test_audit_log_section(tree: Path, tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_text(json.dumps({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "1",
        "stage": "ResponseComplete", "verb": "get", "user": {"username": "alice"},
        "objectRef": {"resource": "secrets", "namespace": "app", "name": "db"},
        "responseStatus": {"code": 200}, "requestReceivedTimestamp": "2024-05-01T10:00:00Z"}) + "\n")
    res = run(str(tree), "--audit-log", str(log))
    assert "Who did read (audit log):" in res.stdout and "alice" in res.stdout
    doc = json.loads(run(str(tree), "--audit-log", str(log), "-o", "json").stdout)
    assert doc["access"]["reads"][0]["user"] == "alice"
