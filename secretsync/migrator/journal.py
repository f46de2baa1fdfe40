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
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from secretsync.core.errors import InvalidConfig

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        if not self.records:
            _fsync_dir(self.path.parent)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def write(self, event: str, step: str | None = None, phase: str = "apply", **fields: Any) -> dict[str, Any]:
        if self._fh is None:
            raise RuntimeError("journal is not open")
        rec: dict[str, Any] = {"seq": len(self.records) + 1, "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                               "plan": self.plan_id, "phase": phase, "event": event}
        if step is not None:
            rec["step"] = step
        rec.update(fields)
        line = json.dumps(rec, sort_keys=False, separators=(",", ":")) + "\n"
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
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write via a temp file in the same directory, fsync, rename, fsync the directory."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_delete(path: Path) -> None:
    path.unlink()
    _fsync_dir(path.parent)
