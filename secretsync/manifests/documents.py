"""YAML/JSON documents with the line number of every value, parsed with libyaml.

Why compose and not load: a finding must say on which line its value stands, and only the
node graph keeps marks. Why our own conversion instead of ruamel's round-trip loader: ruamel
is pure Python and an order of magnitude slower; libyaml's C composer
(``yaml.CSafeLoader``) builds the nodes, and one small loop turns them into
:class:`LocatedMap`/:class:`LocatedList` (plain ``dict``/``list`` subclasses that remember
where each value stands).

Robustness, because real trees hold broken files:

* A stream that fails as a whole is split at ``---`` lines and each document is parsed on its
  own, so one bad document does not hide the others.
* A document that fails and holds ``{{`` is a Helm/Go template: :func:`detemplate` blanks
  lines that are only template actions and replaces inline actions by
  :data:`TEMPLATE_MARKER`, keeping every line where it was; the detectors treat a value
  holding the marker as a reference.
* Aliases are converted once and shared; a per-document node budget stops alias bombs.
* libyaml's composer recurses in C without a depth limit: a few tens of thousands of nested
  ``[`` (or ``- - -``) overflow the C stack and kill the process with SIGSEGV, which no
  ``except`` can catch. :func:`too_deep` refuses such texts before any parser sees them.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from secretsync.core.errors import InvalidInput

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class _FastResolver(yaml.resolver.Resolver):
    """Only the tags the scanner uses: null, merge key, str/seq/map.

    PyYAML's resolver runs a dozen regexes per plain scalar (ints, floats, timestamps...) to tag
    values we read as text anyway; skipping them takes a quarter off parse time.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                if value in _NULLS:
                    return _NULL_TAG
                if value == "<<":
                    return _MERGE_TAG
            return _STR_TAG
        return _SEQ_TAG if kind is yaml.SequenceNode else _MAP_TAG


try:
    from yaml._yaml import CParser as _CParser

    class _CFastLoader(_CParser, yaml.constructor.SafeConstructor, _FastResolver):
        def __init__(self, stream: Any) -> None:
            _CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            _FastResolver.__init__(self)

    _Loader: type[Any] = _CFastLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

#: Stands in for a ``{{ ... }}`` template action after :func:`detemplate`.
TEMPLATE_MARKER = "__SECRETSYNC_TEMPLATE__"


class LocatedMap(dict[str, Any]):
    """A mapping that knows on which (1-based) line each value and each key stands."""

    __slots__ = ("key_lines", "lines", "literal")

    def __init__(self) -> None:
        super().__init__()
        #: key -> line of the value's first character (first content line for block scalars).
        self.lines: dict[str, int] = {}
        #: key -> line of the key itself.
        self.key_lines: dict[str, int] = {}
        #: keys whose value is a literal block scalar (``|``): its lines map 1:1 to the file.
        self.literal: set[str] = set()


class LocatedList(list[Any]):
    """A sequence that knows on which (1-based) line each item stands."""

    __slots__ = ("lines",)

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


def value_line(container: Any, key: str | int) -> int | None:
    """Line of ``container[key]`` if the container came from a file, else None."""
    if isinstance(container, LocatedMap):
        return container.lines.get(str(key))
    if isinstance(container, LocatedList) and isinstance(key, int) and 0 <= key < len(container.lines):
        return container.lines[key]
    return None


def key_line(container: Any, key: str) -> int | None:
    """Line of the key ``key`` in a mapping that came from a file, else None."""
    if isinstance(container, LocatedMap):
        return container.key_lines.get(key)
    return None


def is_literal_block(container: Any, key: str) -> bool:
    """Whether ``container[key]`` was written as a ``|`` block, so its lines map 1:1 to the file."""
    return isinstance(container, LocatedMap) and key in container.literal


class TooManyNodes(InvalidInput):
    """A document expands to more values than the budget (an alias bomb or a data dump)."""


@dataclass(slots=True)
class Document:
    """One document of a stream: its 0-based index and its converted root (None if empty)."""

    index: int
    root: Any
    #: True when the document only parsed after template actions were blanked out.
    templated: bool = False


@dataclass(slots=True)
class ParsedStream:
    """The documents of one file and the problems met (messages name a line, never a value)."""

    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _content_line(node: yaml.Node) -> int:
    line = int(node.start_mark.line) + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        line += 1
    return line


