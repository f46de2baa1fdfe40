"""Deploy units: which files are deployed together, so a reference resolves where it is deployed.

Why: repositories keep one app per folder, or ``envs/dev`` and ``envs/prod`` of one app, with
the same object names. Resolving ``configMapKeyRef: api-config`` to "the first ConfigMap of
that name anywhere" rewires prod to dev's value. A reference resolves within its *deploy
unit*, the way the tree is deployed:

* a **kustomize** unit: a top-level kustomization (one no other kustomization includes), with
  every file it reaches through ``resources``/``bases``/``components`` (recursively);
  ``patches``/``patchesStrategicMerge``/``patchesJson6902`` files are *patches* of it, not
  objects; ``namespace`` and ``namePrefix``/``nameSuffix`` along the chain are recorded;
* a **helm** unit: everything under a directory with ``Chart.yaml``;
* else a **folder** unit: the files of one directory (``kubectl apply -f DIR``).

A file can belong to several kustomize units (a base shared by overlays). Two units never
share an object by name: each unit is resolved on its own.

Shared by ``migrate`` (which references resolve where) and ``audit`` (the namespace a
kustomize unit deploys each file into): one reading of a kustomize tree, so the two commands
never disagree about where an object lands. The tree is anything with the few fields of
:class:`Tree` (the migrator's inventory, or the audit's list of files).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

#: kustomization fields whose entries are files or directories deployed as objects.
_RESOURCE_FIELDS = ("resources", "bases", "components")


@dataclass
class Kustomization:
    dir: str  # relative directory ('' for the root)
    file: str  # relative path of the kustomization file
    data: dict[str, Any]

    @property
    def namespace(self) -> str | None:
        ns = self.data.get("namespace")
        return ns if isinstance(ns, str) and ns else None

    def resources(self) -> list[str]:
        res = self.data.get("resources")
        return [r for r in res if isinstance(r, str)] if isinstance(res, list) else []


class TreeObject(Protocol):
    """An object read from a file of the tree (what :meth:`DeployUnits.objects_of` returns)."""

    @property
    def file(self) -> str | None: ...

    @property
    def explicit_namespace(self) -> str | None: ...

    def with_namespace(self, namespace: str) -> Self: ...


_O = TypeVar("_O", bound=TreeObject)
_O_co = TypeVar("_O_co", bound=TreeObject, covariant=True)


class Tree(Protocol[_O_co]):
    """What the resolver reads of a manifest tree: files by relative path, their kustomizations."""

    @property
    def texts(self) -> Collection[str]: ...

    @property
    def kustomizations(self) -> Mapping[str, Kustomization]: ...

    @property
    def objects(self) -> Sequence[_O_co]: ...

    def is_chart_dir(self, rel_dir: str) -> bool:
        """Whether ``rel_dir`` holds a ``Chart.yaml`` (a Helm unit)."""
        ...


@dataclass(frozen=True, slots=True)
class Unit:
    """One deploy unit. ``id`` is unique in a tree."""

    id: str
    kind: str  # "kustomize" | "helm" | "folder"
    dir: str  # relative directory ('' for the root)


@dataclass
class Chain:
    """How a kustomize unit reaches a file: namespace and name changes applied on the way."""

    namespace: str | None = None
    prefixed: bool = False
    via: list[str] = field(default_factory=list)  # kustomization files, outermost first


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_remote(entry: str) -> bool:
    return "://" in entry or entry.startswith(("github.com/", "git@", "ssh:"))


class DeployUnits(Generic[_O]):
    """Deploy units of a manifest tree."""

    def __init__(self, inv: Tree[_O]) -> None:
        self.inv = inv
        self.units: dict[str, Unit] = {}
        #: file -> kustomize units that deploy it, with how
        self._kunits: dict[str, dict[str, Chain]] = {}
        #: patch file -> kustomize units it patches
        self.patches: dict[str, set[str]] = {}
        #: file -> kustomization files that list it directly
        self.listed_by: dict[str, list[str]] = {}
        #: kustomize unit id -> why it cannot be modelled without the real kustomize (or "")
        self.complex: dict[str, str] = {}
        #: kustomize unit id -> (kustomization, namespace it lands in) for every kustomization it builds
        self.kustomizations: dict[str, list[tuple[Kustomization, str | None]]] = {}
        self._memo: dict[str, list[Unit]] = {}
        self._members: dict[str, list[str]] = {}
        self._build()

    # -- building -----------------------------------------------------------------------------
    def _kdir(self, rel_dir: str) -> Kustomization | None:
        return self.inv.kustomizations.get(os.path.normpath(rel_dir) if rel_dir else "")

    def _children(self, k: Kustomization) -> Iterator[tuple[str, str]]:
        """('kustomization', dir) or ('file', rel) for each resource entry of ``k``."""
        for section in _RESOURCE_FIELDS:
            for entry in _as_list(k.data.get(section)):
                if not isinstance(entry, str) or _is_remote(entry):
                    continue
                rel = os.path.normpath(os.path.join(k.dir, entry))
                rel = "" if rel == "." else rel
                if self._kdir(rel) is not None and rel != k.dir:
                    yield "kustomization", rel
                elif rel in self.inv.texts:
                    yield "file", rel

    def _patch_files(self, k: Kustomization) -> list[str]:
        out = []
        for entry in _as_list(k.data.get("patchesStrategicMerge")):
            if isinstance(entry, str) and "\n" not in entry:
                out.append(entry)
        for section in ("patches", "patchesJson6902"):
            for p in _as_list(k.data.get(section)):
                if isinstance(p, Mapping) and isinstance(p.get("path"), str):
                    out.append(p["path"])
                elif isinstance(p, str) and "\n" not in p:
                    out.append(p)
        return [os.path.normpath(os.path.join(k.dir, x)) for x in out]

    def _why_complex(self, k: Kustomization) -> str:
        d = k.data
        if any(isinstance(e, str) and _is_remote(e) for s in _RESOURCE_FIELDS for e in _as_list(d.get(s))):
            return f"{k.file} includes remote resources"
        for s in ("patches", "patchesStrategicMerge", "patchesJson6902", "replacements", "vars",
                  "transformers", "generators", "components", "helmCharts", "replicas", "configurations"):
            if d.get(s):
                return f"{k.file} has {s}"
        for s in ("configMapGenerator", "secretGenerator"):
            if any(isinstance(g, Mapping) and g.get("behavior") in ("merge", "replace") for g in _as_list(d.get(s))):
                return f"{k.file} has a {s} with behavior merge/replace"
        return ""

    def _build(self) -> None:
        ks = self.inv.kustomizations
        included: set[str] = set()
        for k in ks.values():
            for what, rel in self._children(k):
                if what == "kustomization":
                    included.add(rel)
                else:
                    self.listed_by.setdefault(rel, []).append(k.file)
        for d, k in sorted(ks.items()):
            if d in included:
                continue
            unit = Unit(f"kustomize:{d or '.'}", "kustomize", d)
            self.units[unit.id] = unit
            self._walk(unit, k, Chain(), set())
        for rel in self.inv.texts:
            if rel in self._kunits or os.path.basename(rel) in KUSTOMIZATION_NAMES:
                continue
            chart = self._chart_dir(rel)
            if chart is not None:
                u = Unit(f"helm:{chart or '.'}", "helm", chart)
            else:
                d = os.path.dirname(rel)
                u = Unit(f"folder:{d or '.'}", "folder", d)
            self.units.setdefault(u.id, u)

    def _walk(self, unit: Unit, k: Kustomization, chain: Chain, seen: set[str]) -> None:
        if k.dir in seen:  # a cycle: kustomize refuses it too
            self.complex[unit.id] = f"{k.file} includes itself"
            return
        seen = seen | {k.dir}
        here = Chain(chain.namespace or k.namespace,
                     chain.prefixed or bool(k.data.get("namePrefix") or k.data.get("nameSuffix")),
                     [*chain.via, k.file])
        why = self._why_complex(k)
        if why and not self.complex.get(unit.id):
            self.complex[unit.id] = why
        self.kustomizations.setdefault(unit.id, []).append((k, here.namespace))
        self._kunits.setdefault(k.file, {}).setdefault(unit.id, here)
        for p in self._patch_files(k):
            self.patches.setdefault(p, set()).add(unit.id)
        for what, rel in self._children(k):
            if what == "kustomization":
                child = self._kdir(rel)
                if child is not None:
                    self._walk(unit, child, here, seen)
            else:
                self._kunits.setdefault(rel, {}).setdefault(unit.id, here)

    def _chart_dir(self, rel: str) -> str | None:
        d = os.path.dirname(rel)
        while True:
            if self.inv.is_chart_dir(d):
                return d
            if not d:
                return None
            d = os.path.dirname(d)

    # -- queries --------------------------------------------------------------------------------
    def units_of(self, rel: str) -> list[Unit]:
        """Every unit that deploys ``rel`` (several for a base shared by overlays; none for a patch)."""
        if rel not in self._memo:
            self._memo[rel] = self._units_of(rel)
        return self._memo[rel]

    def _units_of(self, rel: str) -> list[Unit]:
        if rel in self._kunits:
            return [self.units[u] for u in sorted(self._kunits[rel])]
        if rel in self.patches or os.path.basename(rel) in KUSTOMIZATION_NAMES:
            return []
        chart = self._chart_dir(rel)
        if chart is not None:
            return [self.units[f"helm:{chart or '.'}"]]
        d = os.path.dirname(rel)
        return [self.units[f"folder:{d or '.'}"]]

    def chain(self, unit: Unit, rel: str) -> Chain:
        return self._kunits.get(rel, {}).get(unit.id) or Chain()

    def files_of(self, unit: Unit) -> list[str]:
        if not self._members:
            for f in sorted(self.inv.texts):
                for u in self.units_of(f):
                    self._members.setdefault(u.id, []).append(f)
        return self._members.get(unit.id, [])

    def share_unit(self, a: str | None, b: str | None) -> bool:
        """Whether two files are deployed together by at least one unit."""
        if not a or not b:
            return a == b
        return bool({u.id for u in self.units_of(a)} & {u.id for u in self.units_of(b)})

    def objects_of(self, unit: Unit) -> list[_O]:
        """The unit's objects, with the namespace the unit gives them."""
        out: list[_O] = []
        members = set(self.files_of(unit))
        for o in self.inv.objects:
            if o.file is None or o.file not in members:
                continue
            ns = o.explicit_namespace
            if unit.kind == "kustomize":
                ns = self.chain(unit, o.file).namespace or ns
            out.append(o.with_namespace(ns or "default"))
        return out

    def namespaces_of(self, rel: str) -> set[str]:
        """The namespaces the kustomize units that deploy ``rel`` put it in (outermost ``namespace:``)."""
        return {chain.namespace for chain in self._kunits.get(rel, {}).values() if chain.namespace}

    def home_kustomization(self, rel: str) -> str | None:
        """The one kustomization file that lists ``rel`` (None when none or several do)."""
        by = self.listed_by.get(rel) or []
        return by[0] if len(by) == 1 else None

    def undecided(self, rel: str) -> str | None:
        """Why the unit of ``rel`` cannot be decided (None when it can)."""
        if rel in self.patches:
            owners = ", ".join(sorted(u.removeprefix("kustomize:") for u in self.patches[rel]))
            return (f"{rel} is a kustomize patch (of {owners}); the migrator edits a ConfigMap key or a workload's "
                    "env literal in a strategic-merge patch, not this value; move it by hand")
        if len(self.listed_by.get(rel) or []) > 1:
            return f"{rel} is listed by several kustomizations ({', '.join(self.listed_by[rel])})"
        return None
