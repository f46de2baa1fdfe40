"""Turn a plan's changes for one file into the file's new text.

One function shared by ``plan`` (to show the diff) and ``apply`` (to write it), so what
was reviewed is exactly what gets written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import objpath
from .rewrite import edit_documents


def render_file(text: str, changes: Iterable[Mapping[str, Any]], where: str) -> str:
    """``text`` with every change's ops applied to its document (other documents untouched)."""
    by_doc: dict[int, list[dict[str, Any]]] = {}
    for chg in changes:
        by_doc.setdefault(int(chg.get("document") or 0), []).extend(chg["ops"])

    def editor(ops: list[dict[str, Any]]) -> Any:
        def edit(data: Any) -> Any:
            for op in ops:
                if op["op"] == "replace-document":
                    return op["value"]
            objpath.apply_ops(data, ops)
            return None

        return edit

    return edit_documents(text, {doc: editor(ops) for doc, ops in by_doc.items()}, where)
