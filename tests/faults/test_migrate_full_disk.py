"""``migrate apply`` on a full disk and with a read-only journal location, through the CLI.

A full disk without root or a tmpfs: the child process runs under ``RLIMIT_FSIZE`` (Python
ignores SIGXFSZ, so a write past the limit fails with EFBIG the way ENOSPC fails a write: part
of the bytes may be on disk). A read-only location: the journal's directory is chmod 0555,
and when the suite runs as root (who ignores modes) the child runs without the capabilities
that override file modes.

Each time: a clear error naming the file, exit 1, no traceback, nothing half-written (every
source either byte-identical or fully migrated, no temp file), then a plain re-run resumes to
the end and a rollback restores the tree byte for byte. (kill -9 at every journal step is
tests/unit/test_migrate_crash_points.py.)
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from secretsync.core.atomicfile import is_temp_name
from secretsync.scan import scan_paths

REPO = Path(__file__).resolve().parents[2]
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 24, 1, 2, 3
PASSWORDS = ("Fd4-full-disk-DB-9q", "Fd4-full-disk-API-7w")
#: A big ConfigMap (a long comment) so a small file-size limit cuts its rewrite half-way.
PADDING = "# " + "x" * 120 + "\n"
TREE = {
    "app/deployment.yaml": (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n"
        "  template:\n    spec:\n      containers:\n      - name: api\n        image: api:1\n"
        f"        env:\n        - name: DB_PASSWORD\n          value: {PASSWORDS[0]}\n"
    ),
    "app/config.yaml": (
        PADDING * 200 + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-config, namespace: shop}\ndata:\n"
        f"  API_TOKEN: {PASSWORDS[1]}\n  LOG_LEVEL: info\n"
    ),
}


def _files(root: Path) -> dict[str, bytes]:
    """The tree's files, with the work directory's own path (in the store manifest) made neutral."""
    base = str(root.parent).encode()
    return {p.relative_to(root).as_posix(): p.read_bytes().replace(base, b"WORK") for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """Plan once, apply once (what an uninterrupted run makes), keep the planned state pristine.

    Returns (pristine copy, original tree, migrated tree); each test restores the pristine copy
    at the same path (the plan holds absolute paths) with :func:`_reset`.
    """
    root = tmp_path_factory.mktemp("disk")
    work = root / "work"
    for rel, text in TREE.items():
        (work / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / "tree" / rel).write_text(text)
    original = _files(work / "tree")
    r = cli(work, "migrate", "plan", "tree", "--to", f"file://{work}/store.json", "-o", "plan.json")
    assert r.returncode == 0, r.stderr
    shutil.copytree(work, root / "pristine")
    r = cli(work, "migrate", "apply", "plan.json", "--yes", "--no-wait-sync")
    assert r.returncode == 0, r.stderr
    return root / "pristine", original, _files(work / "tree")


def _reset(pristine: Path) -> Path:
    work = pristine.parent / "work"
    for p in work.rglob("*"):
        if p.is_dir():
            p.chmod(0o755)
    shutil.rmtree(work)
    shutil.copytree(pristine, work)
    return work


def cli(work: Path, *args: str, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SECRETSYNC_FILE_KEY", None)
    return subprocess.run([sys.executable, "-m", "secretsync.cli.main", *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120, preexec_fn=preexec)


def _fsize_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _unprivileged() -> None:
    """File modes apply to the child: as root, drop the capabilities that override them.

    Dropped from the bounding set (prctl PR_CAPBSET_DROP), which survives exec, so the CLI runs
    as root (it can still run the venv's Python under /root) but a 0555 directory is read-only.
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _assert_whole(work: Path, original: dict[str, bytes], migrated: dict[str, bytes] | None, where: str) -> None:
    """Each source is either its original bytes or its fully migrated bytes; no temp file anywhere."""
    stray = [p.name for p in work.rglob("*") if is_temp_name(p.name)]
    assert stray == [], f"{where}: temp files left: {stray}"
    now = _files(work / "tree")
    assert now.keys() == original.keys(), where
    for rel, data in now.items():
        assert data == original[rel] or (migrated is not None and data == migrated[rel]), f"{where}: {rel} torn"


def _assert_clear_error(r: subprocess.CompletedProcess[str], names: str, where: str) -> None:
    assert r.returncode == 1, f"{where}: exit {r.returncode}\n{r.stderr}"
    assert "Traceback" not in r.stderr, f"{where}: a traceback instead of an error:\n{r.stderr}"
    assert names in r.stderr, f"{where}: the error does not say {names!r}:\n{r.stderr}"
    named = r.stderr.split(names, 1)[1].split()[0] if names in r.stderr else ""
    assert named.endswith((".journal", ".json", ".yaml")), f"{where}: no file named:\n{r.stderr}"
    for value in PASSWORDS:
        assert value not in r.stdout + r.stderr


@pytest.mark.parametrize("limit", [300, 20_000])
def test_apply_on_a_full_disk_fails_clearly_then_resumes_and_rolls_back_exactly(
        planned: tuple[Path, dict[str, bytes], dict[str, bytes]], limit: int) -> None:
    pristine, original, migrated = planned
    work = _reset(pristine)
    r = cli(work, "migrate", "apply", "plan.json", "--yes", "--no-wait-sync", preexec=_fsize_limit(limit))
    where = f"apply under a {limit}-byte file size limit"
    _assert_clear_error(r, "File too large: ", where)
    _assert_whole(work, original, migrated, where)
    # The disk has room again: the same command resumes and finishes.
    r = cli(work, "migrate", "apply", "plan.json", "--yes", "--no-wait-sync")
    assert r.returncode == 0, f"resume after {where}:\n{r.stderr}"
    assert _files(work / "tree") == migrated
    assert scan_paths([work / "tree"]).detections == []
    r = cli(work, "migrate", "rollback", "plan.journal", "--yes")
    assert r.returncode == 0, r.stderr
    assert _files(work / "tree") == original


def test_apply_with_a_read_only_journal_location_changes_nothing_then_resumes(
        planned: tuple[Path, dict[str, bytes], dict[str, bytes]]) -> None:
    pristine, original, migrated = planned
    work = _reset(pristine)
    ro = work / "journals"
    ro.mkdir()
    ro.chmod(0o555)
    r = cli(work, "migrate", "apply", "plan.json", "--yes", "--no-wait-sync", "--journal", "journals/plan.journal",
            preexec=_unprivileged)
    _assert_clear_error(r, "Permission denied: ", "apply with a read-only journal location")
    assert "journals/plan.journal" in r.stderr
    assert _files(work / "tree") == original, "sources changed although no journal could be written"
    assert not (work / "store.json").exists(), "values stored although no journal could be written"
    ro.chmod(0o755)
    r = cli(work, "migrate", "apply", "plan.json", "--yes", "--no-wait-sync", "--journal", "journals/plan.journal")
    assert r.returncode == 0, r.stderr
    assert _files(work / "tree") == migrated
    r = cli(work, "migrate", "rollback", "journals/plan.journal", "--yes")
    assert r.returncode == 0, r.stderr
    assert _files(work / "tree") == original
