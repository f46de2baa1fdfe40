"""Turn a plan's changes for one file into the file's new text.

One function shared by ``plan`` (to show the diff) and ``apply`` (to write it), so what
was reviewed is exactly what gets written.

YAML anchors, aliases and merge keys (``<<: *base``) make one node stand in several places:
editing it through one path would silently change (or break) the others, e.g. a second
workload that reads the same ``env`` list through ``*commonenv``. Such edits are refused
with a :class:`RewriteError` naming the path, and the planner turns them into manual items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import objpath
from .rewrite import RewriteError, edit_documents, is_json_file


def render_file(text: str, changes: Iterable[Mapping[str, Any]], where: str) -> str:
    """``text`` with every change's ops applied to its document (other documents untouched)."""
    by_doc: dict[int, list[dict[str, Any]]] = {}
    for chg in changes:
        by_doc.setdefault(int(chg.get("document") or 0), []).extend(chg["ops"])

    as_json = is_json_file(where)

    def editor(ops: list[dict[str, Any]], doc: int) -> Any:
        def edit(data: Any) -> Any:
            for op in ops:
                if op["op"] == "replace-document":
                    return op["value"]
            refuse_shared(data, ops, f"{where} document {doc}")
            objpath.apply_ops(data, ops if as_json else [octal_modes(op) for op in ops])
            return None

        return edit

    return edit_documents(text, {doc: editor(ops, doc) for doc, ops in by_doc.items()}, where)


_MODE_KEYS = frozenset({"mode", "defaultMode"})


def octal_modes(op: Mapping[str, Any]) -> dict[str, Any]:
    """``op`` with file modes in its value written the way people write them (``0440``, not ``288``).

    Plans carry modes as numbers read with YAML 1.1 rules (the API server's: ``0440`` is 288).
    ruamel writes an int whose digits are the octal ones, zero-padded, as ``0440`` again.
    """
    from ruamel.yaml.scalarint import ScalarInt

    def walk(node: Any, key: str | None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if key in _MODE_KEYS and isinstance(node, int) and not isinstance(node, bool) and 0 <= node <= 0o7777:
            digits = format(node, "o")
            return ScalarInt(int(digits), width=len(digits) + 1)
        return node

    if "value" not in op:
        return dict(op)
    return {**op, "value": walk(op["value"], None)}


def _anchored(node: Any) -> bool:
    anchor = getattr(node, "anchor", None)
    return getattr(anchor, "value", None) is not None


def _shared_ids(root: Any) -> set[int]:
    """Ids of nodes reachable along more than one path (the targets of aliases).

    Containers, and scalars that carry an anchor (ruamel builds one object per anchored
    node, so an alias of it is the same object; plain strings are never aliased).
    """
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict | list):
            if _anchored(node):
                if id(node) in seen:
                    shared.add(id(node))
                seen.add(id(node))
            continue
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        stack.extend(node.values() if isinstance(node, dict) else node)
    return shared


def refuse_shared(data: Any, ops: Iterable[Mapping[str, Any]], where: str) -> None:
    """RewriteError when an op would edit a node that an anchor, alias or merge key shares."""
    shared: set[int] | None = None
    for op in ops:
        if op["op"] == "replace-document":
            continue
        segs = objpath.parse_path(str(op["path"]))
        cur = data
        nodes = [data]
        for seg in segs:
            try:
                cur = objpath.get(cur, [seg])
            except objpath.PathError:
                break
            nodes.append(cur)
        if op["op"] == "replace-key" and isinstance(cur, Mapping) and op.get("old") in cur:
            nodes.append(cur[op["old"]])
            segs = [*segs, objpath.Key(str(op["old"]))]
        if shared is None:
            shared = _shared_ids(data)
        for depth, node in enumerate(nodes):
            merged = isinstance(node, Mapping) and bool(getattr(node, "merge", None))
            if id(node) in shared or merged:
                at = objpath.format_path(segs[:depth]) or "the document root"
                raise RewriteError(f"{where}: {at} is a YAML anchor, alias or merge shared with other places; "
                                   "editing it would change them too (move this value by hand)")
