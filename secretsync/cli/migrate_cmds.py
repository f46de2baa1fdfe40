"""``secretsync migrate plan|apply|rollback``: move plaintext secrets into a secret manager.

``plan`` scans (files or ``--cluster``), and writes a value-free plan (``-o plan.json``)
plus its digest key (``plan.key``, 0600, keep it out of git); it prints a summary to
stderr and, with ``--diff``, the exact (masked) edits to stdout. ``apply`` carries the
plan out step by step with a journal beside it (``plan.journal``), resumable after any
crash by running it again. ``rollback JOURNAL`` restores the originals.

Exit codes: 0 done · 1 a step failed · 2 usage (or no confirmation possible) · 7 the
plan is stale or a provider key holds another value.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from secretsync.migrator import naming
from secretsync.migrator.apply import ApplyOptions
from secretsync.migrator.plan import PlanOptions, load_plan, sidecar
from secretsync.migrator.plan.select import Selection
from secretsync.migrator.workflow import (
    apply_plan,
    journal_start,
    open_store_quietly,
    plan_paths,
    rollback_journal,
    write_plan,
)

from .context import CliContext
from .output import render
from .scan_cmds import baseline_param

log = logging.getLogger("secretsync.migrator")


@click.group()
def migrate() -> None:
    """Move plaintext secrets from manifests or a cluster into a secret manager.

    \b
      secretsync migrate plan deploy/ --to aws://eu-west-1 -o plan.json
      secretsync migrate apply plan.json
      secretsync migrate rollback plan.journal
    """


def _confirm(question: str, yes: bool) -> None:
    """Ask, unless --yes. Never blocks: without a terminal it refuses (exit 2)."""
    if yes:
        return
    if not sys.stdin.isatty():
        click.echo(f"{question} -- refusing: standard input is not a terminal, so nobody can confirm. "
                   "Pass --yes to proceed without asking.", err=True)
        sys.exit(2)
    if not click.confirm(question, default=False, err=True):
        click.echo("Nothing done.", err=True)
        sys.exit(1)


def _bar(label: str, show: Callable[[Any], str]) -> Callable[[list[Any]], Callable[[Any], None]]:
    """A progress-bar factory for the workflow: a click bar on stderr, advanced per step."""

    def start(items: list[Any]) -> Callable[[Any], None]:
        bar: Any = click.progressbar(length=len(items), label=label, file=sys.stderr, show_pos=True,
                                     item_show_func=lambda s: show(s) if s is not None else "")
        bar.__enter__()
        done = [0]

        def tick(item: Any) -> None:
            bar.update(1, item)
            log.debug("step done: %s", show(item))
            done[0] += 1
            if done[0] >= len(items):
                bar.__exit__(None, None, None)

        if not items:
            bar.__exit__(None, None, None)
        return tick

    return start


# -- plan -------------------------------------------------------------------------------------------
@migrate.command("plan")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--cluster", is_flag=True, help="Plan for the live objects of the current kube context.")
@click.option("-n", "--namespace", help="With --cluster: the namespace (default: the context's).")
@click.option("-A", "--all-namespaces", is_flag=True, help="With --cluster: every namespace.")
@click.option("--to", "store_url", required=True, metavar="STORE-URL",
              help="Where the values go: aws://REGION, gcp://PROJECT, azure://VAULT, vault://HOST/MOUNT, file://PATH.")
@click.option("--name-template", default=naming.DEFAULT_TEMPLATE, show_default=True,
              help="Provider key names; placeholders: " + ", ".join("{" + p + "}" for p in naming.PLACEHOLDERS))
@click.option("--store-ref", "store_name", default="secretsync", show_default=True,
              help="Name of the (Cluster)SecretStore the ExternalSecrets use.")
@click.option("--store-kind", type=click.Choice(["SecretStore", "ClusterSecretStore"]), default="SecretStore",
              show_default=True)
@click.option("--store-manifest/--no-store-manifest", default=None,
              help="Write (files) or create (--cluster) the store object too. Default: yes, unless --store-ref "
                   "names an existing store.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("plan.json"),
              show_default=True, help="Where to write the plan (its key goes beside it as .key).")
@click.option("--diff", is_flag=True, help="Print the exact edits (values masked) as a unified diff to stdout.")
@click.option("--refresh-interval", default="1h", show_default=True, help="refreshInterval of the ExternalSecrets.")
@click.option("--min-confidence", type=click.Choice(["low", "medium", "high"]), default="low", show_default=True,
              help="Move only findings at this confidence or above; the rest are listed as skipped.")
@click.option("--baseline", "baseline_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A scan baseline (scan --write-baseline): the findings it accepts are not moved.")
@click.option("--exclude", "exclude", multiple=True, metavar="GLOB",
              help="Leave findings whose file (or Kind/namespace/name) matches GLOB (repeatable).")
@click.option("--only", "only", multiple=True, metavar="RULE",
              help="Move only findings of these rules (repeatable, or comma-separated).")
@click.option("--kubectl/--no-kubectl", "use_kubectl", default=True, show_default=True,
              help="Build kustomize overlays with 'kubectl kustomize' (when on PATH) to check that no container "
                   "reads anything else after the migration. Without it, overlays with patches or name "
                   "prefixes cannot be checked and their items stay manual.")
@click.option("--emit", type=click.Choice(["secretsync", "eso"]), default="secretsync", show_default=True,
              help="Which ExternalSecret/SecretStore objects to write: ours (secretsync.io) or the External Secrets "
                   "Operator's (external-secrets.io/v1, for teams that already run ESO; manifest trees only).")
def plan_cmd(paths: tuple[Path, ...], cluster: bool, namespace: str | None, all_namespaces: bool,
             store_url: str, name_template: str, store_name: str,
             store_kind: str, store_manifest: bool | None, out: Path, diff: bool, refresh_interval: str,
             min_confidence: str, baseline_file: Path | None, exclude: tuple[str, ...], only: tuple[str, ...],
             use_kubectl: bool, emit: str) -> None:
    """Plan moving every plaintext secret under PATH... (or in the cluster) to STORE-URL.

    Every finding ends up migrated, manual (with the reason) or skipped (by --min-confidence,
    --baseline, --exclude or --only). Each reference resolves within its deploy unit (the
    kustomization that includes the file, the Helm chart, else the folder); an item that would
    change what any container reads is refused.
    """
    ctx = click.get_current_context()
    if (namespace or all_namespaces) and not cluster:
        raise click.UsageError("-n/--namespace and -A/--all-namespaces need --cluster")
    if store_manifest is None:
        store_manifest = ctx.get_parameter_source("store_name") != click.core.ParameterSource.COMMANDLINE
    selection = Selection(min_confidence=min_confidence, baseline=baseline_param(baseline_file), exclude=exclude,
                          only=tuple(r.strip() for o in only for r in o.split(",") if r.strip()))
    opts = PlanOptions(store_url=store_url, name_template=name_template, store_name=store_name,
                       store_kind=store_kind, store_manifest=store_manifest, refresh_interval=refresh_interval,
                       use_kubectl=use_kubectl, selection=selection, emit=emit)
    if emit == "eso" and cluster:
        raise click.UsageError("--emit eso writes manifests; with --cluster the ExternalSecrets are secretsync's")
    client = open_store_quietly(store_url)
    if client is None:
        click.echo(f"warning: cannot reach {store_url} to check which keys exist; planning without", err=True)
    try:
        if cluster:
            if paths:
                raise click.UsageError("give either PATH... or --cluster, not both")
            from secretsync.migrator.cluster import plan_cluster

            root = ctx.find_object(CliContext) or CliContext()
            plan = plan_cluster(root.kubeconfig, root.kube_context, namespace or root.namespace,
                                all_namespaces or root.all_namespaces, opts, client)
        else:
            plan = plan_paths(list(paths) or [Path(".")], opts, client,
                              on_scan_error=lambda e: click.echo(f"warning: {e}", err=True))
    finally:
        if client is not None:
            client.close()
    write_plan(plan, out)
    _print_plan_summary(plan.doc, out)
    if diff:
        for text in plan.diffs.values():
            click.echo(text, nl=False)


def _print_plan_summary(doc: dict[str, Any], out: Path) -> None:
    rows = [{"provider key": s["providerKey"], "from": s["source"].get("file") or s["source"].get("resource"),
             "secret/key": f"{_group(doc, s['group'])['externalSecret']['target']}/{s['secretKey']}",
             "state": s["providerState"]} for s in doc["secrets"]]
    click.echo(render(rows, ["provider key", "from", "secret/key", "state"], "table"), err=True)
    if doc["store"].get("names"):
        click.echo(f"provider keys follow the target's {doc['store']['names']}", err=True)
    for m in doc["manual"]:
        where = f"{m['file']}:{m['line']}" if m.get("file") else m["resource"]
        click.echo(f"MANUAL  {where} {m['path']} ({m['key']}): {m['reason']}", err=True)
    n_find = len(doc["findings"])
    n_man = len(doc["manual"])
    n_skip = sum(1 for f in doc["findings"] if f.get("disposition") == "skipped")
    click.echo(
        f"\n{n_find} findings -> {len(doc['secrets'])} provider keys, {len(doc['groups'])} ExternalSecrets, "
        f"{len(doc['changes'])} object edits, {len(doc.get('newFiles', []))} new files, "
        f"{len(doc.get('deleteFiles', []))} files removed; {n_man} manual, {n_skip} skipped. Plan written to {out} "
        f"(no values; its key is {sidecar(out, '.key').name}).", err=True)


def _group(doc: dict[str, Any], gid: str) -> dict[str, Any]:
    return next(g for g in doc["groups"] if g["id"] == gid)


# -- apply ------------------------------------------------------------------------------------------
@migrate.command("apply")
@click.argument("plan_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--journal", "journal_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Journal file (default: beside the plan, .journal).")
@click.option("--dry-run", is_flag=True, help="Check everything and say what would happen; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--overwrite", is_flag=True, help="Replace provider keys that hold a different value.")
@click.option("--sync-timeout", type=float, default=120.0, show_default=True,
              help="Cluster mode: seconds to wait for the controller to sync each Secret.")
@click.option("--no-wait-sync", is_flag=True,
              help="Cluster mode: do not wait for the synced Secret before switching workloads (unsafe: only "
                   "when no controller runs yet).")
def apply_cmd(plan_file: Path, journal_file: Path | None, dry_run: bool, yes: bool, overwrite: bool,
              sync_timeout: float, no_wait_sync: bool) -> None:
    """Carry out PLAN_FILE: store values, create ExternalSecrets, switch workloads, remove plaintext.

    Safe to run again after a failure or a crash: it resumes from the journal.
    """
    doc = load_plan(plan_file)
    journal_path = journal_file or sidecar(plan_file, ".journal")
    options = ApplyOptions(dry_run=dry_run, overwrite=overwrite, sync_timeout=sync_timeout,
                           wait_sync=not no_wait_sync)
    if not dry_run:
        _confirm(f"Move {len(doc['secrets'])} values to {doc['store']['url']} and rewrite "
                 f"{len(doc['changes'])} objects?", yes)
    root = click.get_current_context().find_object(CliContext) or CliContext()
    report = apply_plan(plan_file, options, journal_path, root.kubeconfig, root.kube_context,
                        progress=_bar("migrating", lambda s: s.label))
    for line in report.actions:
        click.echo(line, err=True)
    for line in report.problems:
        click.echo(f"problem: {line}", err=True)
    if dry_run:
        click.echo("dry run: every step checked, nothing changed", err=True)
        return
    if report.problems:
        click.echo(f"incomplete: {len(report.problems)} item(s) left as they were (see above); the rest is done. "
                   f"Journal: {journal_path}", err=True)
        sys.exit(1)
    click.echo(
        f"done: {report.stored} values stored, {report.reused} reused, {report.externalsecrets} ExternalSecrets, "
        f"{report.rewritten_files + report.patched} sources rewritten, {report.deleted_files} files removed"
        + (f", {report.skipped} steps already done" if report.skipped else "")
        + f". Journal: {journal_path}", err=True)


# -- rollback -------------------------------------------------------------------------------------
@migrate.command("rollback")
@click.argument("journal_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check that everything can be restored; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--delete-created", is_flag=True,
              help="Also delete the provider keys apply created (only while they hold the migrated value).")
def rollback_cmd(journal_file: Path, dry_run: bool, yes: bool, delete_created: bool) -> None:
    """Restore the original files or objects an apply changed (values read back from the provider)."""
    journal_start(journal_file)  # fails early, with a clear message, on a wrong file
    if not dry_run:
        _confirm(f"Restore the sources changed by the migration in {journal_file}?", yes)
    root = click.get_current_context().find_object(CliContext) or CliContext()
    report = rollback_journal(journal_file, delete_created=delete_created, dry_run=dry_run,
                              kubeconfig=root.kubeconfig, kube_context=root.kube_context,
                              progress=_bar("restoring", lambda s: s.step))
    for line in report.problems:
        click.echo(f"problem: {line}", err=True)
    d = report.as_dict()
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in d.items() if isinstance(v, int) and v)
    click.echo(("dry run: " if dry_run else "rolled back: ") + (summary or "nothing to do"), err=True)
    if report.problems:
        sys.exit(1)
