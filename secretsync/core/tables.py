"""Plain-text tables, kubectl-style, that fit the terminal they are printed on.

Why wrap rather than cut: audit and scan cells hold object names, field paths and reasons a
reader needs whole. When the natural width is wider than the terminal, the widest columns
are capped (water-filling: narrow columns keep their width) and their cells wrap onto
continuation lines; piped output (``width`` None) is never wrapped, so ``grep`` and ``awk``
see one row per line.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from typing import Final

GAP: Final = 3
#: No column is squeezed below this (or its header), however narrow the terminal.
MIN_COLUMN: Final = 12


def _fit(widths: list[int], floors: list[int], width: int) -> list[int]:
    """Cap the widest columns so the row fits ``width`` (as far as the floors allow)."""
    room = width - GAP * (len(widths) - 1)
    if sum(widths) <= room:
        return widths
    lo, hi = 0, max(widths)
    while lo < hi:  # the largest cap that fits
        cap = (lo + hi + 1) // 2
        if sum(min(w, max(cap, f)) for w, f in zip(widths, floors, strict=True)) <= room:
            lo = cap
        else:
            hi = cap - 1
    return [min(w, max(lo, f)) for w, f in zip(widths, floors, strict=True)]


def _wrap(cell: str, width: int) -> list[str]:
    if len(cell) <= width:
        return [cell]
    return textwrap.wrap(cell, width, break_on_hyphens=False) or [""]


def format_table(rows: Sequence[Sequence[str]], headers: Sequence[str], width: int | None = None) -> str:
    """Columns separated by three spaces; cells wrap when ``width`` (the terminal's) is given."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    if width is not None:
        widths = _fit(widths, [min(w, max(len(h), MIN_COLUMN)) for w, h in zip(widths, headers, strict=True)],
                      width)
    out = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = [_wrap(c, w) if width is not None else [c] for c, w in zip(row, widths, strict=True)]
        for parts in itertools.zip_longest(*cells, fillvalue=""):
            out.append("   ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip())
    return "\n".join(out)
