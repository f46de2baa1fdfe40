"""Consumer rewiring: the edits that make a workload read moved ConfigMap keys from a Secret."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from secretsync.core.errors import InvalidInput
from secretsync.kube.podspec import CONTAINER_LISTS

from .. import objpath


class MalformedConsumer(InvalidInput, ValueError):
    """A workload field that may reference a ConfigMap has the wrong type (message: the path)."""



def _seq(value: Any, path: str) -> list[Any]:
    """A list field (absent -> empty); MalformedConsumer naming ``path`` when it is something else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedConsumer(f"{path} is not a list")
    return value



def _map(value: Any, path: str, required: bool = False) -> Mapping[str, Any] | None:
    """A mapping field (absent -> None); MalformedConsumer naming ``path`` when it is something else."""
    if value is None and not required:
        return None
    if not isinstance(value, Mapping):
        raise MalformedConsumer(f"{path} is not a mapping")
    return value



def consumer_ops_for_configmap(data: Mapping[str, Any], pod_path: str, cm: str, moved: set[str],
                               target: str) -> tuple[list[dict[str, Any]], str]:
    """Ops that make one workload read ``moved`` keys of ConfigMap ``cm`` from Secret ``target``.

    - ``env[].valueFrom.configMapKeyRef`` -> ``secretKeyRef`` (same key, same optional);
    - ``envFrom[].configMapRef`` -> followed by a ``secretRef`` with the same prefix (the
      Secret comes right after the ConfigMap, so precedence between sources is unchanged);
    - a ``configMap`` volume -> a ``projected`` volume with the ConfigMap and the Secret as
      sources (items split between them), so every file stays at its path and mode.

    Every field that could hold a reference is read strictly: one of the wrong type (``envFrom:
    [{configMapRef: cm}]``) raises :class:`MalformedConsumer`, because a reference we cannot
    read would keep pointing at keys that are gone.
    """
    spec = objpath.get(data, pod_path) if pod_path and objpath.exists(data, pod_path) else None
    if not isinstance(spec, Mapping):
        return [], ""
    ops: list[dict[str, Any]] = []
    what: list[str] = []
    for list_name in CONTAINER_LISTS:
        for ci, c in enumerate(_seq(spec.get(list_name), f"{pod_path}.{list_name}")):
            cp = f"{pod_path}.{list_name}[{ci}]"
            c = _map(c, cp, required=True)
            assert c is not None
            if not isinstance(c.get("name"), str) or not c.get("name"):
                raise MalformedConsumer(f"{cp}.name is not a name")
            cpath = f"{pod_path}.{list_name}[name={c['name']}]"
            for ei, e in enumerate(_seq(c.get("env"), f"{cp}.env")):
                e = _map(e, f"{cp}.env[{ei}]", required=True)
                assert e is not None
                vf = _map(e.get("valueFrom"), f"{cp}.env[{ei}].valueFrom")
                ref = _map(vf.get("configMapKeyRef"), f"{cp}.env[{ei}].valueFrom.configMapKeyRef") if vf else None
                if ref is not None and ref.get("name") == cm and ref.get("key") in moved:
                    if not isinstance(e.get("name"), str):
                        raise MalformedConsumer(f"{cp}.env[{ei}].name is not a name")
                    new = {"name": target, "key": ref["key"]}
                    if "optional" in ref:
                        new["optional"] = ref["optional"]
                    ops.append({"op": "replace-key", "path": f"{cpath}.env[name={e['name']}].valueFrom",
                                "old": "configMapKeyRef", "new": "secretKeyRef", "value": new})
                    what.append(f"{c['name']} env {e['name']}")
            for fi, ef in enumerate(_seq(c.get("envFrom"), f"{cp}.envFrom")):
                ef = _map(ef, f"{cp}.envFrom[{fi}]", required=True)
                assert ef is not None
                ref = _map(ef.get("configMapRef"), f"{cp}.envFrom[{fi}].configMapRef")
                if ref is not None and ref.get("name") == cm:
                    item: dict[str, Any] = {}
                    if ef.get("prefix"):
                        item["prefix"] = ef["prefix"]
                    item["secretRef"] = {"name": target, **({"optional": ref["optional"]} if "optional" in ref
                                                            else {})}
                    ops.append({"op": "insert", "path": f"{cpath}.envFrom", "after": f"[configMapRef.name={cm}]",
                                "value": item})
                    what.append(f"{c['name']} envFrom")
                    break
    for vi, v in enumerate(_seq(spec.get("volumes"), f"{pod_path}.volumes")):
        vp = f"{pod_path}.volumes[{vi}]"
        v = _map(v, vp, required=True)
        assert v is not None
        cmv = _map(v.get("configMap"), f"{vp}.configMap")
        proj = _map(v.get("projected"), f"{vp}.projected")
        if ((cmv is not None and cmv.get("name") == cm) or proj is not None) and (
                not isinstance(v.get("name"), str) or not v.get("name")):
            raise MalformedConsumer(f"{vp}.name is not a name")
        vpath = f"{pod_path}.volumes[name={v.get('name')}]"
        if cmv is not None and cmv.get("name") == cm:
            split = _split_items(cmv, moved, target, f"{vp}.configMap")
            if split is not None:
                cm_src, sec_src = split
                sources = ([{"configMap": cm_src}] if cm_src else []) + [{"secret": sec_src}]
                projected: dict[str, Any] = {"sources": sources}
                if "defaultMode" in cmv:
                    projected["defaultMode"] = cmv["defaultMode"]
                ops.append({"op": "replace-key", "path": vpath, "old": "configMap", "new": "projected",
                            "value": projected})
                what.append(f"volume {v['name']}")
        if proj is not None:
            for si, src in enumerate(_seq(proj.get("sources"), f"{vp}.projected.sources")):
                src = _map(src, f"{vp}.projected.sources[{si}]", required=True)
                assert src is not None
                cms = _map(src.get("configMap"), f"{vp}.projected.sources[{si}].configMap")
                if cms is not None and cms.get("name") == cm:
                    split = _split_items(cms, moved, target, f"{vp}.projected.sources[{si}].configMap")
                    if split is None:
                        continue
                    cm_src, sec_src = split
                    spath = f"{vpath}.projected.sources"
                    ops.append({"op": "insert", "path": spath, "after": f"[configMap.name={cm}]",
                                "value": {"secret": sec_src}})
                    if cm_src is not None and cm_src != dict(cms):
                        ops.append({"op": "set", "path": f"{spath}[configMap.name={cm}].configMap", "value": cm_src})
                    what.append(f"volume {v['name']}")
                    break
    summary = f"reads moved keys of ConfigMap {cm} from Secret {target}: " + ", ".join(what) if ops else ""
    return ops, summary



def _split_items(src: Mapping[str, Any], moved: set[str], target: str, path: str
                 ) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
    """(ConfigMap source, Secret source) for a volume; None when the volume mounts no moved key."""
    items = src.get("items")
    cm_src: dict[str, Any] | None = {k: copy.deepcopy(v) for k, v in src.items()}
    sec_src: dict[str, Any] = {"name": target}
    if items is not None:
        for ii, it in enumerate(_seq(items, f"{path}.items")):
            _map(it, f"{path}.items[{ii}]", required=True)
        keep = [copy.deepcopy(it) for it in items if it.get("key") not in moved]
        mv = [copy.deepcopy(it) for it in items if it.get("key") in moved]
        if not mv:
            return None
        assert cm_src is not None
        if keep:
            cm_src["items"] = keep
        else:
            cm_src = None
        sec_src["items"] = mv
    if "optional" in src:
        sec_src["optional"] = src["optional"]
    if cm_src is not None:
        cm_src.pop("defaultMode", None)
    return cm_src, sec_src

