"""Reversible mapping of secretsync names onto Key Vault's ``^[0-9a-zA-Z-]{1,127}$`` names.

Why a mapping: secretsync names look like paths (``prod/payments/db.password``), Key
Vault allows only letters, digits and dashes and compares names case-insensitively. A
lossy mapping (``/`` -> ``-``) would let two names land on one secret and overwrite each
other, and ``list`` could not give the original names back. So ``-`` is the escape
character and every other character is written so the mapping is injective and reversible:

====================  ==========================  =====================
secretsync            Key Vault                   example
====================  ==========================  =====================
``a-z``, ``0-9``      unchanged                   ``db`` -> ``db``
``-``                 ``--``                      ``my-app`` -> ``my--app``
``/``                 ``-s``                      ``a/b`` -> ``a-sb``
``.``                 ``-d``                      ``db.pw`` -> ``db-dpw``
``_``                 ``-u``                      ``x_y`` -> ``x-uy``
``A-Z``               ``-c`` + lower case         ``Db`` -> ``-cdb``
anything else         ``-x`` + hex, per UTF-8     ``é`` -> ``-xc3-xa9``
                      byte
====================  ==========================  =====================

Encoded names are all lower case, so Key Vault's case-insensitivity cannot merge two of
them. Decoding accepts only the canonical encoding (decode then re-encode must give the
same string), so each vault name maps back to at most one secretsync name; vault names
that are not canonical encodings (``a-b``, made by other tools) are not listed in this
mode (the client warns once per such name).

``verbatim`` is the default: names pass through unchanged, so keys written by External
Secrets Operator, the portal or Terraform (``my-db-password``, ``ApiKey``) read as they
are; only names Key Vault accepts can be used, and any other name is an InvalidConfig
(never a NotFound). ``escape`` is opt-in for stores whose names secretsync itself chose.
"""

from __future__ import annotations

import re
from typing import Literal

from secretsync.core.errors import InvalidInput

MAX_LENGTH = 127
VAULT_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")

_ESCAPE = {"-": "--", "/": "-s", ".": "-d", "_": "-u"}
_UNESCAPE = {v[1]: k for k, v in _ESCAPE.items()}
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HEX = frozenset("0123456789abcdef")

Mode = Literal["escape", "verbatim"]
MODES: tuple[Mode, ...] = ("escape", "verbatim")


class UnstorableName(InvalidInput, ValueError):
    """A name that cannot be stored in Key Vault (the message says why, without a value)."""


def encode(name: str) -> str:
    """The Key Vault name for ``name`` (escape mode); raises UnstorableName when it cannot fit."""
    if not name:
        raise UnstorableName("the name is empty")
    out: list[str] = []
    for ch in name:
        if ch in _PLAIN:
            out.append(ch)
        elif ch in _ESCAPE:
            out.append(_ESCAPE[ch])
        elif "A" <= ch <= "Z":
            out.append("-c" + ch.lower())
        else:
            out.extend(f"-x{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    encoded = "".join(out)
    if len(encoded) > MAX_LENGTH:
        raise UnstorableName(
            f"the Key Vault form of the name is {len(encoded)} characters ({encoded[:40]}...); "
            f"Key Vault allows {MAX_LENGTH} (each '-', '/', '.', '_' or capital letter takes two, "
            "other characters four per UTF-8 byte)"
        )
    return encoded


def decode(vault_name: str) -> str | None:
    """The secretsync name a vault name encodes, or None when it is not a canonical encoding."""
    text = vault_name.lower()
    out: list[str] = []
    pending = bytearray()
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "-":
            if ch not in _PLAIN:
                return None
            if pending:
                return None  # a -x run must be followed by a complete character (checked below)
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            return None
        code = text[i + 1]
        if code == "x":
            digits = text[i + 2:i + 4]
            if len(digits) != 2 or not set(digits) <= _HEX:
                return None
            pending.append(int(digits, 16))
            i += 4
            # Flush when the byte run ends (next token is not another -x).
            if not text.startswith("-x", i):
                try:
                    out.append(pending.decode("utf-8"))
                except UnicodeDecodeError:
                    return None
                pending.clear()
            continue
        if pending:
            return None
        if code == "c":
            if i + 2 >= n or not ("a" <= text[i + 2] <= "z"):
                return None
            out.append(text[i + 2].upper())
            i += 3
        elif code in _UNESCAPE:
            out.append(_UNESCAPE[code])
            i += 2
        else:
            return None
    if pending:
        return None
    name = "".join(out)
    try:
        canonical = encode(name)
    except UnstorableName:
        return None
    return name if canonical == text else None


#: What a remoteRef key names in Key Vault: a secret, a certificate or a key (ESO's object types).
Kind = Literal["secret", "cert", "key"]
#: Keys naming objects that are not secrets: the secrets listing never holds them.
NON_SECRET_PREFIXES = ("cert/", "key/")


def _object_name(name: str) -> tuple[Kind, str]:
    """ESO's ``secret/NAME`` is the secret NAME, ``cert/NAME`` the certificate NAME and ``key/NAME``
    the key NAME (ESO splits at the first ``/``); a name with no such prefix is a secret."""
    prefix, sep, rest = name.partition("/")
    kind = _KINDS.get(prefix) if sep else None
    return (kind, rest) if kind is not None else ("secret", name)


_KINDS: dict[str, Kind] = {"secret": "secret", "cert": "cert", "key": "key"}


_KIND_WORD = {"secret": "secret", "cert": "certificate", "key": "key"}


class NameCodec:
    """Maps names both ways in one mode (``verbatim`` by default, or ``escape``)."""

    def __init__(self, mode: Mode = "verbatim") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown name encoding {mode!r}")
        self.mode: Mode = mode

    def to_vault(self, name: str) -> str:
        """The vault name of a secret; a ``cert/`` or ``key/`` key is refused (it names no secret)."""
        kind, vault_name = self.resolve(name)
        if kind != "secret":
            raise UnstorableName(f"'{kind}/' names a Key Vault {_KIND_WORD[kind]}, not a secret")
        return vault_name

    def resolve(self, name: str) -> tuple[Kind, str]:
        """Which object a key names and its vault name. Only ``verbatim`` (ESO's names) reads
        the prefixes: in ``escape`` every name is a secret's, ``/`` included."""
        if self.mode == "verbatim":
            kind, name = _object_name(name)
            if not VAULT_NAME.match(name):
                raise UnstorableName(
                    "Key Vault names are 1-127 letters, digits and dashes "
                    "(use nameEncoding: escape to store other names)"
                )
            return kind, name
        return "secret", encode(name)

    def addressed_name(self, name: str) -> str:
        """The key a read of ``name`` really addresses, as ``allowedKeyPrefix`` is compared with it:
        a secret's bare name (``secret/NAME`` is the secret ``NAME``, the name the listing gives),
        ``cert/NAME`` and ``key/NAME`` for the other objects. In ``escape`` the key is its own
        address (the encoding is injective and prefix-preserving). Raises UnstorableName."""
        kind, vault_name = self.resolve(name)
        if self.mode == "escape":
            return name
        return vault_name if kind == "secret" else f"{kind}/{vault_name}"

    def unlisted_prefixes(self) -> tuple[str, ...]:
        """Key prefixes the secrets listing never holds (certificates and keys, verbatim only)."""
        return NON_SECRET_PREFIXES if self.mode == "verbatim" else ()

    def from_vault(self, vault_name: str) -> str | None:
        if self.mode == "verbatim":
            return vault_name
        return decode(vault_name)
