"""kill -9 inside every write of apply and rollback, then run again: nothing stranded, nothing lost.

The fault hook (``SECRETSYNC_TEST_CRASH_AT=POINT@N``, :mod:`secretsync.core.atomicfile`) kills
the process at the N-th time it reaches a named write point: after creating a temp file,
after writing it, after fsync, after the rename, around an unlink, half-way through a journal
line, between the file store's new key and its first write. Each run is a forked child (no
interpreter start-up), killed with SIGKILL, as a power cut or the OOM killer would.

After each kill the migration is run again (apply resumed, or rollback), and the tree must
be exactly as an uninterrupted run leaves it: byte-identical after rollback, no temp file
anywhere, and no secret value in any file but the tree's own original files (the store is
encrypted; the plan and journal hold none).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from secretsync.core.atomicfile import CRASH_AT_ENV, is_temp_name
from secretsync.migrator.apply import ApplyOptions
from secretsync.migrator.journal import RolledBack
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan
from secretsync.scan import scan_paths

PASSWORDS = ("Kx9-crash-DB-pass-41", "Qz7-crash-API-tok-93", "Wm3-crash-SEC-val-57")

TREE = {
    "app/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n"
        "  template:\n    spec:\n      containers:\n      - name: api\n        image: api:1\n"
        f"        env:\n        - name: DB_PASSWORD\n          value: {PASSWORDS[0]}\n"
        "        envFrom:\n        - configMapRef: {name: api-config}\n"
    ),
    "app/config.yaml": (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-config, namespace: shop}\ndata:\n"
        f"  API_TOKEN: {PASSWORDS[1]}\n  LOG_LEVEL: info\n"
    ),
    "app/secret.yaml": (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: legacy, namespace: shop}\ntype: Opaque\n"
        f"data:\n  token: {base64.b64encode(PASSWORDS[2].encode()).decode()}\n"
    ),
}
#: Every write point apply and rollback pass (see atomicfile.WRITE_POINTS).
POINTS = ("tmp-created", "tmp-written", "tmp-synced", "replaced", "before-unlink", "unlinked", "journal-torn",
          "key-pending", "store-written")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _in_child(point: str, nth: int, action: Callable[[], object]) -> bool:
    """Run ``action`` in a forked child that dies at the nth ``point``; whether it was killed."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.environ[CRASH_AT_ENV] = f"{point}@{nth}"
            action()
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"{point}@{nth}: the run failed without being killed"
    return False


