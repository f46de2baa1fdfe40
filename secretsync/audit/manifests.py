"""Offline input: the objects of a manifest tree (``secretsync audit PATH...``).

Plain YAML/JSON documents read with ``yaml.safe_load_all`` (the C loader when available).
A file that does not parse (a Helm template, say) is reported by file and line and skipped;
the message never quotes the file, since the line may hold a value. Secret objects in the
tree are reduced to metadata and key names as they are added to the inventory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from .inventory import Inventory, Problem

SUFFIXES: Final = (".yaml", ".yml", ".json")
MAX_FILE_SIZE: Final = 10 * 1024 * 1024

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def manifest_files(paths: Sequence[Path]) -> Iterator[Path]:
    """YAML/JSON files under ``paths`` (files as given; directories walked, dot-entries skipped)."""
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path).parts
                if f.is_file() and f.suffix.lower() in SUFFIXES and not any(p.startswith(".") for p in rel):
                    yield f
        else:
            yield path


def load_manifests(paths: Sequence[Path], inv: Inventory) -> int:
    """Add every object under ``paths`` to ``inv``; returns how many files were read."""
    files = 0
    for f in manifest_files(paths):
        try:
            if f.stat().st_size > MAX_FILE_SIZE:
                inv.problems.append(Problem(str(f), "", f"skipped: larger than {MAX_FILE_SIZE // 1024 // 1024} MB"))
                continue
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            inv.problems.append(Problem(str(f), "", f"cannot read: {type(exc).__name__}"))
            continue
        files += 1
        docs: list[Any] = []
        try:
            docs.extend(d for d in yaml.load_all(text, Loader=_Loader) if d is not None)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            before = f"; read the {len(docs)} document(s) before it" if docs else ""
            inv.problems.append(Problem(str(f), "", f"not valid YAML{where} (a template?){before}"))
        del text
        for i, doc in enumerate(docs):
            if isinstance(doc, dict):  # lists and scalars are not Kubernetes objects (values files...)
                inv.add(doc, f"{f}#{i}" if len(docs) > 1 else str(f))
        docs.clear()
    return files
