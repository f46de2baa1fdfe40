"""``secretsync audit`` for the people who act on it: the HTML report, ``--provider-key``,
``--least-privilege``, ``file:line`` on offline findings, kustomize namespaces, and tables
that fit the terminal. Written as a platform team with a messy monorepo would use it."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from secretsync.audit import (
    Inventory,
    Rbac,
    Scope,
    audit,
    build_inventory,
    load_manifests,
    render_provider_key,
    render_text,
)
from secretsync.cli.main import cli

SHOP = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
data: {password: B64CANARY}
---
apiVersion: v1
kind: Secret
metadata: {name: api, namespace: shop}
stringData: {token: CANARY}
---
apiVersion: v1
kind: Secret
metadata: {name: unused, namespace: shop}
stringData: {token: CANARY}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: shop}
spec:
  template:
    spec:
      serviceAccountName: checkout
      containers:
      - name: web
        image: shop/web
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef: {name: db, key: password}
        - name: GONE
          valueFrom:
            secretKeyRef: {name: gone, key: k}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: checkout, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: all-secrets, namespace: shop}
rules: [{apiGroups: [""], resources: [secrets], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: checkout-all-secrets, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: all-secrets}
subjects: [{kind: ServiceAccount, name: checkout}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: legacy-reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: all-secrets}
subjects: [{kind: ServiceAccount, name: batch}]
"""

STORES = """\
apiVersion: secretsync.io/v1alpha1
kind: SecretStore
metadata: {name: aws, namespace: NS}
spec: {provider: {aws: {region: eu-west-1}}}
---
apiVersion: secretsync.io/v1alpha1
kind: SecretStore
metadata: {name: bao, namespace: NS}
spec: {provider: {vault: {server: "http://bao:8200", path: secret}}}
---
apiVersion: secretsync.io/v1alpha1
kind: ExternalSecret
metadata: {name: payments, namespace: NS}
spec:
  secretStoreRef: {name: STORE}
  data: [{secretKey: key, remoteRef: {key: prod/payments, property: key}}]
---
apiVersion: v1
kind: Pod
metadata: {name: POD, namespace: NS}
spec:
  containers: [{name: c, image: i, envFrom: [{secretRef: {name: payments}}]}]
"""


def event(user: str, verb: str, ns: str | None, name: str | None, i: int, code: int = 200) -> str:
    ref: dict[str, Any] = {"resource": "secrets"}
    if ns:
        ref["namespace"] = ns
    if name:
        ref["name"] = name
    return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": str(i),
                       "stage": "ResponseComplete", "verb": verb, "user": {"username": user},
                       "objectRef": ref, "responseStatus": {"code": code},
                       "requestReceivedTimestamp": f"2026-11-30T10:00:{i:02d}Z"})


@pytest.fixture
def tree(tmp_path: Path, canary: str) -> Path:
    root = tmp_path / "monorepo"
    (root / "shop").mkdir(parents=True)
    b64 = base64.b64encode(canary.encode()).decode()
    (root / "shop" / "all.yaml").write_text(SHOP.replace("B64CANARY", b64).replace("CANARY", canary))
    for ns, store, pod in (("eu", "aws", "pay-eu-0"), ("us", "bao", "pay-us-0")):
        (root / ns).mkdir()
        (root / ns / "pay.yaml").write_text(STORES.replace("NS", ns).replace("STORE", store).replace("POD", pod))
    return root


@pytest.fixture
def log(tmp_path: Path) -> Path:
    sa = "system:serviceaccount:shop:checkout"
    path = tmp_path / "audit.log"
    path.write_text("\n".join([event(sa, "get", "shop", "db", 1), event(sa, "get", "shop", "db", 2),
                               event(sa, "watch", "shop", None, 3),
                               event(sa, "get", "billing", "card", 4, code=403)]) + "\n")
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", *args], catch_exceptions=False)


