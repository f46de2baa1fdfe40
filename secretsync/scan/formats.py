"""Files inside values, and flags inside command lines.

A ConfigMap's ``application.properties`` or ``config.json``, a kustomize ``.env`` file and a
container's ``args`` all hide ``key = value`` pairs that a line-oriented scanner reads as
noise. Each parser here yields :class:`Entry` items (the key as written, a dotted sub-key, the
value, the 0-based line inside the text) so the detectors can judge a value by its own name.

Formats: ``.env`` / properties, INI (also ``.conf``/``.cfg``/``.toml``, and space-separated
``requirepass secret`` directives when the name says secret), JSON, YAML, XML-ish
(``<password>x</password>``, ``key="DbPassword" value="x"``, ``password="x"``). Unknown text
gets no entries; the caller scans it for known token formats only.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from secretsync.manifests.documents import LocatedList, LocatedMap, parse_yaml_stream

from .detectors import classify_key

Format = Literal["env", "properties", "ini", "json", "yaml", "xml", "conf", "netrc"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``key = value`` inside a text: ``line`` is 0-based within that text."""

    subkey: str
    key: str
    value: str
    line: int


_EXTENSIONS: dict[str, Format] = {
    ".properties": "properties", ".env": "env", ".json": "json", ".yaml": "yaml", ".yml": "yaml",
    ".ini": "ini", ".cfg": "ini", ".conf": "ini", ".cnf": "ini", ".toml": "ini", ".xml": "xml",
    ".config": "xml",
}
#: ``//registry.npmjs.org/:_authToken=...`` (.npmrc): a key scoped to a registry URL.
_NPM_SCOPE = r"(?://[^\s=]*?:)?"
_KV_LINE = re.compile(r"^\s*(?:export\s+)?" + _NPM_SCOPE + r"([A-Za-z_][\w.\-]*)\s*[=:]\s*(.*?)\s*$")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?" + _NPM_SCOPE + r"([A-Za-z_][\w.\-]*)\s*=\s*(.*?)\s*$")
_NETRC_START = re.compile(r"^\s*(?:machine\s+\S+|default)\b")
_YAML_LINE = re.compile(r"^\s*(?:-\s+)?[\w.\-\"']+\s*:(?:\s|$)")
_SECTION = re.compile(r"^\s*\[([^\]\n]+)\]\s*(?:[#;].*)?$")
_SPACE_DIRECTIVE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s+(\S.*?)\s*;?\s*$")


