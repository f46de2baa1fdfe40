"""Every one-shot command at DEBUG on a tree full of canaries: no canary in anything it writes.

The canaries come in the forms a leak would take: plain, base64 (a Secret's data), with
characters JSON and HTML escape (so an escaped copy in a JSON/SARIF/HTML report is caught too),
and split across two keys (each half is a canary of its own). Every surface is searched in
every encoding: stdout, stderr (DEBUG logs, JSON format, tracebacks), the plan, the journal,
the generated ExternalSecret manifests, scan JSON and SARIF, audit JSON and HTML, import-eso's
output and report. The controller's surfaces (status, events, logs, metrics) are
tests/integration/test_controller_canary.py.
"""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import CANARY

REPO = Path(__file__).resolve().parents[2]
#: A canary with characters every output format escapes.
ESCAPED = 'cnry-"q\\7/<b>&-Hk2vX9pLw'
HALVES = ("cnry-split-left-4Rt8", "cnry-split-right-9Wq2")
B64_ONLY = "cnry-only-in-base64-Vb71"


def _forms(value: str) -> set[str]:
    return {value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1], html.escape(value),
            html.escape(json.dumps(value)[1:-1]), quote(value, safe=""), repr(value)[1:-1]}


NEEDLES = set().union(*(_forms(v) for v in (CANARY, ESCAPED, *HALVES, B64_ONLY)))

TREE = {
    "app/deploy.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  template:\n"
        "    spec:\n      serviceAccountName: web\n      containers:\n      - name: c\n        image: x\n"
        f"        args: [--db-password={CANARY}]\n"
        f"        env:\n        - name: DB_PASSWORD\n          value: {CANARY}\n"
        f"        - name: API_TOKEN\n          value: {json.dumps(ESCAPED)}\n"
        f"        - name: DB_PASSWORD_PART1\n          value: {HALVES[0]}\n"
        f"        - name: DB_PASSWORD_PART2\n          value: {HALVES[1]}\n"
        "        envFrom:\n        - secretRef: {name: legacy}\n        - configMapRef: {name: cfg}\n"
    ),
    "app/config.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: shop}\ndata:\n"
        f"  config.json: {json.dumps(json.dumps({'password': ESCAPED, 'user': 'app'}))}\n"
        f"  app.properties: |\n    db.password={CANARY}\n"
    ),
    "app/secret.yaml": (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: legacy, namespace: shop}\ntype: Opaque\ndata:\n"
        f"  token: {base64.b64encode(B64_ONLY.encode()).decode()}\n"
        f"  escaped: {base64.b64encode(ESCAPED.encode()).decode()}\n"
    ),
}

ESO = f"""\
apiVersion: external-secrets.io/v1beta1
kind: SecretStore
metadata: {{name: fake, namespace: shop}}
spec:
  provider:
    fake:
      data:
      - key: db
        value: {json.dumps(ESCAPED)}
---
apiVersion: external-secrets.io/v1beta1
kind: ExternalSecret
metadata: {{name: db, namespace: shop}}
spec:
  secretStoreRef: {{name: fake, kind: SecretStore}}
  target:
    template:
      data:
        conn: "postgres://app:{{{{ .password }}}}@db/app"
  data:
  - secretKey: password
    remoteRef: {{key: db}}
"""
# (A template's literal text is configuration, not a value: import-eso reproduces it as it must.
# The canary is in the fake provider's inline data, which no conversion may print.)


def cli(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SECRETSYNC_FILE_KEY", None)
    return subprocess.run([sys.executable, "-m", "secretsync.cli.main", "--log-level", "debug",
                           "--log-format", "json", *args], cwd=work, env=env, capture_output=True, text=True,
                          timeout=180)


def _leaks(surface: str, text: str) -> list[str]:
    return [f"{surface}: {needle[:6]}..." for needle in NEEDLES if needle in text]


@pytest.mark.slow
def test_no_canary_form_in_any_output_of_any_command(tmp_path: Path) -> None:
    for rel, text in TREE.items():
        (tmp_path / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / rel).write_text(text)
    (tmp_path / "eso.yaml").write_text(ESO)
    surfaces: dict[str, str] = {}
    runs = {
        "scan table": ["scan", "tree"],
        "scan json": ["scan", "tree", "-o", "json"],
        "scan sarif": ["scan", "tree", "-o", "sarif"],
        "audit table": ["audit", "tree"],
        "audit json": ["audit", "tree", "-o", "json"],
        "audit html": ["audit", "tree", "-o", "html"],
        "import-eso": ["import-eso", "eso.yaml", "--report", "eso-report.txt"],
        "migrate plan": ["migrate", "plan", "tree", "--to", f"file://{tmp_path}/store.json", "-o", "plan.json",
                         "--diff"],
        "migrate apply": ["migrate", "apply", "plan.json", "--yes", "--no-wait-sync"],
        "scan after apply": ["scan", "tree", "-o", "sarif"],
        "migrate rollback dry-run": ["migrate", "rollback", "plan.journal", "--yes", "--dry-run"],
        "migrate rollback": ["migrate", "rollback", "plan.journal", "--yes"],
        "error path": ["migrate", "apply", "plan.json", "--yes", "--no-wait-sync"],  # after rollback: refused
    }
    for name, args in runs.items():
        r = cli(tmp_path, *args)
        assert r.returncode in (0, 1, 6, 7), f"{name}: exit {r.returncode}\n{r.stderr[-2000:]}"
        assert "Traceback" not in r.stderr, f"{name}: traceback\n{r.stderr[-3000:]}"
        surfaces[f"{name} stdout"] = r.stdout
        surfaces[f"{name} stderr"] = r.stderr
        if name == "migrate apply":  # the generated manifests, before rollback removes them
            for p in (tmp_path / "tree").rglob("*.yaml"):
                if p.relative_to(tmp_path / "tree").as_posix() not in TREE:
                    surfaces[f"generated {p.name}"] = p.read_text()
    for rel in ("plan.json", "plan.journal", "eso-report.txt"):
        surfaces[rel] = (tmp_path / rel).read_text()
    # The surfaces were really exercised: debug logs flowed and every format was produced.
    assert '"levelname"' in surfaces["migrate apply stderr"] or '"level"' in surfaces["migrate apply stderr"]
    assert surfaces["scan sarif stdout"].lstrip().startswith("{")
    assert "<html" in surfaces["audit html stdout"].lower()
    assert json.loads(surfaces["audit json stdout"])
    assert any(k.startswith("generated ") for k in surfaces), "apply wrote no manifests"
    assert json.loads(surfaces["plan.json"])["secrets"], "nothing was planned"
    leaks = [leak for surface, text in surfaces.items() for leak in _leaks(surface, text)]
    assert leaks == []