# ---------------------------------------------------------------------- HTML
def test_html_report_is_one_offline_file_without_any_value(tree: Path, log: Path, canary: str) -> None:
    res = run(str(tree), "--who-can", "--audit-log", str(log), "-o", "html")
    assert res.exit_code == 0
    html = res.stdout
    assert canary not in html and base64.b64encode(canary.encode()).decode() not in html
    assert html.startswith("<!DOCTYPE html>") and html.count("<script") == 2
    # Nothing fetched: no src/href attribute, no URL outside the data, a CSP that forbids loads.
    assert not re.search(r"""\b(src|href)\s*=""", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)[1])
    assert {s["name"] for s in data["secrets"]} >= {"db", "api", "unused", "gone", "payments"}
    assert {"broken-ref", "orphan", "unmanaged", "broad-reader", "unused-permission"} <= {
        t for t, _ in data["findingTypes"]}
    assert data["did"] and data["could"] and data["advice"]


def test_hostile_object_names_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    evil = "</script><script>alert(1)</script>"
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": evil, "namespace": "x&<y>"}}))
    html = run(str(tmp_path), "-o", "html").stdout
    assert evil not in html and "alert(1)</script>" not in html
    data = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)[1]
    assert json.loads(data)["secrets"][0]["name"] == evil


# ---------------------------------------------------------------------- --provider-key
def test_provider_key_lists_the_pods_running_with_it_across_stores_and_providers(tree: Path) -> None:
    res = run(str(tree), "--provider-key", "prod/payments")
    assert res.exit_code == 0
    assert "aws:aws/prod/payments#key" in res.stdout and "vault:bao/prod/payments#key" in res.stdout
    assert "Pod/eu/pay-eu-0" in res.stdout and "Pod/us/pay-us-0" in res.stdout
    assert "shop/db" not in res.stdout
    only_aws = run(str(tree), "--provider-key", "aws:aws/prod/payments").stdout
    assert "Pod/eu/pay-eu-0" in only_aws and "pay-us-0" not in only_aws
    doc = json.loads(run(str(tree), "--provider-key", "bao/prod/payments#key", "-o", "json").stdout)
    assert [s["namespace"] for s in doc["secrets"]] == ["us"]
    assert [w["name"] for w in doc["workloads"]] == ["pay-us-0"]
    assert "No Secret" in run(str(tree), "--provider-key", "prod/nothing").stdout


# ---------------------------------------------------------------------- least privilege
def test_least_privilege_prints_the_role_each_service_account_needs(tree: Path, log: Path, canary: str) -> None:
    res = run(str(tree), "--audit-log", str(log), "--least-privilege")
    assert res.exit_code == 0 and canary not in res.stdout
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"] == {"name": "checkout-secret-reader", "namespace": "shop"}
    assert {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["db"], "verbs": ["get"]} in role["rules"]
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["watch"]} in role["rules"]
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "checkout", "namespace": "shop"}]
    # The advised Role allows exactly what the log saw, and no more.
    rbac = Rbac(build_inventory(docs).roles, build_inventory(docs).bindings)
    sa, groups = "system:serviceaccount:shop:checkout", ["system:serviceaccounts"]
    assert rbac.allowed(sa, groups, "get", "", "secrets", "shop", "db")
    assert rbac.allowed(sa, groups, "watch", "", "secrets", "shop")
    assert not rbac.allowed(sa, groups, "get", "", "secrets", "shop", "unused")
    assert not rbac.allowed(sa, groups, "get", "", "secrets", "billing", "card")
    # The SA that read nothing is told so, with its binding that was never used.
    assert "ServiceAccount shop/batch: 0 Secret reads" in res.stdout
    assert "it needs no Secret access" in res.stdout
    assert "never used for Secret read: RoleBinding/shop/legacy-reader" in res.stdout
    assert "refused (RBAC already denies it): get billing/card" in res.stdout


def test_bindings_never_used_in_the_log_window_are_findings(tree: Path, log: Path) -> None:
    doc = json.loads(run(str(tree), "--who-can", "--audit-log", str(log), "-o", "json").stdout)
    unused = {f["object"] for f in doc["findings"] if f["type"] == "unused-permission"}
    assert unused == {"RoleBinding/shop/legacy-reader"}  # checkout-all-secrets served the reads
    advice = {a["serviceAccount"]: a for a in doc["leastPrivilege"]}
    assert advice["shop/checkout"]["unusedBindings"] == []
    assert run(str(tree), "--who-can", "--audit-log", str(log), "--fail-on", "unused-permission").exit_code == 1
    assert run(str(tree), "--least-privilege").exit_code == 2  # needs the log


