"""Workload literals: env values and command/args flags become secretKeyRefs."""

from __future__ import annotations

from secretsync.kube.podspec import CONTAINER_LISTS

from .. import naming, objpath
from ..findings import Detection
from ..manifests import (
    LocateError,
    Obj,
    normalize_path,
    read_locator,
    scalar_text,
    stabilize,
)
from .base import PlannerBase
from .model import Manual, where


class WorkloadSource(PlannerBase):
    """Workload literals: env values and command/args flags become secretKeyRefs."""

    def _env(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        segs = stabilize(obj.data, normalize_path(f.path))
        _, container, rest = self._container_path(obj, segs)
        tail = segs[rest:]
        if not (len(tail) == 3 and tail[0] == objpath.Key("env") and tail[2] == objpath.Key("value")):
            raise Manual("an env finding must point at containers[].env[].value")
        entry_path = objpath.format_path(segs[: rest + 2])
        entry = objpath.get(obj.data, entry_path)
        if not isinstance(tail[1], objpath.Match):
            raise Manual("env var names in this container are not unique")
        var = str(entry.get("name"))
        locator = {"kind": "field", **where(obj),
                   "path": objpath.format_path(segs), "encoding": "text"}
        value = read_locator(self.inv, locator)
        self._check_expansion(value, f"env {var}")
        group = self._group(obj.resource, obj.kind, obj.name, obj.namespace, obj.explicit_namespace, obj.file)
        fields = {**self._base_fields(obj, var), "container": str(container["name"])}
        ps = self._secret_for(group, naming.secret_key(var), locator, value, fields, f)
        op = {"op": "replace-key", "path": entry_path, "old": "value", "new": "valueFrom",
              "value": {"secretKeyRef": {"name": group.target, "key": ps.secret_key}}}
        self._change(obj, obj.file, obj.document, obj.resource).add(
            [op], f"container {container['name']}: env {var} literal -> secretKeyRef {group.target}/{ps.secret_key}",
            group.id, "consumer")

    def _arg(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        segs = stabilize(obj.data, normalize_path(f.path))
        cpath, container, rest = self._container_path(obj, segs)
        tail = segs[rest:]
        if not (len(tail) == 2 and tail[0] in (objpath.Key("args"), objpath.Key("command"))
                and isinstance(tail[1], objpath.Index)):
            raise Manual("an argument finding must point at containers[].command[] or args[]")
        arg_path = objpath.format_path(segs)
        current = scalar_text(objpath.get(obj.data, arg_path))
        if current is None:
            raise Manual("the argument is not a string")
        value = det.value
        if not value.is_text or not value:
            raise Manual("the flag's value is binary or empty")
        self._check_expansion(value, f"argument {f.key}")
        raw = value.reveal_text()
        # Several findings may share one argument: build on the pattern an earlier one made.
        chg = self._change(obj, obj.file, obj.document, obj.resource)
        earlier = [op for op in chg.ops if op["op"] == "set" and op["path"] == arg_path]
        pattern = earlier[0]["value"] if earlier else current
        if raw not in pattern:
            same = next((ps for ps in self.secrets if ps.locator.get("path") == arg_path and ps.value == value
                         and all(ps.locator.get(k) == v for k, v in where(obj).items())), None)
            if same is not None:  # the same value twice in one argument: both went with the first finding
                same.findings.append(f.fingerprint)
                self.dispositions[f.fingerprint] = {"disposition": "migrate", "secret": same.id}
                return
            raise Manual("the value is not literally inside the argument")
        env_names = {str(e.get("name")) for c in CONTAINER_LISTS for cc in (obj.pod_spec() or {}).get(c) or []
                     for e in cc.get("env") or [] if isinstance(e, dict)}
        env_names |= {str(op["value"]["name"]) for op in chg.ops if op["op"] == "insert"
                      and isinstance(op.get("value"), dict) and "name" in op["value"]}
        var = naming.env_var_for_flag(f.key or "arg")
        base, n = var, 2
        while var in env_names:
            var, n = f"{base}_{n}", n + 1
        new_pattern = pattern.replace(raw, f"$({var})")
        locator = {"kind": "field", **where(obj), "path": arg_path,
                   "encoding": "text", "pattern": new_pattern, "var": var}
        try:
            got = read_locator(self.inv, locator)
        except LocateError:
            raise Manual("cannot isolate the value inside the argument unambiguously") from None
        if got != value:
            raise Manual("cannot isolate the value inside the argument unambiguously")
        # Earlier values in the same argument now need the new pattern too.
        for ps in self.secrets:
            if ps.locator.get("path") == arg_path and all(ps.locator.get(k) == v for k, v in where(obj).items()):
                ps.locator["pattern"] = new_pattern
        group = self._group(obj.resource, obj.kind, obj.name, obj.namespace, obj.explicit_namespace, obj.file)
        fields = {**self._base_fields(obj, var), "container": str(container["name"])}
        ps = self._secret_for(group, naming.secret_key(var), locator, value, fields, f)
        env_item = {"name": var, "valueFrom": {"secretKeyRef": {"name": group.target, "key": ps.secret_key}}}
        chg.ops = [op for op in chg.ops if not (op["op"] == "set" and op["path"] == arg_path)]
        chg.add([{"op": "set", "path": arg_path, "value": new_pattern},
                 {"op": "insert", "path": f"{cpath}.env", "value": env_item}],
                f"container {container['name']}: flag {f.key} -> $({var}) from secretKeyRef "
                f"{group.target}/{ps.secret_key}", group.id, "consumer")
