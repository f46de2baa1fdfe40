"""The plan document on disk: load, validate (a plan is a file people may edit), sidecars, digest key.

Why apart from the planner: apply and rollback read plans without building one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from secretsync.core.errors import InvalidConfig

from .model import PLAN_KIND


def file_digest(key: bytes, data: bytes) -> str:
    """A keyed digest of file bytes (the key stays beside the plan, never inside it)."""
    return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()



def load_plan(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidConfig(f"cannot read plan {path}: {type(exc).__name__}") from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND:
        raise InvalidConfig(f"{path} is not a secretsync migration plan")
    where = _malformed_field(doc)
    if where:
        raise InvalidConfig(f"{path}: field {where} is missing or malformed (was the plan edited by hand? to drop "
                            "an item, drop its whole group: the group, its secrets, its new files and its edits); "
                            "run 'migrate plan' again, or leave items out with --exclude/--only/--baseline")
    return doc



def _malformed_field(doc: Mapping[str, Any]) -> str | None:
    """The first field of a plan that apply or rollback could not use, or None.

    Plans are files people can open and edit; a broken one must be refused before any step
    runs, not fail half-way with a KeyError.
    """
    def items(name: str, keys: dict[str, type | tuple[type, ...]]) -> str | None:
        seq = doc.get(name)
        if not isinstance(seq, list):
            return name
        for i, item in enumerate(seq):
            if not isinstance(item, dict):
                return f"{name}[{i}]"
            for key, typ in keys.items():
                if not isinstance(item.get(key), typ):
                    return f"{name}[{i}].{key}"
        return None

    mode = doc.get("mode")
    if mode not in ("manifests", "cluster"):
        return "mode"
    if not isinstance(doc.get("id"), str):
        return "id"
    store = doc.get("store")
    if not isinstance(store, dict) or not isinstance(store.get("url"), str):
        return "store.url"
    checks: list[tuple[str, dict[str, type | tuple[type, ...]]]] = [
        ("secrets", {"id": str, "providerKey": str, "group": str, "secretKey": str, "source": dict}),
        ("groups", {"id": str, "externalSecret": dict, "secrets": list}),
        ("changes", {"ops": list, "role": str, "groups": list, "resource": str}),
    ]
    if mode == "manifests":
        if not isinstance(doc.get("root"), str):
            return "root"
        if not isinstance(doc.get("files"), dict):
            return "files"
        checks += [("newFiles", {"file": str, "text": str, "sha256": str}), ("deleteFiles", {"file": str})]
    else:
        checks += [("newObjects", {"kind": str, "name": str, "manifest": dict})]
    for name, keys in checks:
        bad = items(name, keys)
        if bad:
            return bad
    for i, chg in enumerate(doc["changes"]):
        for j, op in enumerate(chg["ops"]):
            if not isinstance(op, dict) or not isinstance(op.get("op"), str) or not isinstance(op.get("path"), str):
                return f"changes[{i}].ops[{j}]"
    for i, sec in enumerate(doc["secrets"]):
        if not isinstance(sec["source"].get("kind"), str):
            return f"secrets[{i}].source.kind"
    return _dangling(doc)


def _dangling(doc: Mapping[str, Any]) -> str | None:
    """The first reference to an item no longer in the plan (someone dropped half of an item).

    Dropping an item means dropping its group: the group, its secrets, its new files and the
    edits only it makes. Anything left pointing at a dropped id is named here; whether what is
    left still keeps every container reading the same is apply's invariant check.
    """
    secret_ids = {s["id"] for s in doc["secrets"]}
    group_ids = {g["id"] for g in doc["groups"]}
    for i, g in enumerate(doc["groups"]):
        for sid in g["secrets"]:
            if sid not in secret_ids:
                return f"groups[{i}].secrets ({sid} is not in secrets)"
    for i, s in enumerate(doc["secrets"]):
        if s["group"] not in group_ids:
            return f"secrets[{i}].group ({s['group']} is not in groups)"
    for i, c in enumerate(doc["changes"]):
        for gid in c["groups"]:
            if gid not in group_ids and gid not in ("store", ""):
                return f"changes[{i}].groups ({gid} is not in groups)"
    for name in ("newFiles", "newObjects", "deleteFiles"):
        for i, item in enumerate(doc.get(name) or []):
            if item.get("group") not in (None, *group_ids):
                return f"{name}[{i}].group ({item.get('group')} is not in groups)"
    return None



def sidecar(plan_path: Path, suffix: str) -> Path:
    """``plan.json`` -> ``plan.journal`` / ``plan.key``."""
    return plan_path.with_suffix(suffix) if plan_path.suffix else plan_path.with_name(plan_path.name + suffix)



def write_digest_key(path: Path, key: bytes) -> None:
    """The plan's digest key: 0600, beside the plan, never printed (keep it out of git)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")



def read_digest_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        raise InvalidConfig(f"cannot read the plan's digest key {path}: it is written beside the plan by "
                            "'migrate plan'; re-run plan if it is lost") from None

