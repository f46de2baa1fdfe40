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


#: (store URL, secret name, exit code, what the one-line error must name). Every case fails
#: before any network call, so no server is needed.
BAD_INPUT = [
    ("vault://[::1", "x", 6, "does not parse"),
    ("vault://h:99999/secret", "x", 6, "Port out of range"),
    ("vault://h/mount/../sys", "x", 6, "'mount'"),
    ("vault://h:8200/secret?kvVersion=3", "x", 6, "'kvVersion'"),
    ("vault://h:8200/secret?bogus=1", "x", 6, "'bogus'"),
    ("vault://h:8200/secret?namespace=a/../b", "x", 6, "'namespace'"),
    ("vault://h:8200/secret", "a/../b", 6, "invalid secret name"),
    ("vault://h:8200/secret", "x" * 5000, 6, "invalid secret name"),
    ("aws://us-east-1/../x", "x", 6, "'prefix'"),
    ("aws://US_EAST/x", "x", 6, "'region'"),
    ("aws://us-east-1?endpoint=", "x", 6, "'endpoint'"),
    ("aws://us-east-1?endpoint=http://[::1", "x", 6, "'endpoint'"),
    ("aws://us-east-1?recoveryWindowDays=99", "x", 6, "'recoveryWindowDays'"),
    ("aws://us-east-1?role=nope", "x", 6, "'role'"),
    ("aws://us-east-1", "a/../b", 6, "invalid secret name"),
    ("aws://us-east-1", "pässwörd", 6, "invalid secret name"),
    ("aws://us-east-1", "x" * 600, 6, "invalid secret name"),
    ("gcp://Bad_Project", "x", 6, "'project'"),
    ("gcp://my-project/..", "x", 6, "'prefix'"),
    ("gcp://my-project?endpoint=http://x/y", "x", 6, "'endpoint'"),
    ("gcp://my-project?bogus=1", "x", 6, "bogus"),
    ("gcp://my-project", "a/./b", 6, "invalid secret name"),
    ("gcp://my-project", "x" * 300, 6, "too long"),
    ("azure://a", "x", 6, "'vaultUrl'"),
    ("azure://myvault?maxConcurrency=x", "x", 6, "'maxConcurrency'"),
    ("azure://myvault?tenantId=a%20b", "x", 6, "'tenantId'"),
    ("azure://myvault?authType=magic", "x", 6, "'authType'"),
    ("https://myvault.vault.azure.net/path", "x", 6, "no path"),
    ("azure://myvault", "../x", 6, "invalid secret name"),
    ("file://%00", "x", 6, "'path'"),
    ("memory://t", "a/../b", 6, "invalid secret name"),
    ("nope://x", "x", 6, "no provider named 'nope'"),
    ("", "x", 6, "no scheme"),
]


@pytest.mark.parametrize(("url", "name", "code", "needle"), BAD_INPUT)
def test_bad_store_urls_and_names_fail_with_one_line_and_a_documented_code(
    url: str, name: str, code: int, needle: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from secretsync.cli.main import main

    for var in ("SECRETSYNC_AZURE_ACCESS_TOKEN", "VAULT_ADDR", "BAO_ADDR", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SystemExit) as info:
        main(["secret", "get", url, name])
    err = capsys.readouterr().err
    assert info.value.code == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    assert len(lines[0]) < 600, "long names are shortened in messages"


def test_an_unexpected_exception_is_one_line_without_a_traceback_or_its_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretsync.cli import secret_cmds
    from secretsync.cli.main import main

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("canary-unexpected-Zq8w in a message")

    monkeypatch.setattr(secret_cmds, "open_store", broken)
    with pytest.raises(SystemExit) as info:
        main(["secret", "get", "memory://x", "k"])
    err = capsys.readouterr().err
    assert info.value.code == 1
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err
    assert "RuntimeError" in err and "canary-unexpected" not in err


def test_a_url_that_does_not_parse_never_shows_a_python_traceback() -> None:
    proc = run_cli("secret", "get", "vault://[::1", "x")
    assert proc.returncode == 6
    assert b"Traceback" not in proc.stderr and proc.stderr.startswith(b"error: ")
