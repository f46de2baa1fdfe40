"""The secret-id escape scheme is injective and reversible; tags that cannot be labels are refused."""

from __future__ import annotations

import contextlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("google.cloud.secretmanager_v1")

from secretsync_providers.gcp.names import (
    decode_secret_id,
    encode_secret_id,
    label_problem,
    prefix_search_token,
    tags_to_labels,
)

from secretsync.core.errors import InvalidConfig

SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("_/.-2F5A_"),
    min_size=1, max_size=40,
)


@pytest.mark.parametrize(("name", "secret_id"), [
    ("db_password", "db_password"),
    ("API-KEY", "API-KEY"),
    ("team/app.db", "team_2F_app_2E_db"),
    ("a_/x", "a__2F_x"),
    ("_2F_", "_5F_2F_"),
    ("é", "_C3__A9_"),
])
def test_known_names_map_to_known_ids(name: str, secret_id: str) -> None:
    assert encode_secret_id(name) == secret_id
    assert decode_secret_id(secret_id) == name


@settings(max_examples=400, deadline=None)
@given(names)
def test_every_name_round_trips_through_a_valid_secret_id(name: str) -> None:
    try:
        secret_id = encode_secret_id(name)
    except InvalidConfig:
        return  # too long once escaped
    assert SECRET_ID.match(secret_id)
    assert decode_secret_id(secret_id) == name


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_different_names_never_share_an_id(a: str, b: str) -> None:
    if a != b:
        with contextlib.suppress(InvalidConfig):
            assert encode_secret_id(a) != encode_secret_id(b)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"\A[A-Za-z0-9_-]{1,60}\Z"))
def test_plain_ids_without_escapes_are_their_own_names(secret_id: str) -> None:
    if not re.search(r"_[0-9A-F]{2}_", secret_id):
        assert encode_secret_id(secret_id) == secret_id
        assert decode_secret_id(secret_id) == secret_id


@settings(max_examples=300, deadline=None)
@given(names, names)
def test_the_prefix_token_is_inside_every_id_whose_name_has_the_prefix(prefix: str, rest: str) -> None:
    try:
        full = encode_secret_id(prefix + rest)
    except InvalidConfig:
        return
    assert prefix_search_token(prefix) in full


def test_names_that_cannot_be_ids_are_refused_naming_the_secret() -> None:
    with pytest.raises(InvalidConfig, match="too long"):
        encode_secret_id("/" * 64)
    with pytest.raises(InvalidConfig):
        encode_secret_id("")
    with pytest.raises(InvalidConfig, match="control character"):
        encode_secret_id("a\nb")


def test_out_of_band_ids_with_non_utf8_escapes_list_as_themselves() -> None:
    assert decode_secret_id("x_FF_y") == "x_FF_y"


@pytest.mark.parametrize(("key", "value", "ok"), [
    ("env", "prod", True),
    ("team-a_b", "", True),
    ("équipe", "paiements", True),
    ("Env", "prod", False),
    ("1env", "prod", False),
    ("env", "Prod", False),
    ("env", "a b", False),
    ("k" * 64, "v", False),
    ("env", "v" * 64, False),
])
def test_label_rules(key: str, value: str, ok: bool) -> None:
    assert (label_problem(key, value) is None) is ok


def test_tags_to_labels_names_the_bad_tag_and_the_secret() -> None:
    assert tags_to_labels({"env": "prod"}, name="s") == {"env": "prod"}
    with pytest.raises(InvalidConfig) as info:
        tags_to_labels({"env": "prod", "Owner": "me"}, name="team/s")
    assert "'Owner'" in str(info.value) and "team/s" in str(info.value)
    with pytest.raises(InvalidConfig, match="at most 64"):
        tags_to_labels({f"k{i}": "v" for i in range(65)}, name="s")
