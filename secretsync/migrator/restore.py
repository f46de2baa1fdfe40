"""Value-free records of text edits, from which the original bytes come back exactly.

Why: rollback must restore every file byte for byte, yet the journal may not hold a
single value. So for each rewritten file the journal keeps the *reverse* hunks (the
original lines a hunk replaced) with every occurrence of a migrated value swapped for a
token that names where the value now lives (the plan's secret id; the journal maps it to
a provider key and version). Rollback reads the values back from the provider, fills the
tokens in, and checks the result against the original's keyed digest.

A value can stand in text in several spellings: as is, base64 (Secret ``data``),
JSON/YAML double-quoted escapes, Go's JSON escapes (``kubectl``'s last-applied annotation
writes ``<``, ``>``, ``&`` as ``\u003c``...), YAML single-quoted escapes, for a multi-line
value held in a block scalar line by line behind the block's indentation, and for base64
wrapped over several lines (``data: {key: |`` with 76-column lines) piece by piece: any
run of base64 characters that is a piece of a value's base64 becomes a token naming the
piece (``b64at:offset:length``), which renders back to exactly those characters. Each
spelling has its own token encoding. Masked diffs for humans use the same machinery with ``***``.
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

_TOKEN = re.compile("\x00([^\x00|]+)\\|([a-z0-9]+)(?::(\\d+))?(?::(\\d+))?\x00")
MASK = "***"
#: Values shorter than this are left as they are (in journals and masked diffs alike).
MIN_TEMPLATED = 4


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
        go = _go_json(js)
        if go != js:
            out.append(Spelling(go, "gojson"))
        ascii_js = json.dumps(raw)[1:-1]
        if ascii_js not in (js, go):
            out.append(Spelling(ascii_js, "asciijson"))
        for inner, enc in ((js, "json2"), (go, "gojson2")):  # JSON in a JSON/YAML "..." string
            twice = json.dumps(inner, ensure_ascii=False)[1:-1]
            if twice != inner:
                out.append(Spelling(twice, enc))
        sq = raw.replace("'", "''")
        if sq != raw:
            out.append(Spelling(sq, "sq"))
    unique = {sp.text: sp for sp in reversed(out) if sp.text}  # the first spelling of a text wins
    return sorted(unique.values(), key=lambda s: -len(s.text))


def _go_json(js: str) -> str:
    """Go's encoding/json spelling of a JSON string body: HTML-safe escapes on top of JSON's."""
    return (js.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


_B64_RUN = re.compile(r"[A-Za-z0-9+/]{4,}={0,2}")
#: Shortest base64 run taken for a piece of a value (shorter runs are ordinary words).
_B64_PIECE = 8


def _line_fragments(value: SecretValue) -> list[Spelling]:
    if not value.is_text:
        return []
    lines = value.reveal_text().split("\n")
    if len(lines) < 2:
        return []
    return [Spelling(ln, "line", i) for i, ln in enumerate(lines) if ln.strip()]


def render(value: SecretValue, enc: str, line: int | None, length: int | None = None) -> str:
    if enc == "b64":
        return value.b64()
    if enc == "b64at" and line is not None and length is not None:
        return value.b64()[line : line + length]
    if enc == "rawat" and line is not None and length is not None:
        return value.reveal_text()[line : line + length]
    raw = value.reveal_text()
    if enc == "raw":
        return raw
    if enc == "json":
        return json.dumps(raw, ensure_ascii=False)[1:-1]
    if enc == "sq":
        return raw.replace("'", "''")
    if enc == "line" and line is not None:
        return raw.split("\n")[line]
    if enc == "gojson":
        return _go_json(json.dumps(raw, ensure_ascii=False)[1:-1])
    if enc == "asciijson":
        return json.dumps(raw)[1:-1]
    if enc in ("json2", "gojson2"):
        inner = json.dumps(raw, ensure_ascii=False)[1:-1]
        if enc == "gojson2":
            inner = _go_json(inner)
        return json.dumps(inner, ensure_ascii=False)[1:-1]
    raise RestoreError(f"unknown token encoding {enc!r}")


def template(text: str, values: Mapping[str, SecretValue]) -> str:
    """``text`` with every spelling of every value replaced by a token naming its id."""
    if "\x00" in text:
        raise RestoreError("text holds NUL characters; cannot template it")
    subs: list[tuple[str, str]] = []
    for vid, value in values.items():
        if "|" in vid or "\x00" in vid:
            raise RestoreError(f"bad value id {vid!r}")
        if len(value) < MIN_TEMPLATED:
            continue  # "y", "1": too short to be a secret, and everywhere in a file
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
    return _template_b64_pieces(_template_folded_pieces(out, values), values)


_FOLDED_LINE = re.compile(r"^(?P<head>\s*(?:-\s+)?(?:[^\s:#][^:#]*:\s+)?[\"']?)(?P<body>.*?)(?P<tail>[\"']?\s*)$")


def _template_folded_pieces(text: str, values: Mapping[str, SecretValue]) -> str:
    """Lines that hold one piece of a value folded over several lines (``>`` blocks, plain or
    quoted multi-line scalars fold line breaks into spaces) -> a token naming the piece."""
    spaced = [(vid, v.reveal_text()) for vid, v in values.items()
              if v.is_text and len(v) >= _B64_PIECE and any(c in v.reveal_text() for c in " \t\n")]
    if not spaced:
        return text
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if "\x00" in line:
            continue
        body = line.rstrip("\r\n")
        match = _FOLDED_LINE.match(body)
        if match is None:
            continue
        for part, start in ((body.strip(), body.find(body.strip())), (match.group("body"), match.start("body"))):
            if len(part) < _B64_PIECE:
                continue
            hit = next(((vid, raw.find(part)) for vid, raw in spaced if part in raw), None)
            if hit is not None:
                vid, at = hit
                lines[i] = f"{body[:start]}\x00{vid}|rawat:{at}:{len(part)}\x00{body[start + len(part):]}" \
                    + line[len(body):]
                break
    return "".join(lines)


def _template_b64_pieces(text: str, values: Mapping[str, SecretValue]) -> str:
    """Runs of base64 characters that are pieces of a value's base64 (wrapped lines) -> tokens."""
    encoded = [(vid, value.b64()) for vid, value in values.items() if len(value.b64()) > _B64_PIECE]
    if not encoded:
        return text
    out: list[str] = []
    for chunk in re.split("(\x00[^\x00]*\x00)", text):
        if chunk.startswith("\x00"):
            out.append(chunk)
            continue

        def piece(match: re.Match[str]) -> str:
            run = match.group(0)
            if len(run) < _B64_PIECE:
                return run
            for vid, b64 in encoded:
                at = b64.find(run)
                if at >= 0:
                    return f"\x00{vid}|b64at:{at}:{len(run)}\x00"
            return run

        out.append(_B64_RUN.sub(piece, chunk))
    return "".join(out)


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
        vid, enc, line, length = m.group(1), m.group(2), m.group(3), m.group(4)
        if vid not in cache:
            cache[vid] = resolve(vid)
        return render(cache[vid], enc, int(line) if line else None, int(length) if length else None)

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


