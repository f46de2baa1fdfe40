"""The plan's data model: options, provider keys, groups (one ExternalSecret each), edits."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsync.api import models
from secretsync.core.errors import SecretSyncError
from secretsync.core.values import SecretValue
from secretsync.kube import labels

from .. import naming
from ..manifests import (
    Obj,
)
from .select import Selection

PLAN_KIND = "MigrationPlan"
PLAN_API_VERSION = f"{models.GROUP}/{models.VERSION}"
MANAGED_BY = labels.MANAGED_BY
MIGRATED_FROM = labels.MIGRATED_FROM_ANNOTATION
LAST_APPLIED = labels.LAST_APPLIED_ANNOTATION
#: Helm values siblings that name the key inside the existing Secret.
HELM_KEY_SIBLINGS = ("existingSecretPasswordKey", "existingSecretKey", "existingSecretKeyName")
HELM_SECRET_SIBLINGS = ("existingSecret", "existingSecretName")



@dataclass(frozen=True, slots=True)
class PlanOptions:
    store_url: str
    name_template: str = naming.DEFAULT_TEMPLATE
    store_name: str = "secretsync"
    store_kind: str = "SecretStore"
    #: Write a SecretStore/ClusterSecretStore manifest for the store beside the ExternalSecrets.
    store_manifest: bool = True
    refresh_interval: str = "1h"
    #: Build kustomize units with ``kubectl kustomize`` (when on PATH) to verify the invariant.
    use_kubectl: bool = True
    #: Which findings move (the rest stay, listed as skipped with the reason).
    selection: Selection = field(default_factory=Selection)
    #: "secretsync" (our CRDs) or "eso" (external-secrets.io/v1 ExternalSecrets and SecretStores)
    emit: str = "secretsync"



@dataclass
class PSecret:
    id: str
    group: str
    secret_key: str
    locator: dict[str, Any]
    fields: dict[str, str]
    value: SecretValue
    findings: list[str] = field(default_factory=list)
    provider_key: str = ""
    state: str = "unknown"
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        doc = {
            "id": self.id,
            "providerKey": self.provider_key,
            "group": self.group,
            "secretKey": self.secret_key,
            "source": self.locator,
            "findings": self.findings,
            "providerState": self.state,
        }
        if self.note:
            doc["note"] = self.note
        return doc



@dataclass
class Group:
    id: str
    owner: str
    kind: str
    owner_name: str
    namespace: str
    explicit_namespace: str | None
    name: str
    target: str
    home_file: str | None
    creation_policy: str = "Owner"
    template: dict[str, Any] | None = None
    secrets: list[str] = field(default_factory=list)
    es_file: str | None = None
    kustomization: str | None = None
    notes: list[str] = field(default_factory=list)



@dataclass
class Change:
    id: str
    file: str | None
    document: int
    resource: str
    role: str
    ops: list[dict[str, Any]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def add(self, ops: Iterable[dict[str, Any]], summary: str, group: str, role: str) -> None:
        for op in ops:
            if op in self.ops:
                if op["op"] != "remove-if-empty":
                    continue
                self.ops.remove(op)  # it must run after every removal it tidies up
            self.ops.append(op)
        if summary not in self.summary:
            self.summary.append(summary)
        if group not in self.groups:
            self.groups.append(group)
        if role == "consumer":
            self.role = "consumer"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "file": self.file, "document": self.document, "resource": self.resource,
            "role": self.role, "groups": self.groups, "summary": self.summary, "ops": self.ops,
        }



@dataclass
class Plan:
    """The plan document plus, in memory only, the values it was made from (for diffs)."""

    doc: dict[str, Any]
    digest_key: bytes
    values: dict[str, SecretValue] = field(default_factory=dict)
    diffs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.doc, indent=2, sort_keys=False) + "\n"



class Manual(SecretSyncError):
    """A finding the planner will not automate; the message is the reason shown to the user."""


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []



def generator_paths(kdir: str, gen: Mapping[str, Any]) -> list[str]:
    """The files a generator reads (envs, env, files), relative to the plan root."""
    paths = [*as_list(gen.get("envs")), *([gen["env"]] if isinstance(gen.get("env"), str) else []),
             *(str(e).rpartition("=")[2] for e in as_list(gen.get("files")))]
    return [os.path.normpath(os.path.join(kdir, str(x).strip())) for x in paths]



def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False



def same_or_inside(found: SecretValue, moved: SecretValue) -> bool:
    """Whether a value found in a copy is ``moved`` or an entry of it (a line of a moved file)."""
    if found == moved:
        return True
    return found.is_text and moved.is_text and len(found) >= 4 and found.reveal_text() in moved.reveal_text()



def live_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """An object as a reviewer wants to see it: no status, no managedFields, no server noise."""
    out = copy.deepcopy(dict(data))
    out.pop("status", None)
    md = out.get("metadata") or {}
    for k in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"):
        md.pop(k, None)
    return out



def where(obj: Obj) -> dict[str, Any]:
    """Where a locator finds the object: a file and document, or a live object by resource."""
    if obj.file is None:
        return {"resource": obj.resource}
    return {"file": obj.file, "document": obj.document}