@pytest.fixture
def planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A planned tree, kept pristine; each case works on a copy at the same path."""
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    monkeypatch.delenv(CRASH_AT_ENV, raising=False)
    work = tmp_path / "work"
    for rel, text in TREE.items():
        (work / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / "tree" / rel).write_text(text)
    plan = plan_paths([work / "tree"], PlanOptions(store_url=f"file://{work}/store.json"))
    write_plan(plan, work / "plan.json")
    doc = json.loads((work / "plan.json").read_text())
    assert len(doc["secrets"]) == 3 and doc["manual"] == []
    shutil.copytree(work, tmp_path / "pristine")
    return work


def _reset(work: Path) -> None:
    shutil.rmtree(work)
    shutil.copytree(work.parent / "pristine", work)


def _assert_clean(work: Path, original: dict[str, bytes], where: str) -> None:
    stray = [p for p in work.rglob("*") if is_temp_name(p.name)]
    assert stray == [], f"{where}: temp files left: {stray}"
    outside = {rel: data for rel, data in _files(work).items() if not rel.startswith("tree/")}
    for rel, data in outside.items():
        for value in PASSWORDS:
            assert value.encode() not in data, f"{where}: a value in {rel}"
            assert base64.b64encode(value.encode()) not in data, f"{where}: a value (base64) in {rel}"


def _original(work: Path) -> dict[str, bytes]:
    return _files(work.parent / "pristine" / "tree")


def _matrix(work: Path, points: tuple[str, ...], max_nth: int | None) -> int:
    """Kill apply at each point (each occurrence up to max_nth), resume, check, roll back, check."""
    original = _original(work)
    kills = 0
    for point in points:
        nth = 0
        while max_nth is None or nth < max_nth:
            nth += 1
            _reset(work)
            if not _in_child(point, nth, lambda: apply_plan(work / "plan.json", ApplyOptions())):
                break  # past the last occurrence of this point
            kills += 1
            where = f"apply killed at {point}@{nth}"
            apply_plan(work / "plan.json", ApplyOptions())  # resume
            _assert_clean(work, original, where)
            assert scan_paths([work / "tree"]).detections == [], where
            assert rollback_journal(work / "plan.journal").problems == [], where
            assert _files(work / "tree") == original, where
            _assert_clean(work, original, where)
    return kills


def _rollback_matrix(work: Path, points: tuple[str, ...], max_nth: int | None) -> int:
    """Apply fully, kill rollback at each point, roll back again: byte-identical, no temp with plaintext."""
    original = _original(work)
    kills = 0
    for point in points:
        nth = 0
        while max_nth is None or nth < max_nth:
            nth += 1
            _reset(work)
            apply_plan(work / "plan.json", ApplyOptions())
            if not _in_child(point, nth, lambda: rollback_journal(work / "plan.journal")):
                break
            kills += 1
            where = f"rollback killed at {point}@{nth}"
            temps = [p for p in (work / "tree").rglob("*") if is_temp_name(p.name)]
            if temps:  # what a crash strands is visible to scan until the rollback is resumed
                found = scan_paths([work / "tree"]).findings
                assert {f.extra.get("stray-temp") for f in found if f.file and is_temp_name(Path(f.file).name)} \
                    or not any(v.encode() in t.read_bytes() for t in temps for v in PASSWORDS), where
            assert rollback_journal(work / "plan.journal").problems == [], where
            assert _files(work / "tree") == original, where
            _assert_clean(work, original, where)
    return kills


def test_kill_9_at_the_first_and_second_pass_of_every_write_point_then_resume(planned: Path) -> None:
    assert _matrix(planned, POINTS, max_nth=2) >= 12


def test_kill_9_inside_every_rollback_write_then_roll_back_again(planned: Path) -> None:
    assert _rollback_matrix(planned, ("tmp-created", "tmp-written", "tmp-synced", "replaced", "before-unlink",
                                      "unlinked", "journal-torn"), max_nth=2) >= 8


@pytest.mark.slow
def test_kill_9_at_every_occurrence_of_every_write_point(planned: Path) -> None:
    assert _matrix(planned, POINTS, max_nth=None) > 30
    assert _rollback_matrix(planned, POINTS, max_nth=None) > 10


def test_a_stray_temp_holding_plaintext_is_reported_by_scan(tmp_path: Path) -> None:
    (tmp_path / ".config.yaml.secretsync-tmp").write_text(TREE["app/config.yaml"])
    (tmp_path / ".old.yaml.k3j_x9q2.tmp").write_text(TREE["app/config.yaml"])  # an older release's name
    found = scan_paths([tmp_path]).findings
    assert {f.extra.get("stray-temp") for f in found} == {"config.yaml", "old.yaml"}
    assert all(f.key == "API_TOKEN" for f in found)
    r = subprocess.run([sys.executable, "-m", "secretsync.cli.main", "scan", str(tmp_path)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1 and "temp file(s) left by an interrupted write" in r.stderr
    assert PASSWORDS[1] not in r.stdout + r.stderr


def test_apply_after_a_rollback_refuses_instead_of_reporting_done(planned: Path) -> None:
    apply_plan(planned / "plan.json", ApplyOptions())
    rollback_journal(planned / "plan.journal")
    before = _files(planned / "tree")
    with pytest.raises(RolledBack, match=r"rolled back.*migrate plan"):
        apply_plan(planned / "plan.json", ApplyOptions())
    assert _files(planned / "tree") == before


def test_a_kill_between_the_new_store_key_and_the_first_store_write_resumes_on_its_own(planned: Path) -> None:
    assert _in_child("key-pending", 1, lambda: apply_plan(planned / "plan.json", ApplyOptions()))
    assert not (planned / "store.json").exists()
    report = apply_plan(planned / "plan.json", ApplyOptions())  # no "remove the key file"
    assert report.stored == 3
    assert (planned / "store.json.key").exists() and not (planned / ".store.json.key.pending").exists()
