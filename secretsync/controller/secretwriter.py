"""Write the target Secret of an ExternalSecret, and never take one that is not ours.

Ownership rules (the ones a user would check before trusting a controller with Secrets):

* A Secret is *managed* when it carries the managed-by label and names this ExternalSecret
  in its owner annotation. Only a managed Secret is updated or deleted.
* An existing unmanaged Secret is taken over only with an explicit ``secretsync.io/adopt:
  "true"`` annotation on the ExternalSecret or the Secret. Otherwise the ExternalSecret goes
  Ready=False with reason ``SecretNotManaged`` and the Secret is left untouched.
* ``creationPolicy: Merge`` never takes a Secret over: several ExternalSecrets may merge
  into one Secret, each owning the keys (and template labels/annotations) listed in its own
  ``merge.secretsync.io/<name>`` annotation; a key owned by another ExternalSecret is refused
  (``KeyOwnedByOther``), the managed-by label (Helm's) is never touched, and
  :meth:`SecretWriter.release_merge` gives the keys back when the ExternalSecret goes.
* A Secret managed by *another* ExternalSecret is never touched (``SecretOwnedByOther``).
* Deletes carry a uid precondition, so a Secret replaced in the meantime is not deleted.

What is compared: everything the controller owns (data, type, template labels and
annotations, the ownerReference, immutability) is folded into one keyed hash
(:func:`~.hashing.state_hash`) kept in an annotation, so a spec change that leaves the data
alone is still written, and a hand edit of any of it is drift.

Writes are GET + PUT with the resourceVersion (optimistic concurrency): the managed-Secret
informer keeps no data, and a write must not clobber a concurrent edit of other fields.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsync.api.fields import shared
from secretsync.api.models import API_VERSION, KIND_EXTERNAL_SECRET, PRIVILEGED_SECRET_TYPES, ExternalSecret
from secretsync.core.errors import PermanentError
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi, KubeError
from secretsync.kube.labels import (
    ADOPT_ANNOTATION,
    HASH_ANNOTATION,
    MANAGED_LABEL,
    MANAGED_VALUE,
    MERGE_ANNOTATION_PREFIX,
    MERGED_KEYS_ANNOTATION,
    OWNED_METADATA_ANNOTATION,
    OWNER_ANNOTATION,
    merge_annotation,
)

from .hashing import STATE_VERSION, data_hash, decode_data, state_hash

log = logging.getLogger(__name__)

#: The annotations that make a Secret managed (dropped when it is released).
_BOOKKEEPING = (OWNER_ANNOTATION, HASH_ANNOTATION, OWNED_METADATA_ANNOTATION, MERGED_KEYS_ANNOTATION)
#: Secret fields the API server sets; dropped before re-creating a Secret from a copy.
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "selfLink", "generation")


@dataclass(frozen=True, slots=True)
class ManagedSecret:
    """What the informer keeps of a managed Secret: no data, only whether the data is ours."""

    namespace: str
    name: str
    uid: str
    resource_version: str
    owner: str | None
    hash: str | None
    #: Everything we own (data, type, owned metadata, owner reference, immutability) hashes
    #: to the annotation.
    matches: bool
    merged: bool


def _owned_lists(raw: str | None) -> tuple[list[str], list[str]]:
    """(labels, annotations) listed in an owned-metadata annotation (bad JSON: nothing)."""
    try:
        doc = json.loads(raw or "{}")
    except ValueError:
        return [], []
    if not isinstance(doc, dict):
        return [], []
    return ([str(k) for k in doc.get("labels") or [] if isinstance(k, str)],
            [str(k) for k in doc.get("annotations") or [] if isinstance(k, str)])


def _owned_meta(labels: Mapping[str, str | None], annotations: Mapping[str, str | None], owner_uid: str,
                immutable: bool) -> dict[str, str]:
    """The metadata part of the state hash, the same whether built from a spec or read from a Secret."""
    meta = {f"l:{k}": "\x00absent" if v is None else v for k, v in labels.items()}
    meta.update({f"a:{k}": "\x00absent" if v is None else v for k, v in annotations.items()})
    meta["owner"] = owner_uid
    meta["immutable"] = "1" if immutable else "0"
    return meta


def _controller_es_uid(md: Mapping[str, Any]) -> str:
    for ref in md.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == KIND_EXTERNAL_SECRET:
            return str(ref.get("uid") or "")
    return ""


def managed_secret_transform(key: bytes) -> Callable[[dict[str, Any]], ManagedSecret | None]:
    def transform(obj: dict[str, Any]) -> ManagedSecret | None:
        md = obj.get("metadata") or {}
        ann = md.get("annotations") or {}
        labels = md.get("labels") or {}
        merged_keys = ann.get(MERGED_KEYS_ANNOTATION)
        data = decode_data(obj.get("data"))
        want = ann.get(HASH_ANNOTATION)
        if want is not None and want.startswith(STATE_VERSION + ":"):
            own_l, own_a = _owned_lists(ann.get(OWNED_METADATA_ANNOTATION))
            meta = _owned_meta({k: labels.get(k) for k in own_l}, {k: ann.get(k) for k in own_a},
                               _controller_es_uid(md), bool(obj.get("immutable")))
            actual: str | None = state_hash(key, data, obj.get("type") or "Opaque", meta)
        elif merged_keys is not None:  # legacy merged Secret: only our keys were hashed
            keys = [k for k in merged_keys.split(",") if k]
            actual = data_hash(key, {k: data[k] for k in keys if k in data}, None) if all(
                k in data for k in keys) else None
        else:  # legacy data-only hash: matches, so an upgrade is a rewrite, not "drift"
            actual = data_hash(key, data, obj.get("type") or "Opaque")
        return ManagedSecret(
            namespace=shared(str(md.get("namespace") or "")), name=shared(str(md.get("name") or "")),
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


class TargetRefused(PermanentError):
    """The Secret cannot be written without breaking an ownership rule. Reason is CamelCase."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class WriteResult:
    #: "unchanged", "created", "updated", "deleted", "released", "skipped"
    outcome: str
    resource_version: str | None = None
    #: The write undid a change made outside the controller (hand edit, deletion).
    drift: bool = False