def detect_format(name: str, text: str) -> Format | None:
    """Guess the format of an embedded file from its name, then from its first lines."""
    low = name.lower()
    if low == ".env" or low.endswith(".env") or low.startswith(".env."):
        return "env"
    if low.lstrip("._") == "netrc" or _NETRC_START.match(text):
        return "netrc"
    dot = low.rfind(".")
    if dot >= 0 and low[dot:] in _EXTENSIONS:
        return _EXTENSIONS[low[dot:]]
    stripped = text.lstrip()
    if not stripped:
        return None
    if stripped[0] in "{[" and stripped.rstrip()[-1:] in "}]" and not _SECTION.match(stripped.split("\n", 1)[0]):
        return "json"
    if stripped.startswith("<"):
        return "xml"
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", ";", "!", "//"))]
    if not lines:
        return None
    sample = lines[:50]
    if any(_SECTION.match(ln) for ln in sample[:5]):
        return "ini"
    env_like = sum(1 for ln in sample if _ENV_LINE.match(ln))
    yaml_like = sum(1 for ln in sample if _YAML_LINE.match(ln))
    if env_like >= max(1, len(sample) // 2) and env_like >= yaml_like:
        return "env"
    if yaml_like >= max(1, len(sample) // 2):
        return "yaml"
    return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _strip_inline_comment(value: str) -> str:
    if value and value[0] in "\"'":
        end = value.find(value[0], 1)
        return value[: end + 1] if end > 0 else value
    for marker in (" #", "\t#", " ;"):
        pos = value.find(marker)
        if pos >= 0:
            return value[:pos].rstrip()
    return value


def parse_env(text: str, *, properties: bool = False) -> Iterator[Entry]:
    """``KEY=VALUE`` lines (``export``, quotes and ``#`` comments allowed); properties also ``k: v``."""
    pattern = _KV_LINE if properties else _ENV_LINE
    for index, line in enumerate(text.splitlines()):
        stripped = line.lstrip()
        if not stripped or stripped[0] in "#!":
            continue
        match = pattern.match(line)
        if match:
            value = match.group(2)
            if not properties:
                value = _strip_inline_comment(value)
            yield Entry(match.group(1), match.group(1), _unquote(value), index)


def parse_netrc(text: str) -> Iterator[Entry]:
    """``machine HOST login USER password PASS`` (tokens may span lines): the password and account."""
    machine = ""
    tokens = [(m.group(0), text.count("\n", 0, m.start())) for m in re.finditer(r"\S+", text)]
    for i, (token, _line) in enumerate(tokens[:-1]):
        if token == "machine":
            machine = tokens[i + 1][0]
        elif token in ("password", "account"):
            value, line = tokens[i + 1]
            yield Entry(f"{machine}.{token}" if machine else token, token, value, line)


def parse_ini(text: str) -> Iterator[Entry]:
    """INI/TOML-ish: ``[section]`` then ``key = value``; also ``directive value`` for secret names."""
    section = ""
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        sec = _SECTION.match(line)
        if sec:
            section = sec.group(1).strip().strip("\"'")
            continue
        match = _KV_LINE.match(line)
        if match:
            key = match.group(1)
            value = _unquote(_strip_inline_comment(match.group(2)))
            yield Entry(f"{section}.{key}" if section else key, key, value, index)
            continue
        directive = _SPACE_DIRECTIVE.match(line)
        if directive and classify_key(directive.group(1)) in ("password", "secret", "token", "api-key"):
            key = directive.group(1)
            yield Entry(f"{section}.{key}" if section else key, key, _unquote(directive.group(2)), index)


_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w.:\-]*)(?:\s[^<>]*)?>([^<>]{1,2000})</\1\s*>")
_XML_ATTR = re.compile(r"([A-Za-z_][\w.:\-]*)\s*=\s*\"([^\"]*)\"")
_XML_KEY_VALUE = re.compile(r"\b(?:key|name)\s*=\s*\"([^\"]+)\"\s+value\s*=\s*\"([^\"]*)\"")


def parse_xml(text: str) -> Iterator[Entry]:
    """Elements with text (``<password>x</password>``) and secret-named attributes."""
    line_starts = _line_starts(text)
    for match in _XML_ELEMENT.finditer(text):
        yield Entry(match.group(1), match.group(1), match.group(2).strip(), _line_at(line_starts, match.start(2)))
    for match in _XML_KEY_VALUE.finditer(text):
        yield Entry(match.group(1), match.group(1), match.group(2), _line_at(line_starts, match.start(2)))
    for match in _XML_ATTR.finditer(text):
        name = match.group(1)
        if name.lower() in ("key", "name", "value"):
            continue
        if classify_key(name) in ("password", "secret", "token", "api-key"):
            yield Entry(name, name, match.group(2), _line_at(line_starts, match.start(2)))


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(i + 1 for i, ch in enumerate(text) if ch == "\n")
    return starts


def _line_at(starts: Sequence[int], pos: int) -> int:
    return bisect.bisect_right(starts, pos) - 1


