"""Offline input: the objects of a manifest tree (``secretsync audit PATH...``).

The tree is walked and read the way ``scan`` and ``migrate`` walk and read it
(:mod:`secretsync.manifests`): the same non-recursive walker (a tree a thousand directories
deep is no RecursionError), the same skipped directories, and the same bounded loader (an
alias bomb is refused in milliseconds, not expanded). A file or document that cannot be read
(a Helm template, malformed YAML, too large) is reported by ``file:line`` and skipped, and
counted in :attr:`ManifestLoad.unread` so the command can say the input was incomplete; the
message never quotes the file, since the line may hold a value. Every problem an object
raises carries the ``file:line`` of its document in ``location``. Secret objects in the
tree are reduced to metadata and key names as they are added to the inventory.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from secretsync.manifests.loader import load_text
from secretsync.manifests.tree import SKIP_DIRS, walk_tree

from .inventory import Inventory, Problem

SUFFIXES: Final = (".yaml", ".yml", ".json")
_LINE: Final = re.compile(r"\bline (\d+)")
MAX_FILE_SIZE: Final = 10 * 1024 * 1024


@dataclass(slots=True)
class ManifestLoad:
    #: Files read (parsed, in whole or in part).
    files: int = 0
    #: Files and documents that could not be read at all (each is in ``inv.problems``).
    unread: int = 0


def manifest_files(paths: Sequence[Path], on_error: list[Problem] | None = None) -> Iterator[Path]:
    """YAML/JSON files under ``paths`` (files as given; directories walked, dot-entries skipped)."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue

        def unlistable(directory: Path, exc: OSError) -> None:
            if on_error is not None:
                on_error.append(Problem(str(directory), "", f"cannot list: {exc.strerror or type(exc).__name__}"))

        for current, dirs, files in walk_tree(path, unlistable):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
            for name in files:
                if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                    yield current / name


def read_manifest_tree(paths: Sequence[Path], inv: Inventory) -> ManifestLoad:
    """Add every object under ``paths`` to ``inv``; says how many files were read and not read."""
    out = ManifestLoad()
    listing: list[Problem] = []
    for f in manifest_files(paths, listing):
        try:
            if not f.is_file():
                raise OSError(0, "not a regular file")
            if f.stat().st_size > MAX_FILE_SIZE:
                inv.problems.append(Problem(str(f), "", f"skipped: larger than {MAX_FILE_SIZE // 1024 // 1024} MB",
                                            location=f"{f}:1"))
                out.unread += 1
                continue
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or type(exc).__name__
            inv.problems.append(Problem(str(f), "", f"cannot read: {why}", location=str(f)))
            out.unread += 1
            continue
        out.files += 1
        loaded = load_text(f.name, text)
        del text
        for message in loaded.problems:
            line = _LINE.search(message)
            hint = " (a template?)" if "not valid YAML" in message else ""
            inv.problems.append(Problem(str(f), "", f"{message}{hint}",
                                        location=f"{f}:{line.group(1) if line else 1}"))
            out.unread += 1
        several = len(loaded.documents) > 1 or bool(loaded.problems)
        for doc in loaded.documents:
            if not isinstance(doc.data, dict):  # lists and scalars are not Kubernetes objects (values files...)
                continue
            before = len(inv.problems)
            inv.add(doc.data, f"{f}#{doc.index}" if several else str(f))
            where = f"{f}:{doc.line}"
            inv.problems[before:] = [dataclasses.replace(p, location=where) for p in inv.problems[before:]]
    inv.problems.extend(listing)
    out.unread += len(listing)
    return out


def load_manifests(paths: Sequence[Path], inv: Inventory) -> int:
    """Add every object under ``paths`` to ``inv``; returns how many files were read."""
    return read_manifest_tree(paths, inv).files
