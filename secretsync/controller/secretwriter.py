"""Write the target Secret of an ExternalSecret, and never take one that is not ours.

Ownership rules (the ones a user would check before trusting a controller with Secrets):

* A Secret is *managed* when it carries the managed-by label and names this ExternalSecret
  in its owner annotation. Only a managed Secret is updated or deleted.
* An existing unmanaged Secret is taken over only with ``creationPolicy: Merge`` (our keys
  are merged in, the rest kept) or an explicit ``secretsync.io/adopt: "true"`` annotation on
  the ExternalSecret or the Secret. Otherwise the ExternalSecret goes Ready=False with
  reason ``SecretNotManaged`` and the Secret is left untouched.
* A Secret managed by *another* ExternalSecret is never touched (``SecretOwnedByOther``).
* Deletes carry a uid precondition, so a Secret replaced in the meantime is not deleted.

Writes are GET + PUT with the resourceVersion (optimistic concurrency): the managed-Secret
informer keeps no data, and a write must not clobber a concurrent edit of other fields.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsync.api.models import API_VERSION, KIND_EXTERNAL_SECRET, PRIVILEGED_SECRET_TYPES, ExternalSecret
from secretsync.core.values import SecretValue

from .hashing import data_hash, decode_data
from .kubeapi import SECRETS, KubeApi, KubeError
from .settings import (
    ADOPT_ANNOTATION,
    HASH_ANNOTATION,
    MANAGED_LABEL,
    MANAGED_VALUE,
    MERGED_KEYS_ANNOTATION,
    OWNER_ANNOTATION,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ManagedSecret:
    """What the informer keeps of a managed Secret: no data, only whether the data is ours."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    owner: str | None
    hash: str | None
    #: The data (or, for a merged Secret, our keys of it) hashes to the annotation.
    matches: bool
    merged: bool


def managed_secret_transform(key: bytes) -> Callable[[dict[str, Any]], ManagedSecret | None]:
    def transform(obj: dict[str, Any]) -> ManagedSecret | None:
        md = obj.get("metadata") or {}
        ann = md.get("annotations") or {}
        merged_keys = ann.get(MERGED_KEYS_ANNOTATION)
        data = decode_data(obj.get("data"))
        if merged_keys is not None:
            keys = [k for k in merged_keys.split(",") if k]
            actual = data_hash(key, {k: data[k] for k in keys if k in data}, None) if all(
                k in data for k in keys) else None
        else:
            actual = data_hash(key, data, obj.get("type") or "Opaque")
        want = ann.get(HASH_ANNOTATION)
        return ManagedSecret(
            namespace=str(md.get("namespace") or ""), name=str(md.get("name") or ""),
            uid=str(md.get("uid") or ""), resource_version=str(md.get("resourceVersion") or ""),
            owner=ann.get(OWNER_ANNOTATION), hash=want, matches=want is not None and actual == want,
            merged=merged_keys is not None,
        )

    return transform


@dataclass
class Desired:
    """The target Secret as the ExternalSecret wants it. ``data`` holds SecretValues until the PUT."""

    data: dict[str, SecretValue]
    type: str = "Opaque"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def raw(self) -> dict[str, bytes]:
        return {k: v.reveal() for k, v in self.data.items()}

    def b64(self) -> dict[str, str]:
        return {k: v.b64() for k, v in self.data.items()}


