"""SecretValue keeps values out of every printable form."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from secretsync.core.values import SecretValue


def test_repr_str_and_format_are_masked(canary: str) -> None:
    v = SecretValue(canary)
    for text in (repr(v), str(v), f"{v}", f"{v!r}", "%s" % v, f"{v}", f"{v:>40}", repr([v]), repr({"k": v})):
        assert canary not in text
        assert "***" in text


def test_logging_a_value_shows_the_mask(canary: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("secretsync.test").debug("value is %s / %r", SecretValue(canary), SecretValue(canary))
    assert canary not in caplog.text
    assert "***" in caplog.text


def test_pickling_is_refused() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SecretValue("x"))


def test_copy_keeps_the_value() -> None:
    v = SecretValue(b"\x00\x01")
    assert copy.deepcopy(v).reveal() == b"\x00\x01"


def test_reveal_gives_bytes_and_text() -> None:
    assert SecretValue("päss").reveal() == "päss".encode()
    assert SecretValue("päss").reveal_text() == "päss"


def test_binary_values_are_supported_and_text_access_fails_without_the_value() -> None:
    v = SecretValue(b"\xff\xfe\x00")
    assert not v.is_text
    with pytest.raises(ValueError) as info:
        v.reveal_text()
    assert "\\xff" not in str(info.value)


def test_equality_compares_values() -> None:
    assert SecretValue("a") == SecretValue(b"a")
    assert SecretValue("a") != SecretValue("b")
    assert len({SecretValue("a"), SecretValue("a")}) == 1


def test_digest_is_keyed_and_stable() -> None:
    v = SecretValue("pw")
    assert v.digest(b"k1") == v.digest(b"k1")
    assert v.digest(b"k1") != v.digest(b"k2")
    assert "pw" not in v.digest(b"k1")


def test_json_property_extracts_top_level_and_nested() -> None:
    v = SecretValue('{"a": "x", "b": {"c": 2}, "d.e": "dotted"}')
    assert v.json_property("a").reveal() == b"x"
    assert v.json_property("b.c").reveal() == b"2"
    assert v.json_property("d.e").reveal() == b"dotted"
    assert v.json_property("b").reveal() == b'{"c":2}'


def test_json_property_miss_names_the_property_not_the_value(canary: str) -> None:
    with pytest.raises(KeyError) as info:
        SecretValue(f'{{"a": "{canary}"}}').json_property("zz")
    assert "zz" in str(info.value) and canary not in str(info.value)
    with pytest.raises(KeyError) as info:
        SecretValue(canary).json_property("a")
    assert canary not in str(info.value)


def test_base64_round_trip() -> None:
    v = SecretValue(bytes(range(10)))
    assert SecretValue.from_b64(v.b64()) == v


def test_only_bytes_or_str_are_accepted() -> None:
    with pytest.raises(TypeError):
        SecretValue(123)  # type: ignore[arg-type]
