"""Edit YAML files in place so that only the edited lines change.

Why not just ``ruamel.yaml`` load/dump: round-tripping keeps comments, key order and
quoting, but it still normalises what it cannot represent (indentation that varies
within a file, spacing after a colon, ``...`` markers, documents it was not asked to
touch). A migration diff must show the secret moving and nothing else, so:

1. the file is split into documents on ``---`` lines and only the documents being edited
   are parsed at all; the rest are kept byte for byte;
2. an edited document is loaded, dumped unedited (``norm``) and dumped edited (``new``);
   the ``norm -> new`` line hunks are then transplanted onto the *original* lines through
   the ``original <-> norm`` alignment, so lines ruamel would have reformatted stay as they
   were unless they are the edited ones;
3. only when a hunk lands on a line ruamel reformatted does the whole document fall back
   to ruamel's output (still comment- and order-preserving).

Line endings (LF/CRLF) and a missing final newline are preserved.
"""

from __future__ import annotations

import difflib
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.representer import RoundTripRepresenter

from secretsync.core.errors import SecretSyncError
from secretsync.manifests.documents import MAX_DEPTH, safe_problem, too_deep
from secretsync.manifests.loader import load_yaml

_MARKER = re.compile(r"^---(?:[ \t]+(?:#.*)?)?$")
_CONTENT = re.compile(r"^(?![ \t]*(?:#|%|$))", re.M)


class RewriteError(SecretSyncError, ValueError):
    """A file cannot be parsed or edited (message names the file and document, never a value)."""


@dataclass(frozen=True, slots=True)
class DocSpan:
    """One YAML document's body in a file: ``text[start:end]``; ``index`` as load_all counts."""

    index: int
    start: int
    end: int


def split_documents(text: str) -> list[DocSpan]:
    """Document bodies in ``text`` (separator lines excluded), indexed as ``load_all`` yields them.

    The part before the first ``---`` counts as a document only when it holds content
    (not just comments, blank lines or directives), matching PyYAML and ruamel.
    """
    spans: list[tuple[int, int, bool]] = []  # start, end, is_after_marker
    pos = 0
    start = 0
    after_marker = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if _MARKER.match(stripped):
            spans.append((start, pos, after_marker))
            start = pos + len(line)
            after_marker = True
        pos += len(line)
    spans.append((start, len(text), after_marker))
    out: list[DocSpan] = []
    for n, (s, e, marked) in enumerate(spans):
        body = text[s:e]
        has_content = bool(_CONTENT.search(body)) and not _only_end_marker(body)
        if marked or has_content:
            # A trailing empty segment after a final '---' still counts (load_all yields None),
            # but an empty tail with no marker (the file's end) does not.
            if not marked and n > 0 and not has_content:
                continue
            out.append(DocSpan(len(out), s, e))
    return out


