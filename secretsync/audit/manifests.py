"""Offline input: the objects of a manifest tree (``secretsync audit PATH...``).

The tree is walked and read the way ``scan`` and ``migrate`` walk and read it
(:mod:`secretsync.manifests`): the same non-recursive walker (a tree a thousand directories
deep is no RecursionError), the same skipped directories, and the same bounded loader (an
alias bomb is refused in milliseconds, not expanded). A file or document that cannot be read
(malformed YAML, too large) is reported by ``file:line`` and skipped, and
counted in :attr:`ManifestLoad.unread` so the command can say the input was incomplete; the
message never quotes the file, since the line may hold a value. A Helm chart (a folder with
``Chart.yaml``) is rendered with Helm's engine when it is installed, as ``scan`` renders it, and
its objects are audited as Helm would deploy them. Every problem an object
raises carries the ``file:line`` of its document in ``location``. Secret objects in the
tree are reduced to metadata and key names as they are added to the inventory. A workload's
findings point at the exact line of the Secret reference (or ``serviceAccountName``) they are
about, resolved on the composed document, which is dropped right after.

Objects without ``metadata.namespace`` take the ``namespace:`` of the kustomization in their
directory that lists them among its ``resources`` (the rule ``migrate plan`` uses), else
``-n``, else ``default``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from secretsync.core.gcpause import paused_gc
from secretsync.kube.podspec import POD_SPEC_PATHS
from secretsync.manifests import helm
from secretsync.manifests.loader import load_text
from secretsync.manifests.tree import SKIP_DIRS, walk_tree
from secretsync.manifests.units import KUSTOMIZATION_NAMES, DeployUnits, Kustomization

from .inventory import Inventory, Problem

SUFFIXES: Final = (".yaml", ".yml", ".json")
_LINE: Final = re.compile(r"\bline (\d+)")
MAX_FILE_SIZE: Final = 10 * 1024 * 1024


@dataclass(slots=True)
class ManifestLoad:
    #: Files read (parsed, in whole or in part).
    files: int = 0
    #: Files and documents that could not be read at all (each is in ``inv.problems``).
    unread: int = 0


def manifest_files(paths: Sequence[Path], on_error: list[Problem] | None = None,
                   charts: list[Path] | None = None) -> Iterator[Path]:
    """YAML/JSON files under ``paths`` (files as given; directories walked, dot-entries skipped).

    Folders holding a ``Chart.yaml`` are appended to ``charts`` when given.
    """
    for path in paths:
        if not path.is_dir():
            yield path
            continue

        def unlistable(directory: Path, exc: OSError) -> None:
            if on_error is not None:
                on_error.append(Problem(str(directory), "", f"cannot list: {exc.strerror or type(exc).__name__}"))

        for current, dirs, files in walk_tree(path, unlistable):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS]
            if charts is not None and "Chart.yaml" in files:
                charts.append(current)
            for name in files:
                if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                    yield current / name


def read_manifest_tree(paths: Sequence[Path], inv: Inventory) -> ManifestLoad:
    """Add every object under ``paths`` to ``inv``; says how many files were read and not read."""
    out = ManifestLoad()
    listing: list[Problem] = []
    charts: list[Path] = []
    files = list(manifest_files(paths, listing, charts))
    rendered = _add_rendered_charts(charts, inv, out) if charts and helm.available() else []
    unit_ns = kustomize_namespaces(files)
    default_ns = inv.default_namespace
    with paused_gc():
        for f in files:
            if any(f.is_relative_to(chart / part) for chart in rendered for part in ("templates", "charts")):
                continue  # read as Helm rendered it
            if f.name in KUSTOMIZATION_NAMES:
                continue  # the unit's settings, not an object
            # One read per namespace a kustomize unit deploys the file into (a shared base: each
            # overlay's namespace); counted once.
            for i, ns in enumerate(sorted(unit_ns.get(f.resolve(), ())) or [default_ns]):
                inv.default_namespace = ns
                before = len(inv.problems)
                try:
                    _read_file(f, inv, out if i == 0 else ManifestLoad())
                finally:
                    inv.default_namespace = default_ns
                if i:  # a file's own problems (unreadable, malformed) are reported once
                    inv.problems[before:] = [p for p in inv.problems[before:] if p.object != str(f)]
    inv.problems.extend(listing)
    out.unread += len(listing)
    return out


def _read_file(f: Path, inv: Inventory, out: ManifestLoad) -> None:
    """Add the objects of one file (or say why it could not be read)."""
    try:
        if not f.is_file():
            raise OSError(0, "not a regular file")
        if f.stat().st_size > MAX_FILE_SIZE:
            inv.problems.append(Problem(str(f), "", f"skipped: larger than {MAX_FILE_SIZE // 1024 // 1024} MB",
                                        location=f"{f}:1"))
            out.unread += 1
            return
        text = f.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        inv.problems.append(Problem(str(f), "", f"cannot read: {why}", location=str(f)))
        out.unread += 1
        return
    out.files += 1
    loaded = load_text(f.name, text, keep_nodes=True)
    del text
    for message in loaded.problems:
        line = _LINE.search(message)
        hint = " (a template?)" if "not valid YAML" in message else ""
        inv.problems.append(Problem(str(f), "", f"{message}{hint}",
                                    location=f"{f}:{line.group(1) if line else 1}"))
        out.unread += 1
    for doc in loaded.documents:
        if not isinstance(doc.data, dict):  # lists and scalars are not Kubernetes objects (values files...)
            continue
        node, doc.node = doc.node, None
        name_line = field_line(node, "metadata.name") if node is not None else None
        before = len(inv.problems)
        # Findings point at the object's name line; a problem reading it, at its document.
        _add_located(inv, doc.data, node, f"{f}:{name_line or doc.line}", str(f))
        where = f"{f}:{doc.line}"
        inv.problems[before:] = [dataclasses.replace(p, location=where) for p in inv.problems[before:]]


def _add_rendered_charts(charts: list[Path], inv: Inventory, out: ManifestLoad) -> list[Path]:
    """Add the objects of every chart Helm can render (default values); returns those charts.

    A chart's templates are not YAML until rendered, and what they render to (which Secret a
    Deployment mounts) is what the audit is about. Rendering is offline, through the shared
    :mod:`secretsync.manifests.helm` module; a chart that does not render is named and its
    templates are read as files (and reported as unread).
    """
    done: list[Path] = []
    for chart_dir in charts:
        if any(chart_dir.is_relative_to(parent / "charts") for parent in charts if parent != chart_dir):
            continue  # a subchart: rendered with its parent
        chart = helm.Chart.read(chart_dir)
        if chart is None or chart.library:
            continue
        try:
            manifests = helm.render(chart)
        except helm.RenderProblem as exc:
            inv.problems.append(Problem(str(chart_dir / "Chart.yaml"), "", str(exc),
                                        location=f"{chart_dir}/Chart.yaml:1"))
            continue
        for template, text in helm.rendered_documents(manifests):
            shown = chart_dir / template.split("/", 1)[-1]
            loaded = load_text(template, text)
            out.unread += len(loaded.problems)
            inv.problems.extend(Problem(f"{shown} (rendered)", "", message) for message in loaded.problems)
            for doc in loaded.documents:
                if isinstance(doc.data, dict):
                    before = len(inv.problems)
                    inv.add(doc.data, f"{shown} (rendered)")
                    inv.problems[before:] = [dataclasses.replace(p, location=f"{shown} (rendered):{doc.line}")
                                             for p in inv.problems[before:]]
        out.files += 1
        done.append(chart_dir)
    return done


def load_manifests(paths: Sequence[Path], inv: Inventory) -> int:
    """Add every object under ``paths`` to ``inv``; returns how many files were read."""
    return read_manifest_tree(paths, inv).files


def _token_path(path: str) -> list[str | int]:
    """``spec.containers[0].env[2].valueFrom`` -> ``["spec", "containers", 0, "env", 2, "valueFrom"]``."""
    out: list[str | int] = []
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        for idx in rest.split("[") if rest else ():
            idx = idx.rstrip("]")
            if idx.isdigit():
                out.append(int(idx))
    return out


def field_line(node: yaml.Node, path: str) -> int | None:
    """1-based line of the field at ``path`` in a composed document (the deepest part found)."""
    line: int | None = None
    for tok in _token_path(path):
        if isinstance(node, yaml.MappingNode) and isinstance(tok, str):
            hit = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == tok), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(tok, int) and tok < len(node.value):
            node = node.value[tok]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _add_located(inv: Inventory, doc: dict[str, Any], node: yaml.Node | None, source: str, file: str) -> None:
    """Add one object; remember where its workload's Secret references stand in the file."""
    before = len(inv.workloads)
    inv.add(doc, source)
    if node is None:
        return
    for w in inv.workloads[before:]:
        ref = str(w.ref)
        for use in w.uses:
            line = field_line(node, use.path)
            if line is not None:
                inv.field_lines[(ref, use.path)] = f"{file}:{line}"
        sa_path = ".".join(POD_SPEC_PATHS[w.ref.kind]) + ".serviceAccountName"
        line = field_line(node, sa_path)
        if line is not None:
            inv.field_lines[(ref, sa_path)] = f"{file}:{line}"


@dataclass(slots=True)
class _FileTree:
    """The audit's files as the shared deploy-unit resolver reads a tree.

    Only the kustomize units matter here: objects are read afterwards, and charts are rendered
    on their own (:func:`_add_rendered_charts`), so no folder is asked for a ``Chart.yaml``
    (a stat per directory level per file would make a deep tree quadratic).
    """

    texts: set[str]
    kustomizations: dict[str, Kustomization]
    objects: tuple[()] = ()

    def is_chart_dir(self, rel_dir: str) -> bool:
        return False


def kustomize_namespaces(files: Sequence[Path]) -> dict[Path, set[str]]:
    """File -> the namespaces the kustomize units that deploy it put it in.

    Through the deploy-unit resolver ``migrate`` uses (:mod:`secretsync.manifests.units`): a
    unit is a kustomization no other kustomization in the tree includes (an overlay, or a lone
    kustomization), and a file gets the outermost ``namespace:`` on the way to it, as kustomize
    applies the overlay's namespace last. A base shared by a dev and a prod overlay is deployed
    twice, so its objects are audited in both namespaces. Files no unit reaches, or reached
    without a namespace, keep ``-n`` / ``default``.
    """
    if not any(f.name in KUSTOMIZATION_NAMES for f in files):
        return {}  # no kustomize unit: every file keeps -n / default
    resolved = [f.resolve() for f in files]
    base = Path(os.path.commonpath([str(f.parent) for f in resolved]))
    tree = _FileTree({str(f.relative_to(base)) for f in resolved}, {})
    for f in resolved:
        if f.name not in KUSTOMIZATION_NAMES:
            continue
        try:
            data = load_text(f.name, f.read_text(encoding="utf-8")).documents
        except (OSError, UnicodeDecodeError):
            continue
        doc = data[0].data if data else None
        if isinstance(doc, dict):
            rel = str(f.relative_to(base))
            folder = os.path.dirname(rel)
            tree.kustomizations[folder] = Kustomization(folder, rel, doc)
    units: DeployUnits[Any] = DeployUnits(tree)
    return {f: found for f in resolved if (found := units.namespaces_of(str(f.relative_to(base))))}
