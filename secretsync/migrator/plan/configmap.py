"""ConfigMap keys and embedded files move to a Secret; every consumer in the unit is rewired."""

from __future__ import annotations

from .. import naming, objpath
from ..findings import Detection
from ..manifests import (
    Obj,
    read_locator,
)
from .base import PlannerBase
from .consumers import MalformedConsumer, consumer_ops_for_configmap
from .model import Group, Manual, where


class ConfigMapSource(PlannerBase):
    """ConfigMap keys and embedded files move to a Secret; every consumer in the unit is rewired."""

    def _configmap(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        if obj.kind != "ConfigMap":
            raise Manual(f"a configmap finding on a {obj.kind}")
        section, key = self._data_key(obj, f, ("data", "binaryData"))
        locator = {"kind": "field", **where(obj),
                   "path": objpath.format_path([objpath.Key(section), objpath.Key(key)]),
                   "encoding": "base64" if section == "binaryData" else "text"}
        value = read_locator(self.inv, locator)
        group = self._group(obj.resource, "ConfigMap", obj.name, obj.namespace, obj.explicit_namespace, obj.file)
        fields = {**self._base_fields(obj, key), "subkey": f.subkey or ""}
        ps = self._secret_for(group, naming.secret_key(key), locator, value, fields, f)
        if ps.secret_key != key:
            raise Manual(f"ConfigMap key {key!r} is not a valid Secret key")
        self._cm_moves.setdefault(group.id, {})[key] = ps.id
        what = "embedded file" if f.location == "configmap-embedded" else "key"
        self._change(obj, obj.file, obj.document, obj.resource).add(
            [{"op": "remove", "path": locator["path"]}],
            f"{what} {key} moves to Secret {group.target}", group.id, "source")

    def _consumers(self, group: Group) -> list[Obj]:
        """The workloads that may read the ConfigMap: in cluster mode its namespace; in a tree, the
        workloads deployed by the same units (with the namespace each unit gives them), never a
        same-named ConfigMap's consumers in another unit. A consumer also deployed by a unit without
        this ConfigMap would read another object there: the group is refused."""
        if self.cluster or not group.home_file:
            return list(self.inv.workloads(group.namespace))
        cm_units = self.units.units_of(group.home_file)
        out: dict[tuple[str | None, int], Obj] = {}
        for unit in cm_units:
            mine = [o for o in self.units.objects_of(unit)
                    if o.file == group.home_file and o.kind == "ConfigMap" and o.name == group.owner_name]
            if not mine:
                continue
            ns = mine[0].namespace
            for o in self.units.objects_of(unit):
                if o.namespace == ns and o.pod_spec() is not None:
                    out.setdefault((o.file, o.document), next(
                        x for x in self.inv.objects if x.file == o.file and x.document == o.document))
        for wl in out.values():
            extra = [u.dir or "." for u in self.units.units_of(wl.file or "") if u not in cm_units]
            try:
                reads = bool(extra) and bool(consumer_ops_for_configmap(
                    wl.data, wl.pod_spec_path() or "", group.owner_name, set(self._cm_moves[group.id]),
                    group.target)[0])
            except (TypeError, AttributeError, ValueError, KeyError, objpath.PathError):
                reads = False  # reported as malformed by the caller
            if reads:
                self._early_drops.setdefault(group.id, f"{wl.resource} in {wl.file} reads ConfigMap "
                                             f"{group.owner_name} but is also deployed by {', '.join(extra)}, where "
                                             "that name is another object; the deploy unit cannot be decided, "
                                             "nothing is rewired")
        return list(out.values())

    def _finish_configmaps(self) -> None:
        for group in self.groups.values():
            if group.kind != "ConfigMap" or group.id not in self._cm_moves:
                continue
            moved = set(self._cm_moves[group.id])
            consumers = 0
            for wl in self._consumers(group):
                try:
                    ops, summary = consumer_ops_for_configmap(wl.data, wl.pod_spec_path() or "", group.owner_name,
                                                              moved, group.target)
                except (TypeError, AttributeError, ValueError, KeyError, objpath.PathError) as exc:
                    # A consumer we cannot read would keep reading keys that are gone: keep them.
                    why = str(exc) if isinstance(exc, MalformedConsumer) else type(exc).__name__
                    self._early_drops.setdefault(group.id, f"{wl.resource} in {wl.file or 'the cluster'} may use "
                                                 f"ConfigMap {group.owner_name} but is malformed ({why}); fix it "
                                                 "and plan again")
                    continue
                if ops:
                    consumers += 1
                    self._change(wl, wl.file, wl.document, wl.resource).add(ops, summary, group.id, "consumer")
            if consumers == 0:
                group.notes.append("no workload in the planned paths uses the moved keys; consumers elsewhere "
                                   "must read them from Secret " + group.target)
            else:
                group.notes.append("consumers outside the planned paths must switch to Secret " + group.target)
