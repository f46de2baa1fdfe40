"""``migrate apply``: carry out a plan, step by step, journaled, resumable.

Order, per the safety argument ("never lose a value"): every value is first written to
the provider and read back; then the ExternalSecrets (and store) exist; only then are
sources rewritten, consumers first, and only the last writes remove plaintext. A crash
anywhere leaves either the old source (values also in the provider) or the new source
(values in the provider), never neither.

Idempotence: each step's side effect is checked before it is redone. A provider key
that already holds the same value is reused (no new version); a rewritten file is
recognised by its keyed digest; a created file by its SHA-256. So running apply again
after a crash completes the work with nothing lost or duplicated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsync.core.contract import Fetched, SecretsClient, read_current, write_version
from secretsync.core.errors import Conflict, InvalidConfig, SecretSyncError
from secretsync.core.values import SecretValue

from .edits import render_file
from .journal import Journal, atomic_delete, atomic_write, crash_point, sweep_temps
from .manifests import DeployUnits, Inventory, LocateError, read_locator
from .plan import file_digest, invariant
from .restore import value_free_reverse

log = logging.getLogger("secretsync.migrator")


class ApplyError(SecretSyncError):
    """A step cannot go on; the message names the step and what to do (never a value)."""

    exit_code = 1


class StalePlan(ApplyError):
    exit_code = 7


class UnsafePlan(ApplyError):
    """The plan (as it stands, perhaps edited) would change what a container reads."""

    exit_code = 7


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    dry_run: bool = False
    overwrite: bool = False
    sync_timeout: float = 120.0
    wait_sync: bool = True


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    kind: str
    label: str
    payload: Mapping[str, Any]


@dataclass
class ApplyReport:
    stored: int = 0
    reused: int = 0
    created_files: int = 0
    rewritten_files: int = 0
    deleted_files: int = 0
    externalsecrets: int = 0
    patched: int = 0
    skipped: int = 0
    actions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("stored", "reused", "created_files", "rewritten_files",
                                              "deleted_files", "externalsecrets", "patched", "skipped",
                                              "actions", "problems")}


def value_digest(key: bytes, value: SecretValue) -> str:
    return "hmac-sha256:" + value.digest(key)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- provider step, shared by manifest and cluster mode ---------------------------------------------
def store_value(journal: Journal | None, step: str, client: SecretsClient, key: str, value: SecretValue,
                digest_key: bytes, overwrite: bool, report: ApplyReport) -> dict[str, Any]:
    """Write ``value`` under ``key`` unless it is already there; read it back; journal it.

    Same value already stored -> reuse (no new version). A different value -> Conflict
    unless ``overwrite`` (then compare-and-set against the version we saw).
    """
    st = journal.state(step) if journal else None
    cur = read_current(client, key)
    existed = st.begun["existed"] if st and st.begun else cur is not None
    if cur is not None and cur.value == value:
        version, reused = cur.version, True
        if journal and not (st and st.begun):
            journal.begin(step, providerKey=key, existed=existed)
    else:
        if cur is not None and not overwrite:
            raise Conflict(f"provider key {key!r} already holds a different value; re-run with --overwrite "
                           "to replace it, or choose other names with --name-template", operation="apply")
        if journal is None:
            report.actions.append(f"would store {key}")
            return {}
        if not (st and st.begun):
            journal.begin(step, providerKey=key, existed=existed)
        result = write_version(client, key, value, cur)
        crash_point()
        version, reused = result.version, False
    back = client.get(key, version=version) if (version and client.capabilities.versions) else client.get(key)
    if back != value:
        raise ApplyError(f"{step}: read-back of provider key {key!r} does not match what was written; stopped "
                         "before touching any source")
    if reused:
        report.reused += 1
    else:
        report.stored += 1
    fields: dict[str, Any] = {"providerKey": key, "version": version, "reused": reused, "created": not existed,
              "digest": value_digest(digest_key, value)}
    if journal:
        journal.done(step, **fields)
    return fields


# -- manifest mode ----------------------------------------------------------------------------------
class ManifestApply:
    """Apply a manifest-mode plan to the files under its root."""

    def __init__(self, plan: Mapping[str, Any], digest_key: bytes, client: SecretsClient,
                 options: ApplyOptions, journal: Journal | None) -> None:
        self.plan = plan
        self.key = digest_key
        self.client = client
        self.opt = options
        self.journal = journal
        self.root = Path(plan["root"])
        self.inv = Inventory(self.root)
        self.report = ApplyReport()
        self._values: dict[str, SecretValue] | None = None
        #: the invariant check: the tree it was made on, the units the plan touches, views before
        self._checked: Inventory | None = None
        self._units: list[str] = []
        self._before: dict[str, Any] = {}
        self._kubectl: str | None = None

    def path(self, rel: str) -> Path:
        return self.root / rel

    # -- the step list ------------------------------------------------------------------------
    def steps(self) -> list[Step]:
        out: list[Step] = []
        for s in self.plan["secrets"]:
            out.append(Step(f"store:{s['id']}", "store", f"store {s['providerKey']}", s))
        for nf in self.plan["newFiles"]:
            out.append(Step(f"create:{nf['file']}", "create", f"write {nf['file']}", nf))
        by_file: dict[str, list[Mapping[str, Any]]] = {}
        for c in self.plan["changes"]:
            if c.get("file"):
                by_file.setdefault(c["file"], []).append(c)
        consumer_first = sorted(by_file, key=lambda f: (not any(c["role"] == "consumer" for c in by_file[f]), f))
        for rel in consumer_first:
            out.append(Step(f"rewrite:{rel}", "rewrite", f"rewrite {rel}", {"file": rel, "changes": by_file[rel]}))
        for d in self.plan["deleteFiles"]:
            out.append(Step(f"delete:{d['file']}", "delete", f"remove {d['file']}", d))
        return out

    # -- preconditions --------------------------------------------------------------------------
    def check_fresh(self, steps: list[Step]) -> None:
        """Refuse a tree that changed since the plan (files not yet rewritten must match it)."""
        stale = []
        for rel, want in self.plan["files"].items():
            step = next((s for s in steps if s.kind in ("rewrite", "delete") and s.payload["file"] == rel), None)
            st = self.journal.state(step.id) if (self.journal and step) else None
            if st and st.is_done:
                continue
            p = self.path(rel)
            have = file_digest(self.key, p.read_bytes()) if p.exists() else "missing"
            if have == want:
                continue
            if st and st.begun and step and (
                    have == st.begun.get("after") or (step.kind == "delete" and have == "missing")):
                continue
            stale.append(rel)
        if stale:
            raise StalePlan(f"changed since the plan was made: {', '.join(stale)}; run 'migrate plan' again")

    # -- run ----------------------------------------------------------------------------------------
    def _inventory(self) -> Inventory:
        return Inventory.load([self.root / p for p in self.plan.get("paths") or ["."]], self.root)

    def check_safe(self) -> None:
        """The plan, as it stands on disk (a user may have dropped items), must leave every container
        reading what it reads now: resolved from the current files and the plan's own sources."""
        inv = self._inventory()
        values: dict[str, SecretValue] = {}
        for s in self.plan["secrets"]:
            try:
                values[s["providerKey"]] = read_locator(inv, s["source"])
            except LocateError as exc:
                raise StalePlan(f"store:{s['id']}: {exc}; run 'migrate plan' again") from None
        self._kubectl = invariant.kubectl_path() if self.plan.get("kubectl") else None
        planned = invariant.PlannedTree(self.plan["changes"], self.plan["newFiles"], self.plan["deleteFiles"], values)
        problems = invariant.check(inv, planned, self._kubectl, self._before, strict=False)
        if problems:
            raise UnsafePlan("the plan would change what a container reads ("
                             + "; ".join(problems.values()) + "); refusing before any step (was it edited by "
                             "hand?). Run 'migrate plan' again, with --exclude/--only/--baseline to leave items out")
        self._checked = inv
        self._units = [u.id for u in invariant.affected_units(DeployUnits(inv), planned.files_touched())]

    def recheck_files(self) -> None:
        """After the last step: the files as written, with values read back from the provider."""
        if self._checked is None or not self._units:
            return
        by_key = {s["providerKey"]: s["id"] for s in self.plan["secrets"]}
        values = self.values()

        def get(key: str, prop: str | None) -> SecretValue:
            if prop is not None or key not in by_key:
                raise KeyError(key)
            return values[by_key[key]]

        problems = invariant.compare(self._checked, self._inventory(), self._units, self._kubectl, get,
                                     self._before, strict=False)
        for why in problems.values():
            self.report.problems.append(f"after apply, a container reads something else ({why}); run 'migrate "
                                        "rollback' on the journal")

    def run(self, steps: list[Step] | None = None, progress: Callable[[Step], None] | None = None) -> ApplyReport:
        steps = steps if steps is not None else self.steps()
        if self.journal and not self.opt.dry_run:
            sweep_temps(self.root, self.journal, self.plan["files"])
        self.check_fresh(steps)
        fresh = not (self.journal and any(self.journal.state(s.id).begun for s in steps if s.kind != "store"))
        plan_digest = hashlib.sha256(json.dumps(self.plan, sort_keys=True).encode()).hexdigest()
        if fresh and not (self.journal and any(r.get("planSha256") == plan_digest
                                               for r in self.journal.events("checked"))):
            self.check_safe()
            if self.journal and not self.opt.dry_run:
                # a resumed apply of the same plan on the same (digest-checked) files need not check again
                self.journal.write("checked", planSha256=plan_digest)
        for step in steps:
            if self.journal and self.journal.state(step.id).is_done:
                self.report.skipped += 1
            else:
                getattr(self, f"_{step.kind}")(step)
            if progress:
                progress(step)
        if self._checked is not None and not self.opt.dry_run:
            self.recheck_files()
        if self.journal and not self.opt.dry_run:
            self.journal.write("complete")
        return self.report

    def _store(self, step: Step) -> None:
        s = step.payload
        try:
            value = read_locator(self.inv, s["source"])
        except LocateError as exc:
            raise StalePlan(f"{step.id}: {exc}; run 'migrate plan' again") from None
        if self.opt.dry_run:
            cur = read_current(self.client, s["providerKey"])
            if cur is None:
                self.report.actions.append(f"would store {s['providerKey']}")
            elif cur.value == value:
                self.report.actions.append(f"would reuse {s['providerKey']} (same value)")
            elif not self.opt.overwrite:
                self.report.problems.append(f"{s['providerKey']} holds a different value (use --overwrite)")
            else:
                self.report.actions.append(f"would overwrite {s['providerKey']}")
            return
        store_value(self.journal, step.id, self.client, s["providerKey"], value, self.key, self.opt.overwrite,
                    self.report)

    def _create(self, step: Step) -> None:
        nf = step.payload
        p = self.path(nf["file"])
        data = nf["text"].encode("utf-8")
        if sha256(data) != nf["sha256"]:
            raise InvalidConfig(f"plan entry for {nf['file']} was edited by hand (checksum mismatch)")
        if self.opt.dry_run:
            self.report.actions.append(f"would write {nf['file']}")
            return
        assert self.journal is not None
        if p.exists():
            if sha256(p.read_bytes()) == nf["sha256"]:
                self.journal.begin(step.id, file=nf["file"], sha256=nf["sha256"])
                self.journal.done(step.id, file=nf["file"])
                return
            raise ApplyError(f"{nf['file']} already exists with other content; move it away or re-plan")
        self.journal.begin(step.id, file=nf["file"], sha256=nf["sha256"])
        atomic_write(p, data, 0o644)
        crash_point()
        self.journal.done(step.id, file=nf["file"])
        self.report.created_files += 1
        if nf.get("kind") == "ExternalSecret":
            self.report.externalsecrets += 1

    def values(self) -> dict[str, SecretValue]:
        """Every plan value, read back from the provider (sources may already be rewritten)."""
        if self._values is None:
            by_key: dict[str, list[str]] = {}
            for s in self.plan["secrets"]:
                by_key.setdefault(s["providerKey"], []).append(s["id"])
            got = self.client.get_many(list(by_key))
            out: dict[str, SecretValue] = {}
            for key, ids in by_key.items():
                f = got.get(key)
                if not isinstance(f, Fetched):
                    raise ApplyError(f"provider key {key!r} is missing after it was stored; stopped")
                for sid in ids:
                    stored = self.journal.state(f"store:{sid}").done if self.journal else None
                    if stored and stored.get("digest") and value_digest(self.key, f.value) != stored["digest"]:
                        # Someone changed it since apply stored it: rewriting the source now would hand
                        # the workload another value, and leave the old one only in the journal.
                        raise ApplyError(f"provider key {key!r} changed since this apply stored it; stopped "
                                         "before touching any source (restore it, or run 'migrate plan' again)")
                    out[sid] = f.value
            self._values = out
        return self._values

    def _reverse(self, old: str, new: str, rel: str) -> list[dict[str, Any]]:
        """The restore record must bring back the exact bytes and hold no value."""
        return value_free_reverse(old, new, self.values(), rel)

    def _rewrite(self, step: Step) -> None:
        rel = step.payload["file"]
        p = self.path(rel)
        raw = p.read_bytes()
        old = raw.decode("utf-8")
        new = render_file(old, step.payload["changes"], rel)
        before, after = file_digest(self.key, raw), file_digest(self.key, new.encode("utf-8"))
        if self.opt.dry_run:
            self.report.actions.append(f"would rewrite {rel}")
            return
        assert self.journal is not None
        st = self.journal.state(step.id)
        if st.begun and before == st.begun.get("after"):
            self.journal.done(step.id, file=rel)  # the rename happened; only the done line was lost
            self.report.rewritten_files += 1
            return
        hunks = self._reverse(old, new, rel)
        if not st.begun:
            self.journal.begin(step.id, file=rel, before=before, after=after, reverse=hunks)
        mode = p.stat().st_mode & 0o7777
        atomic_write(p, new.encode("utf-8"), mode)
        crash_point()
        self.journal.done(step.id, file=rel)
        self.report.rewritten_files += 1
        self.report.externalsecrets += sum(1 for c in step.payload["changes"] for op in c["ops"]
                                           if op["op"] == "replace-document")

    def _delete(self, step: Step) -> None:
        rel = step.payload["file"]
        p = self.path(rel)
        if self.opt.dry_run:
            self.report.actions.append(f"would remove {rel}")
            return
        assert self.journal is not None
        st = self.journal.state(step.id)
        if not p.exists():
            if not st.begun:
                raise ApplyError(f"{rel} is gone but this apply did not remove it; run 'migrate plan' again")
            self.journal.done(step.id, file=rel)
            self.report.deleted_files += 1
            return
        raw = p.read_bytes()
        whole = next((s["id"] for s in self.plan["secrets"] if s["source"].get("kind") == "wholefile"
                      and s["source"].get("file") == rel), None)
        fields: dict[str, Any] = {"file": rel, "before": file_digest(self.key, raw),
                                  "mode": p.stat().st_mode & 0o7777}
        if whole is not None:
            fields["wholeValue"] = whole
        else:
            fields["reverse"] = self._reverse(raw.decode("utf-8"), "", rel)
        if not st.begun:
            self.journal.begin(step.id, **fields)
        atomic_delete(p)
        crash_point()
        self.journal.done(step.id, file=rel)
        self.report.deleted_files += 1


def journal_start_fields(plan_path: Path, plan: Mapping[str, Any], key_path: Path) -> dict[str, Any]:
    return {"planFile": os.path.abspath(plan_path), "keyFile": os.path.abspath(key_path),
            "store": plan["store"]["url"], "mode": plan["mode"], "root": plan.get("root")}
