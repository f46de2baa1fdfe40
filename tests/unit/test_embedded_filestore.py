"""The embedded file store: encrypted at rest, atomic, versioned, never overwrites what it can't read."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from secretsync.core.errors import Conflict, InvalidConfig
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)


def test_values_are_not_on_disk_in_plaintext(tmp_path: Path, canary: str) -> None:
    store = tmp_path / "s.json"
    open_store(f"file://{store}").put("app/db", SecretValue(canary))
    raw = store.read_bytes()
    assert canary.encode() not in raw
    assert base64.b64encode(canary.encode()) not in raw
    assert json.loads(raw)["cipher"] == "AES-256-GCM"


def test_key_file_is_created_0600_on_first_use(tmp_path: Path) -> None:
    open_store(f"file://{tmp_path}/s.json").put("a", SecretValue("1"))
    key = tmp_path / "s.json.key"
    assert key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "s.json").stat().st_mode) == 0o600


def test_wrong_key_is_a_clear_error_and_the_file_is_left_as_is(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s.json"
    open_store(url).put("a", SecretValue("1"))
    before = (tmp_path / "s.json").read_bytes()
    (tmp_path / "s.json.key").write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
    client = open_store(url)
    with pytest.raises(InvalidConfig, match="wrong key or corrupted"):
        client.get("a")
    with pytest.raises(InvalidConfig):
        client.put("b", SecretValue("2"))
    assert (tmp_path / "s.json").read_bytes() == before


def test_corrupted_file_is_a_clear_error_and_never_overwritten(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s.json"
    open_store(url).put("a", SecretValue("1"))
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(InvalidConfig, match="corrupted"):
        open_store(url).put("b", SecretValue("2"))
    assert (tmp_path / "s.json").read_text() == "{not json"


def test_missing_key_for_an_existing_store_is_refused(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s.json"
    open_store(url).put("a", SecretValue("1"))
    (tmp_path / "s.json.key").unlink()
    with pytest.raises(InvalidConfig, match="no key"):
        open_store(url).get("a")
    assert not (tmp_path / "s.json.key").exists()


def test_passphrase_from_env_is_stretched_and_works_across_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", "correct horse battery staple")
    url = f"file://{tmp_path}/s.json"
    open_store(url).put("a", SecretValue("1"))
    assert not (tmp_path / "s.json.key").exists()
    assert json.loads((tmp_path / "s.json").read_text())["kdf"] == "scrypt"
    assert open_store(url).get("a").reveal() == b"1"
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", "wrong passphrase")
    with pytest.raises(InvalidConfig):
        open_store(url).get("a")


def test_raw_key_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())
    url = f"file://{tmp_path}/s.json"
    open_store(url).put("a", SecretValue("1"))
    assert json.loads((tmp_path / "s.json").read_text())["kdf"] == "none"
    assert open_store(url).get("a").reveal() == b"1"


def test_versions_survive_reopen(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s.json"
    v1 = open_store(url).put("a", SecretValue("1")).version
    open_store(url).put("a", SecretValue("2"))
    c = open_store(url)
    assert c.get("a").reveal() == b"2"
    assert v1 is not None
    assert c.get("a", version=v1).reveal() == b"1"


def _cas_writer(url: str, version: str, i: int, q: multiprocessing.Queue[str]) -> None:
    try:
        open_store(url).put("race", SecretValue(f"w{i}"), expected_version=version)
        q.put("won")
    except Conflict:
        q.put("conflict")


def test_compare_and_set_holds_across_processes(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s.json"
    base = open_store(url).put("race", SecretValue("base")).version
    assert base is not None
    ctx = multiprocessing.get_context("fork")
    q: multiprocessing.Queue[str] = ctx.Queue()
    procs = [ctx.Process(target=_cas_writer, args=(url, base, i, q)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    results = sorted(q.get(timeout=5) for _ in procs)
    assert results == ["conflict", "conflict", "conflict", "won"]


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    c = open_store(f"file://{tmp_path}/s.json")
    for i in range(5):
        c.put(f"k{i}", SecretValue("v"))
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".s.json.")]
    assert leftovers == []


def test_directory_path_is_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="'path'"):
        open_store(f"file://{tmp_path}")


def test_a_store_whose_file_vanished_but_whose_key_remains_is_refused_not_empty(tmp_path: Path) -> None:
    """An unmounted volume or a deleted file must not read as "every secret is gone"."""
    from secretsync.core.errors import InvalidConfig, NotFound

    url = f"file://{tmp_path}/s.json"
    open_store(url).put("db", SecretValue("v"))
    (tmp_path / "s.json").unlink()
    for call in (lambda: open_store(url).get("db"), lambda: list(open_store(url).list()),
                 lambda: open_store(url).exists("db")):
        with pytest.raises(InvalidConfig, match="missing but its key file"):
            call()
    with pytest.raises(NotFound):  # a store never written to is simply empty
        open_store(f"file://{tmp_path}/fresh.json").get("db")


def test_unknown_config_fields_and_bad_paths_are_refused_naming_the_field() -> None:
    from secretsync.core.errors import InvalidConfig
    from secretsync.core.registry import get_factory

    factory = get_factory("file")
    for config, field in (({"path": "/tmp/s.json", "bogus": 1}, "bogus"), ({"path": "/tmp/a\x00b"}, "path"),
                          ({"path": "x" * 5000 + "/s.json"}, "path"), ({"path": " "}, "path"),
                          ({"path": "/tmp/s.json", "keyFile": 5}, "keyFile")):
        with pytest.raises(InvalidConfig, match=field):
            factory.validate_config(config)
    with pytest.raises(InvalidConfig, match="bogus"):
        get_factory("memory").validate_config({"name": "x", "bogus": True})
