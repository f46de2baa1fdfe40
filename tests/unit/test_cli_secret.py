"""``secretsync secret put/get/ls/rm`` round-trips on file:// and memory://, and never leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from secretsync.cli.main import cli


def run_cli(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SECRETSYNC_FILE_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "secretsync.cli.main", *args],
        input=stdin, capture_output=True, env=full_env, timeout=60, check=False,
    )


def test_file_store_round_trip_through_the_real_cli(tmp_path: Path, canary: str) -> None:
    url = f"file://{tmp_path}/store.json"
    put = run_cli("--log-level", "debug", "secret", "put", url, "app/db.password", stdin=canary.encode() + b"\n")
    assert put.returncode == 0, put.stderr
    got = run_cli("--log-level", "debug", "secret", "get", url, "app/db.password")
    assert got.returncode == 0 and got.stdout == canary.encode()
    ls = run_cli("--log-level", "debug", "secret", "ls", url, "-o", "json")
    assert ls.returncode == 0
    rows = json.loads(ls.stdout)
    assert [r["name"] for r in rows] == ["app/db.password"] and rows[0]["version"] == "1"
    rm = run_cli("--log-level", "debug", "secret", "rm", url, "app/db.password")
    assert rm.returncode == 0
    missing = run_cli("secret", "get", url, "app/db.password")
    assert missing.returncode == 3
    assert b"not found" in missing.stderr
    for proc in (put, got, ls, rm, missing):
        assert canary.encode() not in proc.stderr
    assert canary.encode() not in ls.stdout


def test_put_reads_from_a_file_and_keeps_binary(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store.json"
    src = tmp_path / "blob"
    src.write_bytes(b"\x00\x01\xff")
    assert run_cli("secret", "put", url, "blob", "--from-file", str(src)).returncode == 0
    assert run_cli("secret", "get", url, "blob").stdout == b"\x00\x01\xff"


def test_put_never_takes_the_value_as_an_argument(tmp_path: Path) -> None:
    proc = run_cli("secret", "put", f"file://{tmp_path}/s.json", "name", "the-value")
    assert proc.returncode == 2


def test_memory_store_round_trip_in_process() -> None:
    runner = CliRunner()
    url = "memory://cli-test"
    res = runner.invoke(cli, ["secret", "put", url, "k", "--tag", "team=a"], input="v1")
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["secret", "get", url, "k"])
    assert res.exit_code == 0 and res.stdout == "v1"
    res = runner.invoke(cli, ["secret", "ls", url, "-o", "json"])
    assert json.loads(res.stdout)[0]["tags"] == {"team": "a"}
    res = runner.invoke(cli, ["secret", "rm", url, "k"])
    assert res.exit_code == 0


def test_conflict_exit_code_for_if_absent(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s.json"
    assert run_cli("secret", "put", url, "k", "--if-absent", stdin=b"a").returncode == 0
    proc = run_cli("secret", "put", url, "k", "--if-absent", stdin=b"b")
    assert proc.returncode == 7


def test_invalid_store_url_exit_code() -> None:
    proc = run_cli("secret", "ls", "nonsense")
    assert proc.returncode == 6
    assert b"store URL" in proc.stderr


def test_version_and_providers_commands() -> None:
    assert run_cli("version").returncode == 0
    proc = run_cli("providers", "-o", "json")
    names = {p["name"] for p in json.loads(proc.stdout)}
    assert {"file", "memory"} <= names


@pytest.mark.parametrize("args", [["--help"], ["secret", "--help"], ["secret", "put", "--help"]])
def test_help_everywhere(args: list[str]) -> None:
    assert CliRunner().invoke(cli, args).exit_code == 0
