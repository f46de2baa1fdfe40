"""The planner's state and shared helpers: groups, provider-key entries, edits, dropping groups."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from secretsync.core.errors import InvalidConfig
from secretsync.core.registry import provider_for_url
from secretsync.core.values import SecretValue
from secretsync.kube.podspec import CONTAINER_LISTS

from .. import naming, objpath
from ..edits import render_file
from ..findings import Detection, Finding
from ..manifests import (
    KUSTOMIZATION_NAMES,
    DeployUnits,
    Inventory,
    LocateError,
    Obj,
    normalize_path,
    read_manifest,
    stabilize,
)
from ..restore import RestoreError, value_free_reverse
from . import invariant
from .model import LAST_APPLIED, Change, Group, Manual, PlanOptions, PSecret, same_or_inside


class PlannerBase:
    """The planner's state and the helpers every source kind shares."""

    def __init__(self, inv: Inventory, roots: Sequence[Path], options: PlanOptions,
                 digest_key: bytes | None = None, protected: Mapping[str, str] | None = None) -> None:
        naming.check_template(options.name_template)
        if options.store_kind not in ("SecretStore", "ClusterSecretStore"):
            raise InvalidConfig(f"--store-kind must be SecretStore or ClusterSecretStore, not {options.store_kind!r}")
        if options.emit not in ("secretsync", "eso"):
            raise InvalidConfig(f"--emit must be secretsync or eso, not {options.emit!r}")
        self.inv = inv
        self.roots = list(roots)
        self.opt = options
        self.provider = provider_for_url(options.store_url)
        #: The names the target store keeps verbatim (its own rules, not only its provider's).
        self.name_rules = naming.rules_for(self.provider, options.store_url)
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
        #: how the tree is deployed (manifest mode): a reference resolves within its unit only
        self.units = DeployUnits(inv)

    def _manual(self, f: Finding, reason: str) -> None:
        self.dispositions[f.fingerprint] = {"disposition": "manual", "reason": reason}
        self.manual.append({
            "finding": f.fingerprint, "file": f.file, "line": f.line, "resource": f.resource,
            "path": f.path, "key": f.key, "location": f.location, "reason": reason,
        })

    def _group(self, owner: str, kind: str, owner_name: str, obj_ns: str, explicit_ns: str | None,
               home_file: str | None, name: str | None = None, target: str | None = None,
               creation_policy: str = "Owner") -> Group:
        key = self._group_key(owner, home_file)
        if key in self.groups:
            return self.groups[key]
        es_name = name or self._free_name(obj_ns, naming.object_name(owner_name, suffix="-secrets"), kind, home_file)
        g = Group(f"g{len(self.groups) + 1}", owner, kind, owner_name, obj_ns, explicit_ns, es_name,
                  target or es_name, home_file, creation_policy)
        self.groups[key] = g
        return g

    @staticmethod
    def _group_key(owner: str, home_file: str | None) -> str:
        """Same-named objects in different files (alternatives, overlays) are different owners."""
        return f"{home_file or ''}|{owner}"

    def _free_name(self, ns: str, wanted: str, kind: str, home_file: str | None = None) -> str:
        """A name no Secret or ExternalSecret deployed with ``home_file`` has (other units do not count)."""
        together = self.units.share_unit if not self.cluster else (lambda a, b: True)
        taken = {g.name for g in self.groups.values() if g.namespace == ns and together(g.home_file, home_file)}
        taken |= {o.name for o in self.inv.objects if o.namespace == ns and o.kind == "Secret"
                  and together(o.file, home_file)}
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
        loc_id = self._loc_id(group, locator)
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
                fields = {**fields, "key": key, "name": fields.get("workload") or "",
                          "unit": self._unit_name(group.home_file)}
                ps = PSecret(f"s{len(self.secrets) + 1}", group.id, key, locator, fields, value)
                self.secrets.append(ps)
                group.secrets.append(ps.id)
            self._secret_by_loc[loc_id] = ps
        if finding is not None:
            if finding.fingerprint not in ps.findings:
                ps.findings.append(finding.fingerprint)
            self.dispositions[finding.fingerprint] = {"disposition": "migrate", "secret": ps.id}
        return ps

    @staticmethod
    def _loc_id(group: Group, locator: Mapping[str, Any]) -> str:
        """One provider-key entry per source location and group: a base value read by two overlays is
        stored once per overlay (their keys never collide, rotating one never rotates the other)."""
        return group.id + "|" + json.dumps(locator, sort_keys=True)

    def _change(self, obj: Obj | None, file: str | None, document: int, resource: str) -> Change:
        key = (file, document, resource)
        if key not in self.changes:
            self.changes[key] = Change(f"c{len(self.changes) + 1}", file, document, resource, "source")
        return self.changes[key]

    def _unit_name(self, rel: str | None) -> str:
        """``{unit}`` of a file: the directory of the kustomization that lists it, of its chart, or its own.

        A base shared by overlays is named by the base: its values are the same in every overlay.
        """
        if not rel or self.cluster:
            return ""
        if os.path.basename(rel) in KUSTOMIZATION_NAMES:
            return os.path.dirname(rel)
        home = self.units.home_kustomization(rel)
        if home is not None:
            return os.path.dirname(home)
        found = self.units.units_of(rel)
        return found[0].dir if len(found) == 1 else os.path.dirname(rel)

    def _check_unit(self, rel: str) -> None:
        """Manual when the deploy unit of ``rel`` cannot be decided: nothing is rewired then."""
        why = self.units.undecided(rel)
        if why:
            raise Manual(f"the deploy unit cannot be decided: {why}; nothing is rewired")

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
            raise Manual(f"{what} uses $(VAR) expansion or a $$ escape; moving it into a Secret would change "
                          "what the container sees")

    def _container_path(self, obj: Obj, segs: list[objpath.Segment]) -> tuple[str, dict[str, Any], int]:
        """(path of the container, the container, index in segs right after it)."""
        pod_path = obj.pod_spec_path()
        if pod_path is None:
            raise Manual(f"{obj.kind} {obj.name} has no pod template the migrator can rewrite")
        for i, seg in enumerate(segs):
            if isinstance(seg, objpath.Key) and seg.name in CONTAINER_LISTS and i + 1 < len(segs):
                cpath = objpath.format_path(segs[: i + 2])
                container = objpath.get(obj.data, cpath)
                if not isinstance(container, dict) or not container.get("name"):
                    break
                return cpath, container, i + 2
        raise Manual("the finding's path does not lead to a container")

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
        raise Manual(f"cannot tell which {'/'.join(sections)} key the finding is in")

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
        except (Manual, LocateError, objpath.PathError, TypeError, AttributeError, ValueError, KeyError) as exc:
            if isinstance(exc, Manual):
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
            raise Manual(reason) from None

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
            matches = [next((ps for ps in ours if same_or_inside(det.value, ps.value)), None) for det in dets]
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

    def _drop_unwritable(self) -> None:
        """Files that cannot be rewritten (invalid YAML, duplicate keys...) take their groups out of the
        plan, and with them every group sharing an edit with those: each finding becomes a manual item
        naming the file and the problem, and the rest of the plan goes on."""
        from ..rewrite import RewriteError

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

    def _check_invariant(self) -> None:
        """Refuse every group that would change what a container reads, in any deploy unit it touches.

        The groups touching a unit that changes (or cannot be verified) become manual items naming the
        unit and the first difference; the check runs again on what is left until nothing changes.
        """
        kubectl = invariant.kubectl_path() if self.opt.use_kubectl else None
        cache: dict[str, Any] = {}
        for _ in range(8):
            values = {s.provider_key: s.value for s in self.secrets}
            planned = invariant.PlannedTree([c.as_dict() for c in self.changes.values()], self.new_files,
                                            self.delete_files, values)
            problems = invariant.check(self.inv, planned, kubectl, cache)
            if not problems:
                return
            touched: dict[str, set[str]] = {}
            for c in self.changes.values():
                for gid in c.groups:
                    touched.setdefault(gid, set()).add(str(c.file))
            for nf in self.new_files:
                if nf["group"]:
                    touched.setdefault(nf["group"], set()).add(nf["file"])
            for d in self.delete_files:
                touched.setdefault(d["group"], set()).add(d["file"])
            touched.pop("store", None)
            reasons: dict[str, str] = {}
            for uid, why in problems.items():
                for gid in invariant.groups_touching(self.units, uid, touched):
                    reasons.setdefault(gid, f"not migrated: it would change what a container reads ({why}); "
                                            "move it by hand")
            if not reasons:
                return
            self._early_drops = {}
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
