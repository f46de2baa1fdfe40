"""The reversible name mapping onto Key Vault names (``^[0-9a-zA-Z-]{1,127}$``)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("azure.keyvault.secrets")

from hypothesis import given
from hypothesis import strategies as st
from secretsync_providers.azure.names import NameCodec, UnstorableName, decode, encode

VAULT_NAME = re.compile(r"^[0-9a-z-]{1,127}$")


@pytest.mark.parametrize(
    ("name", "vault"),
    [
        ("db", "db"),
        ("my-app", "my--app"),
        ("prod/payments/db.password", "prod-spayments-sdb-dpassword"),
        ("x_y", "x-uy"),
        ("Db", "-cdb"),
        ("é", "-xc3-xa9"),
        ("a b", "a-x20b"),
        ("🔑", "-xf0-x9f-x94-x91"),
    ],
)
def test_names_map_to_the_documented_vault_names_and_back(name: str, vault: str) -> None:
    assert encode(name) == vault
    assert decode(vault) == name


@given(st.text(min_size=1, max_size=30))
def test_every_name_that_fits_round_trips_to_a_lower_case_vault_name(name: str) -> None:
    try:
        vault = encode(name)
    except UnstorableName:
        return
    assert VAULT_NAME.match(vault)
    assert decode(vault) == name


@given(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=12))
def test_distinct_names_never_share_a_vault_name(a: str, b: str) -> None:
    try:
        ea, eb = encode(a), encode(b)
    except UnstorableName:
        return
    assert (ea == eb) == (a == b)


def test_names_differing_only_in_case_stay_apart_in_a_case_insensitive_vault() -> None:
    assert encode("Token").lower() != encode("token").lower()


@pytest.mark.parametrize("vault", ["a-b", "a-", "-x4", "-xzz", "-x41", "-x2f", "-xc3", "-c1", "a_b", "a-q"])
def test_vault_names_that_are_not_canonical_encodings_decode_to_none(vault: str) -> None:
    # "-x41" is "A" but the canonical form is "-ca"; "-x2f" is "/" but canonical is "-s".
    assert decode(vault) is None


def test_vault_names_are_decoded_case_insensitively() -> None:
    assert decode("PROD-SDB") == "prod/db"


def test_a_name_too_long_for_key_vault_is_refused_with_the_reason() -> None:
    encode("a" * 127)
    with pytest.raises(UnstorableName, match="127"):
        encode("a" * 128)
    with pytest.raises(UnstorableName, match="129 characters"):
        encode("/" + "a" * 127)
    with pytest.raises(UnstorableName, match="empty"):
        encode("")


def test_verbatim_mode_passes_valid_vault_names_and_refuses_the_rest() -> None:
    codec = NameCodec("verbatim")
    assert codec.to_vault("My-Secret") == "My-Secret"
    assert codec.from_vault("My-Secret") == "My-Secret"
    with pytest.raises(UnstorableName):
        codec.to_vault("a/b")
    with pytest.raises(ValueError):
        NameCodec("base32")  # type: ignore[arg-type]


def test_eso_object_prefixes_name_a_secret_a_certificate_or_a_key_in_verbatim_mode_only() -> None:
    eso = NameCodec("verbatim")
    assert eso.resolve("db-password") == ("secret", "db-password")
    assert eso.resolve("secret/db-password") == ("secret", "db-password")
    assert eso.resolve("cert/db-client-cert") == ("cert", "db-client-cert")
    assert eso.resolve("key/encryption-pubkey") == ("key", "encryption-pubkey")
    assert eso.unlisted_prefixes() == ("cert/", "key/")
    with pytest.raises(UnstorableName, match="certificate, not a secret"):
        eso.to_vault("cert/db-client-cert")  # what a write would address
    with pytest.raises(UnstorableName):
        eso.resolve("cert/a/b")  # one '/' only, as ESO splits: 'a/b' is no vault name
    with pytest.raises(UnstorableName):
        eso.resolve("vault/x")  # not an object prefix: a name with '/', not storable
    own = NameCodec("escape")
    assert own.resolve("cert/db") == ("secret", "cert-sdb")
    assert own.unlisted_prefixes() == ()
