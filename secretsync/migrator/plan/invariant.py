"""The migration's promise, checked: every container in every deploy unit reads the same before and after.

Why from the plan alone: ``plan`` must refuse an item before anyone applies it, and
``apply`` must refuse a plan someone edited into an unsafe one (an item dropped while the
edit that rewires its consumer stayed). Both build the tree the plan would leave in a
scratch copy (edits rendered, new files written, removed files gone), resolve what each
container reads there with values taken from the plan's own sources (a provider key reads
as the value the plan moves into it), and compare with the tree as it is.

kustomize units are built with the real engine (``kubectl kustomize``, kustomize v5) when
``kubectl`` is on PATH, so patches, components, name prefixes and generators count exactly
as they deploy. Without it, a unit the migrator cannot model (patches, components,
transformers, name prefixes...) cannot be verified, and whatever touches it is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from secretsync.core.atomicfile import naming
from secretsync.core.errors import SecretSyncError
from secretsync.core.values import SecretValue
from secretsync.manifests import helm
from secretsync.manifests.loader import load_text
from secretsync.manifests.tree import SKIP_DIRS

from ..edits import render_file
from ..manifests import DeployUnits, Inventory, Obj, Unit
from ..resolve import ContainerView, build_store, differences, resolve_workload

#: Seconds one ``kubectl kustomize`` may take before its unit counts as unverifiable.
KUSTOMIZE_TIMEOUT = 60.0

#: Files larger than this are not copied into the scratch tree (they are no manifests or generator inputs).
MAX_COPIED_FILE = 16 * 1024 * 1024

Views = dict[str, dict[str, ContainerView]]


@dataclass
class UnitView:
    """What a unit's containers read, and which Secrets (namespace, name) the unit makes."""

    views: Views
    secrets: frozenset[tuple[str, str]]
    #: every object the unit makes (``Kind/namespace/name``)
    names: frozenset[str] = frozenset()
    #: ExternalSecrets whose SecretStore is not the one the unit makes in their namespace
    dangling: frozenset[str] = frozenset()


def _dangling(objects: Iterable[Obj]) -> frozenset[str]:
    objs = list(objects)
    stores = {(o.namespace, o.name) for o in objs if o.kind == "SecretStore"}
    out = set()
    for o in objs:
        spec = o.data.get("spec") if o.kind == "ExternalSecret" else None
        ref = spec.get("secretStoreRef") if isinstance(spec, Mapping) else None
        if not isinstance(ref, Mapping) or ref.get("kind", "SecretStore") != "SecretStore":
            continue
        if any(ns == o.namespace for ns, _ in stores) and (o.namespace, str(ref.get("name"))) not in stores:
            out.add(o.resource)
    return frozenset(out)


def _made_secrets(objects: Iterable[Obj]) -> frozenset[tuple[str, str]]:
    out = set()
    for o in objects:
        if o.kind == "Secret":
            out.add((o.namespace, o.name))
        elif o.kind == "ExternalSecret":
            spec = o.data.get("spec")
            target = spec.get("target") if isinstance(spec, Mapping) else None
            name = target.get("name") if isinstance(target, Mapping) else None
            out.add((o.namespace, str(name or o.name)))
    return frozenset(out)


def kubectl_path() -> str | None:
    """``kubectl`` if it is on PATH (its ``kustomize`` subcommand is kustomize v5 since 1.27)."""
    return shutil.which("kubectl")


@dataclass
class PlannedTree:
    """What a plan does to the files: per-file changes, new files, removed files."""

    changes: Sequence[Mapping[str, Any]]
    new_files: Sequence[Mapping[str, Any]]
    delete_files: Sequence[Mapping[str, Any]]
    #: provider key -> the value the plan stores there
    values: dict[str, SecretValue] = field(default_factory=dict)

    def files_touched(self) -> set[str]:
        out = {str(c["file"]) for c in self.changes if c.get("file")}
        out |= {str(f["file"]) for f in self.new_files}
        out |= {str(d["file"]) for d in self.delete_files}
        return out


