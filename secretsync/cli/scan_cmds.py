"""``secretsync scan [PATH...] [--cluster]``: find plaintext secrets, print where (never what).

Exit codes: 0 clean, 1 findings, 2 usage error (a missing path included, as in every
command), 8 nothing found but some input was not read (an unreadable, malformed or
over-limit file, an unlistable directory: its secrets, if any, are not in the result), so a
CI gate never passes on a tree it did not read. Errors go to stderr, and into ``errors`` for
``-o json`` (``unread: true`` for those that set exit 8); malformed fields of an object that
was read (``env: "notalist"``) are reported without changing the exit code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from secretsync.manifests import EXIT_INCOMPLETE
from secretsync.scan import (
    BaselineError,
    ScanOptions,
    ScanResult,
    load_baseline,
    scan_objects,
    scan_paths,
    to_sarif,
    write_baseline,
)
from secretsync.scan.findings import Finding
from secretsync.scan.results import DEFAULT_MAX_FILE_SIZE

from .context import CliContext
from .output import render


def baseline_param(path: Path | None) -> frozenset[str]:
    """The fingerprints of a ``--baseline`` file (none without one); a usage error naming the file."""
    if path is None:
        return frozenset()
    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise click.BadParameter(str(exc), param_hint="--baseline") from None

_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]i?[bB]?|[bB])?\s*$")
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2,
          "mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3}


class _Size(click.ParamType):  # type: ignore[type-arg]
    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        if not match:
            self.fail(f"{value!r} is not a size (e.g. 5MB, 512KiB, 1000000)", param, ctx)
        return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


_TABLE_COLUMNS = ["where", "resource", "path", "key", "rule", "confidence", "preview"]


def _row(f: Finding) -> dict[str, Any]:
    where = f"{f.file}:{f.line}" if f.file is not None else f"cluster:{f.resource}"
    key = f"{f.key} ({f.subkey})" if f.subkey else f.key
    return {"where": where, "resource": f.resource, "path": f.path, "key": key, "rule": f.rule,
            "confidence": f.confidence, "preview": f.preview}


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--cluster", is_flag=True,
              help="Scan the live objects of the current kube context (and PATHs, if given).")
@click.option("-n", "--namespace", help="With --cluster: the namespace (default: the context's).")
@click.option("-A", "--all-namespaces", is_flag=True, help="With --cluster: every namespace.")
@click.option("-o", "--output", type=click.Choice(["table", "json", "sarif"]), default="table", show_default=True,
              help="Output format.")
@click.option("--baseline", "baseline_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Suppress findings whose fingerprints this file lists.")
@click.option("--write-baseline", "write_baseline_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the fingerprints of the current findings to this file and exit 0.")
@click.option("--min-confidence", type=click.Choice(["low", "medium", "high"]), default="low", show_default=True,
              help="Drop findings below this confidence.")
@click.option("--max-file-size", type=_Size(), default=DEFAULT_MAX_FILE_SIZE, show_default=True,
              help="Skip (and report) files larger than this (bytes, or 5MB, 512KiB...).")
@click.option("--no-entropy", is_flag=True, help="Do not report random-looking values under neutral names.")
@click.option("--no-render", is_flag=True,
              help="Do not render Helm charts (folders with Chart.yaml) with Helm's engine; by default, when it is "
                   "installed (secretsync[helm]), values that end up secret are reported at their values.yaml line.")
@click.option("--no-inline-ignore", is_flag=True, help="Ignore '# secretsync:ignore' comments.")
def scan(
    paths: tuple[Path, ...],
    cluster: bool,
    namespace: str | None,
    all_namespaces: bool,
    output: str,
    baseline_file: Path | None,
    write_baseline_file: Path | None,
    min_confidence: str,
    max_file_size: int,
    no_entropy: bool,
    no_render: bool,
    no_inline_ignore: bool,
) -> None:
    """Find plaintext secrets in manifests, Helm values, kustomizations (PATH..., default .) and,
    with --cluster, in live Pods, workloads, ConfigMaps and Secrets.

    Prints file, line, resource, JSON path, key and rule of each finding, with a redacted
    preview; never a value. Mark an accepted value with a '# secretsync:ignore' (or
    '# secretsync:ignore=RULE') comment on its line or the line above, or accept all current
    findings with --write-baseline and pass --baseline later. Exit code 1 when there are
    findings, 0 when clean.
    """
    root = click.get_current_context().find_object(CliContext) or CliContext()
    if namespace and all_namespaces:
        raise click.UsageError("use either -n/--namespace or -A/--all-namespaces, not both")
    if (namespace or all_namespaces) and not cluster:
        raise click.UsageError("-n/--namespace and -A/--all-namespaces need --cluster")
    if not namespace and not all_namespaces:
        namespace, all_namespaces = root.namespace, root.all_namespaces
    baseline = baseline_param(baseline_file)
    options = ScanOptions(
        max_file_size=max_file_size,
        min_confidence=min_confidence,  # type: ignore[arg-type]
        inline_ignore=not no_inline_ignore,
        baseline=frozenset() if write_baseline_file is not None else baseline,
        entropy=not no_entropy,
        render_charts=not no_render,
    )
    result = ScanResult()
    if paths or not cluster:
        result.extend(scan_paths(list(paths) or [Path(".")], options))
    if cluster:
        result.extend(_scan_cluster(root, namespace, all_namespaces, options))

    for error in result.errors:
        click.echo(f"error: {error}", err=True)
    findings = [d.finding for d in result.detections]
    if write_baseline_file is not None:
        count = write_baseline(write_baseline_file, findings)
        click.echo(f"wrote {count} fingerprints to {write_baseline_file}", err=True)
        return
    _print(findings, result, output)
    if findings:
        # SystemExit rather than ctx.exit(): click returns ctx.exit()'s code from main() in
        # standalone_mode=False, and ``python -m secretsync.cli.main`` drops that return value.
        raise SystemExit(1)
    if result.unread:
        raise SystemExit(EXIT_INCOMPLETE)


def _scan_cluster(root: CliContext, namespace: str | None, all_namespaces: bool,
                  options: ScanOptions) -> ScanResult:
    from secretsync.scan.cluster import api_client_for, list_live_objects

    api, default_ns = api_client_for(root.kubeconfig, root.kube_context)
    try:
        objects, errors = list_live_objects(api, None if all_namespaces else (namespace or default_ns))
    finally:
        api.close()
    result = scan_objects(objects, options, source="cluster")
    result.errors[:0] = errors
    return result


def _print(findings: list[Finding], result: ScanResult, output: str) -> None:
    if output == "json":
        doc = {"findings": [f.as_dict() for f in findings], "errors": [e.as_dict() for e in result.errors],
               "summary": {"findings": len(findings), "suppressed": result.suppressed, "unread": result.unread,
                           "files": result.files_scanned, "objects": result.objects_scanned}}
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    if output == "sarif":
        click.echo(json.dumps(to_sarif(findings, errors=result.errors), indent=2))
        return
    if findings:
        click.echo(render([_row(f) for f in findings], _TABLE_COLUMNS, "table"))
    scanned = f"{result.files_scanned} files" + (f", {result.objects_scanned} objects"
                                                   if result.objects_scanned else "")
    suppressed = f", {result.suppressed} suppressed" if result.suppressed else ""
    stray = sorted({f.file for f in findings if f.extra.get("stray-temp") and f.file})
    if stray:
        click.echo(f"warning: {len(stray)} temp file(s) left by an interrupted write hold plaintext "
                   f"({', '.join(stray)}): run the interrupted 'migrate apply' or 'migrate rollback' again "
                   "(it removes them by its journal), or delete them", err=True)
    unread = f" ({result.unread} not read)" if result.unread else ""
    click.echo(f"{len(findings)} findings in {scanned}{suppressed}, {len(result.errors)} errors{unread}", err=True)
