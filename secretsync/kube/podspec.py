"""Every way a pod spec names a Secret, with the field path that names it (the one reader).

Shared by the controller's rollout restarts (:mod:`secretsync.kube.consumers`) and the audit
(inventory and graph): one reader, so what the audit reports and what rotation restarts agree.

A pod reads a Secret through: ``env[].valueFrom.secretKeyRef``, ``envFrom[].secretRef``,
``volumes[].secret``, ``volumes[].projected.sources[].secret``, ``imagePullSecrets`` and the
volume plugins that take credentials from a Secret (``azureFile.secretName``, ``cephfs``,
``rbd``, ``flexVolume``, ``iscsi``, ``scaleIO``, ``storageos`` ``secretRef``, and
``csi.nodePublishSecretRef``). Containers, init containers and ephemeral containers all
count. A reference is *optional* when the field says ``optional: true``: the pod starts
without the Secret (or key), so a missing one is a warning, not a broken workload.

The ServiceAccount's own Secrets (token, image pull) are resolved by the audit, which knows
the ServiceAccount objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .kinds import POD_KINDS, POD_TEMPLATES

#: Built-in kind -> where its pod spec sits (from the one table of kinds, :mod:`.kinds`).
POD_SPEC_PATHS: Final = {r.kind: r.pod_spec for r in (*POD_KINDS, POD_TEMPLATES)}
#: Where a kind we do not know (a CRD that embeds a pod template) may keep one.
TEMPLATE_PATHS: Final = (("spec", "template", "spec"), ("spec", "jobTemplate", "spec", "template", "spec"))
#: The lists of containers in a pod spec (every one of them may read a Secret).
CONTAINER_LISTS: Final = ("initContainers", "containers", "ephemeralContainers")


def pod_spec_paths(kind: str) -> tuple[tuple[str, ...], ...]:
    """Where an object of ``kind`` may keep its pod spec: the known place, else every template place."""
    known = POD_SPEC_PATHS.get(kind)
    return (known,) if known else TEMPLATE_PATHS

#: How a Secret is consumed (``via`` values; the JSON report documents them).
VIA_ENV: Final = "env"
VIA_ENV_FROM: Final = "envFrom"
VIA_VOLUME: Final = "volume"
VIA_PROJECTED: Final = "projected"
VIA_IMAGE_PULL: Final = "imagePullSecret"
VIA_VOLUME_PLUGIN: Final = "volumePlugin"
#: Not from pod specs, listed here so every ``via`` value is in one place.
VIA_INGRESS_TLS: Final = "ingressTLS"
VIA_STORAGE: Final = "storage"  # a PersistentVolume or StorageClass (the volume plugin reads it)

#: volume plugin -> (field holding the Secret name, nested under secretRef?)
_PLUGINS: Final = {
    "azureFile": ("secretName", False),
    "cephfs": ("secretRef", True),
    "rbd": ("secretRef", True),
    "flexVolume": ("secretRef", True),
    "iscsi": ("secretRef", True),
    "scaleIO": ("secretRef", True),
    "storageos": ("secretRef", True),
    "csi": ("nodePublishSecretRef", True),
}


@dataclass(frozen=True, slots=True)
class SecretUse:
    """One reference from a consumer to a Secret of its namespace."""

    secret: str
    via: str
    #: Field path in the consumer object, e.g. ``spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef``.
    path: str
    #: Containers that read it (env: the container; volumes: the containers mounting it).
    containers: tuple[str, ...] = ()
    #: Keys read (secretKeyRef key, volume items); empty = every key.
    keys: tuple[str, ...] = ()
    optional: bool = False


def pod_spec_uses(spec: Mapping[str, Any], base: str, problems: list[tuple[str, str]]) -> list[SecretUse]:
    """The Secret references of a pod spec at path ``base``; bad fields go to ``problems``."""
    uses: list[SecretUse] = []
    mounts: dict[str, list[str]] = {}
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if containers is None:
            continue
        cpath = f"{base}.{list_name}"
        if not isinstance(containers, list):
            problems.append((cpath, "must be a list"))
            continue
        for i, c in enumerate(containers):
            if not isinstance(c, Mapping):
                problems.append((f"{cpath}[{i}]", "must be an object"))
                continue
            raw_name = c.get("name")
            cname = raw_name if isinstance(raw_name, str) else f"#{i}"
            _container_uses(c, f"{cpath}[{i}]", cname, uses, problems)
            for m in c.get("volumeMounts") or () if isinstance(c.get("volumeMounts"), list) else ():
                if isinstance(m, Mapping) and isinstance(m.get("name"), str):
                    mounts.setdefault(m["name"], []).append(cname)
    _volume_uses(spec.get("volumes"), f"{base}.volumes", mounts, uses, problems)
    pulls = spec.get("imagePullSecrets")
    if pulls is not None:
        if not isinstance(pulls, list):
            problems.append((f"{base}.imagePullSecrets", "must be a list"))
        else:
            for i, p in enumerate(pulls):
                name = _name(p, "name", f"{base}.imagePullSecrets[{i}]", problems)
                if name:
                    uses.append(SecretUse(name, VIA_IMAGE_PULL, f"{base}.imagePullSecrets[{i}]"))
    return uses


def _name(obj: Any, key: str, path: str, problems: list[tuple[str, str]]) -> str | None:
    if not isinstance(obj, Mapping):
        problems.append((path, "must be an object"))
        return None
    name = obj.get(key)
    if not isinstance(name, str) or not name:
        problems.append((f"{path}.{key}", "required (the Secret's name)"))
        return None
    return name


def _optional(obj: Mapping[str, Any]) -> bool:
    return obj.get("optional") is True


def _container_uses(c: Mapping[str, Any], path: str, cname: str, uses: list[SecretUse],
                    problems: list[tuple[str, str]]) -> None:
    env = c.get("env")
    if isinstance(env, list):
        for j, e in enumerate(env):
            vf = e.get("valueFrom") if isinstance(e, Mapping) else None
            ref = vf.get("secretKeyRef") if isinstance(vf, Mapping) else None
            if ref is None:
                continue
            rpath = f"{path}.env[{j}].valueFrom.secretKeyRef"
            name = _name(ref, "name", rpath, problems)
            if not name:
                continue
            key = ref.get("key")
            if not isinstance(key, str) or not key:
                problems.append((f"{rpath}.key", "required"))
                continue
            uses.append(SecretUse(name, VIA_ENV, rpath, (cname,), (key,), _optional(ref)))
    elif env is not None:
        problems.append((f"{path}.env", "must be a list"))
    env_from = c.get("envFrom")
    if isinstance(env_from, list):
        for j, e in enumerate(env_from):
            ref = e.get("secretRef") if isinstance(e, Mapping) else None
            if ref is None:
                continue
            rpath = f"{path}.envFrom[{j}].secretRef"
            name = _name(ref, "name", rpath, problems)
            if name:
                uses.append(SecretUse(name, VIA_ENV_FROM, rpath, (cname,), (), _optional(ref)))
    elif env_from is not None:
        problems.append((f"{path}.envFrom", "must be a list"))


def _item_keys(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(i["key"] for i in items if isinstance(i, Mapping) and isinstance(i.get("key"), str))


def _volume_uses(volumes: Any, path: str, mounts: Mapping[str, list[str]], uses: list[SecretUse],
                 problems: list[tuple[str, str]]) -> None:
    if volumes is None:
        return
    if not isinstance(volumes, list):
        problems.append((path, "must be a list"))
        return
    for i, vol in enumerate(volumes):
        vpath = f"{path}[{i}]"
        if not isinstance(vol, Mapping):
            problems.append((vpath, "must be an object"))
            continue
        vname = vol.get("name")
        readers = tuple(mounts.get(vname, ())) if isinstance(vname, str) else ()
        sec = vol.get("secret")
        if sec is not None:
            name = _name(sec, "secretName", f"{vpath}.secret", problems)
            if name:
                uses.append(SecretUse(name, VIA_VOLUME, f"{vpath}.secret", readers,
                                      _item_keys(sec.get("items")), _optional(sec)))
        projected = vol.get("projected")
        if isinstance(projected, Mapping):
            sources = projected.get("sources")
            if sources is not None and not isinstance(sources, list):
                problems.append((f"{vpath}.projected.sources", "must be a list"))
                sources = []
            for j, src in enumerate(sources or ()):
                ref = src.get("secret") if isinstance(src, Mapping) else None
                if ref is None:
                    continue
                spath = f"{vpath}.projected.sources[{j}].secret"
                name = _name(ref, "name", spath, problems)
                if name:
                    uses.append(SecretUse(name, VIA_PROJECTED, spath, readers, _item_keys(ref.get("items")),
                                          _optional(ref)))
        for plugin, (fname, nested) in _PLUGINS.items():
            block = vol.get(plugin)
            if not isinstance(block, Mapping) or block.get(fname) is None:
                continue
            ppath = f"{vpath}.{plugin}"
            name = _name(block[fname], "name", f"{ppath}.{fname}", problems) if nested \
                else _name(block, fname, ppath, problems)
            if name:
                fpath = f"{ppath}.{fname}"
                uses.append(SecretUse(name, VIA_VOLUME_PLUGIN, fpath, readers))
