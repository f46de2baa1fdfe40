"""The manifest tree the migrator works on: objects, kustomizations, Helm values, and where values stand.

Why its own module: the planner, apply and the equivalence resolver all need to find the
same object from a finding, read a value from the same spot (a *locator*), and agree on
what a workload's pod spec and containers are. Locators are JSON (they go into the plan)
and name a place, never a value.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsync.core.errors import SecretSyncError
from secretsync.core.values import SecretValue
from secretsync.kube.kinds import POD_KINDS
from secretsync.kube.podspec import POD_SPEC_PATHS
from secretsync.manifests.loader import load_json, load_one
from secretsync.manifests.tree import SKIP_DIRS, walk_tree
from secretsync.manifests.units import KUSTOMIZATION_NAMES as KUSTOMIZATION_NAMES
from secretsync.manifests.units import DeployUnits as _DeployUnits
from secretsync.manifests.units import Kustomization as Kustomization
from secretsync.manifests.units import Unit as Unit
from secretsync.scan.results import DEFAULT_MAX_FILE_SIZE

from . import objpath
from .rewrite import is_json_file, split_documents

YAML_SUFFIXES = (".yaml", ".yml")
MANIFEST_SUFFIXES = (*YAML_SUFFIXES, ".json")
#: Kinds whose pod template we can rewrite (where each keeps it: :data:`~secretsync.kube.podspec.POD_SPEC_PATHS`).
WORKLOAD_KINDS = tuple(r.kind for r in POD_KINDS)


class LocateError(SecretSyncError, ValueError):
    """A locator does not lead to a value any more (message names file/object and field)."""


def document_texts(rel: str, text: str) -> list[tuple[int, str]]:
    """(index, text) of every document of a file: a JSON file is one document."""
    if is_json_file(rel):
        return [(0, text)]
    return [(span.index, text[span.start : span.end]) for span in split_documents(text)]


def load_document(rel: str, text: str) -> Any:
    """One document's plain data (JSON files as JSON); None when it does not load.

    Through the shared bounded loader (:mod:`secretsync.manifests.loader`), with the scanner's
    limits: an alias bomb or a text nested past any manifest is refused, not expanded.
    """
    if is_json_file(rel):
        loaded = load_json(text)
        return loaded.documents[0].data if loaded.documents else None
    return safe_load(text)


def safe_load(text: str) -> Any:
    """One YAML document as the API server reads it (YAML 1.1), bounded; None when it does not load."""
    return load_one(text)


@dataclass
class Obj:
    """One Kubernetes object in a file (or live, when ``file`` is None)."""

    file: str | None
    document: int
    data: dict[str, Any]
    #: Namespace the object lands in (explicit, else its kustomization's, else 'default').
    namespace: str
    explicit_namespace: str | None

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.data.get("metadata") or {}).get("name", ""))

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def pod_spec_path(self) -> str | None:
        if self.kind not in WORKLOAD_KINDS and not objpath.exists(self.data, "spec.template.spec.containers"):
            return None
        path = ".".join(POD_SPEC_PATHS[self.kind]) if self.kind in WORKLOAD_KINDS else "spec.template.spec"
        spec = objpath.get(self.data, path) if objpath.exists(self.data, path) else None
        return path if isinstance(spec, dict) else None

    def with_namespace(self, namespace: str) -> Obj:
        """The same object as deployed into ``namespace`` (a kustomize unit's)."""
        return Obj(self.file, self.document, self.data, namespace, self.explicit_namespace)

    def pod_spec(self) -> dict[str, Any] | None:
        path = self.pod_spec_path()
        return objpath.get(self.data, path) if path else None


@dataclass
class Inventory:
    """Every YAML file under the roots, parsed once (plain data) for planning and resolving."""

    base: Path
    texts: dict[str, str] = field(default_factory=dict)
    objects: list[Obj] = field(default_factory=list)
    kustomizations: dict[str, Kustomization] = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: (file, why) for documents that do not parse (Helm templates...): reasons for manual items only
    notes: list[tuple[str, str]] = field(default_factory=list)
    #: the paths it was loaded from (absolute)
    roots: list[Path] = field(default_factory=list)

    @classmethod
    def load(cls, paths: list[Path], base: Path | None = None) -> Inventory:
        paths = [p.resolve() for p in paths]
        base = (base or common_base(paths)).resolve()
        inv = cls(base, roots=paths)
        files: list[Path] = []
        for p in paths:
            if p.is_dir():
                for dirpath, dirnames, filenames in walk_tree(p):  # never follows directory symlinks
                    dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
                    for fn in filenames:
                        if fn.endswith(MANIFEST_SUFFIXES) or fn == "Kustomization":
                            files.append(dirpath / fn)
            elif p.is_file():
                files.append(p)
        for f in files:
            inv._add_file(f)
        inv._assign_namespaces()
        return inv

    @classmethod
    def from_objects(cls, objects: list[dict[str, Any]]) -> Inventory:
        """Live objects (cluster mode): no files; every object's namespace is explicit."""
        inv = cls(Path.cwd())
        for data in objects:
            ns = str((data.get("metadata") or {}).get("namespace") or "")
            inv.objects.append(Obj(None, 0, data, ns, ns or None))
        return inv

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.base)

    def path(self, rel: str) -> Path:
        return self.base / rel

    def is_chart_dir(self, rel_dir: str) -> bool:
        return self.path(os.path.join(rel_dir, "Chart.yaml")).is_file()

    def _add_file(self, f: Path) -> None:
        rel = self.rel(f)
        if f.is_symlink():
            # Editing through a link would replace it by a file and leave the target as it was;
            # a target inside the tree is planned on its own.
            self.errors.append((rel, "is a symlink; only its target is rewritten"))
            return
        try:
            text = read_manifest(f, self.base)
        except LocateError as exc:
            self.errors.append((rel, str(exc)))
            return
        self.texts[rel] = text
        if f.name in KUSTOMIZATION_NAMES:
            data = safe_load(text)
            if isinstance(data, dict):
                d = os.path.dirname(rel)
                self.kustomizations[d] = Kustomization(d, rel, data)
            return
        for index, chunk in document_texts(rel, text):
            data = load_document(rel, chunk)
            if data is None and chunk.strip():
                self.notes.append((rel, f"document {index} is not YAML the migrator can read"))
            if isinstance(data, dict) and isinstance(data.get("kind"), str) and isinstance(data.get("metadata"), dict):
                ns = (data.get("metadata") or {}).get("namespace")
                self.objects.append(Obj(rel, index, data, str(ns) if ns else "", str(ns) if ns else None))

    def why_missing(self, rel: str) -> str:
        """What the inventory knows about a file it has no object for (for manual reasons)."""
        notes = [msg for f, msg in [*self.errors, *self.notes] if f == rel]
        return f" ({'; '.join(notes)})" if notes else ""

    def _assign_namespaces(self) -> None:
        for obj in self.objects:
            if obj.explicit_namespace:
                continue
            k = self.kustomization_for(obj.file or "")
            obj.namespace = (k.namespace if k else None) or "default"

    def kustomization_for(self, rel_file: str) -> Kustomization | None:
        """The nearest kustomization that lists this file (directly) among its resources."""
        d = os.path.dirname(rel_file)
        k = self.kustomizations.get(d)
        if k and os.path.basename(rel_file) in [os.path.normpath(r) for r in k.resources()]:
            return k
        return None

    def find(self, resource: str, file: str | None = None, document: int | None = None) -> Obj | None:
        """The object a finding names: by file+document when they agree with the resource, else by resource."""
        kind, ns, name = split_resource(resource)
        cands = [o for o in self.objects if o.kind == kind and o.name == name and (not ns or o.namespace == ns
                                                                                   or o.explicit_namespace == ns)]
        if file is not None:
            in_file = [o for o in cands if o.file == file]
            if document is not None:
                exact = [o for o in in_file if o.document == document]
                if exact:
                    return exact[0]
            if in_file:
                return in_file[0]
            by_doc = [o for o in self.objects if o.file == file and o.document == document]
            if by_doc and (not kind or by_doc[0].kind == kind):
                return by_doc[0]
        return cands[0] if len(cands) == 1 else None

    def workloads(self, namespace: str) -> Iterator[Obj]:
        for o in self.objects:
            if o.namespace == namespace and o.pod_spec() is not None:
                yield o

    def resolve_file(self, name: str | None, roots: list[Path]) -> str | None:
        """Map a finding's ``file`` (relative to a scanned root, to cwd, or absolute) to ours."""
        if not name:
            return None
        cands = [Path(name)] if os.path.isabs(name) else [
            r if r.is_file() and r.name == name else (r if r.is_dir() else r.parent) / name for r in roots
        ] + [self.base / name, Path.cwd() / name]
        for c in cands:
            try:
                rel = self.rel(c.resolve())
            except ValueError:
                continue
            if rel in self.texts or c.is_file():
                return rel
        return None


