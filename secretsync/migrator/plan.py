"""``migrate plan``: turn findings into provider keys, ExternalSecrets and exact edits.

Why a separate, value-free plan: a migration that moves secrets and rewrites workloads
must be reviewable before it runs, and resumable after a crash. The plan is JSON that
names every provider key, every ExternalSecret (in full), every edit (as path-addressed
operations) and every finding's fate; it never holds a value, only where each value is
(*locators*) and keyed digests of the files it was made from, so apply can refuse a tree
that changed since.

Every finding ends up either migrated (tied to a provider key) or in ``manual`` with the
reason; nothing is silently skipped.

Groups: one ExternalSecret per owner: a workload (its env literals and flags), a
ConfigMap (its secret keys, with every consumer's reference or mount switched), a Secret
(replaced by an ExternalSecret that recreates it), a kustomize secretGenerator, or a
Helm values block that has an ``existingSecret`` option.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from secretsync.api import models
from secretsync.core.errors import InvalidConfig, NotFound, ProviderError
from secretsync.core.registry import get_factory, provider_for_url
from secretsync.core.values import SecretValue

from . import naming, objpath
from .edits import render_file
from .findings import Detection, Finding
from .manifests import (
    CONTAINER_LISTS,
    Inventory,
    LocateError,
    Obj,
    normalize_path,
    parse_env_file,
    read_locator,
    read_manifest,
    safe_load,
    scalar_text,
    stabilize,
)
from .restore import RestoreError, masked_diff, value_free_reverse

PLAN_KIND = "MigrationPlan"
PLAN_API_VERSION = f"{models.GROUP}/{models.VERSION}"
MANAGED_BY = {"app.kubernetes.io/managed-by": "secretsync"}
MIGRATED_FROM = "secretsync.io/migrated-from"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Helm values siblings that name the key inside the existing Secret.
_HELM_KEY_SIBLINGS = ("existingSecretPasswordKey", "existingSecretKey", "existingSecretKeyName")
_HELM_SECRET_SIBLINGS = ("existingSecret", "existingSecretName")


@dataclass(frozen=True, slots=True)
class PlanOptions:
    store_url: str
    name_template: str = naming.DEFAULT_TEMPLATE
    store_name: str = "secretsync"
    store_kind: str = "SecretStore"
    #: Write a SecretStore/ClusterSecretStore manifest for the store beside the ExternalSecrets.
    store_manifest: bool = True
    refresh_interval: str = "1h"


def file_digest(key: bytes, data: bytes) -> str:
    """A keyed digest of file bytes (the key stays beside the plan, never inside it)."""
    return "hmac-sha256:" + hmac.new(key, data, hashlib.sha256).hexdigest()


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


class _Manual(Exception):
    """A finding the planner will not automate; the message is the reason shown to the user."""


class Planner:
    """Builds a plan for a manifest tree (``file`` set on objects) from detections."""

    def __init__(self, inv: Inventory, roots: Sequence[Path], options: PlanOptions,
                 digest_key: bytes | None = None, protected: Mapping[str, str] | None = None) -> None:
        naming.check_template(options.name_template)
        if options.store_kind not in ("SecretStore", "ClusterSecretStore"):
            raise InvalidConfig(f"--store-kind must be SecretStore or ClusterSecretStore, not {options.store_kind!r}")
        self.inv = inv
        self.roots = list(roots)
        self.opt = options
        self.provider = provider_for_url(options.store_url)
        self.digest_key = digest_key or secrets.token_bytes(32)
        self.groups: dict[str, Group] = {}
        self.secrets: list[PSecret] = []
        self.changes: dict[tuple[str | None, int, str], Change] = {}
        self.manual: list[dict[str, Any]] = []
        self.dispositions: dict[str, dict[str, Any]] = {}
        self.new_files: list[dict[str, Any]] = []
        self.delete_files: list[dict[str, Any]] = []
        self.findings: list[Finding] = []
        self._cm_moves: dict[str, dict[str, str]] = {}  # group id -> data key -> secret id
        self._secret_by_loc: dict[str, PSecret] = {}
        #: whole-object groups that could not be set up: group key -> the manual reason
        self._failed: dict[str, str] = {}
        #: findings inside kubectl's last-applied-configuration annotation, and objects whose
        #: annotation must stay (it holds a value nothing else migrates)
        self._last_applied: list[tuple[Detection, Obj]] = []
        #: groups found unsafe before the files are rendered: group id -> the manual reason
        self._early_drops: dict[str, str] = {}
        self._keep_last_applied: set[str] = set()
        self._root: Path | None = None
        #: resource -> why it must stay as it is (e.g. a store's own credentials)
        self.protected = dict(protected or {})
        #: Live objects (``--cluster``): ExternalSecrets are created through the API, Secrets merged.
        self.cluster = bool(inv.objects) and all(o.file is None for o in inv.objects)
        self.new_objects: list[dict[str, Any]] = []

    # -- entry -----------------------------------------------------------------------------
    def build(self, detections: Sequence[Detection | tuple[Detection, Path]], client: Any | None = None) -> Plan:
        """Plan every detection; a (detection, root) pair says which scanned root its file is under."""
        for item in detections:
            det, root = item if isinstance(item, tuple) else (item, None)
            self._root = root
            self.findings.append(det.finding)
            try:
                self._dispatch(det)
            except _Manual as why:
                self._manual(det.finding, str(why))
            except (LocateError, objpath.PathError) as exc:
                self._manual(det.finding, f"cannot locate the value: {exc}")
            except (TypeError, AttributeError, ValueError, KeyError) as exc:
                # a field of an unexpected type (``env: "x"``, ``containers: {}``): type only, no value
                self._manual(det.finding, f"the object is malformed around this value ({type(exc).__name__}); "
                             "fix it and plan again")
        self._finish_configmaps()
        self._finish_last_applied()
        self._name_keys()
        self._finish_groups()
        if self.cluster:
            self._drop_groups({})
        else:
            self._drop_unwritable()
        if client is not None:
            self._provider_state(client)
        return self._emit()

    def _manual(self, f: Finding, reason: str) -> None:
        self.dispositions[f.fingerprint] = {"disposition": "manual", "reason": reason}
        self.manual.append({
            "finding": f.fingerprint, "file": f.file, "line": f.line, "resource": f.resource,
            "path": f.path, "key": f.key, "location": f.location, "reason": reason,
        })

    def _dispatch(self, det: Detection) -> None:
        f = det.finding
        loc = f.location
        if loc in ("kustomize-literal", "kustomize-envfile"):
            self._kustomize(det)
            return
        if loc == "helm-values":
            self._helm(det)
            return
        if loc == "field":
            kind, _, name = f.resource.partition("/")
            raise _Manual(f"a value in a field of {kind} {name.lstrip('/')} the migrator does not rewrite (custom "
                          "resources, annotations, inline Helm values); move it to a Secret that the resource "
                          "can reference (secretRef, valuesFrom...) by hand")
        if self.cluster:
            obj = self.inv.find(f.resource)
            if obj is None:
                raise _Manual(f"object {f.resource} is gone")
            if obj.resource in self.protected:
                raise _Manual(self.protected[obj.resource])
            if loc in ("env", "arg") and obj.kind == "Pod":
                raise _Manual("a bare Pod's containers cannot be changed in place; change the manifest it was "
                              "created from and recreate it")
        else:
            rel = self.inv.resolve_file(f.file, [self._root] if self._root else self.roots)
            if rel is None:
                raise _Manual(f"file {f.file!r} is not under the planned paths")
            obj = self.inv.find(f.resource, rel, f.document)
            if obj is None:
                if f.extra.get("templated"):
                    raise _Manual("the value is in a Helm/Go template; change the template or its values by hand")
                if f.path.startswith("items["):
                    raise _Manual("the object is an item of a List; split the List into one document per "
                                  "object, then plan again")
                raise _Manual(f"object {f.resource} not found in {rel}{self.inv.why_missing(rel)}")
            if obj.file != rel and not _same_file(self.inv.path(rel), self.inv.path(obj.file or "")):
                # found by name in another file only; a symlink to that file is fine, anything else is
                # a different object (an overlay, an alternative) with its own value
                raise _Manual(f"object {f.resource} not found in {rel}{self.inv.why_missing(rel)}")
        if f.extra.get("in") == "last-applied-configuration":
            self._last_applied.append((det, obj))  # decided once every other finding is planned
            return
        if loc == "env":
            self._env(det, obj)
        elif loc == "arg":
            self._arg(det, obj)
        elif loc in ("configmap", "configmap-embedded"):
            self._configmap(det, obj)
        elif loc == "secret":
            self._secret(det, obj)
        else:
            raise _Manual(f"location kind {loc!r} is not supported")

    # -- helpers ---------------------------------------------------------------------------------
    def _group(self, owner: str, kind: str, owner_name: str, obj_ns: str, explicit_ns: str | None,
               home_file: str | None, name: str | None = None, target: str | None = None,
               creation_policy: str = "Owner") -> Group:
        key = self._group_key(owner, home_file)
        if key in self.groups:
            return self.groups[key]
        es_name = name or self._free_name(obj_ns, naming.object_name(owner_name, suffix="-secrets"), kind)
        g = Group(f"g{len(self.groups) + 1}", owner, kind, owner_name, obj_ns, explicit_ns, es_name,
                  target or es_name, home_file, creation_policy)
        self.groups[key] = g
        return g

    @staticmethod
    def _group_key(owner: str, home_file: str | None) -> str:
        """Same-named objects in different files (alternatives, overlays) are different owners."""
        return f"{home_file or ''}|{owner}"

    def _free_name(self, ns: str, wanted: str, kind: str) -> str:
        taken = {g.name for g in self.groups.values() if g.namespace == ns}
        taken |= {o.name for o in self.inv.objects if o.namespace == ns and o.kind == "Secret"}
        if wanted not in taken:
            return wanted
        alt = naming.object_name(wanted.removesuffix("-secrets"), kind, suffix="-secrets")
        n = 2
        while alt in taken:
            alt = naming.object_name(wanted.removesuffix("-secrets"), kind, str(n), suffix="-secrets")
            n += 1
        return alt

    def _secret_for(self, group: Group, secret_key: str, locator: dict[str, Any], value: SecretValue,
                    fields: dict[str, str], finding: Finding | None) -> PSecret:
        loc_id = json.dumps(locator, sort_keys=True)
        ps = self._secret_by_loc.get(loc_id)
        if ps is None:
            taken = {s.secret_key: s for s in self.secrets if s.group == group.id}
            key = secret_key
            if key in taken and taken[key].value != value:
                base = f"{fields.get('container')}.{secret_key}" if fields.get("container") else secret_key
                key, n = naming.secret_key(base), 2
                while key in taken:
                    key, n = naming.secret_key(f"{base}_{n}"), n + 1
            elif key in taken:
                ps = taken[key]
            if ps is None:
                fields = {**fields, "key": key}
                ps = PSecret(f"s{len(self.secrets) + 1}", group.id, key, locator, fields, value)
                self.secrets.append(ps)
                group.secrets.append(ps.id)
            self._secret_by_loc[loc_id] = ps
        if finding is not None:
            if finding.fingerprint not in ps.findings:
                ps.findings.append(finding.fingerprint)
            self.dispositions[finding.fingerprint] = {"disposition": "migrate", "secret": ps.id}
        return ps

    def _change(self, obj: Obj | None, file: str | None, document: int, resource: str) -> Change:
        key = (file, document, resource)
        if key not in self.changes:
            self.changes[key] = Change(f"c{len(self.changes) + 1}", file, document, resource, "source")
        return self.changes[key]

    def _base_fields(self, obj: Obj, key: str) -> dict[str, str]:
        return {
            "namespace": obj.namespace, "workload": obj.name, "kind": obj.kind.lower(), "key": key,
            "container": "", "file": os.path.splitext(obj.file or "")[0], "subkey": "",
        }

    @staticmethod
    def _check_expansion(value: SecretValue, what: str) -> None:
        """Kubernetes expands ``$(VAR)`` and turns ``$$`` into ``$`` in env values and arguments, but
        not in values read from a Secret: such a value would reach the container changed."""
        if value.is_text and ("$(" in value.reveal_text() or "$$" in value.reveal_text()):
            raise _Manual(f"{what} uses $(VAR) expansion or a $$ escape; moving it into a Secret would change "
                          "what the container sees")

    def _container_path(self, obj: Obj, segs: list[objpath.Segment]) -> tuple[str, dict[str, Any], int]:
        """(path of the container, the container, index in segs right after it)."""
        pod_path = obj.pod_spec_path()
        if pod_path is None:
            raise _Manual(f"{obj.kind} {obj.name} has no pod template the migrator can rewrite")
        for i, seg in enumerate(segs):
            if isinstance(seg, objpath.Key) and seg.name in CONTAINER_LISTS and i + 1 < len(segs):
                cpath = objpath.format_path(segs[: i + 2])
                container = objpath.get(obj.data, cpath)
                if not isinstance(container, dict) or not container.get("name"):
                    break
                return cpath, container, i + 2
        raise _Manual("the finding's path does not lead to a container")

    # -- env literal -----------------------------------------------------------------------
    def _env(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        segs = stabilize(obj.data, normalize_path(f.path))
        _, container, rest = self._container_path(obj, segs)
        tail = segs[rest:]
        if not (len(tail) == 3 and tail[0] == objpath.Key("env") and tail[2] == objpath.Key("value")):
            raise _Manual("an env finding must point at containers[].env[].value")
        entry_path = objpath.format_path(segs[: rest + 2])
        entry = objpath.get(obj.data, entry_path)
        if not isinstance(tail[1], objpath.Match):
            raise _Manual("env var names in this container are not unique")
        var = str(entry.get("name"))
        locator = {"kind": "field", **_where(obj),
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

    # -- command/args flag -------------------------------------------------------------------
    def _arg(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        segs = stabilize(obj.data, normalize_path(f.path))
        cpath, container, rest = self._container_path(obj, segs)
        tail = segs[rest:]
        if not (len(tail) == 2 and tail[0] in (objpath.Key("args"), objpath.Key("command"))
                and isinstance(tail[1], objpath.Index)):
            raise _Manual("an argument finding must point at containers[].command[] or args[]")
        arg_path = objpath.format_path(segs)
        current = scalar_text(objpath.get(obj.data, arg_path))
        if current is None:
            raise _Manual("the argument is not a string")
        value = det.value
        if not value.is_text or not value:
            raise _Manual("the flag's value is binary or empty")
        self._check_expansion(value, f"argument {f.key}")
        raw = value.reveal_text()
        # Several findings may share one argument: build on the pattern an earlier one made.
        chg = self._change(obj, obj.file, obj.document, obj.resource)
        earlier = [op for op in chg.ops if op["op"] == "set" and op["path"] == arg_path]
        pattern = earlier[0]["value"] if earlier else current
        if raw not in pattern:
            same = next((ps for ps in self.secrets if ps.locator.get("path") == arg_path and ps.value == value
                         and all(ps.locator.get(k) == v for k, v in _where(obj).items())), None)
            if same is not None:  # the same value twice in one argument: both went with the first finding
                same.findings.append(f.fingerprint)
                self.dispositions[f.fingerprint] = {"disposition": "migrate", "secret": same.id}
                return
            raise _Manual("the value is not literally inside the argument")
        env_names = {str(e.get("name")) for c in CONTAINER_LISTS for cc in (obj.pod_spec() or {}).get(c) or []
                     for e in cc.get("env") or [] if isinstance(e, dict)}
        env_names |= {str(op["value"]["name"]) for op in chg.ops if op["op"] == "insert"
                      and isinstance(op.get("value"), dict) and "name" in op["value"]}
        var = naming.env_var_for_flag(f.key or "arg")
        base, n = var, 2
        while var in env_names:
            var, n = f"{base}_{n}", n + 1
        new_pattern = pattern.replace(raw, f"$({var})")
        locator = {"kind": "field", **_where(obj), "path": arg_path,
                   "encoding": "text", "pattern": new_pattern, "var": var}
        try:
            got = read_locator(self.inv, locator)
        except LocateError:
            raise _Manual("cannot isolate the value inside the argument unambiguously") from None
        if got != value:
            raise _Manual("cannot isolate the value inside the argument unambiguously")
        # Earlier values in the same argument now need the new pattern too.
        for ps in self.secrets:
            if ps.locator.get("path") == arg_path and all(ps.locator.get(k) == v for k, v in _where(obj).items()):
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

    # -- ConfigMap key / embedded file --------------------------------------------------------
    def _data_key(self, obj: Obj, f: Finding, sections: tuple[str, ...]) -> tuple[str, str]:
        segs = stabilize(obj.data, normalize_path(f.path))
        if segs and isinstance(segs[0], objpath.Key) and segs[0].name in sections and len(segs) >= 2 and \
                isinstance(segs[1], objpath.Key):
            section, key = segs[0].name, segs[1].name
            if key in (obj.data.get(section) or {}):
                return section, key
        for section in sections:
            if f.key in (obj.data.get(section) or {}):
                return section, f.key
        raise _Manual(f"cannot tell which {'/'.join(sections)} key the finding is in")

    def _configmap(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        if obj.kind != "ConfigMap":
            raise _Manual(f"a configmap finding on a {obj.kind}")
        section, key = self._data_key(obj, f, ("data", "binaryData"))
        locator = {"kind": "field", **_where(obj),
                   "path": objpath.format_path([objpath.Key(section), objpath.Key(key)]),
                   "encoding": "base64" if section == "binaryData" else "text"}
        value = read_locator(self.inv, locator)
        group = self._group(obj.resource, "ConfigMap", obj.name, obj.namespace, obj.explicit_namespace, obj.file)
        fields = {**self._base_fields(obj, key), "subkey": f.subkey or ""}
        ps = self._secret_for(group, naming.secret_key(key), locator, value, fields, f)
        if ps.secret_key != key:
            raise _Manual(f"ConfigMap key {key!r} is not a valid Secret key")
        self._cm_moves.setdefault(group.id, {})[key] = ps.id
        what = "embedded file" if f.location == "configmap-embedded" else "key"
        self._change(obj, obj.file, obj.document, obj.resource).add(
            [{"op": "remove", "path": locator["path"]}],
            f"{what} {key} moves to Secret {group.target}", group.id, "source")

    def _finish_configmaps(self) -> None:
        for group in self.groups.values():
            if group.kind != "ConfigMap" or group.id not in self._cm_moves:
                continue
            moved = set(self._cm_moves[group.id])
            consumers = 0
            for wl in self.inv.workloads(group.namespace):
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

    # -- kubectl's last-applied-configuration -----------------------------------------------------
    def _finish_last_applied(self) -> None:
        """Copies of values inside ``kubectl.kubernetes.io/last-applied-configuration``.

        The annotation goes (file and cluster mode alike) when the object is edited anyway and
        every value found in it is one this plan moves to the provider from the same object.
        A value found only there (a stale copy: the object was edited since) would be lost with
        the annotation, so then the annotation stays and its findings are manual.
        """
        by_obj: dict[int, tuple[Obj, list[Detection]]] = {}
        for det, obj in self._last_applied:
            by_obj.setdefault(id(obj), (obj, []))[1].append(det)
        for obj, dets in by_obj.values():
            key = (None, 0, obj.resource) if self.cluster else (obj.file, obj.document, obj.resource)
            chg = self.changes.get(key)
            if chg is None or not chg.groups:
                for det in dets:
                    self._manual(det.finding, "a copy in the kubectl last-applied-configuration annotation of an "
                                 "object with nothing else to migrate; remove the annotation by hand")
                self._keep_last_applied.add(obj.resource)
                continue
            ours = [ps for ps in self.secrets if ps.group in chg.groups]
            matches = [next((ps for ps in ours if _same_or_inside(det.value, ps.value)), None) for det in dets]
            if any(m is None for m in matches):
                for det in dets:
                    self._manual(det.finding, "the kubectl last-applied-configuration annotation holds a value the "
                                 "object no longer uses (it was edited since); save that value, then remove the "
                                 "annotation by hand")
                self._keep_last_applied.add(obj.resource)
                continue
            for det, ps in zip(dets, matches, strict=True):
                assert ps is not None
                ps.findings.append(det.finding.fingerprint)
                self.dispositions[det.finding.fingerprint] = {"disposition": "migrate", "secret": ps.id}
            if not self.cluster and not any(op["op"] == "replace-document" for op in chg.ops):
                ann = ((obj.data.get("metadata") or {}).get("annotations") or {})
                if LAST_APPLIED in ann:
                    chg.add([{"op": "remove", "path": f"metadata.annotations[{json.dumps(LAST_APPLIED)}]"}],
                            "last-applied-configuration annotation removed (it holds the plaintext)",
                            chg.groups[0], chg.role)

    # -- Secret object ---------------------------------------------------------------------------
    def _secret(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        if obj.kind != "Secret":
            raise _Manual(f"a secret finding on a {obj.kind}")
        stype = str(obj.data.get("type") or "Opaque")
        if stype == "kubernetes.io/service-account-token":
            raise _Manual("service account token Secrets are filled in by Kubernetes; leave them")
        gkey = self._group_key(obj.resource, obj.file)
        if gkey in self._failed:
            raise _Manual(self._failed[gkey])
        new = gkey not in self.groups
        group = self._group(obj.resource, "Secret", obj.name, obj.namespace, obj.explicit_namespace, obj.file,
                            name=obj.name, target=obj.name,
                            creation_policy="Merge" if self.cluster else "Owner")
        if new:
            with self._all_or_nothing(gkey, group):
                self._secret_group(obj, group, stype)
        section, key = self._data_key(obj, f, ("stringData", "data"))
        enc = "base64" if section == "data" else "text"
        locator = {"kind": "field", **_where(obj),
                   "path": objpath.format_path([objpath.Key(section), objpath.Key(key)]), "encoding": enc}
        ps = self._secret_by_loc.get(json.dumps(locator, sort_keys=True))
        if ps is None:
            raise _Manual(f"key {key} of Secret {obj.name} is shadowed by stringData")
        ps.findings.append(f.fingerprint)
        self.dispositions[f.fingerprint] = {"disposition": "migrate", "secret": ps.id}

    def _secret_group(self, obj: Obj, group: Group, stype: str) -> None:
        """Every key of a Secret, and the edit that replaces it by an ExternalSecret."""
        meta = obj.data.get("metadata") or {}
        tmpl: dict[str, Any] = {}
        if stype != "Opaque":
            tmpl["type"] = stype
        md = {k: {str(a): str(b) for a, b in dict(meta[k]).items() if a != LAST_APPLIED}
              for k in ("labels", "annotations") if isinstance(meta.get(k), dict) and meta.get(k)}
        md = {k: v for k, v in md.items() if v}
        if md:
            tmpl["metadata"] = md
        group.template = tmpl or None
        if obj.data.get("immutable"):
            group.notes.append("the Secret was immutable; the synced Secret is not")
        string_data = obj.data.get("stringData") or {}
        for section, enc in (("data", "base64"), ("stringData", "text")):
            sec = obj.data.get(section)
            if sec is None:
                continue
            if not isinstance(sec, dict):
                raise _Manual(f"{section} of Secret {obj.name} is not a mapping")
            for key in sec:
                if section == "data" and isinstance(string_data, dict) and key in string_data:
                    raise _Manual(f"key {key} of Secret {obj.name} is in both data and stringData; keep one "
                                  "(the API server uses stringData) and plan again")
                locator = {"kind": "field", **_where(obj),
                           "path": objpath.format_path([objpath.Key(section), objpath.Key(str(key))]),
                           "encoding": enc}
                value = read_locator(self.inv, locator)
                self._secret_for(group, str(key), locator, value, self._base_fields(obj, str(key)), None)
        if self.cluster:
            group.template = None  # Merge keeps the live Secret's type and metadata
            self._change(obj, None, 0, obj.resource).add(
                [], f"Secret {obj.name} is kept; ExternalSecret {group.name} manages its keys from now on "
                    "(creationPolicy Merge)", group.id, "source")
        else:
            es = "\x00ES:" + group.id  # filled in by _finish_groups
            self._change(obj, obj.file, obj.document, obj.resource).add(
                [{"op": "replace-document", "path": "", "value": es}],
                f"Secret {obj.name} -> ExternalSecret {group.name} (recreates it from the provider)",
                group.id, "source")

    @contextlib.contextmanager
    def _all_or_nothing(self, gkey: str, group: Group) -> Iterator[None]:
        """Set up a whole-object group (a Secret, a secretGenerator) completely or not at all.

        Half a group would store some values and tie later findings to it while the edit that
        removes the source never comes (or delete one env file of a generator that stays).
        On failure the group and everything made for it go, and every later finding of the
        same owner gets the same manual reason.
        """
        try:
            yield
        except (_Manual, LocateError, objpath.PathError, TypeError, AttributeError, ValueError, KeyError) as exc:
            if isinstance(exc, _Manual):
                reason = str(exc)
            elif isinstance(exc, LocateError | objpath.PathError):
                reason = f"cannot locate the value: {exc}"
            else:
                reason = f"the object is malformed ({type(exc).__name__}); fix it and plan again"
            self._failed[gkey] = reason
            self.groups.pop(gkey, None)
            gone = {s.id for s in self.secrets if s.group == group.id}
            self.secrets = [s for s in self.secrets if s.id not in gone]
            self._secret_by_loc = {k: v for k, v in self._secret_by_loc.items() if v.id not in gone}
            self.delete_files = [d for d in self.delete_files if d["group"] != group.id]
            for key in [k for k, c in self.changes.items() if group.id in c.groups]:
                if self.changes[key].groups == [group.id]:
                    del self.changes[key]
            for fp, disp in list(self.dispositions.items()):
                if disp.get("secret") in gone:
                    del self.dispositions[fp]
            raise _Manual(reason) from None

    # -- kustomize ------------------------------------------------------------------------------
    def _kustomize(self, det: Detection) -> None:
        f = det.finding
        rel = self.inv.resolve_file(f.file, [self._root] if self._root else self.roots)
        if rel is None:
            raise _Manual(f"file {f.file!r} is not under the planned paths")
        section = "configMapGenerator" if f.path.startswith("configMapGenerator") else "secretGenerator"
        if section == "configMapGenerator":
            raise _Manual("a secret in a configMapGenerator: move it to a secretGenerator (or a Secret) "
                          "first, then migrate")
        k = next((x for x in self.inv.kustomizations.values() if x.file == rel), None)
        gen_name: str | None = None
        if k is not None:
            segs = stabilize(k.data, normalize_path(f.path))
            if len(segs) >= 2 and segs[0] == objpath.Key("secretGenerator") and isinstance(segs[1], objpath.Match):
                gen_name = segs[1].value
        else:
            # an env file or file: the generator(s) that read it, wherever their kustomization is
            _, _, wanted = f.resource.partition("/")
            owners = [(x, str(gen.get("name"))) for x in self.inv.kustomizations.values()
                      for gen in _as_list(x.data.get("secretGenerator"))
                      if isinstance(gen, Mapping) and rel in _generator_paths(x.dir, gen)]
            if len(owners) > 1:
                owners = [o for o in owners if wanted.endswith("/" + o[1])]
            if len(owners) == 1:
                k, gen_name = owners[0]
            elif not owners:
                raise _Manual("no kustomization in the planned paths reads this file")
        if k is None or not gen_name:
            raise _Manual("cannot tell which secretGenerator holds the value")
        self._secret_generator(k, gen_name, f)

    def _secret_generator(self, k: Any, gen_name: str, f: Finding) -> None:
        owner = f"kustomize:{k.file}:secretGenerator/{gen_name}"
        gens = [g for g in k.data.get("secretGenerator") or [] if str(g.get("name")) == gen_name]
        if len(gens) != 1:
            raise _Manual(f"secretGenerator {gen_name} is missing or defined twice")
        gen = gens[0]
        if gen.get("behavior") in ("merge", "replace"):
            raise _Manual(f"secretGenerator {gen_name} has behavior {gen['behavior']} (it patches a base "
                          "generator); migrate the base and drop the overlay by hand")
        ns = str(gen.get("namespace") or k.namespace or "default")
        gkey = self._group_key(owner, k.file)
        if gkey in self._failed:
            raise _Manual(self._failed[gkey])
        new = gkey not in self.groups
        group = self._group(owner, "SecretGenerator", gen_name, ns, gen.get("namespace"), k.file,
                            name=naming.object_name(gen_name), target=naming.object_name(gen_name))
        group.kustomization = k.file
        if new:
            with self._all_or_nothing(gkey, group):
                self._generator_group(k, gen, gen_name, ns, group)
        # tie the finding to the secret it came from
        target = self._match_generator_finding(group, f)
        if target is None:
            raise _Manual(f"cannot match the finding to an entry of secretGenerator {gen_name}")
        target.findings.append(f.fingerprint)
        self.dispositions[f.fingerprint] = {"disposition": "migrate", "secret": target.id}

    def _generator_group(self, k: Any, gen: Mapping[str, Any], gen_name: str, ns: str, group: Group) -> None:
        """Every entry of a secretGenerator, the files to remove and the kustomization edit."""
        if gen.get("type") and gen.get("type") != "Opaque":
            group.template = {"type": str(gen["type"])}
        opts = gen.get("options") or {}
        md = {x: dict(opts[x]) for x in ("labels", "annotations") if opts.get(x)}
        if md:
            group.template = {**(group.template or {}), "metadata": md}
        fields = {"namespace": ns, "workload": gen_name, "kind": "secretgenerator", "container": "",
                  "file": os.path.splitext(k.file)[0], "subkey": ""}
        gpath = f"secretGenerator[name={gen_name}]"
        for i, lit in enumerate(gen.get("literals") or []):
            key = str(lit).split("=", 1)[0]
            loc = {"kind": "literal", "file": k.file, "document": 0, "path": f"{gpath}.literals[{i}]"}
            self._secret_for(group, naming.secret_key(key), loc, read_locator(self.inv, loc),
                             {**fields, "key": key}, None)
        env_files = [str(e) for e in (gen.get("envs") or [])] + ([str(gen["env"])] if gen.get("env") else [])
        for ef in env_files:
            rel = self._generator_file(k, ef)
            try:
                text = read_manifest(self.inv.path(rel), self.inv.base)
            except LocateError as exc:
                raise _Manual(f"cannot read env file {rel}: {exc}") from None
            for key in parse_env_file(text):
                loc = {"kind": "envfile", "file": rel, "key": key}
                self._secret_for(group, naming.secret_key(key), loc, read_locator(self.inv, loc),
                                 {**fields, "key": key}, None)
            self._delete(rel, group, "env file of secretGenerator " + gen_name, gen_name)
        for entry in gen.get("files") or []:
            key, _, path = str(entry).rpartition("=")
            rel = self._generator_file(k, path)
            key = key or os.path.basename(path)
            loc = {"kind": "wholefile", "file": rel}
            self._secret_for(group, naming.secret_key(key), loc, read_locator(self.inv, loc),
                             {**fields, "key": key}, None)
            self._delete(rel, group, "file of secretGenerator " + gen_name, gen_name)
        self._change(None, k.file, 0, f"Kustomization/{k.dir or '.'}").add(
            [{"op": "remove", "path": gpath}, {"op": "remove-if-empty", "path": "secretGenerator"}],
            f"secretGenerator {gen_name} removed (ExternalSecret {group.name} creates the Secret)",
            group.id, "source")

    def _generator_file(self, k: Any, path: str) -> str:
        """A generator's file, relative to the plan root; manual unless a regular file in the
        kustomization's directory tree (kustomize's own default rule), never through a symlink."""
        rel = os.path.normpath(os.path.join(k.dir, path.strip()))
        kdir = os.path.normpath(k.dir) if k.dir else ""
        inside = rel != ".." and not rel.startswith("../") and not os.path.isabs(path.strip()) and (
            not kdir or rel == kdir or rel.startswith(kdir + "/"))
        if not inside:
            raise _Manual(f"file {path!r} of the secretGenerator is outside the kustomization's directory; "
                          "kustomize refuses it too")
        p = self.inv.path(rel)
        if p.is_symlink() or not p.is_file():
            raise _Manual(f"file {rel} of the secretGenerator is a symlink or not a regular file; move its "
                          "value by hand")
        return rel

    def _match_generator_finding(self, group: Group, f: Finding) -> PSecret | None:
        cands = [s for s in self.secrets if s.group == group.id]
        for s in cands:
            if s.fields.get("key") == f.key or s.secret_key == naming.secret_key(f.key):
                return s
        return cands[0] if len(cands) == 1 else None

    def _delete(self, rel: str, group: Group, reason: str, gen_name: str) -> None:
        """Remove a generator's file once its values are in the provider, unless another generator
        reads it too: that one would break."""
        for k in self.inv.kustomizations.values():
            for section in ("secretGenerator", "configMapGenerator"):
                gens = k.data.get(section)
                for gen in gens if isinstance(gens, list) else []:
                    if not isinstance(gen, Mapping):
                        continue
                    if (section, k.file, str(gen.get("name"))) == ("secretGenerator", group.kustomization, gen_name):
                        continue
                    if rel in _generator_paths(k.dir, gen):
                        raise _Manual(f"{rel} is also read by {section} {gen.get('name')} in {k.file}; migrate "
                                      "that one first or give each generator its own file")
        if not any(d["file"] == rel for d in self.delete_files):
            self.delete_files.append({"file": rel, "group": group.id, "reason": reason})

    # -- Helm values --------------------------------------------------------------------------
    def _helm(self, det: Detection) -> None:
        f = det.finding
        if f.subkey:
            raise _Manual("the value is inside a multi-line setting (a config file the chart renders); move it "
                          "by hand or through the chart's own secret option")
        rel = self.inv.resolve_file(f.file, [self._root] if self._root else self.roots)
        if rel is None:
            raise _Manual(f"file {f.file!r} is not under the planned paths")
        data = safe_load(self.inv.texts.get(rel) or "")
        if not isinstance(data, dict):
            raise _Manual("the values file is not a mapping")
        segs = stabilize(data, normalize_path(f.path.removeprefix(".Values.").removeprefix("Values.")))
        if not segs or not isinstance(segs[-1], objpath.Key):
            raise _Manual("the value is not a map entry; this chart needs the value moved by hand")
        parent_path, leaf = segs[:-1], segs[-1].name
        parent = objpath.get(data, parent_path) if parent_path else data
        sib = next((s for s in _HELM_SECRET_SIBLINGS if isinstance(parent, dict) and s in parent), None)
        if sib is None:
            where = objpath.format_path(parent_path) or "the top level"
            raise _Manual(f"the chart offers no existingSecret option next to {objpath.format_path(segs)} "
                          f"(looked for {', '.join(_HELM_SECRET_SIBLINGS)} in {where}); pass the value with "
                          "--set-file from a secret manager, or patch the chart")
        if parent.get(sib) not in (None, ""):
            raise _Manual(f"{objpath.format_path([*parent_path, objpath.Key(sib)])} is already set; the chart "
                          "reads the Secret named there and ignores this value")
        key_sib = next((s for s in _HELM_KEY_SIBLINGS if s in parent), None)
        chart_dir = os.path.dirname(rel)
        chart = os.path.basename(chart_dir) or "chart"
        chart_yaml = self.inv.path(os.path.join(chart_dir, "Chart.yaml"))
        if chart_yaml.is_file():
            meta = safe_load(chart_yaml.read_text(encoding="utf-8"))
            if isinstance(meta, dict) and meta.get("name"):
                chart = str(meta["name"])
        pp = objpath.format_path(parent_path)
        owner = f"helm:{rel}:{pp}"
        name = naming.object_name(chart, *[s.name for s in parent_path if isinstance(s, objpath.Key)])
        group = self._group(owner, "HelmValues", chart, "default", None, rel, name=name, target=name)
        group.notes.append("apply this ExternalSecret in the Helm release's namespace")
        locator = {"kind": "field", "file": rel, "document": 0, "path": objpath.format_path(segs),
                   "encoding": "text"}
        value = read_locator(self.inv, locator)
        secret_key = naming.secret_key(leaf)
        fields = {"namespace": "default", "workload": chart, "kind": "helm", "container": "",
                  "file": os.path.splitext(rel)[0], "subkey": pp}
        ps = self._secret_for(group, secret_key, locator, value, fields, f)
        ops: list[dict[str, Any]] = [
            {"op": "set", "path": objpath.format_path([*parent_path, objpath.Key(sib)]), "value": group.target},
            {"op": "set", "path": locator["path"], "value": ""},
        ]
        summary = f"values {objpath.format_path(segs)} -> {sib}: {group.target} (key {ps.secret_key})"
        if key_sib:
            ops.append({"op": "set", "path": objpath.format_path([*parent_path, objpath.Key(key_sib)]),
                        "value": ps.secret_key})
        else:
            group.notes.append(f"the chart is assumed to read key {ps.secret_key!r} from {sib}; check its docs")
        self._change(None, rel, 0, f"HelmValues/{rel}").add(ops, summary, group.id, "source")

    # -- naming and manifests ----------------------------------------------------------------------
    def _name_keys(self) -> None:
        used: dict[str, PSecret] = {}
        for ps in self.secrets:
            key = naming.render(self.opt.name_template, ps.fields, self.provider)
            base, n = key, 2
            while key in used and used[key].value != ps.value:
                key = naming.sanitize(f"{base}-{n}", self.provider)
                n += 1
            if key in used:
                ps.note = f"same value as {used[key].id}; shares its provider key"
            used.setdefault(key, ps)
            ps.provider_key = key

    def _es_manifest(self, g: Group) -> dict[str, Any]:
        by_id = {s.id: s for s in self.secrets}
        data = [(by_id[sid].secret_key, by_id[sid].provider_key, None) for sid in g.secrets]
        tmpl = None
        if g.template:
            md = g.template.get("metadata") or {}
            tmpl = models.TargetTemplate(
                type=g.template.get("type"),
                metadata=models.TemplateMetadata(labels=md.get("labels") or {},
                                                 annotations=md.get("annotations") or {}) if md else None,
            )
        manifest = models.external_secret_manifest(
            g.name, g.explicit_namespace or g.namespace, self.opt.store_name, g.target, data,
            self.opt.refresh_interval, store_kind=self.opt.store_kind, creation_policy=g.creation_policy,
            deletion_policy="Retain", template=tmpl, labels=MANAGED_BY, annotations={MIGRATED_FROM: g.owner},
        )
        if not g.explicit_namespace and self.inv.base is not None:
            manifest["metadata"].pop("namespace", None)
        return manifest

    def _store_manifest(self, namespace: str | None) -> dict[str, Any]:
        factory = get_factory(self.provider)
        config = factory.config_from_url(self.opt.store_url)
        cluster = self.opt.store_kind == "ClusterSecretStore"
        m = models.secret_store_manifest(self.opt.store_name, None if cluster else (namespace or "default"),
                                         self.provider, config)
        m["metadata"].setdefault("labels", dict(MANAGED_BY))
        if not cluster and not namespace:
            m["metadata"].pop("namespace", None)
        return m

    def _finish_groups(self) -> None:
        if self.cluster:
            self._finish_cluster()
            return
        from .rewrite import dump_new

        store_files: dict[str, set[str | None]] = {}
        for g in self.groups.values():
            if not g.secrets:
                continue
            manifest = self._es_manifest(g)
            text = dump_new(manifest)
            if g.kind == "Secret":
                for chg in self.changes.values():
                    for op in chg.ops:
                        if op["op"] == "replace-document" and op["value"] == "\x00ES:" + g.id:
                            op["value"] = manifest
                g.es_file = g.home_file
                target_dir = os.path.dirname(g.home_file or "")
            else:
                target_dir = os.path.dirname(g.home_file or "")
                g.es_file = self._new_file(os.path.join(target_dir, f"{g.name}.externalsecret.yaml"), text, g.id,
                                           "ExternalSecret")
            k = self.inv.kustomizations.get(target_dir)
            if g.kustomization is None and k is not None and g.home_file and self.inv.kustomization_for(g.home_file):
                g.kustomization = k.file
            if g.kustomization and g.es_file and g.kind != "Secret":
                self._add_resource(g.kustomization, os.path.basename(g.es_file), g)
            if self.opt.store_manifest:
                store_files.setdefault(target_dir, set()).add(g.explicit_namespace)
        if self.opt.store_kind == "ClusterSecretStore":
            if store_files:
                base_dir = os.path.commonpath(list(store_files)) if len(store_files) > 1 else next(iter(store_files))
                text = dump_new(self._store_manifest(None))
                self._new_file(os.path.join(base_dir, f"{self.opt.store_name}.clustersecretstore.yaml"), text,
                               None, "ClusterSecretStore")
            return
        for d, namespaces in sorted(store_files.items()):
            docs = [dump_new(self._store_manifest(ns)) for ns in sorted(namespaces, key=lambda x: x or "")]
            rel = self._new_file(os.path.join(d, f"{self.opt.store_name}.secretstore.yaml"),
                                 "---\n".join(docs), None, "SecretStore")
            k = self.inv.kustomizations.get(d)
            if k is not None and any(g.kustomization == k.file for g in self.groups.values()):
                self._add_resource(k.file, os.path.basename(rel), None)

    def _finish_cluster(self) -> None:
        """Live mode: ExternalSecrets (and stores) become objects to create; every object we
        change also loses its last-applied annotation (kubectl keeps the plaintext there)."""
        namespaces: list[str] = []
        for g in self.groups.values():
            if not g.secrets:
                continue
            self.new_objects.append({"kind": "ExternalSecret", "namespace": g.namespace, "name": g.name,
                                     "group": g.id, "manifest": self._es_manifest(g)})
            if g.namespace not in namespaces:
                namespaces.append(g.namespace)
        if self.opt.store_manifest and namespaces:
            if self.opt.store_kind == "ClusterSecretStore":
                stores = [self._store_manifest(None)]
            else:
                stores = [self._store_manifest(ns) for ns in namespaces]
            self.new_objects[:0] = [{"kind": m["kind"], "namespace": m["metadata"].get("namespace"),
                                     "name": m["metadata"]["name"], "group": None, "manifest": m} for m in stores]
        for chg in self.changes.values():
            obj = self.inv.find(chg.resource)
            ann = ((obj.data.get("metadata") or {}).get("annotations") or {}) if obj else {}
            if LAST_APPLIED in ann and chg.resource not in self._keep_last_applied:
                chg.add([{"op": "remove", "path": f"metadata.annotations[{json.dumps(LAST_APPLIED)}]"}],
                        "last-applied-configuration annotation removed (it holds the plaintext)",
                        chg.groups[0] if chg.groups else "", chg.role)

    def _emit_cluster(self, groups: list[dict[str, Any]], findings: list[dict[str, Any]],
                      values: dict[str, SecretValue]) -> Plan:
        from .rewrite import dump_new

        doc = _emit_cluster_doc(self, groups, findings)
        plan = Plan(doc, self.digest_key, values)
        for chg in self.changes.values():
            obj = self.inv.find(chg.resource)
            if obj is None or not chg.ops:
                continue
            after = copy.deepcopy(obj.data)
            objpath.apply_ops(after, chg.ops)
            plan.diffs[chg.resource] = masked_diff(dump_new(_live_view(obj.data)), dump_new(_live_view(after)),
                                                   values, chg.resource)
        for no in self.new_objects:
            name = f"{no['kind']}/{no['namespace'] or ''}/{no['name']}"
            plan.diffs[name] = masked_diff("", dump_new(no["manifest"]), values, name)
        return plan

    def _drop_unwritable(self) -> None:
        """Files that cannot be rewritten (invalid YAML, duplicate keys...) take their groups out of the
        plan, and with them every group sharing an edit with those: each finding becomes a manual item
        naming the file and the problem, and the rest of the plan goes on."""
        from .rewrite import RewriteError

        by_file: dict[str, list[Change]] = {}
        for c in self.changes.values():
            if c.file:
                by_file.setdefault(c.file, []).append(c)
        reasons: dict[str, str] = {}
        values = {s.id: s.value for s in self.secrets}
        for rel, changes in by_file.items():
            try:
                old = self.inv.texts.get(rel) or self.inv.path(rel).read_text(encoding="utf-8")
                new = render_file(old, [c.as_dict() for c in changes], rel)
                value_free_reverse(old, new, values, rel)  # what apply will journal
            except (RewriteError, RestoreError, objpath.PathError, OSError, UnicodeDecodeError) as exc:
                for c in changes:
                    for gid in c.groups:
                        reasons.setdefault(gid, f"cannot rewrite the file: {exc}")
            except Exception as exc:  # a YAML library bug must cost this file, not the plan (type only)
                for c in changes:
                    for gid in c.groups:
                        reasons.setdefault(gid, f"cannot rewrite the file: {rel}: the YAML editor failed "
                                                f"({type(exc).__name__})")
        wholefiles = {str(s.locator.get("file")) for s in self.secrets if s.locator.get("kind") == "wholefile"}
        for d in self.delete_files:
            if d["file"] in wholefiles:
                continue  # comes back whole from the provider
            try:
                value_free_reverse(read_manifest(self.inv.path(d["file"]), self.inv.base), "", values, d["file"])
            except (RestoreError, LocateError) as exc:
                reasons.setdefault(d["group"], f"cannot remove the file: {exc}")
        self._drop_groups(reasons)

    def _drop_groups(self, reasons: dict[str, str]) -> None:
        """Take groups out of the plan (and every group sharing an edit with one): their findings
        become manual items with the reason, their edits, new files and removals go."""
        reasons = {**self._early_drops, **reasons}
        if not reasons:
            return
        changed = True
        while changed:
            changed = False
            for c in self.changes.values():
                if any(g in reasons for g in c.groups):
                    for g in c.groups:
                        if g not in reasons and g != "store":
                            reasons[g] = f"not migrated: it shares an edit of {c.file} with a group that cannot be"
                            changed = True
        dropped = set(reasons)
        by_id = {g.id: g for g in self.groups.values()}
        for ps in [x for x in self.secrets if x.group in dropped]:
            for fp in ps.findings:
                f = next((x for x in self.findings if x.fingerprint == fp), None)
                if f is not None:
                    self._manual(f, reasons[ps.group])
            self.secrets.remove(ps)
        for gid in dropped:
            if gid in by_id:
                by_id[gid].secrets = []
        self.changes = {k: c for k, c in self.changes.items() if not any(g in dropped for g in c.groups)}
        self.new_files = [f for f in self.new_files if f["group"] not in dropped]
        self.delete_files = [d for d in self.delete_files if d["group"] not in dropped]
        es_dirs = {os.path.dirname(f["file"]) for f in self.new_files if f["kind"] == "ExternalSecret"}
        es_dirs |= {os.path.dirname(c.file or "") for c in self.changes.values()
                    for op in c.ops if op["op"] == "replace-document"}
        self.new_files = [f for f in self.new_files if f["kind"] == "ExternalSecret"
                          or os.path.dirname(f["file"]) in es_dirs]

    def _new_file(self, rel: str, text: str, group: str | None, kind: str) -> str:
        rel = os.path.normpath(rel)
        stem, ext = os.path.splitext(rel)
        n = 2
        while rel in self.inv.texts or self.inv.path(rel).exists() or any(x["file"] == rel for x in self.new_files):
            rel = f"{stem}-{n}{ext}"
            n += 1
        self.new_files.append({"file": rel, "kind": kind, "group": group,
                               "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text})
        return rel

    def _add_resource(self, kfile: str, entry: str, g: Group | None) -> None:
        kdir = os.path.dirname(kfile)
        chg = self._change(None, kfile, 0, f"Kustomization/{kdir or '.'}")
        chg.add([{"op": "insert", "path": "resources", "value": entry}],
                f"resources += {entry}", g.id if g else "store", "source")

    def _provider_state(self, client: Any) -> None:
        for ps in self.secrets:
            try:
                current = client.get(ps.provider_key)
            except NotFound:
                ps.state = "absent"
                continue
            except ProviderError as exc:
                ps.state = f"unknown ({exc.reason})"
                continue
            ps.state = "same-value" if current == ps.value else "different-value"

    # -- output -------------------------------------------------------------------------------
    def _emit(self) -> Plan:
        files: dict[str, str] = {}
        touched = {c.file for c in self.changes.values() if c.file}
        touched |= {str(s.locator["file"]) for s in self.secrets if s.locator.get("file")}
        touched |= {d["file"] for d in self.delete_files}
        for rel in sorted(touched):
            try:
                files[rel] = file_digest(self.digest_key, self.inv.path(rel).read_bytes())
            except OSError:
                files[rel] = "missing"
        values = {s.id: s.value for s in self.secrets}
        groups = []
        for g in self.groups.values():
            if not g.secrets:
                continue
            groups.append({
                "id": g.id, "owner": g.owner, "kind": g.kind, "namespace": g.namespace,
                "externalSecret": {"name": g.name, "namespace": g.explicit_namespace, "target": g.target,
                                   "creationPolicy": g.creation_policy, "file": g.es_file},
                "secrets": g.secrets, "notes": g.notes,
            })
        findings = []
        for f in self.findings:
            d = f.as_dict()
            d.pop("preview", None)
            d.update(self.dispositions.get(f.fingerprint, {"disposition": "manual", "reason": "not handled"}))
            findings.append(d)
        if self.cluster:
            return self._emit_cluster(groups, findings, values)
        doc: dict[str, Any] = {
            "apiVersion": PLAN_API_VERSION,
            "kind": PLAN_KIND,
            "id": "mp-" + secrets.token_hex(6),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "manifests",
            "root": str(self.inv.base),
            "store": {"url": self.opt.store_url, "provider": self.provider,
                      "ref": {"name": self.opt.store_name, "kind": self.opt.store_kind}},
            "nameTemplate": self.opt.name_template,
            "files": files,
            "secrets": [s.as_dict() for s in self.secrets],
            "groups": groups,
            "newFiles": self.new_files,
            "changes": [c.as_dict() for c in self.changes.values()],
            "deleteFiles": self.delete_files,
            "manual": self.manual,
            "findings": findings,
        }
        plan = Plan(doc, self.digest_key, values)
        plan.diffs = preview_diffs(self.inv, doc, values)
        return plan


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _generator_paths(kdir: str, gen: Mapping[str, Any]) -> list[str]:
    """The files a generator reads (envs, env, files), relative to the plan root."""
    paths = [*_as_list(gen.get("envs")), *([gen["env"]] if isinstance(gen.get("env"), str) else []),
             *(str(e).rpartition("=")[2] for e in _as_list(gen.get("files")))]
    return [os.path.normpath(os.path.join(kdir, str(x).strip())) for x in paths]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def _same_or_inside(found: SecretValue, moved: SecretValue) -> bool:
    """Whether a value found in a copy is ``moved`` or an entry of it (a line of a moved file)."""
    if found == moved:
        return True
    return found.is_text and moved.is_text and len(found) >= 4 and found.reveal_text() in moved.reveal_text()


def _live_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """An object as a reviewer wants to see it: no status, no managedFields, no server noise."""
    out = copy.deepcopy(dict(data))
    out.pop("status", None)
    md = out.get("metadata") or {}
    for k in ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"):
        md.pop(k, None)
    return out


def _where(obj: Obj) -> dict[str, Any]:
    """Where a locator finds the object: a file and document, or a live object by resource."""
    if obj.file is None:
        return {"resource": obj.resource}
    return {"file": obj.file, "document": obj.document}


def _emit_cluster_doc(planner: Planner, groups: list[dict[str, Any]], findings: list[dict[str, Any]]
                      ) -> dict[str, Any]:
    objects = {}
    for chg in planner.changes.values():
        obj = planner.inv.find(chg.resource)
        if obj is None:
            continue
        md = obj.data.get("metadata") or {}
        objects[chg.resource] = {"apiVersion": obj.data.get("apiVersion"), "kind": obj.kind,
                                 "uid": md.get("uid"), "resourceVersion": md.get("resourceVersion")}
    return {
        "apiVersion": PLAN_API_VERSION,
        "kind": PLAN_KIND,
        "id": "mp-" + secrets.token_hex(6),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "cluster",
        "store": {"url": planner.opt.store_url, "provider": planner.provider,
                  "ref": {"name": planner.opt.store_name, "kind": planner.opt.store_kind}},
        "nameTemplate": planner.opt.name_template,
        "objects": objects,
        "secrets": [s.as_dict() for s in planner.secrets],
        "groups": groups,
        "newObjects": planner.new_objects,
        "changes": [c.as_dict() for c in planner.changes.values()],
        "manual": planner.manual,
        "findings": findings,
    }


class MalformedConsumer(ValueError):
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


def preview_diffs(inv: Inventory, doc: Mapping[str, Any], values: Mapping[str, SecretValue]) -> dict[str, str]:
    """Masked unified diffs of every file the plan edits, creates or deletes."""
    out: dict[str, str] = {}
    by_file: dict[str, list[dict[str, Any]]] = {}
    for c in doc["changes"]:
        if c["file"]:
            by_file.setdefault(c["file"], []).append(c)
    for rel, changes in sorted(by_file.items()):
        old = inv.texts.get(rel) or inv.path(rel).read_text(encoding="utf-8")
        new = render_file(old, changes, rel)
        out[rel] = masked_diff(old, new, values, rel)
    for nf in doc["newFiles"]:
        out[nf["file"]] = masked_diff("", nf["text"], values, nf["file"])
    for d in doc["deleteFiles"]:
        try:
            old = inv.path(d["file"]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            old = "<binary>\n"
        out[d["file"]] = masked_diff(old, "", values, d["file"])
    return out


def load_plan(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidConfig(f"cannot read plan {path}: {type(exc).__name__}") from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND:
        raise InvalidConfig(f"{path} is not a secretsync migration plan")
    where = _malformed_field(doc)
    if where:
        raise InvalidConfig(f"{path}: field {where} is missing or malformed (was the plan edited by hand?); "
                            "run 'migrate plan' again")
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
