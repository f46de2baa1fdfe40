"""`secretsync controller` option parsing (the command itself runs in tests/e2e)."""

from __future__ import annotations

import click
import pytest

from secretsync.cli.controller_cmds import _namespaces, _parse_shard


def test_shard_parses_index_and_count() -> None:
    assert _parse_shard("1/3") == (1, 3)
    assert _parse_shard(None) == (0, 1)


@pytest.mark.parametrize("bad", ["3/3", "-1/2", "a/b", "2", "0/0"])
def test_shard_rejects_nonsense_naming_the_option(bad: str) -> None:
    with pytest.raises(click.BadParameter) as err:
        _parse_shard(bad)
    assert "I/N" in str(err.value)


def test_namespaces_accept_repeats_and_commas() -> None:
    assert _namespaces(("a,b", "c", "a")) == ("a", "b", "c")
