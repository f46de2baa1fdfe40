"""``secretsync secret put/get/ls/rm aws://REGION`` as a subprocess, configured only by env.

The CLI gets no endpoint or keys on its command line: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_REGION reach boto3's own chain, as they would in CI or a pod.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.harness.backends import Backend

pytest.importorskip("boto3")


def run(backend: Backend, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(backend.env)
    return subprocess.run(
        [sys.executable, "-m", "secretsync.cli.main", "secret", *args],
        input=stdin, env=env, capture_output=True, timeout=60, check=False,
    )


def test_cli_round_trip_put_get_ls_rm_against_moto(backend_aws: Backend, canary: str) -> None:
    url = backend_aws.url
    put = run(backend_aws, "put", url, "cli/app.db", "--tag", "team=payments", stdin=canary.encode() + b"\n")
    assert put.returncode == 0, put.stderr.decode()

    got = run(backend_aws, "get", url, "cli/app.db")
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == canary.encode()

    listed = run(backend_aws, "ls", url, "cli/", "-o", "json")
    assert listed.returncode == 0, listed.stderr.decode()
    rows = json.loads(listed.stdout)
    rows = rows.get("items", rows) if isinstance(rows, dict) else rows
    assert [(r["name"], r["tags"]) for r in rows] == [("cli/app.db", {"team": "payments"})]
    assert canary.encode() not in listed.stdout + listed.stderr

    removed = run(backend_aws, "rm", url, "cli/app.db")
    assert removed.returncode == 0, removed.stderr.decode()
    gone = run(backend_aws, "get", url, "cli/app.db")
    assert gone.returncode == 3, gone.stderr.decode()  # NotFound exit code
    assert canary.encode() not in gone.stdout + gone.stderr


def test_cli_prefix_url_scopes_names(backend_aws: Backend) -> None:
    put = run(backend_aws, "put", f"{backend_aws.url}/team", "db", stdin=b"v")
    assert put.returncode == 0, put.stderr.decode()
    whole = run(backend_aws, "ls", backend_aws.url, "-o", "json")
    assert "team/db" in whole.stdout.decode()
    scoped = run(backend_aws, "get", f"{backend_aws.url}/team", "db")
    assert scoped.stdout == b"v"


def test_cli_dead_endpoint_exits_with_the_retry_code(backend_aws: Backend) -> None:
    from tests.harness.ports import closed_port

    dead = Backend(**{**backend_aws.__dict__, "env": {**backend_aws.env,
                                                      "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}})
    result = run(dead, "get", backend_aws.url, "x")
    assert result.returncode == 5, result.stderr.decode()
    assert b"Traceback" not in result.stderr
