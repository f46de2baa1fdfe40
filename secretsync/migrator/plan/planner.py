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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import objpath
from ..findings import Detection
from ..manifests import (
    KUSTOMIZATION_NAMES,
    LocateError,
)
from .configmap import ConfigMapSource
from .helm import HelmSource
from .kustomize import KustomizeSource
from .model import Manual, Plan, same_file
from .overlay import OverlayEnvSource
from .secret import SecretSource
from .workload import WorkloadSource


class Planner(WorkloadSource, ConfigMapSource, SecretSource, KustomizeSource, HelmSource, OverlayEnvSource):
    """Builds a plan for a manifest tree (``file`` set on objects) from detections: dispatch only."""

    def build(self, detections: Sequence[Detection | tuple[Detection, Path]], client: Any | None = None) -> Plan:
        """Plan every detection; a (detection, root) pair says which scanned root its file is under."""
        for item in detections:
            det, root = item if isinstance(item, tuple) else (item, None)
            self._root = root
            self.findings.append(det.finding)
            skipped = self.opt.selection.why_skipped(det.finding)
            if skipped:
                self.dispositions[det.finding.fingerprint] = {"disposition": "skipped", "reason": skipped}
                continue
            try:
                self._dispatch(det)
            except Manual as why:
                self._manual(det.finding, str(why))
            except (LocateError, objpath.PathError) as exc:
                self._manual(det.finding, f"cannot locate the value: {exc}")
            except (TypeError, AttributeError, ValueError, KeyError) as exc:
                # a field of an unexpected type (``env: "x"``, ``containers: {}``): type only, no value
                self._manual(det.finding, f"the object is malformed around this value ({type(exc).__name__}); "
                             "fix it and plan again")
        self._finish_configmaps()
        self._finish_overlays()
        self._finish_last_applied()
        self._name_keys()
        self._finish_groups()
        if self.cluster:
            self._drop_groups({})
        else:
            self._drop_unwritable()
            self._check_invariant()
        if client is not None:
            self._provider_state(client)
        return self._emit()

    def _dispatch(self, det: Detection) -> None:
        f = det.finding
        loc = f.location
        if loc in ("kustomize-literal", "kustomize-envfile"):
            self._kustomize(det)
            return
        if loc == "helm-values":
            self._helm(det)
            return
        if f.path.startswith(("patches[", "patchesStrategicMerge[", "patchesJson6902[")) and \
                os.path.basename(f.file or "") in KUSTOMIZATION_NAMES:
            raise Manual(f"the value is inside an inline patch ({f.path.split('::')[0]}) of {f.file}, which kustomize "
                          "reads as a string; move that patch into its own file (a strategic-merge patch the migrator "
                          "edits per overlay), or move the value by hand")
        if f.path.startswith("json6902["):
            raise Manual(f"the value is set by a JSON 6902 patch ({f.file}); the migrator edits strategic-merge "
                          "patches: rewrite this one as a strategic-merge patch, or move the value by hand")
        if loc == "field":
            kind, _, name = f.resource.partition("/")
            raise Manual(f"a value in a field of {kind} {name.lstrip('/')} the migrator does not rewrite (custom "
                          "resources, annotations, inline Helm values); move it to a Secret that the resource "
                          "can reference (secretRef, valuesFrom...) by hand")
        if self.cluster:
            obj = self.inv.find(f.resource)
            if obj is None:
                raise Manual(f"object {f.resource} is gone")
            if obj.resource in self.protected:
                raise Manual(self.protected[obj.resource])
            if loc in ("env", "arg") and obj.kind == "Pod":
                raise Manual("a bare Pod's containers cannot be changed in place; change the manifest it was "
                              "created from and recreate it")
        else:
            rel = self.inv.resolve_file(f.file, [self._root] if self._root else self.roots)
            if rel is None:
                raise Manual(f"file {f.file!r} is not under the planned paths")
            if rel in self.units.patches and loc in ("configmap", "configmap-embedded"):
                patch = self.inv.find(f.resource, rel, f.document)
                if patch is not None and patch.kind == "ConfigMap":
                    # a value an overlay's patch sets: that overlay reads it from its own ExternalSecret
                    self._overlay_configmap(det, patch, self._data_key(patch, f, ("data",))[1])
                    return
            if rel in self.units.patches and loc == "env":
                patch = self.inv.find(f.resource, rel, f.document)
                if patch is not None:
                    self._overlay_env(det, patch)
                    return
            self._check_unit(rel)
            obj = self.inv.find(f.resource, rel, f.document)
            if obj is None:
                if f.extra.get("templated"):
                    raise Manual("the value is in a Helm/Go template; change the template or its values by hand")
                if f.path.startswith("items["):
                    raise Manual("the object is an item of a List; split the List into one document per "
                                  "object, then plan again")
                raise Manual(f"object {f.resource} not found in {rel}{self.inv.why_missing(rel)}")
            if obj.file != rel and not same_file(self.inv.path(rel), self.inv.path(obj.file or "")):
                # found by name in another file only; a symlink to that file is fine, anything else is
                # a different object (an overlay, an alternative) with its own value
                raise Manual(f"object {f.resource} not found in {rel}{self.inv.why_missing(rel)}")
        if f.extra.get("in") == "last-applied-configuration":
            self._last_applied.append((det, obj))  # decided once every other finding is planned
            return
        if loc == "env":
            self._env(det, obj)
        elif loc == "arg":
            self._arg(det, obj)
        elif loc in ("configmap", "configmap-embedded"):
            if obj.kind == "ConfigMap" and not self.cluster:
                section, key = self._data_key(obj, f, ("data", "binaryData"))
                if section == "data" and self._overlays_differ(obj, key):
                    # overlays render the base's key differently: each overlay moves the value it reads
                    self._overlay_configmap(det, obj, key)
                    return
            self._configmap(det, obj)
        elif loc == "secret":
            self._secret(det, obj)
        else:
            raise Manual(f"location kind {loc!r} is not supported")
