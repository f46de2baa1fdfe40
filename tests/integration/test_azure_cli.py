"""``secretsync secret put|get|ls|rm azure://VAULT`` as a user runs it: a subprocess,
reaching the fake vault through the documented environment test hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("azure.keyvault.secrets")

from tests.conftest import CANARY
from tests.fakes.azure_keyvault import FakeKeyVault
from tests.harness.azure import STORE_URL, cli_env


def _cli(fake: FakeKeyVault, *args: str, stdin: bytes = b"", token: str | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **cli_env(fake)}
    if token is not None:
        env["SECRETSYNC_AZURE_ACCESS_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "secretsync.cli.main", "secret", *args],
                          input=stdin, capture_output=True, env=env, timeout=60, check=False)


def test_secret_put_get_ls_rm_round_trip_through_the_cli(fake_keyvault: FakeKeyVault) -> None:
    name = "payments/db.password"
    put = _cli(fake_keyvault, "put", STORE_URL, name, "--tag", "team=payments", "-o", "json",
               stdin=CANARY.encode() + b"\n")
    assert put.returncode == 0, put.stderr.decode()
    version = json.loads(put.stdout)[0]["version"]
    assert fake_keyvault.raw_names() == ["payments-sdb-dpassword"]

    got = _cli(fake_keyvault, "get", STORE_URL, name)
    assert got.returncode == 0 and got.stdout == CANARY.encode()

    ls = _cli(fake_keyvault, "ls", STORE_URL, "-o", "json")
    assert ls.returncode == 0, ls.stderr.decode()
    rows = json.loads(ls.stdout)
    assert [(r["name"], r["tags"]) for r in rows] == [(name, {"team": "payments"})]
    assert rows[0]["version"] is None  # Key Vault's list has no versions (documented)

    old = _cli(fake_keyvault, "get", STORE_URL, name, "--version", version)
    assert old.stdout == CANARY.encode()

    rm = _cli(fake_keyvault, "rm", STORE_URL, name)
    assert rm.returncode == 0, rm.stderr.decode()
    assert fake_keyvault.deleted_names() == ["payments-sdb-dpassword"]

    gone = _cli(fake_keyvault, "get", STORE_URL, name)
    assert gone.returncode == 3  # NotFound
    for proc in (put, ls, rm, gone):
        assert CANARY.encode() not in proc.stdout + proc.stderr


def test_cli_exit_codes_for_bad_token_and_oversized_value(fake_keyvault: FakeKeyVault) -> None:
    denied = _cli(fake_keyvault, "ls", STORE_URL, token="not-the-token")
    assert denied.returncode == 4, denied.stderr.decode()
    assert b"AuthenticationFailed" in denied.stderr or b"AKV10032" in denied.stderr

    big = _cli(fake_keyvault, "put", STORE_URL, "big", stdin=b"x" * 30000)
    assert big.returncode == 6, big.stderr.decode()
    assert b"25600 bytes" in big.stderr
    assert fake_keyvault.requests("PUT") == []
