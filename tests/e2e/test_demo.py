"""README command 1: ``scripts/demo`` runs from the repository and ends with byte-identical files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_demo_scans_migrates_rescans_clean_and_restores_byte_identical(tmp_path: Path) -> None:
    if not (REPO / ".venv/bin/secretsync").exists():
        pytest.skip("the demo uses the repository's .venv (it creates it on a fresh clone)")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("SECRETSYNC_FILE_KEY", None)
    r = subprocess.run(["bash", str(REPO / "scripts/demo")], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "13 findings" in out
    assert "0 findings" in out
    assert "restored byte-identical" in out and out.rstrip().endswith("agree)")
    assert list(tmp_path.iterdir()) == [], "the demo must clean up its work directory"
    for value in ("Wq7-rT2v!Lp9-demo", "tok_Qm4vX9pL2sW8nR6tY1cB5hK3", "Hn4-xQ8s-demo-props"):
        assert value not in out