def materialize(inv: Inventory, planned: PlannedTree, dest: Path) -> Path:
    """A scratch copy of the tree with the plan carried out (the original is never touched)."""
    root = inv.base
    # regular files and symlinks (as links) only: a FIFO or a device in the tree must not block or be read
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        rel_dir = os.path.relpath(dirpath, root)
        (dest / rel_dir).mkdir(parents=True, exist_ok=True)
        for fn in filenames:
            src, dst = Path(dirpath) / fn, dest / rel_dir / fn
            try:
                st = src.lstat()
                if stat.S_ISLNK(st.st_mode):
                    os.symlink(os.readlink(src), dst)
                elif stat.S_ISREG(st.st_mode) and st.st_size <= MAX_COPIED_FILE:
                    shutil.copyfile(src, dst)
            except OSError:
                continue  # unreadable here is unreadable for the planner too; the check sees it missing
    by_file: dict[str, list[Mapping[str, Any]]] = {}
    for c in planned.changes:
        if c.get("file"):
            by_file.setdefault(str(c["file"]), []).append(c)
    for rel, changes in by_file.items():
        old = inv.texts.get(rel)
        if old is None:
            old = (root / rel).read_text(encoding="utf-8")
        with naming(dest / rel):
            (dest / rel).write_text(render_file(old, changes, rel), encoding="utf-8")
    for nf in planned.new_files:
        p = dest / str(nf["file"])
        p.parent.mkdir(parents=True, exist_ok=True)
        with naming(p):
            p.write_text(str(nf["text"]), encoding="utf-8")
    for d in planned.delete_files:
        (dest / str(d["file"])).unlink(missing_ok=True)
    return dest


class Unverifiable(SecretSyncError):
    """A unit whose containers cannot be resolved (the message says why): its items go to manual."""


