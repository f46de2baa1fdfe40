"""What each container actually gets: its environment, its argv and its mounted files.

Why: the migration's promise is that every workload sees exactly what it saw before,
only sourced from a Secret. This module computes that view the way the kubelet does, so
tests (and ``migrate`` users) can compare before and after:

* env: every ``envFrom`` source in order (later wins, with ``prefix``), then ``env`` in
  order; literals get ``$(VAR)`` expansion against what is defined so far (``$$`` escapes,
  unknown references stay as written); ``valueFrom`` ConfigMap/Secret refs are read
  verbatim; ``fieldRef``/``resourceFieldRef`` are shown symbolically;
* argv: ``command`` + ``args`` expanded against the final env;
* files: each ``volumeMount`` of a ``configMap``, ``secret`` or ``projected`` volume, with
  ``items``/``subPath``, and the file mode (item mode, else the volume's defaultMode, else 0644).

Secrets come from Secret objects, kustomize ``secretGenerator``s (without the name hash:
after migration the references carry no hash either) and ExternalSecrets (values read
from the provider). Missing sources are reported as ``<missing ...>`` markers, so a
broken reference shows up as a difference rather than an exception.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsync.core.values import SecretValue
from secretsync.kube.podspec import CONTAINER_LISTS

from .manifests import DeployUnits, Inventory, Kustomization, Obj, Unit, parse_env_file, scalar_text

_EXPAND = re.compile(r"\$\$|\$\(([^)]*)\)")
DEFAULT_MODE = 0o644


def expand(text: str, env: Mapping[str, bytes]) -> bytes:
    """Kubernetes ``$(VAR)`` expansion (``$$`` -> ``$``; undefined references kept as written)."""
    out = bytearray()
    pos = 0
    for m in _EXPAND.finditer(text):
        out += text[pos : m.start()].encode()
        if m.group(0) == "$$":
            out += b"$"
        else:
            name = m.group(1)
            out += env[name] if name in env else m.group(0).encode()
        pos = m.end()
    out += text[pos:].encode()
    return bytes(out)


@dataclass
class Store:
    """ConfigMaps and Secrets by (namespace, name): key -> bytes."""

    configmaps: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)


def _str(value: Any) -> str:
    """A scalar as the migrator reads it into a string field (``true``, not Python's ``True``)."""
    text = scalar_text(value)
    return text if text is not None else str(value)


def _text_map(data: Any) -> dict[str, bytes]:
    return {str(k): _str(v).encode() for k, v in (data or {}).items()} if isinstance(data, Mapping) else {}


def _b64_map(data: Any) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for k, v in (data or {}).items() if isinstance(data, Mapping) else []:
        try:
            out[str(k)] = base64.b64decode("".join(_str(v).split()))
        except (binascii.Error, ValueError):
            out[str(k)] = b"<invalid base64>"
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def build_store(inv: Inventory, provider_get: Callable[[str, str | None], SecretValue] | None,
                unit: Unit | None = None, units: DeployUnits | None = None) -> Store:
    """Every ConfigMap/Secret the tree (or one deploy unit of it) defines or makes (generators,
    ExternalSecrets)."""
    st = Store()
    objects = units.objects_of(unit) if units is not None and unit is not None else inv.objects
    kustomizations: list[tuple[Kustomization, str | None]]
    if units is not None and unit is not None:
        kustomizations = units.kustomizations.get(unit.id, [])
    else:
        kustomizations = [(k, None) for k in inv.kustomizations.values()]
    for o in objects:
        key = (o.namespace, o.name)
        if o.kind == "ConfigMap":
            st.configmaps[key] = {**_text_map(o.data.get("data")), **_b64_map(o.data.get("binaryData"))}
        elif o.kind == "Secret":
            st.secrets[key] = {**_b64_map(o.data.get("data")), **_text_map(o.data.get("stringData"))}
    for k, outer_ns in kustomizations:
        for section, target in (("secretGenerator", st.secrets), ("configMapGenerator", st.configmaps)):
            gens = k.data.get(section)
            for gen in gens if isinstance(gens, list) else []:
                if not isinstance(gen, Mapping):
                    continue
                ns = str(outer_ns or gen.get("namespace") or k.namespace or "default")
                data: dict[str, bytes] = {}
                for lit in _as_list(gen.get("literals")):
                    name, _, val = str(lit).partition("=")
                    data[name] = val.encode()
                for ef in [*_as_list(gen.get("envs")), *([gen["env"]] if isinstance(gen.get("env"), str) else [])]:
                    p = inv.path(os.path.normpath(os.path.join(k.dir, str(ef))))
                    if p.is_file():
                        data.update({a: b.encode() for a, b in parse_env_file(p.read_text()).items()})
                for entry in _as_list(gen.get("files")):
                    name, _, path = str(entry).rpartition("=")
                    p = inv.path(os.path.normpath(os.path.join(k.dir, path)))
                    if p.is_file():
                        data[name or os.path.basename(path)] = p.read_bytes()
                target[(ns, str(gen.get("name")))] = data
    if provider_get is not None:
        for o in objects:
            if o.kind != "ExternalSecret":
                continue
            spec = o.data.get("spec") or {}
            if not isinstance(spec, Mapping):
                continue
            target_name = str((spec.get("target") or {}).get("name") or o.name)
            data = {}
            for item in spec.get("data") or []:
                ref = item.get("remoteRef") or {}
                try:
                    data[str(item["secretKey"])] = provider_get(str(ref["key"]), ref.get("property")).reveal()
                except Exception as exc:  # a missing remote key shows as a difference
                    data[str(item["secretKey"])] = f"<missing remote {ref.get('key')}: {type(exc).__name__}>".encode()
            st.secrets[(o.namespace, target_name)] = data
    return st


@dataclass
class ContainerView:
    env: dict[str, bytes]
    argv: list[bytes]
    files: dict[str, tuple[bytes, int]]


def _source(st: Store, ns: str, kind: str, name: str) -> dict[str, bytes] | None:
    return (st.configmaps if kind == "configMap" else st.secrets).get((ns, name))


def _volume_files(st: Store, ns: str, vol: Mapping[str, Any]) -> dict[str, tuple[bytes, int]] | None:
    """Relative path -> (content, mode) of a volume; None for kinds we do not model."""
    def from_source(kind: str, src: Mapping[str, Any], default_mode: int) -> dict[str, tuple[bytes, int]]:
        name = str(src.get("name") or src.get("secretName") or "")
        data = _source(st, ns, kind, name)
        if data is None:
            return {} if src.get("optional") else {f"<missing {kind} {name}>": (b"", 0)}
        items = src.get("items")
        out: dict[str, tuple[bytes, int]] = {}
        if items is None:
            for k, v in data.items():
                out[k] = (v, default_mode)
        else:
            for it in items:
                k = str(it.get("key"))
                mode = int(it.get("mode", default_mode))
                if k in data:
                    out[str(it.get("path"))] = (data[k], mode)
                elif not src.get("optional"):
                    out[str(it.get("path"))] = (f"<missing key {k}>".encode(), 0)
        return out

    if "configMap" in vol:
        src = vol["configMap"]
        return from_source("configMap", src, int(src.get("defaultMode", DEFAULT_MODE)))
    if "secret" in vol:
        src = vol["secret"]
        return from_source("secret", src, int(src.get("defaultMode", DEFAULT_MODE)))
    if "projected" in vol:
        proj = vol["projected"]
        mode = int(proj.get("defaultMode", DEFAULT_MODE))
        files: dict[str, tuple[bytes, int]] = {}
        for s in proj.get("sources") or []:
            for kind in ("configMap", "secret"):
                if kind in s:
                    files.update(from_source(kind, s[kind], mode))
        return files
    return None


def resolve_container(st: Store, ns: str, pod: Mapping[str, Any], c: Mapping[str, Any]) -> ContainerView:
    env: dict[str, bytes] = {}
    for ef in c.get("envFrom") or []:
        prefix = str(ef.get("prefix") or "")
        for kind, ref_key in (("configMap", "configMapRef"), ("secret", "secretRef")):
            ref = ef.get(ref_key)
            if ref is None:
                continue
            data = _source(st, ns, kind, str(ref.get("name")))
            if data is None:
                if not ref.get("optional"):
                    env[f"<missing {kind} {ref.get('name')}>"] = b""
                continue
            for k, v in data.items():
                env[prefix + k] = v
    for e in c.get("env") or []:
        name = str(e.get("name"))
        if "value" in e:
            env[name] = expand(_str(e["value"]) if e["value"] is not None else "", env)
            continue
        vf = e.get("valueFrom") or {}
        for kind, ref_key in (("configMap", "configMapKeyRef"), ("secret", "secretKeyRef")):
            ref = vf.get(ref_key)
            if ref is None:
                continue
            data = _source(st, ns, kind, str(ref.get("name"))) or {}
            if ref.get("key") in data:
                env[name] = data[str(ref["key"])]
            elif not ref.get("optional"):
                env[name] = f"<missing {kind} {ref.get('name')}/{ref.get('key')}>".encode()
        if "fieldRef" in vf:
            env[name] = f"<field {vf['fieldRef'].get('fieldPath')}>".encode()
        if "resourceFieldRef" in vf:
            env[name] = f"<resource {vf['resourceFieldRef'].get('resource')}>".encode()
    argv = [expand(_str(a), env) for a in [*(c.get("command") or []), *(c.get("args") or [])]]
    volumes = {str(v.get("name")): v for v in pod.get("volumes") or []}
    files: dict[str, tuple[bytes, int]] = {}
    for m in c.get("volumeMounts") or []:
        vol = volumes.get(str(m.get("name")))
        if vol is None:
            files[f"{m.get('mountPath')}/<missing volume>"] = (b"", 0)
            continue
        content = _volume_files(st, ns, vol)
        if content is None:
            continue
        mount = str(m.get("mountPath")).rstrip("/")
        sub = str(m.get("subPath") or "")
        for rel, val in content.items():
            if sub:
                if rel == sub:
                    files[mount] = val
                elif rel.startswith(sub.rstrip("/") + "/"):
                    files[mount + "/" + rel[len(sub.rstrip("/")) + 1 :]] = val
            else:
                files[f"{mount}/{rel}"] = val
    return ContainerView(env, argv, files)


def resolve_workload(st: Store, obj: Obj) -> dict[str, ContainerView]:
    """Every container's view; a malformed container (``env: "x"``) gets a marker instead, so a
    tree with broken objects still compares (the same marker before and after)."""
    pod = obj.pod_spec() or {}
    out: dict[str, ContainerView] = {}
    for lst in CONTAINER_LISTS:
        containers = pod.get(lst)
        if not isinstance(containers, list):
            continue
        for index, c in enumerate(containers):
            name = f"{lst}/{c.get('name') if isinstance(c, Mapping) else index}"
            try:
                if not isinstance(c, Mapping):
                    raise TypeError
                out[name] = resolve_container(st, obj.namespace, pod, c)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                out[name] = ContainerView({f"<unresolvable: {type(exc).__name__}>": b""}, [], {})
    return out


def resolve_tree(inv: Inventory, provider_get: Callable[[str, str | None], SecretValue] | None = None
                 ) -> dict[str, dict[str, ContainerView]]:
    """Every workload's containers, keyed by ``Kind/namespace/name``, each resolved within its
    deploy unit (:mod:`.units`): a workload reads the objects of its own kustomization, chart or
    folder, never a same-named object of another. A workload deployed by several units (a base
    shared by overlays), or a name two units share, gets `` @ UNIT`` after its key."""
    units = DeployUnits(inv)
    views: list[tuple[str, str, dict[str, ContainerView]]] = []
    for unit in units.units.values():
        st = build_store(inv, provider_get, unit, units)
        for o in units.objects_of(unit):
            if o.pod_spec() is not None:
                views.append((o.resource, unit.id, resolve_workload(st, o)))
    count: dict[str, int] = {}
    for res, _, _ in views:
        count[res] = count.get(res, 0) + 1
    return {(res if count[res] == 1 else f"{res} @ {uid}"): view for res, uid, view in views}


def differences(before: Mapping[str, Mapping[str, ContainerView]], after: Mapping[str, Mapping[str, ContainerView]],
                added_env_prefix: str = "SECRETSYNC_") -> list[str]:
    """What differs, described without values. Env vars the migration added
    (``SECRETSYNC_*``, absent before) are allowed; everything else must match exactly."""
    out: list[str] = []
    for res in sorted(set(before) | set(after)):
        b, a = before.get(res), after.get(res)
        if b is None or a is None:
            out.append(f"{res}: {'added' if b is None else 'removed'}")
            continue
        for cname in sorted(set(b) | set(a)):
            cb, cab = b.get(cname), a.get(cname)
            if cb is None or cab is None:
                out.append(f"{res} {cname}: container {'added' if cb is None else 'removed'}")
                continue
            for k in sorted(set(cb.env) | set(cab.env)):
                if k not in cb.env and k.startswith(added_env_prefix):
                    continue
                if cb.env.get(k) != cab.env.get(k):
                    out.append(f"{res} {cname}: env {k} differs")
            if cb.argv != cab.argv:
                out.append(f"{res} {cname}: argv differs")
            for p in sorted(set(cb.files) | set(cab.files)):
                if cb.files.get(p) != cab.files.get(p):
                    out.append(f"{res} {cname}: file {p} differs")
    return out