def _only_end_marker(body: str) -> bool:
    lines = [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return all(ln == "..." for ln in lines)


def _guess_indent(body: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation, guessed from the first nested block of each kind."""
    lines = [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    mapping = None
    offset = None
    for prev, cur in itertools.pairwise(lines):
        p_ind = len(prev) - len(prev.lstrip(" "))
        c_ind = len(cur) - len(cur.lstrip(" "))
        p_body = _strip_comment(prev.strip())
        if not p_body.endswith(":"):
            continue
        if p_body.startswith("- "):
            p_ind += 2
        c_body = cur.strip()
        if c_body.startswith("- ") or c_body == "-":
            if offset is None and c_ind >= p_ind:
                offset = c_ind - p_ind
        elif mapping is None and c_ind > p_ind:
            mapping = c_ind - p_ind
        if mapping is not None and offset is not None:
            break
    m = mapping or 2
    o = offset if offset is not None else 0
    return m, o + 2, o


def _strip_comment(line: str) -> str:
    if "#" not in line or "'" in line or '"' in line:
        return line
    return re.sub(r"\s+#.*$", "", line)


def yaml_for(body: str, indent: tuple[int, int, int] | None = None) -> YAML:
    """A round-trip YAML instance set up to reproduce ``body``'s style as closely as it can."""
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 1 << 16
    m, s, o = indent or _guess_indent(body)
    y.indent(mapping=m, sequence=s, offset=o)
    return y


#: Indentation styles tried, after the guessed one, when an edit lands on reformatted lines.
_STYLES = ((2, 2, 0), (2, 4, 2), (4, 4, 0), (4, 6, 2), (4, 4, 2))


def load(body: str, where: str = "") -> Any:
    """Round-trip load; RewriteError naming the line and problem, never a value."""
    if too_deep(body):
        raise RewriteError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    bounded = load_yaml(body)  # the editor below expands aliases: refuse a bomb first
    if bounded.over_budget:
        raise RewriteError(f"{where}: {bounded.problems[0]}")
    try:
        return yaml_for(body).load(body)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise RewriteError(f"{where}: not valid YAML{at}: {safe_problem(exc)}") from None
    except RecursionError:
        raise RewriteError(f"{where}: nested too deeply") from None


def dump(data: Any, y: YAML) -> str:
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def dump_new(data: Any) -> str:
    """Dump a fresh document (a new manifest) in the kubectl style: 2-space, dash at column; a null is
    spelled ``null`` (a strategic-merge patch deletes with it: a reviewer must see it)."""
    y = YAML(typ="rt")
    y.width = 1 << 16
    y.indent(mapping=2, sequence=2, offset=0)
    y.Representer = _NullSpelled
    return dump(data, y)


class _NullSpelled(RoundTripRepresenter):
    """ruamel's round-trip representer with ``null`` written out (a subclass: the base class stays as is
    for the edits of existing files)."""


_NullSpelled.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))


def _splice(original: str, norm: str, new: str) -> str | None:
    """Transplant the norm->new hunks onto ``original``; None when a hunk hits a reformatted line."""
    a = original.splitlines(keepends=True)
    n = norm.splitlines(keepends=True)
    e = new.splitlines(keepends=True)
    nmap: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, n, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            # Equal lines, or a block ruamel reformatted line for line (``x: null`` -> ``x:``).
            for k in range(j2 - j1):
                nmap[j1 + k] = i1 + k
    result = list(a)
    hunks = [op for op in difflib.SequenceMatcher(None, n, e, autojunk=False).get_opcodes() if op[0] != "equal"]
    for _tag, i1, i2, j1, j2 in reversed(hunks):
        if i2 > i1:
            if any(k not in nmap for k in range(i1, i2)):
                return None
            b1, b2 = nmap[i1], nmap[i2 - 1] + 1
            if b2 - b1 != i2 - i1:
                return None
        elif i1 - 1 in nmap:
            b1 = b2 = nmap[i1 - 1] + 1
        elif i1 in nmap:
            b1 = b2 = nmap[i1]
        elif i1 == 0:
            b1 = b2 = 0
        else:
            return None
        result[b1:b2] = e[j1:j2]
    return "".join(result)


def edit_body(body: str, edit: Callable[[Any], Any], where: str = "") -> str:
    """Apply ``edit`` to one document's data and return the new body text.

    ``edit`` mutates the loaded data in place and returns None, or returns a replacement
    document (then the document is re-dumped, keeping its leading comment lines).
    """
    crlf = "\r\n" in body
    text = body.replace("\r\n", "\n") if crlf else body
    missing_nl = bool(text) and not text.endswith("\n")
    if missing_nl:
        text += "\n"
    y = yaml_for(text)
    data = load(text, where)
    norm = dump(data, y) if data is not None else ""
    replacement = edit(data)
    if replacement is not None:
        lead = "".join(ln for ln in _leading_comments(text))
        out = lead + dump_new(replacement)
    elif data is None:
        out = text
    else:
        new = dump(data, y)
        spliced = new if norm == text else _splice(text, norm, new)
        if spliced is None:
            # The edit hit lines this style reformats: try the other common styles, which
            # may line up with the original around the edit (mixed-indent files).
            fresh = load(text, where)
            for style in _STYLES:
                y2 = yaml_for(text, style)
                norm2 = dump(fresh, y2)
                spliced = _splice(text, norm2, dump(data, y2))
                if spliced is not None:
                    break
        if spliced is not None and not _same_data(spliced, data):
            spliced = None  # the transplant misread the alignment: fall back to ruamel's output
        if spliced is None and not _same_data(new, data):
            raise RewriteError(f"{where}: the YAML editor cannot write this document back faithfully")
        out = spliced if spliced is not None else new
    if missing_nl and out.endswith("\n") and replacement is None:
        out = out[:-1]
    return out.replace("\n", "\r\n") if crlf else out