def kustomize_build(directory: Path, kubectl: str) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` builds from ``directory`` (Unverifiable, value-free, when it cannot)."""
    try:
        out = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, timeout=KUSTOMIZE_TIMEOUT,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unverifiable(f"kubectl kustomize failed ({type(exc).__name__})") from None
    if out.returncode != 0:
        # kustomize's errors may quote a resource whole (values included): never carried into a plan
        raise Unverifiable(f"'kubectl kustomize {directory.name}' fails (exit {out.returncode}); run it to see why")
    try:
        return [d for d in yaml.safe_load_all(out.stdout) if isinstance(d, dict)]
    except yaml.YAMLError:
        raise Unverifiable("kubectl kustomize printed something that is not YAML") from None


def _kustomize_views(directory: Path, kubectl: str, getter: Callable[[str, str | None], SecretValue]) -> UnitView:
    return _rendered_views(kustomize_build(directory, kubectl), getter)


def _rendered_views(docs: list[dict[str, Any]], getter: Callable[[str, str | None], SecretValue]) -> UnitView:
    """What the containers of a rendered unit (kustomize build, Helm release) read."""
    rendered = Inventory.from_objects(docs)
    st = build_store(rendered, getter)
    return UnitView({o.resource: resolve_workload(st, o) for o in rendered.objects if o.pod_spec() is not None},
                    _made_secrets(rendered.objects), frozenset(o.resource for o in rendered.objects),
                    _dangling(rendered.objects))


#: What a container reads where the chart generates the value anew on every render (``randAlphaNum``).
GENERATED = b"<generated by the chart on every render>"


def _helm_views(directory: Path, getter: Callable[[str, str | None], SecretValue],
                generated_like: UnitView | None = None) -> UnitView:
    """A chart's release rendered by Helm's own engine with the chart's values: its templates are no
    objects until then, and what a value becomes (an env var, a key of a Secret) is theirs to decide.

    Rendered twice: a value the chart generates on every render (Bitnami charts make random
    passwords for empty values) differs between the two and counts as generated instead of as a
    change the migration made. After the migration the chart is rendered once and the values
    generated before count as generated (``generated_like``, the view before)."""
    first = _rendered_views(chart_release(directory), getter)
    if generated_like is not None:
        # the tree after the migration: what the chart generated before is generated again (one render)
        return UnitView(_mark_like(first.views, generated_like.views), first.secrets, first.names, first.dangling)
    second = _rendered_views(chart_release(directory), getter)
    return UnitView(_steady(first.views, second.views), first.secrets, first.names, first.dangling)


def chart_release(directory: Path) -> list[dict[str, Any]]:
    """The objects Helm's engine renders from the chart in ``directory`` with its own values (Unverifiable,
    value-free, when it cannot)."""
    chart = helm.Chart.read(directory)
    if chart is None:
        raise Unverifiable(f"{directory.name}/Chart.yaml cannot be read")
    try:
        manifests = helm.render(chart)
    except helm.RenderProblem as exc:
        raise Unverifiable(str(exc)) from None
    docs: list[dict[str, Any]] = []
    for name, text in helm.rendered_documents(manifests):
        loaded = load_text(name, text)
        if loaded.problems:
            raise Unverifiable(f"chart {chart.name}: {name} does not render to YAML")
        docs += [d.data for d in loaded.documents if isinstance(d.data, dict)]
    return docs


def _steady(a: Views, b: Views) -> Views:
    """``a`` with every value that differs in ``b`` (another render of the same chart) marked generated."""
    return _mark_generated(a, b, lambda mine, other: mine != other)


def _mark_like(views: Views, like: Views) -> Views:
    """``views`` with the values ``like`` marks generated marked the same."""
    return _mark_generated(views, like, lambda _, other: other == GENERATED)


def _mark_generated(views: Views, ref: Views, generated: Callable[[bytes, bytes | None], bool]) -> Views:
    """``views`` with each value for which ``generated(value, the same value in ref)`` holds marked generated."""
    out: Views = {}
    for res, containers in views.items():
        out[res] = {}
        for cname, v in containers.items():
            r = (ref.get(res) or {}).get(cname)
            if r is None:
                out[res][cname] = v
                continue
            env = {k: GENERATED if generated(x, r.env.get(k)) else x for k, x in v.env.items()}
            argv = [GENERATED if generated(x, r.argv[i] if i < len(r.argv) else None) else x
                    for i, x in enumerate(v.argv)]
            files = {p: (GENERATED, f[1]) if generated(f[0], (r.files.get(p) or (None, 0))[0]) else f
                     for p, f in v.files.items()}
            out[res][cname] = ContainerView(env, argv, files)
    return out


def unit_views(inv: Inventory, units: DeployUnits, unit: Unit, kubectl: str | None,
               getter: Callable[[str, str | None], SecretValue], before: UnitView | None = None) -> UnitView:
    """What every container of ``unit`` reads (Unverifiable when that cannot be known); ``before``: the
    unit's view before the migration, when this is the view after."""
    if unit.kind == "helm":
        if not helm.available():
            raise Unverifiable("the Helm engine is not installed (pip install 'secretsync[helm]') to render the chart")
        return _helm_views(inv.path(unit.dir), getter, before)
    if unit.kind == "kustomize":
        if kubectl is not None:
            return _kustomize_views(inv.path(unit.dir), kubectl, getter)
        why = units.complex.get(unit.id) or next(
            (f"{c.via[-1]} renames objects (namePrefix/nameSuffix)" for f in units.files_of(unit)
             for c in [units.chain(unit, f)] if c.prefixed), "")
        if why:
            raise Unverifiable(f"{why}; kubectl is not on PATH to build it with the real kustomize")
    st = build_store(inv, getter, unit, units)
    objects = units.objects_of(unit)
    return UnitView({o.resource: resolve_workload(st, o) for o in objects if o.pod_spec() is not None},
                    _made_secrets(objects) | frozenset(st.secrets), frozenset(o.resource for o in objects),
                    _dangling(objects))


def unit_files(units: DeployUnits, unit: Unit) -> set[str]:
    """Every file whose change can change what ``unit`` deploys."""
    out = set(units.files_of(unit))
    out |= {k.file for k, _ in units.kustomizations.get(unit.id, [])}
    out |= {p for p, owners in units.patches.items() if unit.id in owners}
    return out


def _missing(key: str, prop: str | None) -> SecretValue:
    raise KeyError(key)


def affected_units(units: DeployUnits, touched: set[str]) -> list[Unit]:
    """The units a set of changed, new or removed files can change."""
    return [u for u in units.units.values() if unit_files(units, u) & touched
            or any(os.path.dirname(f) == u.dir for f in touched if u.kind != "kustomize")]


def compare(inv: Inventory, after_inv: Inventory, unit_ids: list[str], kubectl: str | None,
            getter: Callable[[str, str | None], SecretValue], cache: dict[str, UnitView | str],
            strict: bool = True) -> dict[str, str]:
    """Unit id -> the first difference (value-free) between the two trees, per unit.

    ``strict``: a unit that cannot be verified counts as a problem (plan); otherwise it is
    skipped (apply, on a machine without the kubectl the plan used).
    """
    units, after_units = DeployUnits(inv), DeployUnits(after_inv)
    problems: dict[str, str] = {}
    made: dict[str, tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]] = {}
    names: dict[str, frozenset[str]] = {}
    for uid in unit_ids:
        unit = units.units[uid]
        if uid not in cache:
            try:
                cache[uid] = unit_views(inv, units, unit, kubectl, _missing)
            except Unverifiable as exc:
                cache[uid] = str(exc)
        before = cache[uid]
        if isinstance(before, str):
            if strict:
                problems[uid] = f"deploy unit {unit.dir or '.'} cannot be verified: {before}"
            continue
        after_unit = after_units.units.get(uid)
        if after_unit is None:
            problems[uid] = f"deploy unit {unit.dir or '.'} would no longer be deployed as before"
            continue
        try:
            after = unit_views(after_inv, after_units, after_unit, kubectl, getter, before)
        except Unverifiable as exc:
            problems[uid] = f"deploy unit {unit.dir or '.'} after the migration: {exc}"
            continue
        diff = differences(before.views, after.views)
        diff += [f"{es} refers to a SecretStore the unit does not make"
                 for es in sorted(after.dangling - before.dangling)]
        if diff:
            problems[uid] = f"in deploy unit {unit.dir or '.'}: {diff[0]}" + (
                f" (and {len(diff) - 1} more)" if len(diff) > 1 else "")
        made[uid] = (before.secrets, after.secrets)
        names[uid] = before.names
    # two units never share an object by name: a Secret that two units make after the migration must be
    # one they both made before, never a new meeting point (overlays side by side in one namespace).
    # Units that already make same-named objects are alternatives (dev and prod of one app, applied to
    # different clusters), not neighbours.
    ids = sorted(made)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            if names[a] & names[b]:
                continue
            shared = (made[a][1] & made[b][1]) - (made[a][0] & made[b][0])
            if shared:
                ns, name = sorted(shared)[0]
                why = (f"deploy units {units.units[a].dir or '.'} and {units.units[b].dir or '.'} would both make "
                       f"Secret {name} in namespace {ns or 'default'}")
                problems.setdefault(a, why)
                problems.setdefault(b, why)
    return problems


def check(inv: Inventory, planned: PlannedTree, kubectl: str | None, cache: dict[str, UnitView | str] | None = None,
          strict: bool = True) -> dict[str, str]:
    """Deploy unit id -> the first thing the plan would change in it (value-free), for every
    unit the plan touches; {} when every container reads the same."""
    units = DeployUnits(inv)
    affected = [u.id for u in affected_units(units, planned.files_touched())]
    if not affected:
        return {}

    def get_after(key: str, prop: str | None) -> SecretValue:
        if prop is not None or key not in planned.values:
            raise KeyError(key)
        return planned.values[key]

    with tempfile.TemporaryDirectory(prefix="secretsync-invariant-") as tmp:
        after_root = materialize(inv, planned, Path(tmp) / "tree")
        rel_paths = [after_root / inv.rel(p) for p in inv.roots] if inv.roots else [after_root]
        after_inv = Inventory.load(rel_paths, after_root)
        return compare(inv, after_inv, affected, kubectl, get_after, {} if cache is None else cache, strict)


def groups_touching(units: DeployUnits, unit_id: str, planned_by_group: Mapping[str, Iterable[str]]) -> list[str]:
    """Groups whose edits, new files or removals fall in ``unit_id``."""
    unit = units.units[unit_id]
    files = unit_files(units, unit)
    out = []
    for gid, touched in planned_by_group.items():
        t = set(touched)
        if t & files or (unit.kind != "kustomize" and any(os.path.dirname(f) == unit.dir for f in t)):
            out.append(gid)
    return out
