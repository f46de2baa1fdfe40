"""``audit -o html`` in a real browser: Debian's headless Chromium opens the report offline,
logs no console error, draws the chain, and finds a workload typed into the search box.

The screenshot stays in the test's tmp dir (its path is printed) for a person to look at.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsync.cli.main import cli
from tests.harness.browser import SKIP_REASON, chromium, find_chromium

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(find_chromium() is None, reason=SKIP_REASON)]

TREE = """\
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
stringData: {password: CANARY}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout-api, namespace: shop}
spec:
  template:
    spec:
      serviceAccountName: checkout
      containers:
      - name: web
        image: shop/web
        env:
        - {name: DB_PASSWORD, valueFrom: {secretKeyRef: {name: db, key: password}}}
        - {name: API_KEY, valueFrom: {secretKeyRef: {name: api, key: key}}}
        - {name: GONE, valueFrom: {secretKeyRef: {name: gone, key: k}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: billing-worker, namespace: billing}
spec:
  template:
    spec:
      containers:
      - {name: w, image: billing/w, envFrom: [{secretRef: {name: stripe}}]}
---
apiVersion: v1
kind: Secret
metadata: {name: stripe, namespace: billing}
stringData: {key: CANARY}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: checkout, namespace: shop}
---
apiVersion: secretsync.io/v1alpha1
kind: SecretStore
metadata: {name: aws, namespace: shop}
spec: {provider: {aws: {region: eu-west-1}}}
---
apiVersion: secretsync.io/v1alpha1
kind: ExternalSecret
metadata: {name: api, namespace: shop}
spec:
  secretStoreRef: {name: aws}
  data: [{secretKey: key, remoteRef: {key: prod/api}}]
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


def _log(path: Path) -> Path:
    ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "1",
          "stage": "ResponseComplete", "verb": "get", "user": {"username": "system:serviceaccount:shop:checkout"},
          "objectRef": {"resource": "secrets", "namespace": "shop", "name": "db"},
          "responseStatus": {"code": 200}, "requestReceivedTimestamp": "2026-11-30T10:00:00Z"}
    path.write_text(json.dumps(ev) + "\n")
    return path


@pytest.fixture
def report(tmp_path: Path, canary: str) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "all.yaml").write_text(TREE.replace("CANARY", canary))
    res = CliRunner().invoke(cli, ["audit", str(tree), "--who-can", "--audit-log", str(_log(tmp_path / "a.log")),
                                   "-o", "html"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert canary not in res.stdout
    out = tmp_path / "report.html"
    out.write_text(res.stdout)
    return out


def test_platform_team_opens_the_report_offline_and_finds_a_workload_by_name(report: Path, tmp_path: Path) -> None:
    with chromium(tmp_path / "profile") as browser:
        browser.open(report.as_uri())
        assert browser.wait_for("return document.body.getAttribute('data-ready') === '1'")
        errors = [e for e in browser.console() if e.get("level") == "SEVERE"]
        assert errors == []
        drawn = set(browser.run("return [...document.querySelectorAll('#graph g.node')]"
                                ".map(n => n.getAttribute('data-id'))"))
        assert {"S:shop/db", "S:shop/api", "S:shop/gone", "P:aws:aws/prod/api", "E:shop/api",
                "W:Deployment/shop/checkout-api", "A:shop/checkout", "W:Deployment/billing/billing-worker",
                "U:Group/system:authenticated", "N:*"} <= drawn
        kinds = browser.run("return [...document.querySelectorAll('#graph path.e')].map(p => p.getAttribute('class'))")
        assert any("could" in k for k in kinds) and any("did" in k for k in kinds)
        first = browser.screenshot(tmp_path / "audit-report.png")

        browser.type_into("#search", "checkout-api")
        assert browser.wait_for("return document.querySelector('#graph g.node.hit') !== null")
        shown = browser.run("return [...document.querySelectorAll('#graph g.node')]"
                            ".map(n => n.getAttribute('data-id'))")
        assert "W:Deployment/shop/checkout-api" in shown
        assert "W:Deployment/billing/billing-worker" not in shown
        rows = browser.run("return [...document.querySelectorAll('#secrets tbody tr')].map(r => r.textContent)")
        assert rows and all("checkout-api" in r for r in rows)
        searched = browser.screenshot(tmp_path / "audit-report-search.png")
        assert browser.console() == []
    print(f"\nscreenshots: {first} {searched}")
    assert first.stat().st_size > 10_000
