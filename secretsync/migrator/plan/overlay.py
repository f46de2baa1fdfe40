"""kustomize overlays migrated one by one: a per-overlay ExternalSecret and strategic-merge patches.

Why per overlay: a ConfigMap key in a base shared by overlays that render it differently (an
overlay's patch overrides the value), or a value that lives in an overlay's own patch, cannot
move by changing the base: every overlay would then read the base's Secret, and prod would get
dev's credential. Each overlay that renders the key instead gets, in its own folder:

* an ExternalSecret for the value *that overlay renders* (its patch's, or the base's), keyed by
  that overlay (``{unit}``), added to its ``kustomization.yaml`` resources (so namePrefix and
  namespace apply to it as to everything else it deploys);
* a strategic-merge patch of the ConfigMap that deletes the key (``key: null``), and one per
  workload that reads it, switching that read to the synced Secret (``configMapKeyRef: null``
  beside the new ``secretKeyRef``; an ``envFrom`` list is written whole, it has no merge key),
  listed under ``patches`` with an explicit target, which kustomize matches by original name.

The value's own place is then emptied: the key goes from the overlay's patch that set it (when
only that overlay uses the patch), and from the base only when every overlay that deploys the
base is migrated this way. What each overlay renders is read from ``kubectl kustomize``, and the
invariant builds every overlay again after the change: any difference sends the item to manual.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsync.manifests.units import Unit

from .. import naming, objpath
from ..findings import Detection
from ..manifests import Obj, normalize_path, read_locator, stabilize
from ..rewrite import dump_new
from . import invariant
from .consumers import MalformedConsumer, consumer_ops_for_configmap
from .model import Group, Manual, where
from .output import OutputSource

#: Kinds kustomize patches with strategic-merge semantics (custom resources get JSON merge, which
#: replaces lists whole).
SMP_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod",
                       "ReplicationController"})
#: Pod-spec lists that strategic merge matches by ``name``.
NAME_KEYED = frozenset({"containers", "initContainers", "ephemeralContainers", "env", "volumes", "volumeMounts"})


@dataclass
class OverlayMove:
    """ConfigMap keys one overlay reads through its own ExternalSecret."""

    unit: Unit
    configmap: str  # name in the source files
    rendered: str  # name in the overlay's build
    namespace: str
    keys: list[str] = field(default_factory=list)


class OverlaySource(OutputSource):
    """Per-overlay ExternalSecrets and patches for ConfigMap keys in shared bases and overlay patches."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: unit id -> its ``kubectl kustomize`` build, or why there is none
        self._renders: dict[str, list[dict[str, Any]] | str] = {}
        #: group id -> the ConfigMap keys that overlay reads through it
        self._overlay_moves: dict[str, OverlayMove] = {}
        #: base findings whose key goes only if every overlay rendering it is migrated
        self._base_keys: list[tuple[Detection, Obj, str, list[Unit]]] = []

    # -- what an overlay renders ---------------------------------------------------------------
    def _render(self, unit: Unit) -> list[dict[str, Any]]:
        """The objects ``kubectl kustomize`` builds for ``unit`` (Manual when it cannot)."""
        if unit.id not in self._renders:
            kubectl = invariant.kubectl_path() if self.opt.use_kubectl else None
            if kubectl is None:
                self._renders[unit.id] = "kubectl is not on PATH to build it with the real kustomize"
            else:
                try:
                    self._renders[unit.id] = invariant.kustomize_build(self.inv.path(unit.dir), kubectl)
                except invariant.Unverifiable as exc:
                    self._renders[unit.id] = str(exc)
        got = self._renders[unit.id]
        if isinstance(got, str):
            raise Manual(f"overlay {unit.dir or '.'} cannot be built: {got}")
        return got

    def _affixes(self, unit: Unit, rel: str) -> tuple[str, str]:
        """namePrefix and nameSuffix that ``unit`` puts on the objects of ``rel``."""
        by_file = {k.file: k for k in self.inv.kustomizations.values()}
        ks = [by_file[f] for f in self.units.chain(unit, rel).via if f in by_file]
        pre = "".join(str(k.data.get("namePrefix") or "") for k in ks)
        suf = "".join(str(k.data.get("nameSuffix") or "") for k in reversed(ks))
        return pre, suf

    def _source_objects(self, unit: Unit, kind: str, name: str) -> list[Obj]:
        return [o for o in self.units.objects_of(unit) if o.kind == kind and o.name == name]

    def _rendered_name(self, unit: Unit, obj: Obj) -> str:
        pre, suf = self._affixes(unit, obj.file or "")
        return pre + obj.name + suf

    def _rendered_configmap(self, unit: Unit, name: str) -> tuple[Obj, dict[str, Any]]:
        """(the ConfigMap's source object, its rendered form) in ``unit``."""
        src = self._source_objects(unit, "ConfigMap", name)
        if not src:
            raise Manual(f"ConfigMap {name} is no object in the files of overlay {unit.dir or '.'} (a "
                         "configMapGenerator makes it?); move the value into a secretGenerator first, then migrate")
        if len(src) != 1:
            raise Manual(f"ConfigMap {name} is defined more than once in overlay {unit.dir or '.'}")
        rname = self._rendered_name(unit, src[0])
        got = [d for d in self._render(unit) if d.get("kind") == "ConfigMap"
               and (d.get("metadata") or {}).get("name") == rname]
        if len(got) != 1:
            raise Manual(f"overlay {unit.dir or '.'} does not build exactly one ConfigMap {rname}")
        return src[0], got[0]

    def _overlays_differ(self, obj: Obj, key: str) -> bool:
        """Whether some overlay deploying ``obj`` (a base ConfigMap) renders ``key`` otherwise than the
        base says: then the base cannot be changed for all of them."""
        if self.cluster or not obj.file or not self.opt.use_kubectl or invariant.kubectl_path() is None:
            return False
        units = self.units.units_of(obj.file)
        if not units or any(u.kind != "kustomize" for u in units):
            return False
        mine = (obj.data.get("data") or {}).get(key)
        for u in units:
            try:
                _, rendered = self._rendered_configmap(u, obj.name)
            except Manual:
                return False  # the base path decides (and the invariant refuses what it cannot build)
            if (rendered.get("data") or {}).get(key) != mine:
                return True
        return False

    # -- planning ----------------------------------------------------------------------------------
    def _overlay_configmap(self, det: Detection, source: Obj, key: str) -> None:
        """The ConfigMap key ``key`` of ``source`` (a base object or an overlay's patch) moves per overlay.

        Each overlay is set up from the finding where the value it renders comes from: a base finding
        sets up the overlays that read the base's value, an overlay patch's finding that overlay. Whether
        the base loses the key is decided once every finding is planned (:meth:`_finish_base_keys`):
        only when every overlay rendering it reads it through its own ExternalSecret.
        """
        rel = source.file or ""
        is_patch = rel in self.units.patches
        units = ([self.units.units[u] for u in sorted(self.units.patches[rel])] if is_patch
                 else self.units.units_of(rel))
        if is_patch and len(units) > 1:
            raise Manual(f"the patch {rel} is used by several overlays; give each its own patch first")
        locator = {"kind": "field", **where(source), "path": objpath.format_path([objpath.Key("data"),
                                                                                     objpath.Key(key)]),
                   "encoding": "text"}
        read_locator(self.inv, locator)  # a value that cannot be read is manual before anything is planned
        mine, why_not = [], []
        for u in units:
            try:
                ps = self._overlay_unit(u, source.name, key, source)
            except Manual as exc:
                why_not.append(str(exc))
                continue
            if ps is not None:
                mine.append(ps)
        if not is_patch:
            self._base_keys.append((det, source, key, units))
            return
        if not mine:
            raise Manual("; ".join(why_not) or f"overlay {units[0].dir or '.'} does not read this value (another "
                                                "patch overrides it?)")
        self._tie(det, mine, source, locator["path"], "the overlay's patch")

    def _tie(self, det: Detection, mine: list[Any], source: Obj, path: str, what: str) -> None:
        """The finding migrates with ``mine``; its value leaves ``source`` once all of them are applied."""
        for ps in mine:
            ps.findings.append(det.finding.fingerprint)
        self.dispositions[det.finding.fingerprint] = {"disposition": "migrate", "secret": mine[0].id}
        chg = self._change(source, source.file, source.document, source.resource)
        chg.add([{"op": "remove", "path": path}],
                f"{path} leaves {what} (each overlay reads it from its own ExternalSecret)", mine[0].group, "source")
        for ps in mine[1:]:
            if ps.group not in chg.groups:
                chg.groups.append(ps.group)

    def _finish_base_keys(self) -> None:
        """A base key goes when every overlay that renders it reads it through its own ExternalSecret."""
        for det, source, key, units in self._base_keys:
            path = objpath.format_path([objpath.Key("data"), objpath.Key(key)])
            mine, missing = [], []
            for u in units:
                try:
                    _, rendered = self._rendered_configmap(u, source.name)
                except Manual as exc:
                    missing.append(str(exc))
                    continue
                if key not in (rendered.get("data") or {}):
                    continue
                move = next((gid for gid, m in self._overlay_moves.items() if m.unit.id == u.id
                             and m.configmap == source.name and key in m.keys
                             and any(g.id == gid and g.secrets for g in self.groups.values())), None)
                ps = next((s for s in self.secrets if s.group == move and s.fields.get("key") == key), None)
                if ps is None:
                    missing.append(f"overlay {u.dir or '.'} is not migrated")
                else:
                    mine.append(ps)
            if missing or not mine:
                self._manual(det.finding, "the base keeps the value: " + ("; ".join(missing) or "no overlay reads it")
                             + "; the overlays that could be migrated read it from their own ExternalSecret")
                continue
            self._tie(det, mine, source, path, "the base")

    def _overlay_unit(self, unit: Unit, cm: str, key: str, source: Obj) -> Any:
        """The provider-key entry through which ``unit`` reads ConfigMap ``cm`` key ``key`` from ``source``
        (None when the overlay renders another value, or none); Manual when that overlay cannot be migrated."""
        kust = self.inv.kustomizations.get(unit.dir)
        if kust is None:
            raise Manual(f"overlay {unit.dir or '.'} has no kustomization file")
        src, rendered = self._rendered_configmap(unit, cm)
        data = rendered.get("data") or {}
        if key not in data:
            return None
        wanted = data[key]
        # where the rendered value comes from: a patch of the overlay (the last one wins), else the base
        candidates = []
        for p, owners in sorted(self.units.patches.items()):
            if unit.id not in owners:
                continue
            for o in self.inv.objects:
                if o.file == p and o.kind == "ConfigMap" and o.name in (cm, self._rendered_name(unit, src)) \
                        and key in (o.data.get("data") or {}):
                    candidates.append(o)
        candidates.append(src)
        origin = next((o for o in candidates if (o.data.get("data") or {}).get(key) == wanted), None)
        if origin is None:
            raise Manual(f"in overlay {unit.dir or '.'} the value comes from something the migrator does not edit "
                          "(a generator, a replacement, an inline or JSON 6902 patch); move it by hand")
        if (origin.file, origin.document) != (source.file, source.document):
            return None  # planned from the finding where this overlay's value is
        ns = str((rendered.get("metadata") or {}).get("namespace") or "")
        # the overlay's own namespace (if any) applies to what it lists; else the namespace the object lands in
        explicit = None if self.units.chain(unit, kust.file).namespace else (ns or None)
        owner = f"overlay:{unit.dir or '.'}:ConfigMap/{cm}"
        gkey = self._group_key(owner, kust.file)
        if gkey in self._failed:
            raise Manual(self._failed[gkey])
        rname = self._rendered_name(unit, src)
        group = self._group(owner, "ConfigMap", cm, ns or "default", explicit, kust.file,
                            target=naming.object_name(rname, suffix="-secrets"))
        group.kustomization = kust.file
        move = self._overlay_moves.setdefault(group.id, OverlayMove(unit, cm, rname, ns))
        locator = {"kind": "field", **where(origin),
                   "path": objpath.format_path([objpath.Key("data"), objpath.Key(key)]), "encoding": "text"}
        fields = {**self._base_fields(src, key), "namespace": ns or "default"}
        ps = self._secret_for(group, naming.secret_key(key), locator, read_locator(self.inv, locator), fields, None)
        if ps.secret_key != key:
            raise Manual(f"ConfigMap key {key!r} is not a valid Secret key")
        if key not in move.keys:
            move.keys.append(key)
        return ps

    def _finish_overlays(self) -> None:
        """Write each overlay's patches (one file per patched object) and list them in its kustomization."""
        self._finish_base_keys()
        for gid, move in self._overlay_moves.items():
            group = next((g for g in self.groups.values() if g.id == gid), None)
            if group is None or not group.secrets or not group.kustomization:
                continue
            try:
                patches = [({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": move.configmap},
                             "data": dict.fromkeys(move.keys)}, "ConfigMap", move.configmap)]
                patches += self._consumer_patches(move, group)
            except (Manual, MalformedConsumer, objpath.PathError, TypeError, ValueError, KeyError) as exc:
                self._early_drops.setdefault(gid, f"overlay {move.unit.dir or '.'}: {exc}")
                continue
            kdir = os.path.dirname(group.kustomization)
            for doc, kind, name in patches:
                rel = self._new_file(os.path.join(kdir, f"{group.name}.{kind.lower()}-{name}.patch.yaml"),
                                     dump_new(doc), gid, "KustomizePatch")
                entry = os.path.relpath(rel, kdir)
                self._change(None, group.kustomization, 0, f"Kustomization/{kdir or '.'}").add(
                    [{"op": "insert", "path": "patches",
                      "value": {"path": entry, "target": {"kind": kind, "name": name}}}],
                    f"patches += {entry} ({kind} {name} reads the moved keys from Secret {group.target})",
                    gid, "source")

    def _consumer_patches(self, move: OverlayMove, group: Group) -> list[tuple[dict[str, Any], str, str]]:
        out = []
        unit = move.unit
        for d in self._render(unit):
            if str((d.get("metadata") or {}).get("namespace") or "") != move.namespace:
                continue
            wl = Obj(None, 0, d, move.namespace or "default", None)
            pod_path = wl.pod_spec_path()
            if pod_path is None:
                continue
            ops, _ = consumer_ops_for_configmap(d, pod_path, move.rendered, set(move.keys), group.target)
            if not ops:
                continue
            if wl.kind not in SMP_KINDS:
                raise Manual(f"{wl.kind} {wl.name} reads the key; kustomize patches a custom resource by JSON merge "
                             "(lists replaced whole), which the migrator does not write")
            src = [o for o in self.units.objects_of(unit) if o.kind == wl.kind
                   and self._rendered_name(unit, o) == wl.name]
            if len(src) != 1:
                raise Manual(f"cannot tell which source object {wl.kind} {wl.name} is built from")
            patch = strategic_patch(d, ops, src[0].name)
            _source_names(patch, move.rendered, move.configmap)
            out.append((patch, wl.kind, src[0].name))
        if not out:
            group.notes.append(f"no workload in overlay {unit.dir or '.'} reads the moved keys")
        return out


