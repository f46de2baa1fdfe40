"""The migrator on real-world manifests (kubernetes/examples, microservices-demo): every finding is
migrated or reported as manual with its reason, workloads resolve the same afterwards, nothing is
left for the scanner but the manual items, and rollback restores every byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.migrator.apply import ApplyOptions
from secretsync.migrator.manifests import Inventory
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.resolve import differences, resolve_tree
from secretsync.migrator.scan import scan_paths
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_real_manifests_migrate_resolve_the_same_and_roll_back(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    src = SHARED / "real-manifests"
    if not src.is_dir():
        pytest.skip("../shared/real-manifests is absent")
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    tree = tmp_path / "t"
    shutil.copytree(src, tree)
    original = _bytes(tree)
    before = resolve_tree(Inventory.load([tree]))
    plan = plan_paths([tree], PlanOptions(store_url=f"file://{tmp_path}/store.json"))
    doc = plan.doc
    assert len(doc["secrets"]) > 10
    assert all(f["disposition"] in ("migrate", "manual") for f in doc["findings"])
    assert all(m["reason"] for m in doc["manual"])
    write_plan(plan, tmp_path / "plan.json")
    report = apply_plan(tmp_path / "plan.json", ApplyOptions())
    assert report.problems == []
    left = {f.fingerprint for f in scan_paths([tree]).findings}
    assert left == {m["finding"] for m in doc["manual"]}
    store = open_store(f"file://{tmp_path}/store.json")

    def get(key: str, prop: str | None) -> SecretValue:
        return store.get(key, prop=prop)

    after = resolve_tree(Inventory.load([tree]), get)
    assert differences(before, after) == []
    rb = rollback_journal(tmp_path / "plan.journal")
    assert rb.problems == []
    assert _bytes(tree) == original
