"""Field paths that survive edits, and the few edit operations the migrator performs.

Why selectors instead of list indexes: one apply may touch the same object several times
(an env var here, a volume there, a generator entry removed), and a crash may resume it
half-way. ``containers[name=app].env[name=DB_PASSWORD]`` still names the same field after
an earlier edit shifted the list; ``containers[0].env[2]`` does not.

Path syntax (also what plans show to humans)::

    spec.template.spec.containers[name=app].env[name=DB_PASSWORD].value
    data["app.properties"]          # a key that is not an identifier
    spec.containers[0].args[3]      # plain index where items have no name
    envFrom[configMapRef.name=cm]   # match on a nested field

Operations work on plain dicts/lists (cluster objects) and on ruamel.yaml round-trip
containers (files) alike; on the latter they keep key positions, so an edit changes the
edited lines only. Every operation can tell whether it is already applied: that is what
makes a resumed apply idempotent (nothing added twice).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import MutableMapping, MutableSequence
from dataclasses import dataclass
from typing import Any

from secretsync.core.errors import InvalidInput

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


@dataclass(frozen=True, slots=True)
class Key:
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    index: int


@dataclass(frozen=True, slots=True)
class Match:
    """The list item whose (possibly nested, dotted) ``field`` equals ``value``."""

    field: str
    value: str


Segment = Key | Index | Match


class PathError(InvalidInput, ValueError):
    """A path does not parse, or does not lead anywhere in this object (message names the path)."""


def parse_path(text: str) -> list[Segment]:
    """Parse the syntax in the module docstring. Raises PathError naming the offending spot."""
    segs: list[Segment] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == ".":
            i += 1
            continue
        if ch == "[":
            end = _closing_bracket(text, i)
            inner = text[i + 1 : end]
            i = end + 1
            if inner[:1] in ('"', "'"):
                try:
                    segs.append(Key(str(json.loads(inner)) if inner[0] == '"' else inner[1:-1]))
                except ValueError:
                    raise PathError(f"bad quoted key {inner!r} in path {text!r}") from None
            elif re.fullmatch(r"-?\d+", inner):
                segs.append(Index(int(inner)))
            elif "=" in inner:
                fld, _, val = inner.partition("=")
                segs.append(Match(fld.strip(), _unquote(val.strip())))
            else:
                raise PathError(f"bad selector [{inner}] in path {text!r}")
            continue
        j = i
        while j < n and text[j] not in ".[":
            j += 1
        segs.append(Key(text[i:j]))
        i = j
    return segs


def _unquote(val: str) -> str:
    if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
        return val[1:-1]
    return val


def _closing_bracket(text: str, start: int) -> int:
    quote: str | None = None
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "]":
            return i
        i += 1
    raise PathError(f"unclosed [ in path {text!r}")


def format_path(segs: list[Segment]) -> str:
    out = ""
    for seg in segs:
        if isinstance(seg, Key):
            if _IDENT.match(seg.name):
                out += ("." if out else "") + seg.name
            else:
                out += "[" + json.dumps(seg.name) + "]"
        elif isinstance(seg, Index):
            out += f"[{seg.index}]"
        else:
            val = seg.value if re.fullmatch(r"[A-Za-z0-9_.\-/]+", seg.value) else json.dumps(seg.value)
            out += f"[{seg.field}={val}]"
    return out


def join(base: str, *more: str | int) -> str:
    segs = parse_path(base)
    for m in more:
        segs.append(Index(m) if isinstance(m, int) else Key(m))
    return format_path(segs)


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(obj, MutableMapping) or part not in obj:
            return None
        obj = obj[part]
    return obj


def _find(seq: MutableSequence[Any], seg: Match) -> int | None:
    for i, item in enumerate(seq):
        if isinstance(item, MutableMapping) and str(_dig(item, seg.field)) == seg.value and \
                _dig(item, seg.field) is not None:
            return i
    return None


def _step(obj: Any, seg: Segment, path: str) -> Any:
    if isinstance(seg, Key):
        if not isinstance(obj, MutableMapping) or seg.name not in obj:
            raise PathError(f"{path}: no field {seg.name!r}")
        return obj[seg.name]
    if not isinstance(obj, MutableSequence):
        raise PathError(f"{path}: not a list")
    if isinstance(seg, Index):
        if not -len(obj) <= seg.index < len(obj):
            raise PathError(f"{path}: index {seg.index} out of range")
        return obj[seg.index]
    idx = _find(obj, seg)
    if idx is None:
        raise PathError(f"{path}: no item with {seg.field}={seg.value}")
    return obj[idx]


def get(obj: Any, path: str | list[Segment]) -> Any:
    """The value at ``path``; PathError when any step is missing."""
    segs = parse_path(path) if isinstance(path, str) else path
    cur = obj
    for n, seg in enumerate(segs):
        cur = _step(cur, seg, format_path(segs[: n + 1]))
    return cur


def exists(obj: Any, path: str | list[Segment]) -> bool:
    try:
        get(obj, path)
    except PathError:
        return False
    return True


def index_of(seq: MutableSequence[Any], seg: Segment) -> int | None:
    if isinstance(seg, Index):
        return seg.index if -len(seq) <= seg.index < len(seq) else None
    if isinstance(seg, Match):
        return _find(seq, seg)
    return None


def _parent(obj: Any, path: str) -> tuple[Any, Segment]:
    segs = parse_path(path)
    if not segs:
        raise PathError("empty path")
    return get(obj, segs[:-1]), segs[-1]


def _plain(value: Any) -> Any:
    """A JSON-comparable copy (ruamel containers and scalar subclasses become plain)."""
    return json.loads(json.dumps(value, default=str))


def _insert_key(mapping: MutableMapping[str, Any], pos: int, key: str, value: Any) -> None:
    insert = getattr(mapping, "insert", None)
    if callable(insert):
        insert(pos, key, value)
        return
    items = list(mapping.items())
    items.insert(pos, (key, value))
    mapping.clear()
    mapping.update(items)


def _remove(container: Any, key: Any) -> None:
    """Delete a map key or list item, keeping ruamel comments where they belong.

    ruamel stores the comment lines *above* an entry in the previous entry's trailing
    comment, and the lines above the next entry in this entry's. So: drop this entry's own
    leading comment block (the comment lines right above it), and hand the lines that
    describe the next entry to the previous one.
    """
    ca = getattr(container, "ca", None)
    items = getattr(ca, "items", None)
    if not isinstance(items, dict):
        del container[key]
        return
    slot = 2 if isinstance(container, MutableMapping) else 0
    keys = list(container.keys()) if isinstance(container, MutableMapping) else list(range(len(container)))
    pos = keys.index(key)

    def token(k: Any) -> Any:
        entry = items.get(k)
        return entry[slot] if entry and len(entry) > slot else None

    own = token(key)
    own_tail = own.value.splitlines(keepends=True)[1:] if own is not None and own.value else []
    if pos > 0:
        prev = keys[pos - 1]
        ptok = token(prev)
        plines = ptok.value.splitlines(keepends=True) if ptok is not None and ptok.value else ["\n"]
        ptail = plines[1:]
        blanks = [i for i, ln in enumerate(ptail) if not ln.strip()]
        keep = ptail[: blanks[-1] + 1] if blanks else []
        value = plines[0] + "".join(keep) + "".join(own_tail)
        if ptok is not None:
            ptok.value = value
        elif value != "\n":
            from ruamel.yaml.error import CommentMark
            from ruamel.yaml.tokens import CommentToken

            entry = items.setdefault(prev, [None] * (4 if slot == 2 else 1))
            while len(entry) <= slot:
                entry.append(None)
            entry[slot] = CommentToken(value, CommentMark(0), None)
    if isinstance(container, MutableMapping):
        items.pop(key, None)
        del container[key]
        return
    snapshot = dict(items)
    del container[key]
    items.clear()
    for i, entry in snapshot.items():
        if isinstance(i, int) and i != key:
            items[i - 1 if i > key else i] = entry


def _move_trailing_comment(seq: Any, src: int, dst: int) -> None:
    """ruamel keeps blank lines/comments after a list in its last item: keep them last."""
    ca = getattr(seq, "ca", None)
    items = getattr(ca, "items", None)
    if src < 0 or not isinstance(items, dict) or src not in items:
        return
    items[dst] = items.pop(src)


# -- operations ------------------------------------------------------------------------------
# An op is a JSON-serialisable dict (it goes into the plan, so it never holds a value):
#   {"op": "set", "path": P, "value": V}                 map key or list index: replace / add at end
#   {"op": "replace-key", "path": P, "old": K, "new": K2, "value": V}   same position, new key
#   {"op": "remove", "path": P}                          map key, list index or selector
#   {"op": "insert", "path": LIST, "value": V, "after": SEL | None}   after the selected item, or append
#   {"op": "remove-if-empty", "path": P}                 drop a map key whose value became empty


def is_applied(obj: Any, op: dict[str, Any]) -> bool:
    """Whether ``op`` has already taken effect on ``obj`` (so a resumed apply skips it)."""
    kind = op["op"]
    path = op["path"]
    if kind == "set":
        return exists(obj, path) and _plain(get(obj, path)) == _plain(op["value"])
    if kind == "replace-key":
        if not exists(obj, path):
            return False
        target = get(obj, path)
        return (
            isinstance(target, MutableMapping)
            and op["old"] not in target
            and op["new"] in target
            and _plain(target[op["new"]]) == _plain(op["value"])
        )
    if kind == "remove":
        return not exists(obj, path)
    if kind == "insert":
        if not exists(obj, path):
            return False
        seq = get(obj, path)
        want = _plain(op["value"])
        return isinstance(seq, MutableSequence) and any(_plain(x) == want for x in seq)
    if kind == "remove-if-empty":
        return not exists(obj, path) or bool(get(obj, path))
    raise PathError(f"unknown op {kind!r}")


def check(obj: Any, op: dict[str, Any]) -> str | None:
    """Why ``op`` cannot apply to ``obj`` (None when it can or already did)."""
    if is_applied(obj, op):
        return None
    kind, path = op["op"], op["path"]
    try:
        if kind == "set":
            parent, last = _parent(obj, path)
            if isinstance(last, Key):
                return None if isinstance(parent, MutableMapping) else f"{path}: parent is not a map"
            if isinstance(parent, MutableSequence) and index_of(parent, last) is not None:
                return None
            return f"{path}: no such list item"
        if kind == "replace-key":
            target = get(obj, path)
            if not isinstance(target, MutableMapping) or op["old"] not in target:
                return f"{path}: has no field {op['old']!r}"
            return None
        if kind == "remove":
            return None  # absent counts as applied; present can be removed
        if kind == "insert":
            seq = get(obj, path) if exists(obj, path) else None
            if seq is not None and not isinstance(seq, MutableSequence):
                return f"{path}: not a list"
            if op.get("after"):
                if seq is None:
                    return f"{path}: list is missing"
                sel = parse_path(op["after"])[0]
                if index_of(seq, sel) is None:
                    return f"{path}: no item {op['after']}"
            elif seq is None:
                parent, last = _parent(obj, path)
                if not isinstance(parent, MutableMapping) or not isinstance(last, Key):
                    return f"{path}: cannot create the list here"
            return None
        if kind == "remove-if-empty":
            return None
    except PathError as exc:
        return str(exc)
    return f"unknown op {kind!r}"


def apply_op(obj: Any, op: dict[str, Any]) -> None:
    """Apply one op in place (a no-op when already applied). Raises PathError if it cannot."""
    if is_applied(obj, op):
        return
    why = check(obj, op)
    if why:
        raise PathError(why)
    kind, path = op["op"], op["path"]
    value = copy.deepcopy(op.get("value"))
    if kind == "set":
        parent, last = _parent(obj, path)
        if isinstance(last, Key):
            parent[last.name] = value
        else:
            idx = index_of(parent, last)
            assert idx is not None
            parent[idx] = value
    elif kind == "replace-key":
        target = get(obj, path)
        keys = list(target.keys())
        pos = keys.index(op["old"])
        del target[op["old"]]
        if op["new"] in target:
            del target[op["new"]]
        _insert_key(target, pos, op["new"], value)
    elif kind == "remove":
        parent, last = _parent(obj, path)
        if isinstance(last, Key):
            _remove(parent, last.name)
        else:
            idx = index_of(parent, last)
            if idx is not None:
                _remove(parent, idx)
    elif kind == "insert":
        if not exists(obj, path):
            parent, last = _parent(obj, path)
            assert isinstance(last, Key)
            parent[last.name] = []
        seq = get(obj, path)
        if op.get("after"):
            idx = index_of(seq, parse_path(op["after"])[0])
            assert idx is not None
            seq.insert(idx + 1, value)
        else:
            seq.append(value)
            _move_trailing_comment(seq, len(seq) - 2, len(seq) - 1)
    elif kind == "remove-if-empty":
        parent, last = _parent(obj, path)
        if isinstance(last, Key) and isinstance(parent, MutableMapping) and not parent[last.name]:
            del parent[last.name]


def apply_ops(obj: Any, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        apply_op(obj, op)


def all_applied(obj: Any, ops: list[dict[str, Any]]) -> bool:
    """True when applying ``ops`` would change nothing (checked on a copy, in order)."""
    trial = copy.deepcopy(_plain(obj))
    before = _plain(trial)
    try:
        apply_ops(trial, ops)
    except PathError:
        return False
    return bool(_plain(trial) == before)