def value_free_reverse(old: str, new: str, values: Mapping[str, SecretValue], where: str) -> list[dict[str, Any]]:
    """Reverse hunks for a rewrite, checked: they bring back ``old`` exactly and hold no value.

    RestoreError (naming ``where``, never a value) when a value would stay in the record in a
    spelling the templates do not know; plan runs the same check, so apply does not meet it.
    """
    hunks = reverse_hunks(old, new, values)
    if apply_reverse(new, hunks, values.__getitem__) != old:
        raise RestoreError(f"{where}: cannot record a restorable edit")
    check_value_free("".join(str(h["old"]) for h in hunks), values, where)
    return hunks


def check_value_free(templated: str, values: Mapping[str, SecretValue], where: str) -> None:
    """RestoreError when a template still holds a value (in a spelling, or a long piece of it)."""
    blob = mask(templated)
    for v in values.values():
        if len(v) >= MIN_TEMPLATED and any(sp.text in blob for sp in spellings(v) if len(sp.text) >= MIN_TEMPLATED):
            raise RestoreError(f"{where}: a value would remain in the journal; refusing")
        if v.is_text and any(len(w) >= 2 * _B64_PIECE and w in blob for w in v.reveal_text().split()):
            raise RestoreError(f"{where}: a piece of a value would remain in the journal; refusing")