class _Converter:
    __slots__ = ("budget", "memo")

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.memo: dict[int, Any] = {}

    def convert(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return None if node.tag == _NULL_TAG else node.value
        done = self.memo.get(id(node))
        if done is not None:
            return done
        self.budget -= 1
        if self.budget < 0:
            raise TooManyNodes
        if isinstance(node, yaml.SequenceNode):
            seq = LocatedList()
            self.memo[id(node)] = seq
            lines = seq.lines
            for item in node.value:
                self.budget -= 1
                seq.append(self.convert(item))
                lines.append(_content_line(item))
            if self.budget < 0:
                raise TooManyNodes
            return seq
        mapping = LocatedMap()
        self.memo[id(node)] = mapping
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            self.budget -= 1
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # complex keys never name a Kubernetes field
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = key_node.value
            mapping[key] = self.convert(value_node)
            mapping.lines[key] = _content_line(value_node)
            mapping.key_lines[key] = int(key_node.start_mark.line) + 1
            if isinstance(value_node, yaml.ScalarNode) and value_node.style == "|":
                mapping.literal.add(key)
        if self.budget < 0:
            raise TooManyNodes
        for merge in merges:  # ``<<: *base`` fills keys the mapping does not set itself
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for src in sources:
                merged = self.convert(src)
                if isinstance(merged, LocatedMap):
                    for key, val in merged.items():
                        if key not in mapping:
                            mapping[key] = val
                            mapping.lines[key] = merged.lines.get(key, 0)
                            mapping.key_lines[key] = merged.key_lines.get(key, 0)
                            if key in merged.literal:
                                mapping.literal.add(key)
        return mapping


def convert_node(node: yaml.Node | None, budget: int = 200_000) -> Any:
    """Turn a composed node into LocatedMap/LocatedList/str/None."""
    if node is None:
        return None
    return _Converter(budget).convert(node)


_QUOTED = re.compile(r"""("|')(?:(?!\1).){0,400}\1""")


def safe_problem(exc: BaseException) -> str:
    """A parser's problem text without values.

    Parsers quote what they choke on, and some quote values: ruamel says ``found duplicate
    key "password" with value "..." (original value: "...")``. The first quoted token (a
    key, a character) is kept; every later one is masked.
    """
    problem = str(getattr(exc, "problem", None) or type(exc).__name__)
    seen = [False]

    def mask(match: re.Match[str]) -> str:
        if not seen[0]:
            seen[0] = True
            return match.group(0) if len(match.group(0)) <= 66 else f"{match.group(1)}...{match.group(1)}"
        return f"{match.group(1)}***{match.group(1)}"

    return _QUOTED.sub(mask, problem)[:200]


def _mark_text(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = safe_problem(exc)
    if mark is not None:
        return f"line {mark.line + 1}: {problem}"
    return str(problem)


_DOC_START = re.compile(r"^---(?:[ \t].*)?$", re.MULTILINE)
_DOC_END = re.compile(r"^\.\.\.[ \t]*$", re.MULTILINE)
_ONLY_COMMENTS = re.compile(r"\A(?:[ \t]*(?:#.*)?(?:\n|\Z))*\Z")


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """Split a stream at ``---`` lines: (first line number 0-based, chunk text)."""
    starts = [m.start() for m in _DOC_START.finditer(text)]
    bounds: list[tuple[int, int, bool]] = []  # (start, end, after_marker)
    prev = 0
    after = False
    for pos in starts:
        bounds.append((prev, pos, after))
        eol = text.find("\n", pos)
        prev = len(text) if eol < 0 else eol + 1
        after = True
    bounds.append((prev, len(text), after))
    for start, end, after_marker in bounds:
        chunk = text[start:end]
        if not after_marker and _ONLY_COMMENTS.match(chunk):
            continue  # comments before the first ``---`` are not a document
        yield text.count("\n", 0, start), _DOC_END.sub("", chunk)


_ACTION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_ONLY_ACTIONS = re.compile(r"^[ \t]*(?:" + TEMPLATE_MARKER + r"[ \t]*)+$", re.MULTILINE)


def detemplate(text: str) -> str:
    """Make a Helm/Go template parseable as YAML, keeping every line where it was.

    Lines that hold only template actions (``{{- if ... }}``, ``{{ include ... | nindent 4 }}``,
    Jinja/Jekyll ``{% raw %}``) become blank; actions inside a line become :data:`TEMPLATE_MARKER`.
    """

    def _sub(match: re.Match[str]) -> str:
        return TEMPLATE_MARKER + "\n" * match.group(0).count("\n")

    replaced = _ACTION.sub(_sub, text)
    return _open_block_values(_ONLY_ACTIONS.sub("", replaced))


_MARKER_VALUE = re.compile(r"^([ \t]*(?:-[ \t]+)?[^\s#][^\n]*?:)[ \t]+" + TEMPLATE_MARKER + r"[ \t]*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _open_block_values(text: str) -> str:
    """``labels: {{- include ... | nindent 4 }}`` followed by more keys: the action is a block.

    Helm charts (Bitnami's, and most written from ``helm create``) open a mapping with an
    action that renders its first entries and then write further entries under it. With the
    action as a scalar marker the lines below would be invalid YAML; when the next non-blank
    line is indented deeper than the key, the marker is dropped so the key opens the mapping
    the chart meant (the rendered entries are unknown either way).
    """
    if TEMPLATE_MARKER + "\n" not in text and not text.endswith(TEMPLATE_MARKER):
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.endswith(TEMPLATE_MARKER) and not line.rstrip().endswith(TEMPLATE_MARKER):
            continue
        match = _MARKER_VALUE.match(line)
        if match is None:
            continue
        nxt = next((ln for ln in lines[i + 1 :] if ln.strip() and not ln.lstrip().startswith("#")), None)
        if nxt is None:
            continue
        key_indent = _indent(match.group(1).replace("-", " ", 1) if match.group(1).lstrip().startswith("-")
                             else match.group(1))
        if _indent(nxt) > key_indent:
            lines[i] = match.group(1)
    return "\n".join(lines)


#: Deepest nesting any parser here is given. Real manifests nest a few dozen levels; libyaml's
#: C composer overflows its stack somewhere past 20,000 (and Python's at ~1,000 frames).
MAX_DEPTH = 1000
_BRACKETS = re.compile(r"[\[\]{}]")
_DEEP_PREFIX = re.compile(r"^[ \t?:-]{" + str(MAX_DEPTH // 2) + "}", re.MULTILINE)


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether ``text`` may nest deeper than ``limit`` levels (an upper bound, cheap to compute).

    Flow nesting is bounded by the running count of brackets (quotes ignored, so brackets in
    strings can only overestimate). Block nesting needs one more column of indentation, or
    one more ``-``/``?``/``:`` indicator, per level, so a line that starts with fewer than
    ``limit // 2`` such characters cannot be deeper than ``limit``.
    """
    if text.count("[") + text.count("{") > limit // 2:
        depth = 0
        for match in _BRACKETS.finditer(text):
            depth = depth + 1 if match.group(0) in "[{" else max(0, depth - 1)
            if depth > limit // 2:
                return True
    prefix = _DEEP_PREFIX if limit == MAX_DEPTH else re.compile(r"^[ \t?:-]{" + str(limit // 2) + "}", re.MULTILINE)
    return prefix.search(text) is not None


def _compose_all(text: str) -> list[yaml.Node | None]:
    return list(yaml.compose_all(text, Loader=_Loader))


def parse_yaml_stream(text: str, *, budget: int = 200_000) -> ParsedStream:
    """Every document of a YAML (or JSON) text, with line numbers; never raises on bad input."""
    if "{{" in text or "{%" in text:
        # A Helm/Go/Jinja template: ``{{ x }}`` would parse as a flow mapping (or not at all).
        templated = _parse_stream(detemplate(text), budget, templated=True)
        if not templated.problems:
            return templated
    return _parse_stream(text, budget, templated=False)


def _parse_stream(text: str, budget: int, *, templated: bool) -> ParsedStream:
    out = ParsedStream()
    if too_deep(text):
        out.problems.append(f"nested more than {MAX_DEPTH} levels deep; not parsed")
        return out
    try:
        nodes = _compose_all(text)
    except yaml.YAMLError:
        nodes = None
    except (ValueError, RecursionError) as exc:  # pathological input deep in libyaml
        out.problems.append(f"cannot parse: {type(exc).__name__}")
        return out
    if nodes is not None:
        for index, node in enumerate(nodes):
            _add_document(out, index, node, budget, templated=templated, first_line=None)
        return out
    # Slow path: one document at a time, so one bad document does not hide the rest.
    for index, (first_line, chunk) in enumerate(_chunks(text)):
        padded = "\n" * first_line + chunk
        try:
            node = yaml.compose(padded, Loader=_Loader)
            _add_document(out, index, node, budget, templated=templated, first_line=first_line)
            continue
        except yaml.YAMLError as exc:
            error = exc
        except (ValueError, RecursionError) as exc:
            out.problems.append(f"document {index} (line {first_line + 1}): cannot parse: {type(exc).__name__}")
            continue
        if "{{" in chunk or "{%" in chunk:
            try:
                node = yaml.compose(detemplate(padded), Loader=_Loader)
            except yaml.YAMLError as exc:  # its line, not the raw text's (which fails at the first ``{{``)
                out.problems.append(
                    f"document {index}: Helm/Go template that is not YAML even with its "
                    f"template actions blanked out ({_mark_text(exc)}); skipped"
                )
                continue
            except (ValueError, RecursionError) as exc:
                out.problems.append(f"document {index} (line {first_line + 1}): cannot parse: "
                                    f"{type(exc).__name__}")
                continue
            _add_document(out, index, node, budget, templated=True, first_line=first_line)
            continue
        out.problems.append(f"document {index}: malformed YAML ({_mark_text(error)}); skipped")
    return out


def _add_document(
    out: ParsedStream, index: int, node: yaml.Node | None, budget: int, *, templated: bool,
    first_line: int | None,
) -> None:
    try:
        root = convert_node(node, budget)
    except TooManyNodes:
        where = f" (line {first_line + 1})" if first_line is not None else ""
        out.problems.append(
            f"document {index}{where}: more than {budget} values (alias expansion?); skipped"
        )
        return
    except RecursionError:
        out.problems.append(f"document {index}: nested too deeply; skipped")
        return
    out.documents.append(Document(index, root, templated))


def parse_json_text(text: str, *, budget: int = 200_000) -> ParsedStream:
    """A JSON file: through libyaml when it can (line numbers), else ``json`` (lines found by search).

    JSON is nearly a subset of YAML 1.1; the exceptions (tabs in odd places, ``\\/``) fall back to
    the json module, and :func:`locate_json_lines` attaches approximate lines.
    """
    stream = parse_yaml_stream(text, budget=budget)
    if not stream.problems or too_deep(text):
        return stream
    try:
        doc = json.loads(text)
    except RecursionError:
        return ParsedStream(problems=["malformed JSON: nested too deeply"])
    except ValueError as exc:
        msg = f"malformed JSON (line {getattr(exc, 'lineno', '?')}): {getattr(exc, 'msg', 'invalid')}"
        return ParsedStream(problems=[msg])
    return ParsedStream(documents=[Document(0, _locate_json(doc, text))])


def _locate_json(doc: Any, text: str) -> Any:
    """Rebuild plain JSON data as Located* containers whose lines come from searching the text."""
    line_starts = [0]
    line_starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    cursor = [0]

    def line_of(needle: str) -> int:
        pos = text.find(needle, cursor[0])
        if pos < 0:
            pos = text.find(needle)
        if pos < 0:
            return 0
        cursor[0] = pos
        return bisect.bisect_right(line_starts, pos)

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict):
            mapping = LocatedMap()
            for key, val in obj.items():
                k = str(key)
                mapping.key_lines[k] = line_of(json.dumps(k))
                mapping.lines[k] = mapping.key_lines[k]
                mapping[k] = walk(val)
            return mapping
        if isinstance(obj, list):
            seq = LocatedList()
            for item in obj:
                seq.lines.append(line_of(json.dumps(item)) if isinstance(item, str) else cursor_line())
                seq.append(walk(item))
            return seq
        if obj is None:
            return None
        if isinstance(obj, bool):
            return "true" if obj else "false"
        return str(obj) if not isinstance(obj, str) else obj

    def cursor_line() -> int:
        return bisect.bisect_right(line_starts, cursor[0])

    return walk(doc)
