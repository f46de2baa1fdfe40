"""The migrator on real-world manifests (kubernetes/examples, microservices-demo, kustomize's examples,
Bitnami charts): every finding is migrated or reported as manual with its reason, every workload of
every deploy unit resolves the same afterwards (every kustomization built with the real ``kubectl
kustomize`` before and after, where kubectl is on PATH), nothing is left for the scanner but the
manual items, and rollback restores every byte."""

from __future__ import annotations

import collections
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.migrator.apply import ApplyOptions
from secretsync.migrator.manifests import DeployUnits, Inventory
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.resolve import build_store, differences, resolve_tree, resolve_workload
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan
from secretsync.scan import scan_paths

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.timeout(1200)  # every tree of ../shared, each overlay and chart rendered before and after
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
    kubectl = shutil.which("kubectl")
    kdirs = [u.dir for u in DeployUnits(Inventory.load([tree])).units.values() if u.kind == "kustomize"]
    built = {d: _reads(kubectl, tree / d) for d in kdirs} if kubectl else {}
    plan = plan_paths([tree], PlanOptions(store_url=f"file://{tmp_path}/store.json"))
    doc = plan.doc
    assert len(doc["secrets"]) > 10
    counts = collections.Counter((f["file"].split("/")[0], f["disposition"]) for f in doc["findings"])
    if kubectl:  # without it, the overlays that need the real kustomize stay manual
        assert dict(counts) == PINNED, dict(counts)
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
    for d, reads in built.items():
        if reads is not None:  # every kustomization that built before builds after, and reads the same
            assert _reads(kubectl, tree / d, store) == reads, d
    rb = rollback_journal(tmp_path / "plan.journal")
    assert rb.problems == []
    assert _bytes(tree) == original


#: findings per tree and fate, with kubectl (the scanner's and the planner's behaviour on these trees)
PINNED = {
    ("bitnami-charts", "manual"): 6,
    ("examples", "manual"): 2, ("examples", "migrate"): 38,
    ("kustomize-examples", "manual"): 7, ("kustomize-examples", "migrate"): 3,
}


def _reads(kubectl: str | None, kdir: Path, store: Any = None) -> dict[str, Any] | None:
    """What every container of a built kustomization reads (None when it does not build)."""
    assert kubectl is not None
    out = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, timeout=60, check=False)
    if out.returncode != 0:
        return None
    import yaml

    inv = Inventory.from_objects([d for d in yaml.safe_load_all(out.stdout) if isinstance(d, dict)])
    st = build_store(inv, (lambda k, p: store.get(k, prop=p)) if store is not None else None)
    return {o.resource: {c: (v.env, v.argv, v.files) for c, v in resolve_workload(st, o).items()}
            for o in inv.objects if o.pod_spec() is not None}
