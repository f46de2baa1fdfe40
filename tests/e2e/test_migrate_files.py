"""``secretsync migrate`` on a manifest tree through the CLI: the full loop, kill -9 anywhere, canaries."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from secretsync.core.registry import open_store
from secretsync.migrator.apply import ApplyOptions
from secretsync.migrator.journal import CRASH_ENV
from secretsync.migrator.workflow import apply_plan, rollback_journal
from secretsync.scan import scan_paths

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("SECRETSYNC_FILE_KEY", None)
    return subprocess.run([sys.executable, "-m", "secretsync.cli.main", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, input=stdin, timeout=120)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    return tmp_path


def test_plan_apply_scan_rollback_through_the_cli(work: Path) -> None:
    original = tree_bytes(work / "ex")
    r = cli("scan", "ex", cwd=work)
    assert r.returncode == 1, r.stderr
    r = cli("migrate", "plan", "ex", "--to", f"file://{work}/store.json", "-o", "plan.json", "--diff", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "+                secretKeyRef:" in r.stdout and "***" in r.stdout
    assert (work / "plan.key").stat().st_mode & 0o777 == 0o600
    r = cli("migrate", "apply", "plan.json", "--yes", cwd=work)
    assert r.returncode == 0, r.stderr
    assert "values stored" in r.stderr
    r = cli("scan", "ex", cwd=work)
    assert r.returncode == 0, r.stdout + r.stderr
    r = cli("migrate", "rollback", "plan.journal", "--yes", cwd=work)
    assert r.returncode == 0, r.stderr
    assert tree_bytes(work / "ex") == original


def test_apply_without_a_terminal_refuses_instead_of_waiting(work: Path) -> None:
    original = tree_bytes(work / "ex")
    assert cli("migrate", "plan", "ex", "--to", f"file://{work}/store.json", cwd=work).returncode == 0
    r = cli("migrate", "apply", "plan.json", cwd=work, stdin="y\n")
    assert r.returncode == 2
    assert "--yes" in r.stderr and "not a terminal" in r.stderr
    assert tree_bytes(work / "ex") == original
    assert not (work / "store.json").exists()


def test_no_value_in_plan_journal_output_or_debug_logs(work: Path) -> None:
    values = {d.value.reveal_text() for d in scan_paths([work / "ex"]).detections}
    values |= {v.b64() for d in scan_paths([work / "ex"]).detections for v in [d.value]}
    outputs = []
    for args in (["migrate", "plan", "ex", "--to", f"file://{work}/store.json", "--diff"],
                 ["migrate", "apply", "plan.json", "--yes"],
                 ["scan", "ex"],
                 ["migrate", "rollback", "plan.journal", "--yes"]):
        r = cli("--log-level", "debug", *args, cwd=work)
        assert r.returncode in (0, 1), r.stderr
        outputs += [r.stdout, r.stderr]
    outputs += [(work / "plan.json").read_text(), (work / "plan.journal").read_text()]
    blob = "\n".join(outputs)
    assert "step done" in blob  # debug logging was on
    leaked = [v[:2] + "..." for v in values if len(v) >= 6 and v in blob]
    assert leaked == []


def test_the_canary_value_never_leaves_the_provider(tmp_path: Path, canary: str) -> None:
    """The project canary as a password in every kind of place, through plan/apply/rollback at debug."""
    src = tmp_path / "m"
    src.mkdir()
    b64 = __import__("base64").b64encode(canary.encode()).decode()
    (src / "all.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: n}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: c\n        image: x\n"
        f"        args: [--db-password={canary}]\n"
        f"        env:\n        - name: DB_PASSWORD\n          value: {canary}\n"
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: n}\ndata:\n"
        f"  API_SECRET: {canary}\n  app.properties: |\n    db.password={canary}\n"
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\n"
        f"data:\n  token: {b64}\n")
    original = tree_bytes(src)
    outputs = []
    for args in (["migrate", "plan", "m", "--to", f"file://{tmp_path}/store.json", "--diff"],
                 ["migrate", "apply", "plan.json", "--yes"],
                 ["migrate", "rollback", "plan.journal", "--yes", "--dry-run"],
                 ["migrate", "rollback", "plan.journal", "--yes"]):
        r = cli("--log-level", "debug", *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        outputs += [r.stdout, r.stderr]
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert len(plan["secrets"]) >= 5 and plan["manual"] == []
    blob = "\n".join(outputs) + (tmp_path / "plan.json").read_text() + (tmp_path / "plan.journal").read_text()
    assert canary not in blob and b64 not in blob
    assert tree_bytes(src) == original


def _crash_run(work: Path, n: int) -> subprocess.CompletedProcess[str]:
    return cli("migrate", "apply", "plan.json", "--yes", cwd=work, env={CRASH_ENV: str(n)})


def _crash_matrix(tmp_path: Path, points: list[int] | None) -> int:
    """Plan once; for each crash point N restore the planned tree at the same path, SIGKILL the
    apply at its N-th crash point, run apply again, and check the result equals an
    uninterrupted run (then roll back). Returns the number of crash points seen."""
    pristine = tmp_path / "pristine"
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES, work / "ex")
    original = tree_bytes(work / "ex")
    assert cli("migrate", "plan", "ex", "--to", f"file://{work}/store.json", cwd=work).returncode == 0
    shutil.copytree(work, pristine)
    doc = json.loads((work / "plan.json").read_text())
    n = 0
    while True:
        n += 1
        if points is not None and n not in points:
            if n > max(points):
                return n
            continue
        shutil.rmtree(work)
        shutil.copytree(pristine, work)
        r = _crash_run(work, n)
        if r.returncode == 0:
            return n  # N is past the last crash point: the run completed
        assert r.returncode == -signal.SIGKILL, r.stderr
        if n % 10 == 0:
            # Rolling back straight after a crash (no resume) also brings the originals back.
            rb = rollback_journal(work / "plan.journal")
            assert rb.problems == [], f"crash point {n}"
            assert tree_bytes(work / "ex") == original, f"crash point {n}"
            continue
        apply_plan(work / "plan.json", ApplyOptions())
        store = open_store(f"file://{work}/store.json")
        metas = {m.name: m for m in store.list()}
        assert set(metas) == {s["providerKey"] for s in doc["secrets"]}, f"crash point {n}"
        assert all(m.version == "1" for m in metas.values()), f"crash point {n}: a value was written twice"
        assert scan_paths([work / "ex"]).detections == [], f"crash point {n}"
        es_files = sorted(p.name for p in (work / "ex").rglob("*.externalsecret.yaml"))
        assert es_files == sorted({Path(f["file"]).name for f in doc["newFiles"] if f["kind"] == "ExternalSecret"})
        rb = rollback_journal(work / "plan.journal")
        assert rb.problems == [], f"crash point {n}"
        assert tree_bytes(work / "ex") == original, f"crash point {n}"


def test_kill_9_at_representative_steps_then_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    # 3: right after the first provider write; 45: among the new files; 60+: rewrites and the delete
    _crash_matrix(tmp_path, [3, 40, 45, 62, 70, 79])


@pytest.mark.slow
@pytest.mark.timeout(1200)  # one process per kill point; about 4 min on an idle 2-core machine
def test_kill_9_at_every_step_then_resume_loses_and_duplicates_nothing(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Every crash point: each journal line once durable, and each side effect before its line."""
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    seen = _crash_matrix(tmp_path, None)
    assert seen > 40, "expected a crash point per journal line and per side effect"
