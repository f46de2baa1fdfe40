"""``secretsync crds`` and ``secretsync import-eso``: the commands around the sync API.

``crds`` prints (or writes) the CRDs generated from the models, so ``deploy/crds/`` is
always what the code parses. ``import-eso`` turns External Secrets Operator manifests into
ours and says, per object and field, exactly what it could not convert: a migration tool
that silently drops a field is worse than none.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from secretsync.api.schema import rendered_crds


@click.command("crds")
@click.option(
    "-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Write one file per CRD into this directory (created if missing) instead of printing.",
)
def crds(output_dir: Path | None) -> None:
    """Print the secretsync CustomResourceDefinitions (generated from the API models).

    \b
      secretsync crds | kubectl apply -f -
      secretsync crds -o deploy/crds
    """
    files = rendered_crds()
    if output_dir is None:
        click.echo("---\n".join(files.values()), nl=False)
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (output_dir / name).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output_dir / name}", err=True)


@click.command("import-eso")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "-o", "--output", "output", default="-", show_default=True,
    help="'-' prints one YAML stream; a directory gets one file per input file.",
)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the list of what could not be converted to this file.")
def import_eso(files: tuple[str, ...], output: str, report: Path | None) -> None:
    """Convert External Secrets Operator manifests to secretsync ones.

    Reads ExternalSecret, SecretStore, ClusterSecretStore, ClusterExternalSecret, PushSecret
    and ClusterPushSecret (external-secrets.io v1beta1, v1, v1alpha1), writes the converted YAML (other objects, such as
    Secrets and ServiceAccounts, pass through unchanged), and prints on stderr exactly what
    could not be converted ("cannot convert: Kind/namespace/name: field: why") and what was
    dropped or changed without effect ("note: ..."). Objects with a problem are still
    printed, with their problems as comments above them. Exit code 0 when everything
    converted, 1 when anything could not. -n sets the namespace assumed for objects
    without one (default: default).
    """
    from secretsync.api.eso import convert_text, dump_documents

    from .context import CliContext

    cli_ctx = click.get_current_context().find_object(CliContext)
    default_ns = (cli_ctx.namespace if cli_ctx else None) or "default"
    issues_all: list[str] = []
    notes_all: list[str] = []
    outputs: list[tuple[str, str]] = []
    for name in files:
        if name == "-":
            text = sys.stdin.read()
            label = "<stdin>"
        else:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except OSError as exc:
                raise click.ClickException(f"{name}: {exc.strerror or exc}") from None
            label = name
        result = convert_text(text, label, default_namespace=default_ns)
        issues_all += [f"{label}: {i}" for i in result.issues]
        notes_all += [f"{label}: {n}" for n in result.notes]
        outputs.append((label, dump_documents(result)))

    if output == "-":
        stream = "---\n".join(text for _, text in outputs if text)
        click.echo(stream, nl=False)
    else:
        out_dir = Path(output)
        out_dir.mkdir(parents=True, exist_ok=True)
        for label, text in outputs:
            if not text:
                continue
            target = out_dir / (Path(label).name if label != "<stdin>" else "stdin.yaml")
            target.write_text(text, encoding="utf-8")
            click.echo(f"wrote {target}", err=True)

    for note in notes_all:
        click.echo(f"note: {note}", err=True)
    for issue in issues_all:
        click.echo(f"cannot convert: {issue}", err=True)
    if report is not None:
        report.write_text("".join(f"cannot convert: {i}\n" for i in issues_all)
                          + "".join(f"note: {n}\n" for n in notes_all), encoding="utf-8")
    if issues_all:
        click.echo(f"{len(issues_all)} item(s) could not be converted; review them before applying.", err=True)
        raise click.exceptions.Exit(1)
