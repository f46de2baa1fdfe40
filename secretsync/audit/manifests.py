"""Offline input: the objects of a manifest tree (``secretsync audit PATH...``).

Plain YAML/JSON documents read with libyaml (the C loader when available), composed to nodes
first so each object's findings can say ``file:line``: its ``metadata.name`` line, and for
a workload the line of each Secret reference and of ``serviceAccountName``
(:func:`field_line` resolves a field path on the node, which is dropped right after).
A file that does not parse (a Helm template, say) is reported by file and line and skipped;
the message never quotes the file, since the line may hold a value. Secret objects in the
tree are reduced to metadata and key names as they are added to the inventory.

Objects without ``metadata.namespace`` take the ``namespace:`` of the kustomization in their
directory that lists them among its ``resources`` (the same rule ``migrate plan`` uses), else
``-n``, else ``default``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from secretsync.core.gcpause import paused_gc

from .inventory import POD_SPEC_PATHS, Inventory, Problem

SUFFIXES: Final = (".yaml", ".yml", ".json")
KUSTOMIZATION_NAMES: Final = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_FILE_SIZE: Final = 10 * 1024 * 1024

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def manifest_files(paths: Sequence[Path]) -> Iterator[Path]:
    """YAML/JSON files under ``paths`` (files as given; directories walked, dot-entries skipped)."""
    for path in paths:
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path).parts
                if f.is_file() and f.suffix.lower() in SUFFIXES and not any(p.startswith(".") for p in rel):
                    yield f
        else:
            yield path


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


def kustomize_namespaces(files: Sequence[Path]) -> dict[Path, str]:
    """File -> the ``namespace:`` of the kustomization in its directory that lists it as a resource."""
    out: dict[Path, str] = {}
    for f in files:
        if f.name not in KUSTOMIZATION_NAMES:
            continue
        try:
            data = yaml.load(f.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a safe loader
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        ns = data.get("namespace") if isinstance(data, dict) else None
        resources = data.get("resources") if isinstance(data, dict) else None
        if not isinstance(ns, str) or not ns or not isinstance(resources, list):
            continue
        for r in resources:
            if isinstance(r, str):
                out[(f.parent / r).resolve()] = ns
    return out


def load_manifests(paths: Sequence[Path], inv: Inventory) -> int:
    """Add every object under ``paths`` to ``inv``; returns how many files were read."""
    files = 0
    all_files = list(manifest_files(paths))
    unit_ns = kustomize_namespaces(all_files)
    default_ns = inv.default_namespace
    for f in all_files:
        if f.name in KUSTOMIZATION_NAMES:
            continue
        try:
            if f.stat().st_size > MAX_FILE_SIZE:
                inv.problems.append(Problem(str(f), "", f"skipped: larger than {MAX_FILE_SIZE // 1024 // 1024} MB"))
                continue
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            inv.problems.append(Problem(str(f), "", f"cannot read: {type(exc).__name__}"))
            continue
        files += 1
        inv.default_namespace = unit_ns.get(f.resolve(), default_ns)
        try:
            with paused_gc():
                _load_text(f, text, inv)
        finally:
            inv.default_namespace = default_ns
    return files


def _load_text(f: Path, text: str, inv: Inventory) -> None:
    loader = _Loader(text)
    count = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            doc = loader.construct_document(node) if node is not None else None
            if isinstance(doc, dict):  # lists and scalars are not Kubernetes objects (values files...)
                line = field_line(node, "metadata.name") or node.start_mark.line + 1
                _add_located(inv, doc, node, f"{f}:{line}")
            count += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        before = f"; read the {count} document(s) before it" if count else ""
        inv.problems.append(Problem(str(f), "", f"not valid YAML{where} (a template?){before}"))
    finally:
        loader.dispose()


def _add_located(inv: Inventory, doc: dict[str, Any], node: yaml.Node, source: str) -> None:
    """Add one object; remember where its workload's Secret references stand in the file."""
    before = len(inv.workloads)
    inv.add(doc, source)
    file = source.rpartition(":")[0]
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