def read_manifest(path: Path, base: Path, max_size: int = DEFAULT_MAX_FILE_SIZE) -> str:
    """A manifest's text; LocateError naming why it is not read (the scanner skips the same files)."""
    try:
        return read_file_bytes(path, base, max_size).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LocateError(f"not UTF-8 text (byte {exc.start}); skipped") from None


def read_file_bytes(path: Path, base: Path, max_size: int = DEFAULT_MAX_FILE_SIZE) -> bytes:
    """A file's bytes; LocateError naming why it is not read.

    Only regular files inside ``base`` are read: a FIFO would block forever, a symlink may
    lead out of the tree (or in a loop), and a huge file is a dump, not a manifest.
    """
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise LocateError("symlink loop or broken symlink; skipped") from None
    try:
        real.relative_to(base)
    except ValueError:
        raise LocateError("symlink to a file outside the tree; skipped") from None
    try:
        st = real.stat()
    except OSError as exc:
        raise LocateError(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LocateError("not a regular file; skipped")
    if st.st_size > max_size:
        raise LocateError(f"file is {st.st_size} bytes, over the {max_size}-byte limit; skipped")
    try:
        return real.read_bytes()
    except OSError as exc:
        raise LocateError(f"cannot read: {exc.strerror or type(exc).__name__}") from None


def common_base(paths: list[Path]) -> Path:
    dirs = [p if p.is_dir() else p.parent for p in paths]
    if not dirs:
        return Path.cwd()
    return Path(os.path.commonpath([str(d) for d in dirs]))


def split_resource(resource: str) -> tuple[str, str, str]:
    parts = resource.split("/")
    if len(parts) >= 3:
        return parts[0], parts[1], "/".join(parts[2:])
    if len(parts) == 2:
        return parts[0], "", parts[1]
    return "", "", resource


def normalize_path(path: str) -> list[objpath.Segment]:
    """A finding's JSON path (dotted, ``$.``-prefixed or a JSON pointer) as segments."""
    p = path.strip()
    if p.startswith("$"):
        p = p[1:].lstrip(".")
    if p.startswith("/"):
        segs: list[objpath.Segment] = []
        for raw in p[1:].split("/"):
            tok = raw.replace("~1", "/").replace("~0", "~")
            segs.append(objpath.Index(int(tok)) if tok.isdigit() else objpath.Key(tok))
        return segs
    return objpath.parse_path(p)


def stabilize(data: Any, segs: list[objpath.Segment]) -> list[objpath.Segment]:
    """Turn list indexes into ``[name=...]`` selectors wherever the item has a unique name.

    Also repairs a dotted data key split at its dots (``data.app.properties`` ->
    ``data["app.properties"]``) by looking at what the object holds.
    """
    out: list[objpath.Segment] = []
    cur = data
    i = 0
    while i < len(segs):
        seg = segs[i]
        if isinstance(seg, objpath.Key) and isinstance(cur, Mapping) and seg.name not in cur:
            # try joining the following key segments with dots
            for j in range(len(segs), i + 1, -1):
                parts = segs[i:j]
                if all(isinstance(s, objpath.Key) for s in parts):
                    joined = ".".join(s.name for s in parts if isinstance(s, objpath.Key))
                    if joined in cur:
                        seg = objpath.Key(joined)
                        i = j - 1
                        break
        if isinstance(seg, objpath.Index) and isinstance(cur, list) and -len(cur) <= seg.index < len(cur):
            item = cur[seg.index]
            name = item.get("name") if isinstance(item, Mapping) else None
            if isinstance(name, str) and sum(1 for x in cur if isinstance(x, Mapping) and x.get("name") == name) == 1:
                out.append(objpath.Match("name", name))
            else:
                out.append(seg)
        else:
            out.append(seg)
        try:
            cur = objpath.get(cur, [seg])
        except objpath.PathError:
            out.extend(segs[i + 1 :])
            return out
        i += 1
    return out


# -- locators ----------------------------------------------------------------------------------
# {"kind": "field", "file"|"resource", "document", "path", "encoding": "text"|"base64"}   a scalar
#    + "pattern", "var": the value is $(var) inside an argument rewritten to ``pattern``
# {"kind": "literal", "file", "document", "path"}   a kustomize "KEY=VALUE" literal
# {"kind": "envfile", "file", "key"}                 a KEY=VALUE line of an env file
# {"kind": "wholefile", "file"}                      a file's bytes


def scalar_text(value: Any) -> str | None:
    """A YAML scalar as the Kubernetes API would read it into a string field."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def read_field(data: Any, loc: Mapping[str, Any], where: str) -> SecretValue:
    path = str(loc["path"])
    try:
        raw = objpath.get(data, path)
    except objpath.PathError as exc:
        raise LocateError(f"{where}: {exc}") from None
    text = scalar_text(raw)
    if text is None:
        raise LocateError(f"{where}: {path} is not a scalar")
    if loc.get("kind") == "literal":
        _, sep, v = text.partition("=")
        if not sep:
            raise LocateError(f"{where}: {path} is not a KEY=VALUE literal")
        return SecretValue(v)
    if loc.get("encoding") == "base64":
        try:
            return SecretValue(base64.b64decode("".join(text.split()), validate=True))
        except (binascii.Error, ValueError):
            raise LocateError(f"{where}: {path} is not valid base64") from None
    if loc.get("pattern"):
        got = match_arg_pattern(str(loc["pattern"]), text)
        if got is None or str(loc.get("var")) not in got:
            raise LocateError(f"{where}: {path} changed around the value")
        return SecretValue(got[str(loc["var"])])
    return SecretValue(text)


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def match_arg_pattern(pattern: str, text: str) -> dict[str, str] | None:
    """Match an argument against its rewritten form (``--password=$(SECRETSYNC_PASSWORD)``).

    Only the ``SECRETSYNC_*`` references the migrator introduced are variables; everything
    else must match literally. Returns each variable's text, or None.
    """
    parts: list[str] = []
    pos = 0
    names: list[str] = []
    for m in _VAR_REF.finditer(pattern):
        if not m.group(1).startswith("SECRETSYNC_"):
            continue
        parts.append(re.escape(pattern[pos : m.start()]))
        if m.group(1) in names:  # the same variable again: the same text again
            parts.append(f"(?P=g{names.index(m.group(1))})")
        else:
            group = f"g{len(names)}"
            names.append(m.group(1))
            parts.append(f"(?P<{group}>.+?)" if m.end() < len(pattern) else f"(?P<{group}>.+)")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    got = re.fullmatch("".join(parts), text, re.S)
    if got is None:
        return None
    return {name: got.group(f"g{i}") for i, name in enumerate(names)}


def parse_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as kustomize reads them (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        k, sep, v = s.partition("=")
        if sep:
            out[k.strip()] = v
    return out


def read_locator(inv: Inventory, loc: Mapping[str, Any]) -> SecretValue:
    """The value a manifest-mode locator points at (LocateError when it no longer does)."""
    kind = loc.get("kind")
    if loc.get("resource"):
        obj = inv.find(str(loc["resource"]))
        if obj is None:
            raise LocateError(f"{loc['resource']}: object is gone")
        return read_field(obj.data, loc, str(loc["resource"]))
    rel = str(loc["file"])
    if kind == "wholefile":
        try:
            return SecretValue(read_file_bytes(inv.path(rel), inv.base))
        except LocateError as exc:
            raise LocateError(f"{rel}: {exc}") from None
    text = inv.texts.get(rel)
    if text is None:
        try:
            text = read_manifest(inv.path(rel), inv.base)
        except LocateError as exc:
            raise LocateError(f"{rel}: {exc}") from None
    if kind == "envfile":
        env = parse_env_file(text)
        if loc["key"] not in env:
            raise LocateError(f"{rel}: no line {loc['key']}=")
        return SecretValue(env[str(loc["key"])])
    docs = dict(document_texts(rel, text))
    doc = int(loc.get("document", 0))
    if doc not in docs:
        raise LocateError(f"{rel}: has no document {doc}")
    return read_field(load_document(rel, docs[doc]), loc, f"{rel} document {doc}")


#: The shared deploy-unit resolver (:mod:`secretsync.manifests.units`) over the migrator's objects.
DeployUnits = _DeployUnits[Obj]