def strategic_patch(data: Mapping[str, Any], ops: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """A strategic-merge patch that makes ``data`` what ``ops`` make of it: name-keyed lists (containers,
    env, volumes) by name, ``null`` for a replaced key, lists without a merge key written whole."""
    after = copy.deepcopy(dict(data))
    objpath.apply_ops(after, copy.deepcopy(ops))
    patch: dict[str, Any] = {"apiVersion": data.get("apiVersion"), "kind": data.get("kind"),
                             "metadata": {"name": name}}
    whole: list[list[objpath.Segment]] = []

    def walk(segs: list[objpath.Segment], path: str) -> dict[str, Any]:
        node: dict[str, Any] = patch
        i = 0
        while i < len(segs):
            seg = segs[i]
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            if not isinstance(seg, objpath.Key):
                raise Manual(f"{path} addresses a list by position; not written as a patch")
            if isinstance(nxt, objpath.Match):
                if seg.name not in NAME_KEYED or nxt.field != "name":
                    raise Manual(f"{path} is in a list a strategic-merge patch cannot address by name")
                items = node.setdefault(seg.name, [])
                item = next((x for x in items if x.get("name") == nxt.value), None)
                if item is None:
                    item = {"name": nxt.value}
                    items.append(item)
                node, i = item, i + 2
            else:
                node, i = node.setdefault(seg.name, {}), i + 1
        return node

    for op in ops:
        path = str(op["path"])
        segs = objpath.parse_path(path)
        if any(segs[: len(w)] == w for w in whole):
            continue  # inside a list already written whole
        if op["op"] == "replace-key":
            node = walk(segs, path)
            node[str(op["old"])] = None
            node[str(op["new"])] = copy.deepcopy(op["value"])
        elif op["op"] in ("insert", "set") and segs and isinstance(segs[-1], objpath.Key):
            walk(segs[:-1], path)[segs[-1].name] = copy.deepcopy(objpath.get(after, segs))
            whole.append(segs)
        else:
            raise Manual(f"a {op['op']} edit of {path} cannot be written as a strategic-merge patch")
    return patch


class OverlayEnvSource(OverlaySource):
    """An env literal an overlay's strategic-merge patch sets: the patch itself switches to a secretKeyRef."""

    def _overlay_env(self, det: Detection, patch: Obj) -> None:
        f = det.finding
        rel = patch.file or ""
        owners = sorted(self.units.patches.get(rel) or [])
        if len(owners) != 1:
            raise Manual(f"the patch {rel} is used by several overlays; give each its own patch first")
        unit = self.units.units[owners[0]]
        kust = self.inv.kustomizations.get(unit.dir)
        if kust is None:
            raise Manual(f"overlay {unit.dir or '.'} has no kustomization file")
        if patch.kind not in SMP_KINDS:
            raise Manual(f"a patch of a {patch.kind}: kustomize merges it as JSON (lists replaced whole), which the "
                         "migrator does not edit")
        segs = stabilize(patch.data, normalize_path(f.path))
        _, container, rest = self._container_path(patch, segs)
        tail = segs[rest:]
        if not (len(tail) == 3 and tail[0] == objpath.Key("env") and isinstance(tail[1], objpath.Match)
                and tail[2] == objpath.Key("value")):
            raise Manual("an env finding in a patch must point at containers[].env[name=...].value")
        var, cname = tail[1].value, str(container["name"])
        entry_path = objpath.format_path(segs[: rest + 2])
        locator = {"kind": "field", **where(patch), "path": objpath.format_path(segs), "encoding": "text"}
        value = read_locator(self.inv, locator)
        self._check_expansion(value, f"env {var}")
        src = self._source_objects(unit, patch.kind, patch.name)
        if len(src) != 1:
            raise Manual(f"the patch's {patch.kind} {patch.name} is not one object of overlay {unit.dir or '.'}")
        rname = self._rendered_name(unit, src[0])
        built = [d for d in self._render(unit) if d.get("kind") == patch.kind
                 and (d.get("metadata") or {}).get("name") == rname]
        if len(built) != 1:
            raise Manual(f"overlay {unit.dir or '.'} does not build exactly one {patch.kind} {rname}")
        wl = Obj(None, 0, built[0], "", None)
        env = [e for c in (wl.pod_spec() or {}).get("containers") or [] if c.get("name") == cname
               for e in c.get("env") or [] if isinstance(e, dict) and e.get("name") == var]
        if len(env) != 1 or env[0].get("value") != value.reveal_text():
            raise Manual(f"overlay {unit.dir or '.'} does not read this value in {patch.kind} {rname} (another patch "
                         "overrides it?)")
        ns = str((built[0].get("metadata") or {}).get("namespace") or "")
        # the overlay's own namespace (if any) applies to what it lists; else the namespace the object lands in
        explicit = None if self.units.chain(unit, kust.file).namespace else (ns or None)
        owner = f"overlay:{unit.dir or '.'}:{patch.kind}/{patch.name}"
        group = self._group(owner, patch.kind, patch.name, ns or "default", explicit, kust.file,
                            target=naming.object_name(rname, suffix="-secrets"))
        group.kustomization = kust.file
        fields = {**self._base_fields(src[0], var), "namespace": ns or "default", "container": cname}
        ps = self._secret_for(group, naming.secret_key(var), locator, value, fields, f)
        ops: list[dict[str, Any]] = [{"op": "replace-key", "path": entry_path, "old": "value", "new": "valueFrom",
                                      "value": {"secretKeyRef": {"name": group.target, "key": ps.secret_key}}}]
        base_env = [e for c in (src[0].pod_spec() or {}).get("containers") or [] if c.get("name") == cname
                    for e in c.get("env") or [] if isinstance(e, dict) and e.get("name") == var]
        if any("valueFrom" in e for e in base_env):
            raise Manual(f"the base's {patch.kind} {patch.name} reads env {var} through valueFrom too; merged with the "
                         "patch that is no valid env var; fix the patch first")
        if any("value" in e for e in base_env):
            # strategic merge keeps the base's literal beside the patch's valueFrom unless the patch nulls it
            ops.append({"op": "set", "path": f"{entry_path}.value", "value": None})
        self._change(patch, patch.file, patch.document, patch.resource).add(
            ops, f"patch: container {cname} env {var} literal -> secretKeyRef {group.target}/{ps.secret_key}",
            group.id, "consumer")


def _source_names(node: Any, rendered: str, source: str) -> None:
    """References to the ConfigMap by its built name (a list written whole) back to its source name: the
    patch applies before the overlay's namePrefix, whose name-reference pass renames them again."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("configMapRef", "configMap", "configMapKeyRef") and isinstance(v, dict) \
                    and v.get("name") == rendered:
                v["name"] = source
            else:
                _source_names(v, rendered, source)
    elif isinstance(node, list):
        for x in node:
            _source_names(x, rendered, source)
