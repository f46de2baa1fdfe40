"""secretsync's value convention on KV maps, and name rules (no server)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("hvac")
from secretsync_providers.vault.client import _version_gone, check_name, decode_value, encode_value

from secretsync.core.errors import InvalidConfig, NotFound
from secretsync.core.values import SecretValue


def test_text_is_stored_under_value_and_binary_under_value_b64() -> None:
    assert encode_value(SecretValue("pässword")) == {"value": "pässword"}
    assert encode_value(SecretValue(b"\xff\x00")) == {"value_b64": "/wA="}


def test_our_own_maps_decode_back_to_the_value() -> None:
    assert decode_value({"value": "x"}, None, name="n").reveal_text() == "x"
    assert decode_value({"value_b64": "/wA="}, None, name="n").reveal() == b"\xff\x00"


def test_foreign_maps_decode_to_json_and_a_property_picks_a_key() -> None:
    data = {"user": "u", "port": 5432, "nested": {"k": True}}
    assert json.loads(decode_value(data, None, name="n").reveal_text()) == data
    assert decode_value(data, "user", name="n").reveal_text() == "u"
    assert decode_value(data, "port", name="n").reveal_text() == "5432"
    assert decode_value(data, "nested.k", name="n").reveal_text() == "true"
    with pytest.raises(NotFound):
        decode_value(data, "absent", name="n")


def test_property_applies_inside_our_json_value_then_falls_back_to_the_key() -> None:
    inner = {"value": json.dumps({"password": "pw", "value": "inner"})}
    assert decode_value(inner, "password", name="n").reveal_text() == "pw"
    assert decode_value(inner, "value", name="n").reveal_text() == "inner"
    assert decode_value({"value": "plain"}, "value", name="n").reveal_text() == "plain"


def test_invalid_base64_is_read_as_a_foreign_map() -> None:
    assert json.loads(decode_value({"value_b64": "%%%"}, None, name="n").reveal_text()) == {"value_b64": "%%%"}


@pytest.mark.parametrize("name", ["a", "a/b.c", "with space/x", "ünï/cødé", "q?x#y%z"])
def test_valid_names(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "a/./b", "..", "a\nb", "x" * 1025])
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidConfig):
        check_name(name)


def test_future_deletion_time_is_not_yet_deleted() -> None:
    from datetime import UTC, datetime

    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert not _version_gone({"deletion_time": "2031-01-01T00:00:00.123456789Z", "destroyed": False}, now)
    assert _version_gone({"deletion_time": "2029-01-01T00:00:00.123456789Z", "destroyed": False}, now)
    assert _version_gone({"deletion_time": "", "destroyed": True}, now)
    assert not _version_gone({"deletion_time": "", "destroyed": False}, now)
