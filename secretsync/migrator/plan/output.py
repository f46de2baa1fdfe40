"""What the planner emits: ExternalSecret and store manifests, new files, the plan document, diffs."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from secretsync.api import models
from secretsync.core.errors import NotFound, ProviderError
from secretsync.core.registry import get_factory
from secretsync.core.values import SecretValue

from .. import naming, objpath
from ..edits import render_file
from ..manifests import (
    Inventory,
)
from ..restore import masked_diff
from ..rewrite import dump_new
from . import eso, invariant
from .base import PlannerBase
from .document import file_digest
from .model import LAST_APPLIED, MANAGED_BY, MIGRATED_FROM, PLAN_API_VERSION, PLAN_KIND, Group, Plan, PSecret, live_view


class OutputSource(PlannerBase):
    """ExternalSecret and store manifests, new files, provider state, and the emitted document."""

    def _name_keys(self) -> None:
        used: dict[str, PSecret] = {}
        for ps in self.secrets:
            key = naming.render(self.opt.name_template, ps.fields, self.name_rules)
            base, n = key, 2
            # the same value shares a key within a unit only: rotating dev's must never rotate prod's
            while key in used and (used[key].value != ps.value
                                   or used[key].fields.get("unit") != ps.fields.get("unit")):
                key = naming.sanitize(f"{base}-{n}", self.name_rules)
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
        store_name, store_kind = self._store_ref(g.explicit_namespace or g.namespace)
        manifest = models.external_secret_manifest(
            g.name, g.explicit_namespace or g.namespace, store_name, g.target, data,
            self.opt.refresh_interval, store_kind=store_kind, creation_policy=g.creation_policy,
            deletion_policy="Retain", template=tmpl, labels=MANAGED_BY, annotations={MIGRATED_FROM: g.owner},
        )
        if not g.explicit_namespace and self.inv.base is not None:
            manifest["metadata"].pop("namespace", None)
        if g.home_file and not self.cluster and any(self.units.chain(u, g.home_file).prefixed
                                                    for u in self.units.units_of(g.home_file)):
            # kustomize's namePrefix/nameSuffix renames the ExternalSecret but not its target (nor the
            # references to it, as no Secret of that name is in the build): spell the target out so the
            # synced Secret keeps the name the workloads read
            manifest["spec"].setdefault("target", {})["name"] = g.target
        if self.opt.emit == "eso":
            return eso.external_secret(manifest)
        return manifest

    def _namespace_cluster_stores(self) -> bool:
        """Live mode, creating the store itself, asked for a SecretStore: a store made from a URL has
        no credentials of its own, and the controller refuses a namespaced store that would run on its
        identity (docs/security.md, rule 3). ``migrate --cluster`` runs as the cluster admin, whose
        stores those are: it makes one ClusterSecretStore per namespace it serves, whose ``conditions``
        admit that namespace only, i.e. what the SecretStore would have allowed and nothing more."""
        return (self.cluster and self.opt.store_manifest and self.opt.emit == "secretsync"
                and self.opt.store_kind == "SecretStore")

    def _store_ref(self, namespace: str | None) -> tuple[str, str]:
        """(name, kind) of the store the ExternalSecrets of ``namespace`` refer to."""
        if self._namespace_cluster_stores():
            return namespace_store_name(self.opt.store_name, namespace or "default"), "ClusterSecretStore"
        return self.opt.store_name, self.opt.store_kind

    def _namespace_cluster_store(self, namespace: str) -> dict[str, Any]:
        config = get_factory(self.provider).config_from_url(self.opt.store_url)
        m = models.secret_store_manifest(namespace_store_name(self.opt.store_name, namespace), None,
                                         self.provider, config)
        m["spec"]["conditions"] = [{"namespaces": [namespace]}]
        m["metadata"]["labels"] = dict(MANAGED_BY)
        models.parse_secret_store(m)
        return m

    def _store_manifest(self, namespace: str | None) -> dict[str, Any]:
        factory = get_factory(self.provider)
        config = factory.config_from_url(self.opt.store_url)
        cluster = self.opt.store_kind == "ClusterSecretStore"
        if self.opt.emit == "eso":
            return eso.store(self.opt.store_name, namespace, self.opt.store_kind, self.provider, config, MANAGED_BY)
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
        store_files: dict[str, set[str | None]] = {}
        store_kust: dict[str, str] = {}
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
                if g.kind == "HelmValues":
                    # Helm deploys its templates only; a manifest with no ``{{`` renders as written, into
                    # the release namespace (no namespace is written)
                    target_dir = os.path.join(target_dir, "templates")
                    if "{{" in text:
                        self._early_drops.setdefault(g.id, "the ExternalSecret would hold '{{', which Helm reads "
                                                     "as a template; move the value by hand")
                g.es_file = self._new_file(os.path.join(target_dir, f"{g.name}.externalsecret.yaml"), text, g.id,
                                           "ExternalSecret")
            if g.kustomization is None and g.home_file:
                # the kustomization that lists the owner's file (wherever it is) must list the new file too,
                # or kustomize never emits it
                g.kustomization = self.units.home_kustomization(g.home_file)
            if g.kustomization and g.es_file and g.kind != "Secret":
                self._add_resource(g.kustomization, os.path.relpath(g.es_file, os.path.dirname(g.kustomization)), g)
            if self.opt.store_manifest:
                store_files.setdefault(target_dir, set()).add(g.explicit_namespace)
                if g.kustomization:
                    store_kust.setdefault(target_dir, g.kustomization)
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
            if d in store_kust:
                self._add_resource(store_kust[d], os.path.relpath(rel, os.path.dirname(store_kust[d])), None)
                self._store_name_reference(store_kust[d], d)

    def _store_name_reference(self, kfile: str, d: str) -> None:
        """Teach kustomize that an ExternalSecret's ``secretStoreRef`` names the store, where a
        ``namePrefix``/``nameSuffix`` renames the store: else it renames the store and not the reference."""
        if not any(self.units.chain(u, kfile).prefixed for u in self.units.units_of(kfile)):
            return
        spec = [{"kind": ref, "fieldSpecs": [{"kind": "ExternalSecret", "path": "spec/secretStoreRef/name"}]}
                for ref in ("SecretStore", "ClusterSecretStore")]
        rel = self._new_file(os.path.join(d, f"{self.opt.store_name}.kustomizeconfig.yaml"),
                             dump_new({"nameReference": spec}), None, "KustomizeConfiguration")
        kdir = os.path.dirname(kfile)
        entry = os.path.relpath(rel, kdir)
        self._change(None, kfile, 0, f"Kustomization/{kdir or '.'}").add(
            [{"op": "insert", "path": "configurations", "value": entry}],
            f"configurations += {entry} (namePrefix renames the store and its references alike)", "store", "source")

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
            if self._namespace_cluster_stores():
                stores = [self._namespace_cluster_store(ns) for ns in namespaces]
            elif self.opt.store_kind == "ClusterSecretStore":
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
        doc = emit_cluster_doc(self, groups, findings)
        plan = Plan(doc, self.digest_key, values)
        for chg in self.changes.values():
            obj = self.inv.find(chg.resource)
            if obj is None or not chg.ops:
                continue
            after = copy.deepcopy(obj.data)
            objpath.apply_ops(after, chg.ops)
            plan.diffs[chg.resource] = masked_diff(dump_new(live_view(obj.data)), dump_new(live_view(after)),
                                                   values, chg.resource)
        for no in self.new_objects:
            name = f"{no['kind']}/{no['namespace'] or ''}/{no['name']}"
            plan.diffs[name] = masked_diff("", dump_new(no["manifest"]), values, name)
        return plan

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
                      "ref": {"name": self.opt.store_name, "kind": self.opt.store_kind},
                      "names": self.name_rules.describe()},
            "nameTemplate": self.opt.name_template,
            "paths": [self.inv.rel(p) for p in self.inv.roots] or ["."],
            "kubectl": bool(self.opt.use_kubectl and invariant.kubectl_path()),
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


def emit_cluster_doc(planner: OutputSource, groups: list[dict[str, Any]], findings: list[dict[str, Any]]
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
        "store": {"url": planner.opt.store_url, "provider": planner.provider, "ref": _cluster_store_ref(planner),
                  "names": planner.name_rules.describe()},
        "nameTemplate": planner.opt.name_template,
        "objects": objects,
        "secrets": [s.as_dict() for s in planner.secrets],
        "groups": groups,
        "newObjects": planner.new_objects,
        "changes": [c.as_dict() for c in planner.changes.values()],
        "manual": planner.manual,
        "findings": findings,
    }


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


def namespace_store_name(store_name: str, namespace: str) -> str:
    """The ClusterSecretStore ``migrate --cluster`` makes for one namespace (see
    :meth:`OutputSource._namespace_cluster_stores`)."""
    return f"{store_name}-{namespace}"


def _cluster_store_ref(planner: OutputSource) -> dict[str, Any]:
    if planner._namespace_cluster_stores():
        names = sorted({no["name"] for no in planner.new_objects if no["kind"] == "ClusterSecretStore"})
        return {"kind": "ClusterSecretStore", "names": names,
                "note": "one per namespace, its conditions admitting that namespace only"}
    return {"name": planner.opt.store_name, "kind": planner.opt.store_kind}
