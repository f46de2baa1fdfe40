"""``secretsync version`` and ``secretsync providers``."""

from __future__ import annotations

import platform

import click

from secretsync import __version__
from secretsync.core.registry import providers

from .output import OUTPUT_OPTION, render


@click.command()
@OUTPUT_OPTION
def version(output: str) -> None:
    """Print the secretsync version."""
    row = {"version": __version__, "python": platform.python_version()}
    if output == "table":
        click.echo(f"secretsync {__version__} (python {row['python']})")
    else:
        click.echo(render([row], ["version", "python"], output))


@click.command("providers")
@OUTPUT_OPTION
def providers_cmd(output: str) -> None:
    """List installed providers and the capabilities each declares."""
    rows = []
    for info in providers():
        caps = info.factory.capabilities.as_dict() if info.factory else {}
        rows.append(
            {
                "name": info.name,
                "available": info.available,
                "access": caps.get("access"),
                "batch": caps.get("batchGet"),
                "versions": caps.get("versions"),
                "tags": caps.get("tags"),
                "cas": caps.get("compareAndSet"),
                "capabilities": caps,
                "error": info.error,
            }
        )
    if output == "table":
        cols = ["name", "available", "access", "batch", "versions", "tags", "cas", "error"]
        click.echo(render(rows, cols, output))
    else:
        click.echo(render(rows, ["name"], output))
