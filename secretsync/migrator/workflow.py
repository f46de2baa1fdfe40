"""The migration as three calls (plan, apply, rollback), for the CLI and for programs and tests.

Each call takes paths and returns a report; the CLI adds prompts, progress bars and
output formatting around them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from secretsync.core.contract import SecretsClient
from secretsync.core.errors import InvalidConfig, ProviderError
from secretsync.core.registry import open_store

from .apply import ApplyOptions, ApplyReport, ManifestApply, Step, journal_start_fields
from .journal import Journal, StepState, read_records, refuse_after_rollback
from .manifests import Inventory, common_base
from .plan import Plan, Planner, PlanOptions, load_plan, read_digest_key, sidecar, write_digest_key
from .rollback import ManifestRollback, RollbackReport


def open_store_quietly(url: str) -> SecretsClient | None:
    """The store for read-only checks at plan time; None when it cannot be reached."""
    try:
        return open_store(url)
    except ProviderError as exc:
        if exc.reason == "InvalidConfig" and ("no provider" in str(exc) or "not installed" in str(exc)):
            raise
        return None


def plan_paths(paths: Sequence[Path], options: PlanOptions, client: SecretsClient | None = None,
               on_scan_error: Callable[[str], None] | None = None) -> Plan:
    """Scan ``paths`` and plan every finding (no side effects)."""
    from secretsync.scan import scan_paths

    roots = [p.resolve() for p in paths] or [Path(".").resolve()]
    detections: list[Any] = []
    reported: set[str] = set()
    for r in roots:
        result = scan_paths([r])
        for err in result.errors:
            reported.add(str(r / err.file) if err.file else "")
            if on_scan_error:
                on_scan_error(str(err))
        detections += [(d, r) for d in result.detections]
    inv = Inventory.load(roots, common_base(roots))
    for rel, message in inv.errors:  # files the scan read but the migrator will not edit (symlinks...)
        if on_scan_error and str(inv.path(rel)) not in reported:
            on_scan_error(f"{rel}: {message}")
    return Planner(inv, roots, options).build(detections, client)


def write_plan(plan: Plan, out: Path) -> Path:
    """Write the plan and its digest key (``.key``, 0600) beside it; returns the key path."""
    out.write_text(plan.to_json(), encoding="utf-8")
    key_path = sidecar(out, ".key")
    write_digest_key(key_path, plan.digest_key)
    return key_path


def make_runner(doc: dict[str, Any], key: bytes, client: SecretsClient, options: ApplyOptions,
                journal: Journal | None, kubeconfig: str | None = None, kube_context: str | None = None) -> Any:
    if doc["mode"] == "cluster":
        from .cluster import ClusterApply

        return ClusterApply(doc, key, client, options, journal, kubeconfig, kube_context)
    return ManifestApply(doc, key, client, options, journal)


def apply_plan(plan_file: Path, options: ApplyOptions, journal_file: Path | None = None,
               kubeconfig: str | None = None, kube_context: str | None = None,
               progress: Callable[[list[Step]], Callable[[Step], None]] | None = None) -> ApplyReport:
    """Carry out a plan file (resuming from its journal when there is one)."""
    doc = load_plan(plan_file)
    key_path = sidecar(plan_file, ".key")
    key = read_digest_key(key_path)
    journal_path = journal_file or sidecar(plan_file, ".journal")
    client = open_store(doc["store"]["url"])
    try:
        journal = Journal(journal_path, doc["id"])
        refuse_after_rollback(journal)
        runner = make_runner(doc, key, client, options, None if options.dry_run else journal, kubeconfig,
                             kube_context)
        steps = runner.steps()
        if options.dry_run:
            report: ApplyReport = runner.run(steps)
            return report
        with journal:
            last = journal.records[-1]["event"] if journal.records else None
            if last != "start":
                journal.write("start", **journal_start_fields(plan_file, doc, key_path))
            tick = progress(steps) if progress else None
            done: ApplyReport = runner.run(steps, tick)
        return done
    finally:
        client.close()


def journal_start(journal_file: Path) -> dict[str, Any]:
    starts = [r for r in read_records(journal_file) if r.get("event") == "start"]
    if not starts:
        raise InvalidConfig(f"{journal_file} has no apply records")
    return starts[0]


def rollback_journal(journal_file: Path, *, delete_created: bool = False, dry_run: bool = False,
                     kubeconfig: str | None = None, kube_context: str | None = None,
                     progress: Callable[[list[StepState]], Callable[[StepState], None]] | None = None
                     ) -> RollbackReport:
    """Undo what the apply recorded in ``journal_file``."""
    start = journal_start(journal_file)
    key = read_digest_key(Path(start["keyFile"]))
    journal = Journal(journal_file, str(start["plan"]))
    client = open_store(start["store"])
    try:
        if start.get("mode") == "cluster":
            from .cluster import ClusterRollback

            runner: Any = ClusterRollback(journal, key, client, kubeconfig, kube_context,
                                          delete_created=delete_created, dry_run=dry_run)
        else:
            runner = ManifestRollback(journal, Path(start["root"]), key, client, delete_created, dry_run)
        if dry_run:
            report: RollbackReport = runner.run()
            return report
        steps = runner.steps()
        with journal:
            tick = progress(steps) if progress else None
            undone: RollbackReport = runner.run(tick)
        return undone
    finally:
        client.close()


def default_base(paths: Sequence[Path]) -> Path:
    return common_base([p.resolve() for p in paths])
