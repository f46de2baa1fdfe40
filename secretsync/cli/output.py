"""Render rows as a table, JSON or YAML (``-o table|json|yaml``), kubectl-style."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
import yaml

from secretsync.core.tables import format_table

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
    return format_table([[_cell(r.get(c)) for c in columns] for r in rows], [c.upper() for c in columns],
                        terminal_width())


def terminal_width() -> int | None:
    """Columns of the terminal stdout is, or None when piped (tables then never wrap)."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns
