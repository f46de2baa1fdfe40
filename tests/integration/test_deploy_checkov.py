"""Checkov over what deploy/ ships: the manifests, the Dockerfile, and the chart as Helm renders it.

Every accepted finding is skipped next to its object with the reason (deploy/README.md lists
them); anything else failing here is a new finding to fix or to justify the same way. Checkov
lives in its own virtualenv (scripts/testenv checkov), pinned, so its dependencies never meet
the project's.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.helm import REPO, render

pytest.importorskip("helm_python", reason="helm-python-sdk (test extra) renders the chart")

CACHE = Path(os.environ.get("SECRETSYNC_CACHE", Path.home() / ".cache" / "secretsync"))
CHECKOV = CACHE / "checkov-3.3.30" / "bin" / "checkov"

#: The value sets a platform team installs with (deploy/README.md's Checkov table).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"rbac": {"clusterWide": False}, "controller": {"watchNamespaces": ["app", "shop"]}},
    "everything-on": {"installCRDs": True, "serviceMonitor": {"enabled": True},
                      "image": {"digest": "sha256:" + "ab" * 32},
                      "rollout": {"enabled": True}, "rotation": {"enabled": True}},
    "tokens-and-egress": {"rbac": {"serviceAccountTokens": True},
                          "networkPolicy": {"restrictEgress": True, "egress": [{"ports": [{"port": 443}]}]}},
}


def _checkov(*args: str) -> str:
    if not CHECKOV.exists():
        pytest.skip(f"checkov is not installed at {CHECKOV} (scripts/testenv checkov)")
    proc = subprocess.run([str(CHECKOV), *args, "--skip-download", "--compact", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    failed = [int(n) for n in re.findall(r"Failed checks: (\d+)", out)]
    assert failed and not any(failed), out[-4000:]
    assert proc.returncode == 0, out[-4000:]
    return out


def test_deploy_folder_passes_checkov_for_kubernetes_and_the_dockerfile() -> None:
    out = _checkov("-d", str(REPO / "deploy"), "--framework", "kubernetes", "dockerfile")
    assert "dockerfile scan results" in out and "kubernetes scan results" in out


def test_the_rendered_chart_passes_checkov_for_every_value_set(tmp_path: Path) -> None:
    for name, values in VALUE_SETS.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(render(values)))
    _checkov("-d", str(tmp_path), "--framework", "kubernetes")