def _same_data(text: str, data: Any) -> bool:
    """Whether ``text`` parses to ``data`` (the safety net under the line transplant)."""
    try:
        got = YAML(typ="safe", pure=True).load(text)
    except YAMLError:
        return False
    return bool(_plain(got) == _plain(data))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) else str(value)
    return str(value)


def _leading_comments(text: str) -> Iterator[str]:
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            return
        yield line


def is_json_file(name: str) -> bool:
    """JSON manifests (``kubectl get -o json``, generated trees) are edited as JSON and stay JSON."""
    return name.lower().endswith(".json")


_JSON_INDENT = re.compile(r"^([ \t]+)[\"\]}]", re.MULTILINE)


def edit_json(text: str, edit: Callable[[Any], Any], where: str = "") -> str:
    """Apply ``edit`` to a JSON file's one document; the result is JSON again.

    The file is dumped unedited and edited with the indentation it uses, and the difference
    is transplanted onto the original lines (as for YAML), so keys, spacing and escapes
    elsewhere stay as written; a file in a layout ``json.dumps`` cannot reproduce near the
    edit is written in its layout instead.
    """
    crlf = "\r\n" in text
    body = text.replace("\r\n", "\n") if crlf else text
    bom = body.startswith("\ufeff")
    if bom:
        body = body[1:]
    if too_deep(body):
        raise RewriteError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        raise RewriteError(f"{where}: not valid JSON" + (f" (line {line})" if line else "")) from None
    match = _JSON_INDENT.search(body)
    indent: str | None = match.group(1) if match else None
    ascii_only = body.isascii()
    trailing = body[len(body.rstrip()):]

    def dumps(value: Any) -> str:
        if indent is None:
            return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":")) + trailing
        return json.dumps(value, indent=indent, ensure_ascii=ascii_only) + trailing

    norm = dumps(data)
    replacement = edit(data)
    new = dumps(replacement if replacement is not None else data)
    out = new if replacement is not None or norm == body else (_splice(body, norm, new) or new)
    try:
        if json.loads(out) != (replacement if replacement is not None else data):
            out = new
    except ValueError:
        out = new
    out = ("\ufeff" if bom else "") + out
    return out.replace("\n", "\r\n") if crlf else out


def edit_documents(text: str, edits: dict[int, Callable[[Any], Any]], where: str = "") -> str:
    """Apply per-document edits (by document index); untouched documents stay byte-identical."""
    if is_json_file(where):
        if set(edits) - {0}:
            raise RewriteError(f"{where}: a JSON file has one document")
        return edit_json(text, edits[0], f"{where} document 0") if edits else text
    spans = split_documents(text)
    by_index = {s.index: s for s in spans}
    missing = sorted(set(edits) - set(by_index))
    if missing:
        raise RewriteError(f"{where}: has no document {missing[0]} (it has {len(spans)})")
    out = text
    for idx in sorted(edits, reverse=True):
        span = by_index[idx]
        body = text[span.start : span.end]
        new_body = edit_body(body, edits[idx], f"{where} document {idx}")
        out = out[: span.start] + new_body + out[span.end :]
    return out


def load_documents(text: str, where: str = "") -> list[Any]:
    """Every document's data (round-trip types), indexed like :func:`split_documents`."""
    return [load(text[s.start : s.end], f"{where} document {s.index}") for s in split_documents(text)]


def append_document(text: str, doc_text: str) -> str:
    """``text`` with another document added at the end, separated by ``---``."""
    if not text.strip():
        return doc_text
    sep = "" if text.endswith("\n") else "\n"
    return text + sep + "---\n" + doc_text
