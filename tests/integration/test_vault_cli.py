"""``secretsync secret put/get/ls/rm vault:///secret NAME`` as a subprocess against OpenBao,
configured only through VAULT_ADDR / VAULT_TOKEN, like a user's shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.harness.vault import OpenBao

SECRETSYNC = str(Path(sys.executable).with_name("secretsync"))


def _run(openbao: OpenBao, *args: str, stdin: str | None = None, token: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(openbao.env(token))
    return subprocess.run([SECRETSYNC, *args], input=stdin, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_cli_put_get_ls_rm_round_trip(openbao: OpenBao, canary: str) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}/app.db"
    put = _run(openbao, "secret", "put", "vault:///secret", name, "--tag", "team=web", stdin=canary + "\n")
    assert put.returncode == 0, put.stderr
    got = _run(openbao, "secret", "get", "vault:///secret", name)
    assert got.returncode == 0, got.stderr
    assert got.stdout == canary
    listed = _run(openbao, "secret", "ls", "vault:///secret", name.split("/")[0] + "/", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["version"], r["tags"]) for r in rows] == [(name, "1", {"team": "web"})]
    assert canary not in listed.stdout + listed.stderr + put.stdout + put.stderr
    removed = _run(openbao, "secret", "rm", "vault:///secret", name)
    assert removed.returncode == 0, removed.stderr
    gone = _run(openbao, "secret", "get", "vault:///secret", name)
    assert gone.returncode == 3, gone.stderr
    assert canary not in gone.stdout + gone.stderr


def test_cli_openbao_scheme_and_bad_token_exit_code(openbao: OpenBao) -> None:
    denied = _run(openbao, "secret", "get", "openbao:///secret", "x/y", token="not-a-token")
    assert denied.returncode == 4
    assert "invalid or expired" in denied.stderr
