"""Walking a directory tree without recursion.

Why not ``os.walk``: on Python 3.11 it recurses once per directory level, so a tree a
thousand directories deep (a generated one, a symlink farm flattened by a copy) raises
RecursionError and ends the scan. This walk keeps its own stack, never follows directory
symlinks, and reports directories it cannot list instead of raising.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

#: Directories no reader of manifests walks into (VCS data, dependencies, caches).
SKIP_DIRS: Final = frozenset({".git", ".venv", "node_modules", "__pycache__", ".terraform"})


def walk_tree(top: Path, on_error: Callable[[Path, OSError], None] | None = None
              ) -> Iterator[tuple[Path, list[str], list[str]]]:
    """``(directory, subdirectory names, file names)`` top-down, names sorted.

    Like ``os.walk(top, followlinks=False)``: the caller may remove names from the
    subdirectory list to prune them; symlinks to directories are listed there but never
    entered.
    """
    stack = [top]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as exc:
            if on_error is not None:
                on_error(current, exc)
            continue
        dirs: list[str] = []
        files: list[str] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(entry.name)
        dirs.sort()
        files.sort()
        yield current, dirs, files
        for name in reversed(dirs):
            sub = current / name
            if not sub.is_symlink():
                stack.append(sub)