class TargetRefused(Exception):
    """The Secret cannot be written without breaking an ownership rule. Reason is CamelCase."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class WriteResult:
    #: "unchanged", "created", "updated", "deleted", "skipped"
    outcome: str
    resource_version: str | None = None
    #: The write undid a change made outside the controller (hand edit, deletion).
    drift: bool = False


class SecretWriter:
    def __init__(self, api: KubeApi, hash_key: bytes,
                 cached: Callable[[str, str], ManagedSecret | None],
                 remember: Callable[[ManagedSecret], None] | None = None) -> None:
        self.api = api
        self.key = hash_key
        self._cached = cached
        self._remember = remember

    def hash_of(self, desired: Desired, merged: bool) -> str:
        return data_hash(self.key, desired.raw(), None if merged else desired.type)

    # -- apply -----------------------------------------------------------------------------
    def apply(self, es: ExternalSecret, desired: Desired) -> WriteResult:
        policy = es.spec.target.creation_policy
        if policy == "None":
            return WriteResult("skipped")
        ns, name = es.namespace, es.target_name
        merged = policy == "Merge"
        want = self.hash_of(desired, merged)
        rec = self._cached(ns, name)
        if rec is not None and rec.owner == es.name and rec.hash == want and rec.matches:
            return WriteResult("unchanged", rec.resource_version)
        existing: dict[str, Any] | None = None
        if rec is not None or merged:
            try:
                existing = self.api.get(SECRETS, name, ns)
            except KubeError as exc:
                if not exc.not_found:
                    raise
        if existing is None:
            if merged:
                raise TargetRefused("SecretMissing", f"Secret {ns}/{name} does not exist; creationPolicy Merge "
                                                     "only merges into an existing Secret")
            try:
                out = self.api.create(SECRETS, self._new_body(es, desired, want), ns)
                self._note(out)
                # A managed Secret we knew of is gone: recreating it repairs drift.
                return WriteResult("created", _rv(out), drift=rec is not None)
            except KubeError as exc:
                if not exc.conflict:
                    raise
                existing = self.api.get(SECRETS, name, ns)
        return self._update(es, desired, want, existing, merged)

    def _new_body(self, es: ExternalSecret, desired: Desired, want: str) -> dict[str, Any]:
        md: dict[str, Any] = {
            "name": es.target_name, "namespace": es.namespace,
            "labels": {**desired.labels, MANAGED_LABEL: MANAGED_VALUE},
            "annotations": {**desired.annotations, HASH_ANNOTATION: want, OWNER_ANNOTATION: es.name},
        }
        if es.spec.target.creation_policy == "Owner":
            md["ownerReferences"] = [self._owner_ref(es)]
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": md, "type": desired.type,
                                "data": desired.b64()}
        if es.spec.target.immutable:
            body["immutable"] = True
        return body

    @staticmethod
    def _owner_ref(es: ExternalSecret) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": KIND_EXTERNAL_SECRET, "name": es.name,
                "uid": es.meta.uid or "", "controller": True}

    def _update(self, es: ExternalSecret, desired: Desired, want: str, existing: dict[str, Any],
                merged: bool) -> WriteResult:
        ns, name = es.namespace, es.target_name
        md = existing.setdefault("metadata", {})
        labels = md.setdefault("labels", {}) or {}
        ann = md.setdefault("annotations", {}) or {}
        md["labels"], md["annotations"] = labels, ann
        owner = ann.get(OWNER_ANNOTATION)
        is_managed = labels.get(MANAGED_LABEL) == MANAGED_VALUE and owner is not None
        if is_managed and owner != es.name:
            raise TargetRefused("SecretOwnedByOther",
                                f"Secret {ns}/{name} is managed by ExternalSecret {ns}/{owner}")
        if existing.get("type") in PRIVILEGED_SECRET_TYPES:
            raise TargetRefused("SecretTypeNotAllowed",
                                f"Secret {ns}/{name} has type {existing.get('type')!r}: the controller never "
                                "writes into a Secret Kubernetes fills with cluster credentials")
        adopt = (es.meta.annotations.get(ADOPT_ANNOTATION) == "true" or ann.get(ADOPT_ANNOTATION) == "true")
        if not is_managed and not merged and not adopt:
            raise TargetRefused(
                "SecretNotManaged",
                f"Secret {ns}/{name} exists and is not managed by secretsync; set creationPolicy: Merge, or "
                f"annotate the ExternalSecret or the Secret with {ADOPT_ANNOTATION}: \"true\" to take it over")
        current = decode_data(existing.get("data"))
        if merged:
            previous = [k for k in (ann.get(MERGED_KEYS_ANNOTATION) or "").split(",") if k]
            for k in previous:
                if k not in desired.data:
                    current.pop(k, None)
            current.update(desired.raw())
            new_data = current
            ann[MERGED_KEYS_ANNOTATION] = ",".join(sorted(desired.data))
        else:
            new_data = desired.raw()
            ann.pop(MERGED_KEYS_ANNOTATION, None)
            if (existing.get("type") or "Opaque") != desired.type:
                if not is_managed:
                    raise TargetRefused("SecretTypeMismatch",
                                        f"Secret {ns}/{name} has type {existing.get('type')!r}, the template "
                                        f"wants {desired.type!r}; a Secret's type cannot change")
                # Type is immutable: replace our own Secret.
                self.api.delete(SECRETS, name, ns, uid=md.get("uid"))
                out = self.api.create(SECRETS, self._new_body(es, desired, want), ns)
                self._note(out)
                return WriteResult("updated", _rv(out))
        drift = is_managed and ann.get(HASH_ANNOTATION) == want
        if existing.get("immutable"):
            if decode_data(existing.get("data")) == new_data:
                return WriteResult("unchanged", _rv(existing))
            raise TargetRefused("SecretImmutable", f"Secret {ns}/{name} is immutable and its data differs; "
                                                   "delete it to let the controller recreate it")
        labels.update(desired.labels)
        labels[MANAGED_LABEL] = MANAGED_VALUE
        ann.update(desired.annotations)
        ann[HASH_ANNOTATION] = want
        ann[OWNER_ANNOTATION] = es.name
        ann.pop(ADOPT_ANNOTATION, None)
        if es.spec.target.creation_policy == "Owner":
            refs = [r for r in (md.get("ownerReferences") or []) if not r.get("controller")]
            md["ownerReferences"] = [*refs, self._owner_ref(es)]
        existing["data"] = {k: base64.b64encode(v).decode() for k, v in new_data.items()}
        existing.pop("stringData", None)
        md.pop("managedFields", None)
        out = self.api.replace(SECRETS, name, existing, ns)
        self._note(out)
        return WriteResult("updated", _rv(out), drift=drift)

    # -- delete ----------------------------------------------------------------------------
    def delete(self, es: ExternalSecret) -> WriteResult:
        """Delete the target Secret if (and only if) this ExternalSecret manages it."""
        ns, name = es.namespace, es.target_name
        try:
            existing = self.api.get(SECRETS, name, ns)
        except KubeError as exc:
            if exc.not_found:
                return WriteResult("unchanged")
            raise
        md = existing.get("metadata") or {}
        ann = md.get("annotations") or {}
        if (md.get("labels") or {}).get(MANAGED_LABEL) != MANAGED_VALUE or ann.get(OWNER_ANNOTATION) != es.name:
            raise TargetRefused("SecretNotManaged", f"Secret {ns}/{name} is not managed by this ExternalSecret; "
                                                    "not deleting it")
        try:
            self.api.delete(SECRETS, name, ns, uid=md.get("uid"))
        except KubeError as exc:
            if not exc.not_found:
                raise
        return WriteResult("deleted")

    def _note(self, obj: Mapping[str, Any]) -> None:
        if self._remember is not None:
            transform = managed_secret_transform(self.key)
            rec = transform(dict(obj))
            if rec is not None:
                self._remember(rec)


def _rv(obj: Mapping[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")
