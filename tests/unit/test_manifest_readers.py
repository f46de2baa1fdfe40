"""Every reader of a manifest tree (scan, migrate, audit) walks and loads it the same, bounded way.

Written as a platform team with a messy monorepo would meet it: a generated tree a thousand
directories deep, a 657-byte YAML alias bomb committed by a prankster, Helm templates and broken
files beside good ones, a typo in a path. Each command must finish quickly, name what it
could not read with ``file:line``, and say so in its exit code.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secretsync.audit import Inventory as AuditInventory
from secretsync.audit import read_manifest_tree
from secretsync.manifests import EXIT_INCOMPLETE, helm
from secretsync.manifests.loader import load_yaml
from secretsync.migrator.manifests import Inventory
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.workflow import plan_paths
from secretsync.scan import scan_paths

REPO = Path(__file__).resolve().parents[2]

#: 657 bytes that expand to 9**9 (387 million) strings.
BOMB = "\n".join(
    ['apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: lol}', 'data:',
     '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"  {n}: &{n} [" + ",".join([f"*{p}"] * 9) + "]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
) + "\n"

GOOD = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n"
        "  template:\n    spec:\n      containers:\n      - name: web\n        image: web:1\n"
        "        env:\n        - name: DB_PASSWORD\n          value: Xq7-pw-u3Vt9-readers\n")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secretsync.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_the_loader_measures_an_alias_bomb_before_building_it() -> None:
    assert len(BOMB) < 700
    started = time.perf_counter()
    loaded = load_yaml(BOMB)
    assert time.perf_counter() - started < 0.25
    assert loaded.documents == [] and loaded.over_budget == 1
    assert "line 1" in loaded.problems[0] and "lol" not in loaded.problems[0]


def test_migrate_plan_on_an_alias_bomb_is_bounded_in_time_and_memory(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    (tmp_path / "web.yaml").write_text(GOOD)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    plan = plan_paths([tmp_path], PlanOptions(store_url=f"file://{tmp_path}/store.json"))
    elapsed = time.perf_counter() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert elapsed < 2.0 and grown_mb < 40
    doc = json.loads(plan.to_json())
    assert len(doc["secrets"]) == 1  # the good file is still planned
    inv = Inventory.load([tmp_path])
    assert any(f == "bomb.yaml" for f, _ in inv.notes)


def test_audit_reads_an_alias_bomb_and_a_deep_tree_like_scan_does(tmp_path: Path) -> None:
    (tmp_path / "bomb.yaml").write_text(BOMB)
    levels = [tmp_path]
    for _ in range(1200):  # deeper than Python's recursion limit (Path.rglob's walk raised RecursionError)
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    try:
        (levels[-1] / "web.yaml").write_text(GOOD)
        inv = AuditInventory()
        started = time.perf_counter()
        loaded = read_manifest_tree([tmp_path], inv)
        assert time.perf_counter() - started < 5
        assert loaded.files == 2 and loaded.unread == 1
        assert [w.ref.name for w in inv.workloads] == ["web"]
        bomb = [p for p in inv.problems if "alias" in p.message]
        assert bomb and bomb[0].location is not None and bomb[0].location.endswith("bomb.yaml:1")
        assert len(scan_paths([tmp_path]).findings) == 1
    finally:  # pytest's own cleanup recurses: leave no deep tree behind
        (levels[-1] / "web.yaml").unlink(missing_ok=True)
        for level in reversed(levels[1:]):
            level.rmdir()


def test_audit_problems_carry_the_file_and_line_of_their_document(tmp_path: Path) -> None:
    (tmp_path / "two.yaml").write_text(GOOD + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n"
                                       "  name: sa\nsecrets: notalist\n")
    inv = AuditInventory()
    read_manifest_tree([tmp_path], inv)
    located = [p.location for p in inv.problems if p.object.startswith("ServiceAccount")]
    assert located == [f"{tmp_path / 'two.yaml'}:14"]


def _messy_tree(root: Path) -> None:
    (root / "web.yaml").write_text(GOOD)
    (root / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\ndata: [\n")


def test_scan_exits_8_when_a_file_could_not_be_read_and_1_when_it_found_secrets(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\ndata: [\n")
    (tree / "ok.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata: {a: b}\n")
    r = cli("scan", "tree", "-o", "json", cwd=tmp_path)
    assert r.returncode == EXIT_INCOMPLETE, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["unread"] == 1 and doc["errors"][0]["file"] == "broken.yaml"
    assert "broken.yaml" in r.stderr and "line" in r.stderr
    (tree / "web.yaml").write_text(GOOD)
    assert cli("scan", "tree", cwd=tmp_path).returncode == 1  # findings win: the stronger statement
    (tree / "broken.yaml").unlink()
    assert cli("scan", "tree", "--min-confidence", "high", "-o", "json", cwd=tmp_path).returncode == 1


def test_audit_exits_8_when_a_manifest_could_not_be_read(tmp_path: Path) -> None:
    _messy_tree(tmp_path)
    r = cli("audit", ".", cwd=tmp_path)
    assert r.returncode == EXIT_INCOMPLETE, r.stderr
    assert "broken.yaml" in r.stderr
    (tmp_path / "broken.yaml").unlink()
    assert cli("audit", ".", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("args", [["scan", "nope"], ["audit", "nope"],
                                  ["migrate", "plan", "nope", "--to", "memory://"]])
def test_a_missing_path_is_the_same_usage_error_in_every_command(tmp_path: Path, args: list[str]) -> None:
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "nope" in r.stderr and "does not exist" in r.stderr


@pytest.mark.skipif(not helm.available(), reason="the Helm engine is not installed (secretsync[helm])")
def test_audit_reads_a_chart_as_helm_renders_it(tmp_path: Path) -> None:
    chart = tmp_path / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 1.0.0\n")
    (chart / "values.yaml").write_text("secretName: web-db\n")
    (chart / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "  labels: {{- include \"web.labels\" . | nindent 4 }}\n    tier: web\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: web\n        image: web:1\n        envFrom:\n"
        "        - secretRef: {name: {{ .Values.secretName }}}\n")
    (chart / "templates" / "_helpers.tpl").write_text('{{- define "web.labels" -}}\napp: web\n{{- end -}}\n')
    inv = AuditInventory()
    loaded = read_manifest_tree([tmp_path], inv)
    assert loaded.unread == 0 and inv.problems == []
    [workload] = inv.workloads
    assert workload.ref.name == "web"
