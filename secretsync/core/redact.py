"""Keep secret values out of SDK log records and SDK error text.

Why here and not only in the CLI: the CLI pins SDK loggers at WARNING, but a library user
(the controller, anyone embedding secretsync) configures logging their own way, and at
DEBUG botocore logs every request and response body (``Response body: b'{"SecretString":
...}'``) and the Secret Manager transport attaches every payload to its records. The
provider adapters therefore put :class:`SdkBodyRedactor` on the exact loggers that dump
bodies, when they are imported; whatever the logging configuration, those records reach
handlers with their bodies replaced by a marker.

Why on the emitting loggers: a ``logging.Filter`` on a logger applies only to records
created by that logger, not to those propagating from children, so a filter on
``botocore`` would not see ``botocore.parsers``. Adapters name the exact loggers.

:func:`mask_values` is for error text that might quote a value the adapter knows (the
one being written): the raw text, its JSON-escaped and base64 forms are all masked.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .values import MASK, SecretValue

#: What replaces a redacted log argument or payload.
REDACTED = "<redacted by secretsync: may hold a secret value>"
#: Shorter values are not masked in error text (they would blank out ordinary words).
MIN_MASKED_LENGTH = 4

#: Record attributes (``extra=``) that hold a request/response as a mapping (google-api-core's
#: structured client logging: ``request``/``response`` over gRPC, ``httpRequest``/``httpResponse``
#: over REST, ``metadata`` for the headers).
_STRUCTURED_EXTRAS = ("request", "response", "httpRequest", "httpResponse", "metadata")
#: Keys of those mappings that hold a body or a credential.
_SENSITIVE_KEYS = frozenset({"payload", "body", "authorization", "x-goog-api-key", "x-vault-token"})


def _forms(value: SecretValue | bytes | str) -> list[str]:
    """The spellings of a value that an SDK message or body may contain."""
    raw = value.reveal() if isinstance(value, SecretValue) else (
        value.encode("utf-8") if isinstance(value, str) else bytes(value))
    forms: list[str] = []
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        forms += [text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]]
    forms.append(repr(raw)[2:-1])
    b64 = base64.b64encode(raw).decode("ascii")
    forms += [b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")]
    return sorted({f for f in forms if len(f) >= MIN_MASKED_LENGTH}, key=len, reverse=True)


def mask_values(text: str, values: Iterable[SecretValue | bytes | str | None]) -> str:
    """``text`` with every known spelling of each value replaced by ``***``."""
    for value in values:
        if value is None:
            continue
        for form in _forms(value):
            if form in text:
                text = text.replace(form, MASK)
    return text


def contains_value(text: str, values: Iterable[SecretValue | bytes | str | None]) -> bool:
    return mask_values(text, values) != text


class SdkBodyRedactor(logging.Filter):
    """Replaces the arguments and payload extras of every record with :data:`REDACTED`.

    Only put on loggers whose job is dumping requests and responses (``botocore.parsers``,
    ``botocore.endpoint``, the Secret Manager gRPC transport): their message templates stay
    readable ("Response body: <redacted...>"), numbers stay, bodies go.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            if isinstance(record.args, Mapping):
                record.args = {k: self._scrub(v) for k, v in record.args.items()}
            else:
                record.args = tuple(self._scrub(a) for a in record.args)
        if isinstance(record.msg, bytes | bytearray | Mapping | list | tuple):
            record.msg = REDACTED
        for extra in _STRUCTURED_EXTRAS:
            holder = record.__dict__.get(extra)
            if isinstance(holder, Mapping):
                record.__dict__[extra] = _scrub_mapping(holder, depth=3)
        return True

    @staticmethod
    def _scrub(arg: Any) -> Any:
        if arg is None or isinstance(arg, bool | int | float):
            return arg
        if isinstance(arg, str | bytes | bytearray | memoryview | Mapping | list | tuple | set):
            return REDACTED
        return arg  # objects log their repr (OperationModel(name=GetSecretValue)): no body


def _scrub_mapping(mapping: Mapping[Any, Any], depth: int) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() in _SENSITIVE_KEYS:
            out[key] = REDACTED
        elif isinstance(value, Mapping) and depth > 0:
            out[key] = _scrub_mapping(value, depth - 1)
        else:
            out[key] = value
    return out


_guard_lock = threading.Lock()
_REDACTOR = SdkBodyRedactor("secretsync")


def guard_sdk_loggers(names: Iterable[str]) -> None:
    """Put the redactor on each named logger (idempotent; safe to call at every import)."""
    with _guard_lock:
        for name in names:
            logger = logging.getLogger(name)
            if _REDACTOR not in logger.filters:
                logger.addFilter(_REDACTOR)