def _is_ours(ref: Mapping[str, Any], es: ExternalSecret) -> bool:
    return ref.get("kind") == KIND_EXTERNAL_SECRET and (
        (es.meta.uid and ref.get("uid") == es.meta.uid) or ref.get("name") == es.name)


class SecretWriter:
    def __init__(self, api: KubeApi, hash_key: bytes,
                 cached: Callable[[str, str], ManagedSecret | None],
                 remember: Callable[[ManagedSecret], None] | None = None) -> None:
        self.api = api
        self.key = hash_key
        self._cached = cached
        self._remember = remember

    def hash_of(self, es: ExternalSecret, desired: Desired) -> str:
        owner = (es.meta.uid or "") if es.spec.target.creation_policy == "Owner" else ""
        meta = _owned_meta(dict(self._labels(desired)), dict(desired.annotations), owner, es.spec.target.immutable)
        return state_hash(self.key, desired.raw(), desired.type, meta)

    @staticmethod
    def _labels(desired: Desired) -> Mapping[str, str]:
        """Template labels; the managed-by label is the controller's own (never a template's), in
        any letter case (the controller's other keys are refused at parse: reserved_metadata_key)."""
        return {k: v for k, v in desired.labels.items() if k.lower() != MANAGED_LABEL}

    def in_sync(self, es: ExternalSecret) -> bool:
        """The target Secret exists as this ExternalSecret last wrote it (informer's view).
        Merged Secrets are not watched: they count as in sync (their next sync compares them)."""
        if es.spec.target.creation_policy in ("None", "Merge"):
            return True
        rec = self._cached(es.namespace, es.target_name)
        return rec is not None and rec.owner == es.name and rec.matches

    # -- apply -----------------------------------------------------------------------------
    def apply(self, es: ExternalSecret, desired: Desired) -> WriteResult:
        policy = es.spec.target.creation_policy
        if policy == "None":
            return WriteResult("skipped")
        if policy == "Merge":
            return self._merge(es, desired)
        ns, name = es.namespace, es.target_name
        want = self.hash_of(es, desired)
        rec = self._cached(ns, name)
        if rec is not None and rec.owner == es.name and rec.hash == want and rec.matches:
            return WriteResult("unchanged", rec.resource_version)
        existing = self._get(name, ns) if rec is not None else None
        if existing is None:
            try:
                out = self.api.create(SECRETS, self._new_body(es, desired, want), ns)
                self._note(out)
                # A managed Secret we knew of is gone: recreating it repairs drift.
                return WriteResult("created", _rv(out), drift=rec is not None)
            except KubeError as exc:
                if not exc.conflict:
                    raise
                existing = self.api.get(SECRETS, name, ns)
        return self._update(es, desired, want, existing)

    def _new_body(self, es: ExternalSecret, desired: Desired, want: str) -> dict[str, Any]:
        labels = self._labels(desired)
        md: dict[str, Any] = {
            "name": es.target_name, "namespace": es.namespace,
            "labels": {**labels, MANAGED_LABEL: MANAGED_VALUE},
            "annotations": {**desired.annotations, HASH_ANNOTATION: want, OWNER_ANNOTATION: es.name,
                            OWNED_METADATA_ANNOTATION: self._owned_json(labels, desired.annotations)},
        }
        if es.spec.target.creation_policy == "Owner":
            md["ownerReferences"] = [self._owner_ref(es)]
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": md, "type": desired.type,
                                "data": desired.b64()}
        if es.spec.target.immutable:
            body["immutable"] = True
        return body

    @staticmethod
    def _owned_json(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
        return json.dumps({"labels": sorted(labels), "annotations": sorted(annotations)}, separators=(",", ":"))

    @staticmethod
    def _owner_ref(es: ExternalSecret) -> dict[str, Any]:
        return {"apiVersion": API_VERSION, "kind": KIND_EXTERNAL_SECRET, "name": es.name,
                "uid": es.meta.uid or "", "controller": True}

    def _update(self, es: ExternalSecret, desired: Desired, want: str, existing: dict[str, Any]) -> WriteResult:
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
        _refuse_privileged(existing, ns, name)
        adopt = (es.meta.annotations.get(ADOPT_ANNOTATION) == "true" or ann.get(ADOPT_ANNOTATION) == "true")
        if not is_managed and not adopt:
            raise TargetRefused(
                "SecretNotManaged",
                f"Secret {ns}/{name} exists and is not managed by secretsync; set creationPolicy: Merge to merge "
                f"keys into it, or annotate the ExternalSecret or the Secret with {ADOPT_ANNOTATION}: \"true\" to "
                "take it over")
        new_data = desired.raw()
        current = decode_data(existing.get("data"))
        if (existing.get("type") or "Opaque") != desired.type:
            if not is_managed:
                raise TargetRefused("SecretTypeMismatch",
                                    f"Secret {ns}/{name} has type {existing.get('type')!r}, the template "
                                    f"wants {desired.type!r}; a Secret's type cannot change")
            return self._replace(es, desired, want, existing)
        if existing.get("immutable"):
            if current != new_data:
                raise TargetRefused("SecretImmutable", f"Secret {ns}/{name} is immutable and its data differs; "
                                                       "delete it to let the controller recreate it")
            if not es.spec.target.immutable and is_managed:
                return self._replace(es, desired, want, existing)  # immutability cannot be switched off
        drift = is_managed and ann.get(HASH_ANNOTATION) == want
        labels_wanted = self._labels(desired)
        old_l, old_a = _owned_lists(ann.get(OWNED_METADATA_ANNOTATION))
        for k in old_l:
            if k not in labels_wanted and k != MANAGED_LABEL:
                labels.pop(k, None)
        for k in old_a:
            if k not in desired.annotations:
                ann.pop(k, None)
        labels.update(labels_wanted)
        labels[MANAGED_LABEL] = MANAGED_VALUE
        ann.update(desired.annotations)
        ann[HASH_ANNOTATION] = want
        ann[OWNER_ANNOTATION] = es.name
        ann[OWNED_METADATA_ANNOTATION] = self._owned_json(labels_wanted, desired.annotations)
        ann.pop(ADOPT_ANNOTATION, None)
        ann.pop(MERGED_KEYS_ANNOTATION, None)
        refs = [r for r in (md.get("ownerReferences") or []) if not _is_ours(r, es)]
        if es.spec.target.creation_policy == "Owner":
            refs = [*(r for r in refs if not r.get("controller")), self._owner_ref(es)]
        if es.spec.target.immutable:
            existing["immutable"] = True
        out = self._put(existing, labels, ann, refs, new_data)
        self._note(out)
        return WriteResult("updated", _rv(out), drift=drift)

    def _replace(self, es: ExternalSecret, desired: Desired, want: str, existing: dict[str, Any]) -> WriteResult:
        """Type and immutability cannot change in place: delete our Secret and create the new one
        at once. The new Secret is validated first (a server-side dry-run create: AlreadyExists
        means it passed validation), so a type the API server refuses never deletes the old
        one; should the real create still fail, the old Secret is put back before the error
        propagates."""
        ns, name = es.namespace, es.target_name
        body = self._new_body(es, desired, want)
        try:
            self.api.request("POST", SECRETS.path(ns), query={"dryRun": "All"}, body=body)
        except KubeError as exc:
            if not exc.conflict:
                raise
        old = copy.deepcopy(existing)
        omd = old.setdefault("metadata", {})
        for f in _SERVER_FIELDS:
            omd.pop(f, None)
        self.api.delete(SECRETS, name, ns, uid=(existing.get("metadata") or {}).get("uid"))
        try:
            out = self.api.create(SECRETS, body, ns)
        except KubeError:
            try:
                self._note(self.api.create(SECRETS, old, ns))
            except KubeError as exc:
                log.warning("Secret %s/%s: could not restore the previous Secret: %s", ns, name, exc)
            raise
        self._note(out)
        return WriteResult("updated", _rv(out))

    # -- merge -----------------------------------------------------------------------------
    def _merge(self, es: ExternalSecret, desired: Desired) -> WriteResult:
        ns, name = es.namespace, es.target_name
        existing = self._get(name, ns)
        if existing is None:
            raise TargetRefused("SecretMissing", f"Secret {ns}/{name} does not exist; creationPolicy Merge "
                                                 "only merges into an existing Secret")
        _refuse_privileged(existing, ns, name)  # before any ownership bookkeeping: never merged into
        md = existing.setdefault("metadata", {})
        labels = dict(md.get("labels") or {})
        ann = dict(md.get("annotations") or {})
        refs = list(md.get("ownerReferences") or [])
        before = (copy.deepcopy(labels), copy.deepcopy(ann), copy.deepcopy(refs))
        mine = merge_annotation(es.name)
        prev_keys, prev_l, prev_a = self._merge_entry(ann.get(mine))
        owner = ann.get(OWNER_ANNOTATION)
        if labels.get(MANAGED_LABEL) == MANAGED_VALUE and owner is not None:
            if owner != es.name:
                raise TargetRefused("SecretOwnedByOther",
                                    f"Secret {ns}/{name} is managed by ExternalSecret {ns}/{owner}; "
                                    "creationPolicy Merge does not merge into it")
            # Written by this ExternalSecret before (whole, or in the old merged format): hand
            # the Secret back and keep owning only the keys.
            legacy = ann.get(MERGED_KEYS_ANNOTATION)
            prev_keys |= set((legacy or "").split(",")) - {""} if legacy is not None else set(
                decode_data(existing.get("data")))
            prev_l |= set(_owned_lists(ann.get(OWNED_METADATA_ANNOTATION))[0])
            prev_a |= set(_owned_lists(ann.get(OWNED_METADATA_ANNOTATION))[1])
            labels.pop(MANAGED_LABEL, None)
            for k in _BOOKKEEPING:
                ann.pop(k, None)
            refs = [r for r in refs if not _is_ours(r, es)]
        others: dict[str, str] = {}
        for akey, raw in ann.items():
            if akey.startswith(MERGE_ANNOTATION_PREFIX) and akey != mine:
                for k in self._merge_entry(raw)[0]:
                    others[k] = akey[len(MERGE_ANNOTATION_PREFIX):]
        clash = sorted(k for k in desired.data if k in others)
        if clash:
            raise TargetRefused("KeyOwnedByOther",
                                f"Secret {ns}/{name}: key(s) {', '.join(repr(k) for k in clash[:5])} are merged by "
                                f"ExternalSecret {ns}/{others[clash[0]]}; two ExternalSecrets cannot own one key")
        current = decode_data(existing.get("data"))
        new_data = dict(current)
        for k in prev_keys - set(desired.data):
            if k not in others:
                new_data.pop(k, None)
        new_data.update(desired.raw())
        want_l = self._labels(desired)  # the managed-by label (Helm's) is never ours to set
        for k in prev_l - set(want_l):
            labels.pop(k, None)
        for k in prev_a - set(desired.annotations):
            ann.pop(k, None)
        labels.update(want_l)
        ann.update(desired.annotations)
        ann[mine] = json.dumps({"keys": sorted(desired.data), "labels": sorted(want_l),
                                "annotations": sorted(desired.annotations)}, separators=(",", ":"))
        if new_data == current and (labels, ann, refs) == before:
            return WriteResult("unchanged", _rv(existing))
        if existing.get("immutable") and new_data != current:
            raise TargetRefused("SecretImmutable", f"Secret {ns}/{name} is immutable and its data differs")
        return WriteResult("updated", _rv(self._put(existing, labels, ann, refs, new_data)))

    @staticmethod
    def _merge_entry(raw: str | None) -> tuple[set[str], set[str], set[str]]:
        """(keys, labels, annotations) of one ``merge.secretsync.io/<name>`` annotation."""
        try:
            doc = json.loads(raw or "{}")
        except ValueError:
            return set(), set(), set()
        if not isinstance(doc, dict):
            return set(), set(), set()

        def strs(field_: str) -> set[str]:
            return {str(x) for x in doc.get(field_) or [] if isinstance(x, str)}

        return strs("keys"), strs("labels"), strs("annotations")

    def release_merge(self, namespace: str, name: str, es_name: str) -> WriteResult:
        """An ExternalSecret that merged into ``namespace/name`` is gone (or now writes elsewhere):
        remove the keys, labels and annotations it owned, and its entry. Other owners' keys stay."""
        existing = self._get(name, namespace)
        if existing is None:
            return WriteResult("unchanged")
        md = existing.setdefault("metadata", {})
        ann = dict(md.get("annotations") or {})
        mine = merge_annotation(es_name)
        if mine not in ann:
            return WriteResult("unchanged", _rv(existing))
        keys, own_l, own_a = self._merge_entry(ann.pop(mine))
        labels = dict(md.get("labels") or {})
        for k in own_l:
            labels.pop(k, None)
        for k in own_a:
            ann.pop(k, None)
        data = decode_data(existing.get("data"))
        for k in keys:
            data.pop(k, None)
        return WriteResult("released", _rv(self._put(existing, labels, ann, None, data)))

    # -- a Secret this ExternalSecret no longer targets ---------------------------------------
    def retire(self, es: ExternalSecret, name: str) -> WriteResult:
        """``target.name`` changed: the Secret written under the old name is deleted (Owner) or
        released (Orphan: our label, annotations and ownerReference removed, data kept). A
        Secret that is not managed by this ExternalSecret is left alone."""
        ns = es.namespace
        if es.spec.target.creation_policy == "Merge":
            return self.release_merge(ns, name, es.name)
        existing = self._get(name, ns)
        if existing is None:
            return WriteResult("unchanged")
        md = existing.setdefault("metadata", {})
        labels = dict(md.get("labels") or {})
        ann = dict(md.get("annotations") or {})
        if labels.get(MANAGED_LABEL) != MANAGED_VALUE or ann.get(OWNER_ANNOTATION) != es.name:
            return WriteResult("unchanged")
        if es.spec.target.creation_policy == "Owner":
            return self._delete(existing)
        labels.pop(MANAGED_LABEL, None)
        for k in _BOOKKEEPING:
            ann.pop(k, None)
        refs = [r for r in (md.get("ownerReferences") or []) if not _is_ours(r, es)]
        return WriteResult("released", _rv(self._put(existing, labels, ann, refs)))

    # -- delete ----------------------------------------------------------------------------
    def delete(self, es: ExternalSecret) -> WriteResult:
        """Delete the target Secret if (and only if) this ExternalSecret manages it."""
        ns, name = es.namespace, es.target_name
        existing = self._get(name, ns)
        if existing is None:
            return WriteResult("unchanged")
        md = existing.get("metadata") or {}
        ann = md.get("annotations") or {}
        if (md.get("labels") or {}).get(MANAGED_LABEL) != MANAGED_VALUE or ann.get(OWNER_ANNOTATION) != es.name:
            raise TargetRefused("SecretNotManaged", f"Secret {ns}/{name} is not managed by this ExternalSecret; "
                                                    "not deleting it")
        return self._delete(existing)

    def _delete(self, existing: Mapping[str, Any]) -> WriteResult:
        """Delete this very Secret (uid precondition: never one re-created meanwhile)."""
        md = existing.get("metadata") or {}
        try:
            self.api.delete(SECRETS, str(md.get("name")), md.get("namespace"), uid=md.get("uid"))
        except KubeError as exc:
            if not exc.not_found:
                raise
        return WriteResult("deleted")

    def _get(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The Secret, or None when it does not exist."""
        try:
            return self.api.get(SECRETS, name, namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def _put(self, existing: dict[str, Any], labels: dict[str, str], ann: dict[str, str],
             refs: list[dict[str, Any]] | None, data: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        """PUT ``existing`` (with its resourceVersion) carrying this metadata (and data)."""
        md = existing.setdefault("metadata", {})
        md["labels"], md["annotations"] = labels, ann
        if refs is not None:
            if refs:
                md["ownerReferences"] = refs
            else:
                md.pop("ownerReferences", None)
        md.pop("managedFields", None)
        if data is not None:
            existing["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}
            existing.pop("stringData", None)
        return self.api.replace(SECRETS, str(md.get("name")), existing, md.get("namespace"))

    def _note(self, obj: Mapping[str, Any]) -> None:
        if self._remember is not None:
            transform = managed_secret_transform(self.key)
            rec = transform(dict(obj))
            if rec is not None:
                self._remember(rec)


def _refuse_privileged(existing: Mapping[str, Any], ns: str, name: str) -> None:
    """Never write into (update, adopt or merge into) a Secret Kubernetes fills with cluster
    credentials. Shared by every write path into an existing Secret; the message names only
    the Secret and its type, never its data."""
    kind = existing.get("type")
    if isinstance(kind, str) and kind.strip().lower() in PRIVILEGED_SECRET_TYPES:
        raise TargetRefused("SecretTypeNotAllowed",
                            f"Secret {ns}/{name} has type {kind!r}: the controller never writes into a "
                            "Secret Kubernetes fills with cluster credentials")


def _rv(obj: Mapping[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")
