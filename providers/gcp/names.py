"""Secret names <-> Secret Manager secret ids, and tags <-> labels.

Why an escape scheme: a Secret Manager secret id may only hold ``[A-Za-z0-9_-]`` (1-255
characters), while secretsync names are paths such as ``team/app.db``. The mapping must be
*injective* (two names never share an id, or one secret would overwrite another) and
*reversible* (``list`` must give back the names that were written), and it should leave the
ids people already have alone.

The scheme:

* ``A-Z a-z 0-9 -`` stay as they are;
* every other character becomes its UTF-8 bytes, each written ``_HH_`` (two UPPERCASE hex
  digits between underscores): ``/`` -> ``_2F_``, ``.`` -> ``_2E_``, ``é`` -> ``_C3__A9_``;
* ``_`` stays a plain ``_`` unless what follows it in the id would read as an escape
  (``HH_``), in which case it is written ``_5F_`` itself.

Decoding reads left to right: ``_HH_`` is a byte, any other ``_`` is a literal underscore.
So every id that does not happen to contain ``_HH_`` (``db_password``, ``API-KEY``) maps to
itself, and ``encode`` has ``decode`` as exact inverse (the tests check this with random
names). An id created outside secretsync that contains ``_2F_`` lists as a name with a
``/`` in it, which is also the name that addresses it, so it stays reachable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from secretsync.core.errors import InvalidConfig

MAX_ID_LENGTH = 255
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_ESCAPE_TAIL = re.compile(r"[0-9A-F]{2}_")
_ESCAPE = re.compile(r"_([0-9A-F]{2})_")
SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def encode_secret_id(name: str) -> str:
    """The secret id that stores ``name``; raises InvalidConfig naming the secret if impossible."""
    if not isinstance(name, str) or not name:
        raise InvalidConfig("secret name must be a non-empty string", provider="gcp", operation="name",
                            key=str(name))
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidConfig("secret name contains a control character", provider="gcp", operation="name",
                            key=name)
    # Encode right to left: whether a '_' needs escaping depends on what follows it.
    out: list[str] = []
    tail = ""
    for char in reversed(name):
        if char in _PLAIN:
            piece = char
        elif char == "_":
            piece = "_5F_" if _ESCAPE_TAIL.match(tail) else "_"
        else:
            piece = "".join(f"_{b:02X}_" for b in char.encode("utf-8"))
        out.append(piece)
        tail = piece + tail[:3]
    secret_id = "".join(reversed(out))
    if len(secret_id) > MAX_ID_LENGTH:
        raise InvalidConfig(
            f"secret name is too long for Secret Manager once escaped ({len(secret_id)} > {MAX_ID_LENGTH} "
            "characters; each character outside [A-Za-z0-9_-] takes 4 per UTF-8 byte)",
            provider="gcp", operation="name", key=name,
        )
    return secret_id


def decode_secret_id(secret_id: str) -> str:
    """The secretsync name of a secret id (any valid id decodes; see the module docstring)."""
    raw = bytearray()
    i = 0
    while i < len(secret_id):
        match = _ESCAPE.match(secret_id, i)
        if match:
            raw.append(int(match.group(1), 16))
            i = match.end()
        else:
            raw.extend(secret_id[i].encode("utf-8"))
            i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # An id made outside secretsync whose escapes are not UTF-8 (``_FF_``): list it as is.
        return secret_id


def prefix_search_token(prefix: str) -> str:
    """The longest piece of ``encode(name)`` that every name starting with ``prefix`` contains.

    Used for the server-side ``name:`` filter (a substring match). Only a ``_`` is encoded
    depending on what follows it, so the token stops before the first ``_`` of the prefix.
    """
    head = prefix.split("_", 1)[0]
    if not head:
        return ""
    try:
        return encode_secret_id(head)
    except InvalidConfig:
        return ""


# -- labels -------------------------------------------------------------------------------------
MAX_LABELS = 64


def _label_char_ok(char: str, first: bool) -> bool:
    category = unicodedata.category(char)
    if category in ("Ll", "Lo"):
        return True
    if first:
        return False
    return category.startswith("N") or char in "_-"


def label_problem(key: str, value: str) -> str | None:
    """Why ``key=value`` cannot be a Secret Manager label, or None when it can."""
    if not key or len(key) > 63 or len(key.encode("utf-8")) > 128:
        return "label keys must be 1-63 characters"
    if not all(_label_char_ok(c, i == 0) for i, c in enumerate(key)):
        return ("label keys must start with a lowercase letter and hold only lowercase letters, digits, "
                "'_' and '-'")
    if len(value) > 63 or len(value.encode("utf-8")) > 128:
        return "label values must be at most 63 characters"
    if not all(_label_char_ok(c, False) for c in value):
        return "label values may hold only lowercase letters, digits, '_' and '-'"
    return None


def tags_to_labels(tags: Mapping[str, str], *, name: str) -> dict[str, str]:
    """Tags become labels unchanged; a tag that cannot be a label is rejected, naming it.

    Why reject rather than rewrite (lowercase, replace): a rewritten tag would not read
    back as what was written, and two tags could collapse into one label.
    """
    if len(tags) > MAX_LABELS:
        raise InvalidConfig(f"at most {MAX_LABELS} tags (labels) per secret, got {len(tags)}",
                            provider="gcp", operation="put", key=name)
    labels: dict[str, str] = {}
    for key, value in tags.items():
        problem = label_problem(str(key), str(value))
        if problem:
            raise InvalidConfig(f"tag {key!r}: {problem}", provider="gcp", operation="put", key=name)
        labels[str(key)] = str(value)
    return labels
