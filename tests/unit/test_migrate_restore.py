"""Restore templates bring back exact bytes and never hold a value; naming rules per provider."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsync.core.errors import InvalidConfig
from secretsync.core.values import SecretValue
from secretsync.migrator import naming
from secretsync.migrator.restore import apply_reverse, fill, mask, masked_diff, reverse_hunks, template


def test_every_spelling_of_a_value_becomes_a_token() -> None:
    v = SecretValue("pa'ss\"wo\\rd-123")
    raw = v.reveal_text()
    text = "\n".join([
        f"raw: {raw}",
        f"b64: {v.b64()}",
        f"json: \"{json.dumps(raw)[1:-1]}\"",
        f"sq: '{raw.replace(chr(39), chr(39) * 2)}'",
    ]) + "\n"
    t = template(text, {"s1": v})
    assert raw not in t and v.b64() not in t and json.dumps(raw)[1:-1] not in t
    assert fill(t, {"s1": v}.__getitem__) == text


def test_multiline_value_in_a_block_scalar_is_templated_line_by_line() -> None:
    v = SecretValue("db.user=api\ndb.password=Hn4-xQ8s\n")
    text = "data:\n  app.properties: |\n    db.user=api\n    db.password=Hn4-xQ8s\n  other: x\n"
    t = template(text, {"s9": v})
    assert "Hn4-xQ8s" not in t
    assert fill(t, {"s9": v}.__getitem__) == text
    assert mask(t).count("***") == 2


def test_reverse_hunks_restore_the_original_exactly() -> None:
    v = SecretValue("Wq7-rT2v!Lp9")
    old = "a: 1\nenv:\n  - name: PW\n    value: \"Wq7-rT2v!Lp9\"   # rotate\nb: 2\n"
    new = "a: 1\nenv:\n  - name: PW\n    valueFrom:\n      secretKeyRef: {name: s, key: PW}\nb: 2\n"
    hunks = reverse_hunks(old, new, {"s1": v})
    assert "Wq7" not in json.dumps(hunks)
    assert apply_reverse(new, hunks, {"s1": v}.__getitem__) == old


def test_masked_diff_shows_no_value() -> None:
    v = SecretValue("hunter2-but-longer")
    diff = masked_diff("pw: hunter2-but-longer\n", "pw: ref\n", {"s1": v}, "f.yaml")
    assert "hunter2" not in diff and "-pw: ***" in diff


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=4,
            max_size=30),
    st.lists(st.sampled_from(["raw", "b64", "json", "sq"]), min_size=1, max_size=4),
    st.text(alphabet="abc: -\n#", max_size=40),
)
def test_template_then_fill_is_identity_and_hides_the_value(value: str, spellings: list[str], filler: str) -> None:
    v = SecretValue(value)
    forms = {"raw": value, "b64": base64.b64encode(value.encode()).decode(),
             "json": json.dumps(value, ensure_ascii=False)[1:-1], "sq": value.replace("'", "''")}
    text = filler + "".join(f"k{i}: {forms[s]}\n{filler}" for i, s in enumerate(spellings))
    t = template(text, {"s1": v})
    assert fill(t, {"s1": v}.__getitem__) == text
    assert value not in mask(t)


# -- naming -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("provider", "expected"), [
    ("aws", "shop/api/DB_PASSWORD"),
    ("vault", "shop/api/DB_PASSWORD"),
    ("file", "shop/api/DB_PASSWORD"),
    ("gcp", "shop-api-DB_PASSWORD"),
    ("azure", "shop-api-DB-PASSWORD"),
])
def test_provider_keys_are_legal_for_each_provider(provider: str, expected: str) -> None:
    fields = {"namespace": "shop", "workload": "api", "key": "DB_PASSWORD"}
    assert naming.render(naming.DEFAULT_TEMPLATE, fields, provider) == expected


def test_long_names_are_shortened_with_a_hash_and_stay_distinct() -> None:
    a = naming.sanitize("x" * 200 + "a", "azure")
    b = naming.sanitize("x" * 200 + "b", "azure")
    assert len(a) <= 127 and len(b) <= 127 and a != b


def test_unknown_placeholder_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidConfig, match=r"\{cluster\}.*\{namespace\}"):
        naming.check_template("{cluster}/{key}")


def test_flag_env_var_is_prefixed() -> None:
    assert naming.env_var_for_flag("--db-password") == "SECRETSYNC_DB_PASSWORD"
    assert naming.secret_key("app.properties") == "app.properties"
    assert naming.secret_key("a b/c") == "a_b_c"
