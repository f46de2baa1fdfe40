"""``secretsync secret put/get/ls/rm gcp://PROJECT`` as a subprocess against the fake server.

The CLI gets no endpoint or token on its command line: the test-only variables
SECRETSYNC_GCP_INSECURE_ENDPOINT and SECRETSYNC_GCP_ACCESS_TOKEN point it at the fake.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.harness.backends import Backend

pytest.importorskip("google.cloud.secretmanager_v1")


def run(backend: Backend, *args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETSYNC_GCP_", "GOOGLE_"))}
    base.update(env if env is not None else backend.env)
    return subprocess.run(
        [sys.executable, "-m", "secretsync.cli.main", "secret", *args],
        input=stdin, env=base, capture_output=True, timeout=60, check=False,
    )


def test_cli_round_trip_put_get_ls_rm_against_the_fake(backend_gcp: Backend, gcp_server, canary: str) -> None:
    url = backend_gcp.url
    put = run(backend_gcp, "put", url, "cli/app.db", "--tag", "team=payments", stdin=canary.encode() + b"\n")
    assert put.returncode == 0, put.stderr.decode()
    assert gcp_server.secret_ids() == ["cli_2F_app_2E_db"]

    got = run(backend_gcp, "get", url, "cli/app.db")
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == canary.encode()

    listed = run(backend_gcp, "ls", url, "cli/", "-o", "json")
    assert listed.returncode == 0, listed.stderr.decode()
    rows = json.loads(listed.stdout)
    rows = rows.get("items", rows) if isinstance(rows, dict) else rows
    assert [(r["name"], r["version"], r["tags"]) for r in rows] == [("cli/app.db", "1", {"team": "payments"})]
    assert canary.encode() not in listed.stdout + listed.stderr

    removed = run(backend_gcp, "rm", url, "cli/app.db")
    assert removed.returncode == 0, removed.stderr.decode()
    gone = run(backend_gcp, "get", url, "cli/app.db")
    assert gone.returncode == 3, gone.stderr.decode()  # NotFound exit code
    assert canary.encode() not in gone.stdout + gone.stderr


def test_cli_wrong_token_exits_with_the_auth_code(backend_gcp: Backend) -> None:
    env = {**backend_gcp.env, "SECRETSYNC_GCP_ACCESS_TOKEN": "wrong"}
    result = run(backend_gcp, "get", backend_gcp.url, "x", env=env)
    assert result.returncode == 4, result.stderr.decode()
    assert b"Traceback" not in result.stderr


def test_cli_dead_endpoint_exits_with_the_retry_code(backend_gcp: Backend) -> None:
    from tests.harness.ports import closed_port

    env = {**backend_gcp.env, "SECRETSYNC_GCP_INSECURE_ENDPOINT": f"127.0.0.1:{closed_port()}"}
    result = run(backend_gcp, "get", backend_gcp.url, "x", env=env)
    assert result.returncode == 5, result.stderr.decode()
    assert b"Traceback" not in result.stderr
