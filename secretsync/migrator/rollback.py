"""``migrate rollback JOURNAL``: put every source back exactly as it was.

Why from the journal: it is the only record of what apply actually did (a crashed apply
did part of the plan). Steps are undone newest first. Values come back from the provider
(the journal only names provider keys and versions) and are spliced into the journal's
value-free restore templates; every restored file is checked against the keyed digest
of the original before it is written, so rollback either restores byte-identical files
or says which file it could not restore and why (e.g. edited since the migration).

Provider values are kept unless ``delete_created`` (then only keys that apply created,
and only while they still hold the value apply wrote).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsync.core.contract import SecretsClient, read_current
from secretsync.core.errors import NotFound, SecretSyncError
from secretsync.core.values import SecretValue

from .apply import sha256, value_digest
from .journal import Journal, StepState, atomic_delete, atomic_write, sweep_temps
from .plan import file_digest
from .restore import RestoreError, apply_reverse, fill

log = logging.getLogger("secretsync.migrator")


class RollbackError(SecretSyncError):
    exit_code = 1


@dataclass
class RollbackReport:
    restored_files: int = 0
    removed_files: int = 0
    recreated_files: int = 0
    restored_objects: int = 0
    deleted_objects: int = 0
    deleted_keys: int = 0
    kept_keys: int = 0
    already: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ValueSource:
    """Values by plan secret id, read back from the provider at the version apply stored."""

    def __init__(self, journal: Journal, client: SecretsClient, digest_key: bytes) -> None:
        self.client = client
        self.key = digest_key
        self.by_id: dict[str, dict[str, Any]] = {}
        for st in journal.steps("apply"):
            if st.step.startswith("store:") and st.done:
                self.by_id[st.step.removeprefix("store:")] = st.done
        self._cache: dict[str, SecretValue] = {}

    def __call__(self, sid: str) -> SecretValue:
        if sid in self._cache:
            return self._cache[sid]
        rec = self.by_id.get(sid)
        if rec is None:
            raise RollbackError(f"the journal has no stored value for {sid}; cannot restore it")
        key, version = rec["providerKey"], rec.get("version")
        value: SecretValue | None = None
        if version and self.client.capabilities.versions:
            try:
                value = self.client.get(key, version=version)
            except NotFound:
                value = None
        if value is None:
            value = self.client.get(key)
        if rec.get("digest") and value_digest(self.key, value) != rec["digest"]:
            raise RollbackError(f"provider key {key!r} no longer holds the migrated value (and that version "
                                "is gone); cannot restore byte-identical sources")
        self._cache[sid] = value
        return value


class ManifestRollback:
    def __init__(self, journal: Journal, root: Path, digest_key: bytes, client: SecretsClient,
                 delete_created: bool = False, dry_run: bool = False) -> None:
        self.journal = journal
        self.root = root
        self.key = digest_key
        self.client = client
        self.values = ValueSource(journal, client, digest_key)
        self.delete_created = delete_created
        self.dry_run = dry_run
        self.report = RollbackReport()

    def steps(self) -> list[StepState]:
        return [st for st in reversed(self.journal.steps("apply")) if st.begun]

    def run(self, progress: Callable[[StepState], None] | None = None) -> RollbackReport:
        if not self.dry_run:
            sweep_temps(self.root, self.journal)
        for st in self.steps():
            kind = st.step.split(":", 1)[0]
            try:
                getattr(self, f"_{kind}")(st)
            except RollbackError as exc:
                self.report.problems.append(str(exc))
            except RestoreError as exc:
                self.report.problems.append(f"{st.step}: {exc}")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a hand-edited journal line
                self.report.problems.append(f"{st.step}: the journal record is malformed ({type(exc).__name__}); "
                                            "left as is")
            if progress:
                progress(st)
        if not self.dry_run:
            self.journal.write("complete", phase="rollback")
        return self.report

    def _mark(self, st: StepState, **fields: Any) -> None:
        if not self.dry_run and not self.journal.state(st.step, "rollback").is_done:
            self.journal.begin(st.step, "rollback", **fields)
            self.journal.done(st.step, "rollback")

    def _rewrite(self, st: StepState) -> None:
        rec = st.begun
        assert rec is not None
        rel = rec["file"]
        p = self.root / rel
        raw = p.read_bytes() if p.exists() else None
        have = file_digest(self.key, raw) if raw is not None else "missing"
        if have == rec["before"]:
            self.report.already += 1
            self._mark(st)
            return
        if have != rec["after"]:
            raise RollbackError(f"{rel} was changed after the migration; not restoring it (restore it by hand, "
                                "or undo those edits and run rollback again)")
        assert raw is not None
        restored = apply_reverse(raw.decode("utf-8"), rec["reverse"], self.values).encode("utf-8")
        if file_digest(self.key, restored) != rec["before"]:
            raise RollbackError(f"{rel}: the restored file does not match the original; left as is")
        if not self.dry_run:
            atomic_write(p, restored, p.stat().st_mode & 0o7777)
            self._mark(st)
        self.report.restored_files += 1

    def _delete(self, st: StepState) -> None:
        rec = st.begun
        assert rec is not None
        rel = rec["file"]
        p = self.root / rel
        if p.exists():
            if file_digest(self.key, p.read_bytes()) == rec["before"]:
                self.report.already += 1
                self._mark(st)
                return
            raise RollbackError(f"{rel} exists again with other content; not overwriting it")
        if rec.get("wholeValue"):
            data = self.values(rec["wholeValue"]).reveal()
        else:
            data = "".join(fill(str(h["old"]), self.values) for h in rec["reverse"]).encode("utf-8")
        if file_digest(self.key, data) != rec["before"]:
            raise RollbackError(f"{rel}: the restored file does not match the original; not written")
        if not self.dry_run:
            atomic_write(p, data, int(rec.get("mode", 0o644)))
            self._mark(st)
        self.report.recreated_files += 1

    def _create(self, st: StepState) -> None:
        rec = st.begun
        assert rec is not None
        rel = rec["file"]
        p = self.root / rel
        if not p.exists():
            self.report.already += 1
            self._mark(st)
            return
        if sha256(p.read_bytes()) != rec["sha256"]:
            raise RollbackError(f"{rel} was edited after the migration; not removing it")
        if not self.dry_run:
            atomic_delete(p)
            self._mark(st)
        self.report.removed_files += 1

    def _store(self, st: StepState) -> None:
        rec: Mapping[str, Any] | None = st.done
        if rec is None or not self.delete_created or not rec.get("created"):
            self.report.kept_keys += 1
            return
        if not sources_restored(self.journal, self.report, self.dry_run):
            keep_created_key(rec, self.report)
            return
        delete_created_key(self.client, rec, self.key, self.dry_run, self.report)
        self._mark(st)


def sources_restored(journal: Journal, report: RollbackReport, dry_run: bool) -> bool:
    """Whether every source apply changed is back: only then may the provider copy of a value go.

    A rewrite rollback refused (the file was edited since) leaves a source that reads its
    value from the provider; deleting the key then would lose the value.
    """
    if report.problems:
        return False
    if dry_run:
        return True
    return all(journal.state(st.step, "rollback").is_done for st in journal.steps("apply")
               if st.begun and not st.step.startswith(("store:", "snapshot:", "sync:")))


def keep_created_key(rec: Mapping[str, Any], report: RollbackReport) -> None:
    report.kept_keys += 1
    report.problems.append(f"provider key {rec['providerKey']!r} kept: not every source was restored, and "
                           "one may still read it; run rollback again once they are")


def delete_created_key(client: SecretsClient, rec: Mapping[str, Any], digest_key: bytes, dry_run: bool,
                       report: RollbackReport) -> None:
    """Delete a provider key apply created, only while it still holds what apply wrote."""
    key = rec["providerKey"]
    cur = read_current(client, key)
    if cur is None:
        return
    if value_digest(digest_key, cur.value) != rec.get("digest"):
        report.problems.append(f"provider key {key!r} changed since the migration; kept")
        report.kept_keys += 1
        return
    if not dry_run:
        client.delete(key)
    report.deleted_keys += 1
