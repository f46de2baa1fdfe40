"""Render rows as a table, JSON or YAML (``-o table|json|yaml``), kubectl-style."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click
import yaml

OUTPUT_OPTION = click.option(
    "-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table", show_default=True,
    help="Output format.",
)


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "<none>"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "<none>"
    return str(value)


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str, *, wrap: str | None = None) -> str:
    """Format rows. ``wrap`` puts a list under one key for JSON/YAML (e.g. ``findings``)."""
    if fmt in ("json", "yaml"):
        doc: Any = {wrap: list(rows)} if wrap else list(rows)
        if fmt == "json":
            return json.dumps(doc, indent=2, default=str)
        return yaml.safe_dump(json.loads(json.dumps(doc, default=str)), sort_keys=False)
    headers = [c.upper() for c in columns]
    table = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(h)] + [len(row[i]) for row in table]) for i, h in enumerate(headers)]
    lines = ["   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]
    return "\n".join(lines)
