"""Regular expressions written by users (tenants, store authors, CLI users) run on RE2.

Why RE2 and not :mod:`re`: a tenant's ``find.name.regexp`` or ``rewrite.regexp.source``
runs inside the controller, next to every other tenant's work. Python's backtracking
engine takes exponential time on patterns like ``(a+)+$`` and holds the GIL meanwhile, so
one ExternalSecret could stall the whole controller (health probes included). RE2 matches
in time linear in the input and bounds its own memory; it is also the engine (and the
syntax) External Secrets Operator uses through Go's ``regexp``, so ESO patterns mean the
same here. Constructs RE2 does not have (backreferences, lookaround) are refused with a
clear error rather than run on a slower engine.

Compiled patterns are cached: the same few patterns are matched against every listed name
on every cycle.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

from .errors import InvalidInput

#: Longest pattern accepted; RE2 bounds its program size too, this keeps the error clear.
MAX_PATTERN = 4096


class RegexError(InvalidInput, ValueError):
    """A pattern RE2 cannot (or will not) compile. The message names the problem, not input."""


@functools.lru_cache(maxsize=1024)
def compile_user_regex(pattern: str) -> Any:
    """Compile ``pattern`` with RE2 (Go ``regexp`` syntax); raise :class:`RegexError`."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"pattern longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False  # RE2 would print the pattern to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise RegexError(f"not a valid RE2 (Go regexp) pattern: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    """RE2's own words ("invalid perl operator: (?<"): they quote the pattern, never input."""
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text[:200] or "syntax error"


def check_user_regex(pattern: str) -> str | None:
    """The problem with ``pattern`` for a validation message, or None when it compiles."""
    try:
        compile_user_regex(pattern)
    except RegexError as exc:
        return str(exc)
    return None


def search(pattern: str, text: str) -> bool:
    """Unanchored match, as Go's ``MatchString`` (and ESO's ``find.name.regexp``)."""
    return compile_user_regex(pattern).search(text) is not None


_GO_GROUP = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


def replace_all(pattern: str, template: str, text: str) -> str:
    """Go's ``ReplaceAllString``: every match replaced, ``$1`` / ``${name}`` / ``$$`` expanded.

    The expansion is done here (not by the engine's own template syntax) so the meaning is
    Go's: an unknown or out-of-range group expands to the empty string, ``$1x`` names group
    ``1x`` (so empty), and backslashes are literal.
    """
    rx = compile_user_regex(pattern)

    def expand(m: Any) -> str:
        groups = {str(i): m.group(i) for i in range(rx.groups + 1)}
        groups.update(m.groupdict())

        def one(g: re.Match[str]) -> str:
            if g.group(0) == "$$":
                return "$"
            return groups.get(g.group(1) or g.group(2)) or ""

        return _GO_GROUP.sub(one, template)

    return str(rx.sub(expand, text))
