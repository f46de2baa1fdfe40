"""Value-free records of text edits, from which the original bytes come back exactly.

Why: rollback must restore every file byte for byte, yet the journal may not hold a
single value. So for each rewritten file the journal keeps the *reverse* hunks (the
original lines a hunk replaced) with every occurrence of a migrated value swapped for a
token that names where the value now lives (the plan's secret id; the journal maps it to
a provider key and version). Rollback reads the values back from the provider, fills the
tokens in, and checks the result against the original's keyed digest.

A value can stand in text in several spellings: as is, base64 (Secret ``data``),
JSON/YAML double-quoted escapes, YAML single-quoted escapes, and, for a multi-line value
held in a block scalar, line by line behind the block's indentation. Each spelling has
its own token encoding. Masked diffs for humans use the same machinery with ``***``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from secretsync.core.errors import SecretSyncError
from secretsync.core.values import SecretValue

_TOKEN = re.compile("\x00([^\x00|]+)\\|([a-z0-9]+)(?::(\\d+))?\x00")
MASK = "***"


class RestoreError(SecretSyncError, ValueError):
    """A reverse edit does not fit the current text, or a token cannot be filled."""


@dataclass(frozen=True, slots=True)
class Spelling:
    text: str
    enc: str
    line: int | None = None


def spellings(value: SecretValue) -> list[Spelling]:
    """Every form in which ``value`` may appear in a manifest, longest first."""
    out: list[Spelling] = [Spelling(value.b64(), "b64")]
    if value.is_text:
        raw = value.reveal_text()
        out.append(Spelling(raw, "raw"))
        js = json.dumps(raw, ensure_ascii=False)[1:-1]
        if js != raw:
            out.append(Spelling(js, "json"))
        sq = raw.replace("'", "''")
        if sq != raw:
            out.append(Spelling(sq, "sq"))
    return sorted((s for s in out if s.text), key=lambda s: -len(s.text))


def _line_fragments(value: SecretValue) -> list[Spelling]:
    if not value.is_text:
        return []
    lines = value.reveal_text().split("\n")
    if len(lines) < 2:
        return []
    return [Spelling(ln, "line", i) for i, ln in enumerate(lines) if ln.strip()]


def render(value: SecretValue, enc: str, line: int | None) -> str:
    if enc == "b64":
        return value.b64()
    raw = value.reveal_text()
    if enc == "raw":
        return raw
    if enc == "json":
        return json.dumps(raw, ensure_ascii=False)[1:-1]
    if enc == "sq":
        return raw.replace("'", "''")
    if enc == "line" and line is not None:
        return raw.split("\n")[line]
    raise RestoreError(f"unknown token encoding {enc!r}")


def template(text: str, values: Mapping[str, SecretValue]) -> str:
    """``text`` with every spelling of every value replaced by a token naming its id."""
    if "\x00" in text:
        raise RestoreError("text holds NUL characters; cannot template it")
    subs: list[tuple[str, str]] = []
    for vid, value in values.items():
        if "|" in vid or "\x00" in vid:
            raise RestoreError(f"bad value id {vid!r}")
        for sp in spellings(value):
            subs.append((sp.text, f"\x00{vid}|{sp.enc}\x00"))
    subs.sort(key=lambda s: -len(s[0]))
    out = _replace_outside_tokens(text, subs)
    frags = [(vid, sp) for vid, value in values.items() for sp in _line_fragments(value)]
    if frags:
        lines = out.splitlines(keepends=True)
        for i, line in enumerate(lines):
            body = line.rstrip("\r\n")
            ending = line[len(body):]
            stripped = body.lstrip(" \t")
            indent = body[: len(body) - len(stripped)]
            for vid, sp in frags:
                if stripped == sp.text:
                    lines[i] = f"{indent}\x00{vid}|line:{sp.line}\x00{ending}"
                    break
        out = "".join(lines)
    return out


def _replace_outside_tokens(text: str, subs: list[tuple[str, str]]) -> str:
    """Replace longest-first, never inside a token already placed."""
    parts: list[tuple[str, bool]] = [(text, False)]  # (chunk, is_token)
    for needle, token in subs:
        nxt: list[tuple[str, bool]] = []
        for chunk, is_tok in parts:
            if is_tok or needle not in chunk:
                nxt.append((chunk, is_tok))
                continue
            pieces = chunk.split(needle)
            for k, piece in enumerate(pieces):
                if piece:
                    nxt.append((piece, False))
                if k < len(pieces) - 1:
                    nxt.append((token, True))
        parts = nxt
    return "".join(chunk for chunk, _ in parts)


def tokens_in(text: str) -> set[str]:
    """The value ids a template refers to."""
    return {m.group(1) for m in _TOKEN.finditer(text)}


def fill(text: str, resolve: Callable[[str], SecretValue]) -> str:
    """Replace each token with its value (``resolve(id)``) in the token's spelling."""
    cache: dict[str, SecretValue] = {}

    def sub(m: re.Match[str]) -> str:
        vid, enc, line = m.group(1), m.group(2), m.group(3)
        if vid not in cache:
            cache[vid] = resolve(vid)
        return render(cache[vid], enc, int(line) if line else None)

    return _TOKEN.sub(sub, text)


def mask(text: str) -> str:
    """A template for human eyes: every token shown as ``***``."""
    return _TOKEN.sub(MASK, text)


def reverse_hunks(old: str, new: str, values: Mapping[str, SecretValue]) -> list[dict[str, Any]]:
    """Hunks that turn ``new`` back into ``old``, holding tokens instead of values.

    Each hunk: ``at`` (first line in ``new``), ``count`` (lines of ``new`` it replaces),
    ``old`` (the templated original lines).
    """
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    hunks = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        hunks.append({"at": j1, "count": j2 - j1, "old": template("".join(a[i1:i2]), values)})
    return hunks


def apply_reverse(new: str, hunks: Iterable[Mapping[str, Any]], resolve: Callable[[str], SecretValue]) -> str:
    lines = new.splitlines(keepends=True)
    for h in sorted(hunks, key=lambda h: int(h["at"]), reverse=True):
        at, count = int(h["at"]), int(h["count"])
        if at + count > len(lines):
            raise RestoreError("the file is shorter than the recorded edit")
        lines[at : at + count] = [fill(str(h["old"]), resolve)]
    return "".join(lines)


def masked_diff(old: str, new: str, values: Mapping[str, SecretValue], name: str) -> str:
    """A unified diff with every value shown as ``***`` (for plan output and review)."""
    a = mask(template(old, values)).splitlines(keepends=True)
    b = mask(template(new, values)).splitlines(keepends=True)
    out = "".join(difflib.unified_diff(a, b, f"a/{name}", f"b/{name}", n=2))
    if out and not out.endswith("\n"):
        out += "\n"
    return out

