"""The one type that carries a secret value through secretsync.

Why a type and not ``str``/``bytes``: a value that reaches a log line, an exception
message, a Kubernetes Event, a status field or a debugger repr is a leak. Every path that
could print a ``SecretValue`` (``repr``, ``str``, ``format``, ``%s``, f-strings, logging,
pickling) shows ``***``. Getting the real bytes out takes an explicit, greppable call:
:meth:`SecretValue.reveal` or :meth:`SecretValue.reveal_text`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, NoReturn

MASK = "***"


class SecretValue:
    """An opaque secret value (text or binary) whose every printable form is ``***``."""

    __slots__ = ("__data",)

    def __init__(self, data: bytes | bytearray | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes | bytearray):
            raise TypeError(f"SecretValue takes bytes or str, not {type(data).__name__}")
        self.__data = bytes(data)

    # -- explicit access -------------------------------------------------------------
    def reveal(self) -> bytes:
        """The raw bytes. Call only where the value must leave secretsync (a provider, a Secret)."""
        return self.__data

    def reveal_text(self) -> str:
        """The value as UTF-8 text; raises ValueError (without the value) on binary data."""
        try:
            return self.__data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("secret value is binary, not UTF-8 text") from None

    @property
    def is_text(self) -> bool:
        """Whether the value decodes as UTF-8 (providers that store strings need this)."""
        try:
            self.__data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def b64(self) -> str:
        """Base64 of the value, for a Kubernetes Secret's ``data`` (still a secret!)."""
        return base64.b64encode(self.__data).decode("ascii")

    @classmethod
    def from_b64(cls, encoded: str) -> SecretValue:
        return cls(base64.b64decode(encoded, validate=True))

    def digest(self, key: bytes) -> str:
        """A keyed hash (HMAC-SHA256) of the value: safe to store, compare, annotate.

        Keyed so that a low-entropy value cannot be brute-forced from the annotation.
        """
        return hmac.new(key, self.__data, hashlib.sha256).hexdigest()

    def json_property(self, prop: str) -> SecretValue:
        """One property of a JSON object value (dotted path for nesting), as a new SecretValue.

        Raises KeyError naming the property (never the value) when it is absent or the
        value is not a JSON object.
        """
        try:
            doc: Any = json.loads(self.__data)
        except ValueError:
            raise KeyError(f"property {prop!r}: the secret is not a JSON object") from None
        current: Any = doc
        if isinstance(current, dict) and prop in current:
            current = current[prop]
        else:
            for part in prop.split("."):
                if not isinstance(current, dict) or part not in current:
                    raise KeyError(f"property {prop!r} not found in the secret") from None
                current = current[part]
        if isinstance(current, str):
            return SecretValue(current)
        return SecretValue(json.dumps(current, separators=(",", ":")))

    def __len__(self) -> int:
        return len(self.__data)

    def __bool__(self) -> bool:
        return bool(self.__data)

    # -- equality without timing leaks ------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self.__data, other.__data)

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self.__data).digest())

    # -- every printable form is masked ----------------------------------------------
    def __repr__(self) -> str:
        return f"SecretValue({MASK})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled (it would write the value out)")

    def __copy__(self) -> SecretValue:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretValue:
        return self
