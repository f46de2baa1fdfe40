"""Migrate a manifest tree end to end with the embedded file store and check the promises.

``migrate_and_check(tree, work)`` plans, applies, then checks that every workload resolves the
same env, argv and files as before (:mod:`secretsync.migrator.resolve`), that the scanner finds
nothing but the manual items, that neither the plan nor the journal holds a value, and that
rollback restores every byte. Unit tests build small trees at runtime and call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.migrator.apply import ApplyOptions, ApplyReport
from secretsync.migrator.manifests import Inventory
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.resolve import differences, resolve_tree
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan
from secretsync.scan import scan_paths


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_bytes(content.encode("utf-8"))
    return root


@dataclass
class Outcome:
    plan: dict[str, Any]
    report: ApplyReport
    #: files after apply (before rollback)
    migrated: dict[str, bytes] = field(default_factory=dict)

    @property
    def manual(self) -> list[dict[str, Any]]:
        return list(self.plan["manual"])

    def reasons(self) -> list[str]:
        return [str(m["reason"]) for m in self.plan["manual"]]


def migrate_and_check(tree: Path, work: Path, *, values: list[str] | None = None,
                      rollback: bool = True) -> Outcome:
    """Plan, apply, check equivalence and leftovers, roll back and check bytes.

    ``values``: plaintexts that must appear neither in the plan nor in the journal.
    """
    original = tree_bytes(tree)
    before = resolve_tree(Inventory.load([tree]))
    store_url = f"file://{work}/store.json"
    plan = plan_paths([tree], PlanOptions(store_url=store_url))
    doc = plan.doc
    assert all(f["disposition"] in ("migrate", "manual") for f in doc["findings"])
    assert all(m["reason"] for m in doc["manual"])
    plan_file = work / "plan.json"
    write_plan(plan, plan_file)
    report = apply_plan(plan_file, ApplyOptions())
    assert report.problems == []
    migrated = tree_bytes(tree)
    left = {f.fingerprint: f for f in scan_paths([tree]).findings}
    manual = {m["finding"] for m in doc["manual"]}
    assert set(left) <= manual, [f"{f.file}:{f.line} {f.path} {f.rule}" for k, f in left.items() if k not in manual]
    store = open_store(store_url)

    def get(key: str, prop: str | None) -> SecretValue:
        return store.get(key, prop=prop)

    after = resolve_tree(Inventory.load([tree]), get)
    assert differences(before, after) == []
    journal = work / "plan.journal"
    for value in values or []:
        assert value not in plan_file.read_text(), "a value is in the plan"
        assert value not in journal.read_text(), "a value is in the journal"
    if rollback:
        rb = rollback_journal(journal)
        assert rb.problems == []
        assert tree_bytes(tree) == original
    return Outcome(doc, report, migrated)
