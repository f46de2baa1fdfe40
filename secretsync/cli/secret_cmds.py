"""``secretsync secret get|put|ls|rm STORE-URL [NAME]``: one store, by hand.

``put`` never takes the value as an argument: arguments show in ``ps`` and shell history.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from secretsync.core.contract import ListFilter
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue

from .context import current
from .output import OUTPUT_OPTION, render


def _parse_tags(tags: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in tags:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"tag {item!r} must look like KEY=VALUE", param_hint="--tag")
        out[key] = val
    return out


@click.group()
def secret() -> None:
    """Read and write secrets in one store (any installed provider)."""


@secret.command("get")
@click.argument("store_url")
@click.argument("name")
@click.option("--version", "version_id", help="Read this version instead of the latest.")
@click.option("--property", "prop", help="Print one property of a JSON secret.")
def get_cmd(store_url: str, name: str, version_id: str | None, prop: str | None) -> None:
    """Print a secret's raw value to stdout."""
    with_client = open_store(store_url, current().client_settings)
    try:
        value = with_client.get(name, version=version_id, prop=prop)
    finally:
        with_client.close()
    out = sys.stdout.buffer
    out.write(value.reveal())
    out.flush()


@secret.command("put")
@click.argument("store_url")
@click.argument("name")
@click.option("--from-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read the value from this file instead of standard input.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Tag the secret (repeatable).")
@click.option("--if-absent", is_flag=True, help="Fail with a conflict (exit 7) if the secret exists.")
@click.option("--expected-version", help="Compare-and-set: fail unless the current version is this one.")
@click.option("--strip-newline/--keep-newline", default=True, show_default=True,
              help="Drop one trailing newline from standard input (echo adds one).")
@OUTPUT_OPTION
def put_cmd(
    store_url: str,
    name: str,
    from_file: Path | None,
    tags: tuple[str, ...],
    if_absent: bool,
    expected_version: str | None,
    strip_newline: bool,
    output: str,
) -> None:
    """Create a secret or add a new version; the value comes from stdin or --from-file."""
    if from_file is not None:
        data = from_file.read_bytes()
    else:
        if sys.stdin.isatty():
            click.echo("Reading the value from standard input (end with Ctrl-D)...", err=True)
        data = sys.stdin.buffer.read()
        if strip_newline and data.endswith(b"\n"):
            data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
    client = open_store(store_url, current().client_settings)
    try:
        result = client.put(
            name,
            SecretValue(data),
            tags=_parse_tags(tags) if tags else None,
            if_absent=if_absent,
            expected_version=expected_version,
        )
    finally:
        client.close()
    row = {"name": result.name, "version": result.version}
    if output == "table":
        click.echo(f"stored {result.name} (version {result.version or '-'})", err=True)
    else:
        click.echo(render([row], ["name", "version"], output))


@secret.command("ls")
@click.argument("store_url")
@click.argument("prefix", required=False)
@click.option("--regex", help="Only names matching this regular expression.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Only secrets with this tag.")
@OUTPUT_OPTION
def ls_cmd(store_url: str, prefix: str | None, regex: str | None, tags: tuple[str, ...], output: str) -> None:
    """List secrets' names and metadata (never values)."""
    client = open_store(store_url, current().client_settings)
    try:
        flt = ListFilter(prefix=prefix, name_regex=regex, tags=_parse_tags(tags))
        rows = [m.as_dict() for m in client.list(flt)]
    finally:
        client.close()
    click.echo(render(rows, ["name", "version", "updated", "tags"], output))


@secret.command("rm")
@click.argument("store_url")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete at once, without the provider's recovery window.")
def rm_cmd(store_url: str, name: str, force: bool) -> None:
    """Delete a secret (soft delete where the provider has one, unless --force)."""
    client = open_store(store_url, current().client_settings)
    try:
        client.delete(name, force=force)
    finally:
        client.close()
    click.echo(f"deleted {name}", err=True)