# ---------------------------------------------------------------------- file:line, namespaces, width
def test_offline_findings_say_file_and_line(tree: Path) -> None:
    doc = json.loads(run(str(tree), "-o", "json").stdout)
    gone = next(f for f in doc["findings"] if f["type"] == "broken-ref")
    text = (tree / "shop" / "all.yaml").read_text().splitlines()
    path, _, line = gone["location"].rpartition(":")
    assert path == str(tree / "shop" / "all.yaml")
    assert "secretKeyRef: {name: gone" in text[int(line) - 1]
    orphan = next(f for f in doc["findings"] if f["object"] == "Secret/shop/unused" and f["type"] == "orphan")
    assert "name: unused" in text[int(orphan["location"].rpartition(":")[2]) - 1]


def test_manifests_without_namespace_land_where_their_kustomization_puts_them(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namespace: payments\nresources: [app.yaml]\n")
    (tmp_path / "app.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "stripe"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
         "spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "stripe"}}]}]}}]))
    (tmp_path / "loose.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: other}\n")
    inv = Inventory()
    load_manifests([tmp_path], inv)
    assert set(inv.secrets) == {("payments", "stripe"), ("default", "other")}
    doc = audit(inv, Scope())
    assert not [f for f in doc["findings"] if f["type"] == "broken-ref"]



def test_a_base_shared_by_overlays_is_audited_in_each_overlays_namespace(tmp_path: Path) -> None:
    base, dev, prod = tmp_path / "base", tmp_path / "overlays" / "dev", tmp_path / "overlays" / "prod"
    for d in (base, dev, prod):
        d.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("namespace: ignored-by-overlays\nresources: [app.yaml]\n")
    (base / "app.yaml").write_text(yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "api"},
         "spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "db"}}]}]}}]))
    (dev / "kustomization.yaml").write_text("namespace: dev\nresources: [../../base]\n")
    (prod / "kustomization.yaml").write_text("namespace: prod\nbases: [../../base]\n")
    inv = Inventory()
    load_manifests([tmp_path], inv)
    assert set(inv.secrets) == {("dev", "db"), ("prod", "db")}
    doc = audit(inv, Scope())
    assert not [f for f in doc["findings"] if f["type"] == "broken-ref"]

def test_tables_fit_the_terminal_and_lose_nothing(tree: Path, log: Path) -> None:
    inv = Inventory()
    load_manifests([tree], inv)
    doc = audit(inv, Scope(), who_can=True, audit_logs=[log], builtin_roles=True)
    wide = render_text(doc)
    narrow = render_text(doc, width=100)
    assert max(len(line) for line in wide.splitlines()) > 100
    assert max(len(line) for line in narrow.splitlines()) <= 100
    # Wrapped, not cut: the same characters, only the whitespace moved.
    assert sorted(re.sub(r"\s", "", narrow)) == sorted(re.sub(r"\s", "", wide))


def test_provider_key_names_the_running_pods_of_a_deployment() -> None:
    """From a cluster, pods belong to their Deployment: the answer names each pod."""
    es = {"apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
          "metadata": {"name": "db", "namespace": "a"},
          "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "prod/db"}}]}}
    store = {"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretStore", "metadata": {"name": "s", "namespace": "a"},
             "spec": {"provider": {"gcp": {"projectID": "p"}}}}
    spec = {"containers": [{"name": "c", "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "db",
                                                                                          "key": "k"}}}]}]}
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a", "uid": "d"},
           "spec": {"template": {"spec": spec}}}
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": "web-1", "namespace": "a", "uid": "r",
        "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": "d", "controller": True}]},
        "spec": {"replicas": 2, "template": {"spec": spec}}}
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"web-1-{i}", "namespace": "a",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "web-1", "uid": "r", "controller": True}]}, "spec": spec}
        for i in range(2)]
    inv = build_inventory([es, store, dep, rs, *pods])
    text = render_provider_key(audit(inv, Scope(provider_key="gcp:s/prod/db")), "gcp:s/prod/db")
    assert "Deployment/a/web" in text and "web-1-0, web-1-1" in text
    assert text.rstrip().endswith("1 Secrets, 1 workloads, 2 pods in the input")