def path_join(base: str, key: str | int) -> str:
    """Append a key or index to a dotted path; keys that are not identifiers go in brackets."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if _IDENT.match(key):
        return f"{base}.{key}" if base else key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{escaped}"]'


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_PATH_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]')


def split_path(path: str) -> list[str | int]:
    """The steps of a path made by :func:`path_join`: ``data["tls.key"]`` -> ["data", "tls.key"].

    An inline-patch path (``patches[0].patch::spec...``) splits at ``::``; this returns the part
    after it (the path inside the patch document).
    """
    if "::" in path:
        path = path.rsplit("::", 1)[1]
    steps: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _PATH_PART.match(path, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"malformed path at offset {pos}: {path!r}")
        if match.group(1) is not None:
            steps.append(match.group(1))
        elif match.group(2) is not None:
            steps.append(int(match.group(2)))
        else:
            steps.append(match.group(3).replace('\\"', '"').replace("\\\\", "\\"))
        pos = match.end()
    return steps


def iter_leaves(root: Any, *, budget: int = 200_000) -> Iterator[tuple[str, str, str, int | None]]:
    """(dotted path, leaf key, value, line) for every scalar leaf of a parsed document.

    The leaf key of a list item is its parent's key (``hosts[2]`` -> ``hosts``); the ``value`` of
    a ``{name: X, value: Y}`` pair (env lists in Helm values) is known by ``X``. Depth is capped
    (recursive aliases) and ``budget`` bounds the walk (alias bombs): past it, ValueError.
    """
    stack: list[tuple[Any, str, str, int | None, int]] = [(root, "", "", None, 0)]
    while stack:
        node, path, leaf_key, line, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ValueError("too many values")
        if isinstance(node, dict):
            if depth > 64:
                continue
            pair_name = node.get("name") if "value" in node else None
            for key, val in reversed(list(node.items())):
                k = str(key)
                ln = node.lines.get(k) if isinstance(node, LocatedMap) else None
                leaf = pair_name if k == "value" and isinstance(pair_name, str) else k
                stack.append((val, path_join(path, k), leaf, ln, depth + 1))
        elif isinstance(node, list):
            if depth > 64:
                continue
            for index in range(len(node) - 1, -1, -1):
                ln = node.lines[index] if isinstance(node, LocatedList) and index < len(node.lines) else line
                stack.append((node[index], path_join(path, index), leaf_key, ln, depth + 1))
        elif isinstance(node, str):
            yield path, leaf_key, node, line
        elif isinstance(node, bool | int | float):
            yield path, leaf_key, str(node), line


def parse_structured(text: str, fmt: Literal["json", "yaml"], budget: int) -> Iterator[Entry]:
    """Leaves of an embedded JSON/YAML file (lines relative to the text, 0-based)."""
    stream = parse_yaml_stream(text, budget=budget)
    multi = len(stream.documents) > 1
    for doc in stream.documents:
        for path, key, value, line in iter_leaves(doc.root, budget=budget):
            sub = f"[{doc.index}].{path}" if multi else path
            yield Entry(sub, key, value, (line or 1) - 1)


_ONE_TOKEN_DIRECTIVE = re.compile(r"^\s*([A-Za-z_][\w.\-]*)[ \t]+(\"[^\"\s]*\"|'[^'\s]*'|[^\s\"';#]+)\s*;?\s*$")


def parse_directives(text: str) -> Iterator[Entry]:
    """``requirepass s3cret``-style lines of a config in no known format (redis.conf, sshd_config...).

    Only secret-named directives with a single-word value: free text (``password reset via
    email``) is not configuration.
    """
    for index, line in enumerate(text.splitlines()):
        match = _ONE_TOKEN_DIRECTIVE.match(line)
        if match and classify_key(match.group(1)) in ("password", "secret", "token", "api-key"):
            yield Entry(match.group(1), match.group(1), _unquote(match.group(2)), index)


def parse_embedded(name: str, text: str, *, budget: int = 200_000) -> tuple[Format | None, list[Entry]]:
    """The format of an embedded file and its entries (none for unknown formats or bad syntax)."""
    fmt = detect_format(name, text)
    if fmt is None:
        entries = list(parse_directives(text))
        return ("conf", entries) if entries else (None, [])
    try:
        if fmt in ("env", "properties"):
            return fmt, list(parse_env(text, properties=fmt == "properties"))
        if fmt == "ini":
            return fmt, list(parse_ini(text))
        if fmt == "netrc":
            return fmt, list(parse_netrc(text))
        if fmt == "xml":
            return fmt, list(parse_xml(text))
        return fmt, list(parse_structured(text, "json" if fmt == "json" else "yaml", budget))
    except ValueError:
        return fmt, []


# --------------------------------------------------------------------------------------------
# Command lines
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlagHit:
    """A secret-named flag (or ``NAME=value`` assignment) in a command line."""

    key: str
    value: str
    #: Index of the argument (in the list given) that holds the value.
    arg_index: int
    #: 0-based line of the value inside that argument's text.
    line: int
    #: The part of ``value`` to judge (``user:pass`` -> ``pass``), when it differs.
    judged: str | None = None


_WORD = re.compile(r"(?:[^\s\"']+|\"(?:[^\"\\]|\\.)*\"|'[^']*')+")
_LONG_FLAG_EQ = re.compile(r"^--?([A-Za-z][\w.\-]*)=(.*)$", re.DOTALL)
_JAVA_PROP = re.compile(r"^-D([\w.\-]+)=(.*)$", re.DOTALL)
_FLAG = re.compile(r"^--?([A-Za-z][\w.\-]*)$")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", re.DOTALL)
_MYSQL_CLIENTS = frozenset({"mysql", "mysqldump", "mysqladmin", "mariadb", "mysqlimport", "mysqlcheck",
                            "mariadb-dump", "mysqlshow", "mysqlpump"})
_CURL_LIKE = frozenset({"curl", "wget", "http"})
_SECRET_CLASSES = ("password", "secret", "token", "api-key")


def _unquote_word(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        return word[1:-1]
    return word.replace('"', "").replace("'", "") if ("\"" in word or "'" in word) else word


def _words(args: Sequence[str]) -> list[tuple[str, int, int]]:
    """(word, arg index, 0-based line in that arg) for every shell word of every argument."""
    out: list[tuple[str, int, int]] = []
    for index, arg in enumerate(args):
        if not any(c in arg for c in " \t\n"):
            out.append((arg, index, 0))
            continue
        for match in _WORD.finditer(arg):
            out.append((_unquote_word(match.group(0)), index, arg.count("\n", 0, match.start())))
    return out


def parse_flags(args: Sequence[str]) -> Iterator[FlagHit]:
    """Secret-named flags and assignments in a command line (``command`` + ``args`` or a script).

    ``--password=x``, ``--password x``, ``-Dspring.datasource.password=x``, ``DB_PASSWORD=x cmd``,
    ``mysql -pSECRET`` (only after a MySQL client: ``-p`` is a port elsewhere),
    ``sshpass -p SECRET``, ``curl -u user:pass``.
    """
    words = _words(args)
    program = ""
    for pos, (word, index, line) in enumerate(words):
        base = word.rsplit("/", 1)[-1]
        if base in _MYSQL_CLIENTS or base in _CURL_LIKE or base == "sshpass":
            program = base
        elif word in ("&&", "||", ";", "|") or word.endswith(";"):
            program = ""
        nxt = words[pos + 1] if pos + 1 < len(words) else None
        match = _JAVA_PROP.match(word)
        if match:
            if classify_key(match.group(1)) in _SECRET_CLASSES:
                yield FlagHit(match.group(1), match.group(2), index, line)
            continue
        match = _LONG_FLAG_EQ.match(word)
        if match:
            name, value = match.group(1), match.group(2)
            if program in _CURL_LIKE and name in ("u", "user") and ":" in value:
                yield FlagHit(name, value, index, line, judged=value.split(":", 1)[1])
            elif classify_key(name) in _SECRET_CLASSES:
                yield FlagHit(name, value, index, line)
            continue
        if program in _MYSQL_CLIENTS and word.startswith("-p") and len(word) > 2 and not word.startswith("--"):
            yield FlagHit("password", word[2:], index, line)
            continue
        match = _FLAG.match(word)
        if match and nxt is not None and not nxt[0].startswith("-"):
            name = match.group(1)
            if program == "sshpass" and name == "p":
                yield FlagHit("password", nxt[0], nxt[1], nxt[2])
            elif program in _CURL_LIKE and name in ("u", "user") and ":" in nxt[0]:
                yield FlagHit(name, nxt[0], nxt[1], nxt[2], judged=nxt[0].split(":", 1)[1])
            elif len(name) > 1 and classify_key(name) in _SECRET_CLASSES:
                yield FlagHit(name, nxt[0], nxt[1], nxt[2])
            continue
        match = _ASSIGN.match(word)
        if match and classify_key(match.group(1)) in _SECRET_CLASSES:
            yield FlagHit(match.group(1), match.group(2), index, line)
