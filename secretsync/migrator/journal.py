"""The append-only, fsync'd record of what an apply (or rollback) has done.

Why: apply moves values and rewrites sources in many steps; a crash (or kill -9) can
stop it anywhere. Each step writes ``begin`` before its side effect and ``done`` after,
each line flushed and fsync'd, so a second run knows exactly which steps finished and
which may have half-happened (``begin`` without ``done``), and re-checks only those.
The journal holds no values: provider keys, versions, keyed digests and value-free
restore templates only.

Fault injection (tests only): ``SECRETSYNC_TEST_CRASH_AFTER_STEP=N`` makes the process
SIGKILL itself at its N-th *crash point*. Crash points are every journal line once it is
durable, and every side effect right after it happened but before its ``done`` line is
written (the window a real crash is most likely to hit). Nothing else reads this variable.
``SECRETSYNC_TEST_CRASH_AT=POINT[@N]`` kills inside a write instead (between creating a
temp file and renaming it, half-way through a journal line...): see
:mod:`secretsync.core.atomicfile`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from secretsync.core.atomicfile import (
    CRASH_AT_ENV,
    atomic_delete,
    atomic_write,
    fsync_dir,
    naming,
    sweep_temp,
    write_point,
)
from secretsync.core.errors import InvalidConfig

__all__ = ["CRASH_AT_ENV", "CRASH_ENV", "Journal", "StepState", "atomic_delete", "atomic_write", "crash_point",
           "read_records", "sweep_temps"]

CRASH_ENV = "SECRETSYNC_TEST_CRASH_AFTER_STEP"

_crash_points = 0


def crash_point() -> None:
    """Count a crash point; SIGKILL ourselves at the N-th when the fault-injection hook is set."""
    global _crash_points
    target = os.environ.get(CRASH_ENV)
    if not target:
        return
    _crash_points += 1
    if _crash_points == int(target):
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class StepState:
    step: str
    begun: dict[str, Any] | None = None
    done: dict[str, Any] | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_done(self) -> bool:
        return self.done is not None


class Journal:
    """One journal file; ``phase`` separates apply records from rollback records."""

    def __init__(self, path: Path, plan_id: str) -> None:
        self.path = path
        self.plan_id = plan_id
        self.records: list[dict[str, Any]] = []
        if path.exists():
            self.records = list(read_records(path))
            other = {r.get("plan") for r in self.records if r.get("plan")}
            if other and other != {plan_id}:
                raise InvalidConfig(f"journal {path} belongs to another plan ({', '.join(sorted(map(str, other)))})")
        self._fh: TextIO | None = None

    def __enter__(self) -> Journal:
        with naming(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._cut_torn_tail()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
            if not self.records:
                _fsync_dir(self.path.parent)
        return self

    def _cut_torn_tail(self) -> None:
        """Drop a last line a crash cut short, before appending after it.

        Appending to ``{"seq":4,"ev`` would glue the next record to it and make a corrupted
        line in the *middle* of the journal, which no later run may skip.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._fh is not None:
            fh, self._fh = self._fh, None
            # After a failed write (a full disk) close() flushes the same bytes again and fails
            # again: that second error must not replace the first, which names the journal.
            with contextlib.suppress(OSError) if exc_type is not None else naming(self.path):
                fh.close()

    def write(self, event: str, step: str | None = None, phase: str = "apply", **fields: Any) -> dict[str, Any]:
        if self._fh is None:
            raise RuntimeError("journal is not open")
        rec: dict[str, Any] = {"seq": len(self.records) + 1, "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                               "plan": self.plan_id, "phase": phase, "event": event}
        if step is not None:
            rec["step"] = step
        rec.update(fields)
        line = json.dumps(rec, sort_keys=False, separators=(",", ":")) + "\n"
        if os.environ.get(CRASH_AT_ENV):  # fault injection: a line torn by a crash mid-write
            self._fh.write(line[: len(line) // 2])
            self._fh.flush()
            write_point("journal-torn")
            line = line[len(line) // 2 :]
        with naming(self.path):  # a full disk: the torn line is cut by the next run (_cut_torn_tail)
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self.records.append(rec)
        crash_point()
        return rec

    def begin(self, step: str, phase: str = "apply", **fields: Any) -> dict[str, Any]:
        return self.write("begin", step, phase, **fields)

    def done(self, step: str, phase: str = "apply", **fields: Any) -> dict[str, Any]:
        return self.write("done", step, phase, **fields)

    def state(self, step: str, phase: str = "apply") -> StepState:
        st = StepState(step)
        for r in self.records:
            if r.get("step") != step or r.get("phase") != phase:
                continue
            st.records.append(r)
            if r["event"] == "begin" and st.begun is None:
                st.begun = r
            elif r["event"] == "done":
                st.done = r
        return st

    def steps(self, phase: str = "apply") -> list[StepState]:
        """Every step of ``phase`` in the order it was first begun."""
        order: list[str] = []
        for r in self.records:
            if r.get("phase") == phase and r.get("step") and r["step"] not in order:
                order.append(r["step"])
        return [self.state(s, phase) for s in order]

    def events(self, event: str, phase: str = "apply") -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == event and r.get("phase") == phase]


class RolledBack(InvalidConfig):
    """``migrate apply`` on a plan whose journal records a rollback."""


def refuse_after_rollback(journal: Journal) -> None:
    """Refuse to resume an apply that was rolled back since.

    Why: after a rollback the sources hold plaintext again while every apply step is still
    marked done, so a resumed apply would skip them all and report "done". Re-applying an
    old plan over restored files is not what its records describe; a new plan is.
    """
    back = [r for r in journal.records if r.get("phase") == "rollback"]
    if back:
        when = back[-1].get("ts", "?")
        raise RolledBack(
            f"this plan was rolled back ({journal.path}, last rollback record {when}): the sources hold "
            "their values again; run 'migrate plan' to make a new plan, then apply that "
            f"(move {journal.path.name} away first if the new plan is written to the same file)")


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a journal; a torn last line (crash mid-write) is ignored, others must parse."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if n == len(lines) - 1 and not line.endswith("\n"):
                return  # torn final write: the step it described never completed
            raise InvalidConfig(f"journal {path} line {n + 1} is corrupted") from None
        if isinstance(rec, dict):
            yield rec


def _fsync_dir(d: Path) -> None:
    fsync_dir(d)


def sweep_temps(root: Path, journal: Journal, files: Iterable[str] = ()) -> int:
    """Remove the temp files a killed write left beside every file the journal (or plan) names.

    Why by record: the temp of a write that was killed holds the file's next content, which
    after a killed rollback is the original plaintext; only the journal says which files
    were being written. Returns how many were removed.
    """
    names = {str(r["file"]) for r in journal.records if isinstance(r.get("file"), str)} | set(files)
    return sum(sweep_temp(root / rel) for rel in sorted(names))