def apply_reverse(new: str, hunks: Iterable[Mapping[str, Any]], resolve: Callable[[str], SecretValue]) -> str:
    lines = new.splitlines(keepends=True)
    for h in sorted(hunks, key=lambda h: int(h["at"]), reverse=True):
        at, count = int(h["at"]), int(h["count"])
        if at + count > len(lines):
            raise RestoreError("the file is shorter than the recorded edit")
        lines[at : at + count] = [fill(str(h["old"]), resolve)]
    return "".join(lines)


def display_mask(text: str, values: Mapping[str, SecretValue]) -> str:
    """``text`` for human eyes: the occurrences of each value masked, the structure left readable.

    Unlike :func:`template` (which must leave no trace of a value in a journal, and so also
    takes any line equal to a line of a multi-line value), a multi-line value is masked only
    where it stands whole, as a block scalar: consecutive lines at one indentation that spell
    it. ``metadata:`` elsewhere in the file stays ``metadata:``. Base64 forms (also wrapped)
    and the quoted spellings are masked as in the journal; a line that still holds a long
    piece of a value (a folded scalar) is masked whole, so no value is ever shown.
    """
    subs: list[tuple[str, str]] = []
    for vid, value in values.items():
        if len(value) < MIN_TEMPLATED:
            continue
        subs += [(sp.text, f"\x00{vid}|{sp.enc}\x00") for sp in spellings(value)]
    subs.sort(key=lambda s: -len(s[0]))
    lines = text.splitlines(keepends=True)
    for vid, value in values.items():
        if not value.is_text or "\n" not in value.reveal_text().rstrip("\n"):
            continue
        want = value.reveal_text().rstrip("\n").split("\n")
        i = 0
        while i + len(want) <= len(lines):
            body = lines[i].rstrip("\r\n")
            indent = body[: len(body) - len(body.lstrip(" \t"))]
            if body.strip() and all(
                    lines[i + k].rstrip("\r\n") == (indent + w if w.strip() else lines[i + k].rstrip("\r\n"))
                    and (w.strip() or not lines[i + k].strip()) for k, w in enumerate(want)):
                for k in range(len(want)):
                    if want[k].strip():
                        ending = lines[i + k][len(lines[i + k].rstrip("\r\n")):]
                        lines[i + k] = f"{indent}\x00{vid}|line:{k}\x00{ending}"
                i += len(want)
                continue
            i += 1
    out = _template_b64_pieces(_replace_outside_tokens("".join(lines), subs), values)
    spaced = [v.reveal_text() for v in values.values() if v.is_text]
    masked = []
    for line in out.splitlines(keepends=True):
        if any(len(w) >= 2 * _B64_PIECE and w in raw for raw in spaced for w in _TOKEN.sub(" ", line).split()):
            line = _TOKEN.sub("", line)[: len(line) - len(line.lstrip())] + MASK + "\n"
        masked.append(line)
    return mask("".join(masked))


def masked_diff(old: str, new: str, values: Mapping[str, SecretValue], name: str) -> str:
    """A unified diff with every value shown as ``***`` (for plan output and review)."""
    a = display_mask(old, values).splitlines(keepends=True)
    b = display_mask(new, values).splitlines(keepends=True)
    out = "".join(difflib.unified_diff(a, b, f"a/{name}", f"b/{name}", n=2))
    if out and not out.endswith("\n"):
        out += "\n"
    return out

