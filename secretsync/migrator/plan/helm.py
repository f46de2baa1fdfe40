"""Helm values with an existingSecret option point at an ExternalSecret-made Secret.

Why the ExternalSecret is a template of the chart: Helm deploys what its ``templates/`` render,
into the release's namespace, and nothing else of the chart folder; a manifest beside
``values.yaml`` would never reach the cluster while the values already point at its Secret.
The chart is rendered with Helm's own engine before and after (the invariant), so the
``existingSecret`` wiring is checked as the chart really reads it.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from secretsync.core.values import SecretValue
from secretsync.manifests import helm

from .. import naming, objpath
from ..findings import Detection
from ..manifests import (
    normalize_path,
    read_locator,
    safe_load,
    stabilize,
)
from . import invariant
from .base import PlannerBase
from .model import HELM_KEY_SIBLINGS, HELM_SECRET_SIBLINGS, Manual


class HelmSource(PlannerBase):
    """Helm values with an existingSecret option point at an ExternalSecret-made Secret."""

    def _helm(self, det: Detection) -> None:
        f = det.finding
        if f.subkey:
            raise Manual("the value is inside a multi-line setting (a config file the chart renders); move it "
                          "by hand or through the chart's own secret option")
        rel = self.inv.resolve_file(f.file, [self._root] if self._root else self.roots)
        if rel is None:
            raise Manual(f"file {f.file!r} is not under the planned paths")
        self._check_unit(rel)
        data = safe_load(self.inv.texts.get(rel) or "")
        if not isinstance(data, dict):
            raise Manual("the values file is not a mapping")
        segs = stabilize(data, normalize_path(f.path.removeprefix(".Values.").removeprefix("Values.")))
        if not segs or not isinstance(segs[-1], objpath.Key):
            raise Manual("the value is not a map entry; this chart needs the value moved by hand")
        parent_path, leaf = segs[:-1], segs[-1].name
        parent = objpath.get(data, parent_path) if parent_path else data
        sib = next((s for s in HELM_SECRET_SIBLINGS if isinstance(parent, dict) and s in parent), None)
        if sib is None:
            where = objpath.format_path(parent_path) or "the top level"
            raise Manual(f"the chart offers no existingSecret option next to {objpath.format_path(segs)} "
                          f"(looked for {', '.join(HELM_SECRET_SIBLINGS)} in {where}); pass the value with "
                          "--set-file from a secret manager, or patch the chart")
        if parent.get(sib) not in (None, ""):
            raise Manual(f"{objpath.format_path([*parent_path, objpath.Key(sib)])} is already set; the chart "
                          "reads the Secret named there and ignores this value")
        chart_dir = os.path.dirname(rel)
        chart = os.path.basename(chart_dir) or "chart"
        chart_yaml = self.inv.path(os.path.join(chart_dir, "Chart.yaml"))
        if not chart_yaml.is_file() or os.path.basename(rel) != "values.yaml":
            raise Manual(f"{rel} is not the values.yaml of a chart (no Chart.yaml beside it): the migrator cannot "
                          "tell which release reads it, nor put the ExternalSecret where that release deploys it")
        meta = safe_load(chart_yaml.read_text(encoding="utf-8"))
        if isinstance(meta, dict) and meta.get("name"):
            chart = str(meta["name"])
        pp = objpath.format_path(parent_path)
        owner = f"helm:{rel}:{pp}"
        name = naming.object_name(chart, *[s.name for s in parent_path if isinstance(s, objpath.Key)])
        group = self._group(owner, "HelmValues", chart, "default", None, rel, name=name, target=name)
        group.notes.append("the ExternalSecret (and its store) are templates of the chart: they deploy with the "
                           "release, into its namespace")
        locator = {"kind": "field", "file": rel, "document": 0, "path": objpath.format_path(segs),
                   "encoding": "text"}
        value = read_locator(self.inv, locator)
        key_sib = next((s for s in HELM_KEY_SIBLINGS if s in parent), None)
        secret_key = naming.secret_key(leaf) if key_sib else self._chart_secret_key(chart_dir, value, leaf)
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
            group.notes.append(f"the chart reads key {ps.secret_key!r} of {sib} (the key its own Secret keeps the "
                               "value under)")
        self._change(None, rel, 0, f"HelmValues/{rel}").add(ops, summary, group.id, "source")

    def _chart_secret_key(self, chart_dir: str, value: SecretValue, leaf: str) -> str:
        """The key a chart reads from its ``existingSecret``: the one its own Secret keeps the value under
        when rendered (Bitnami's ``postgres-password`` for ``auth.postgresPassword``), else the values
        leaf. The invariant renders the chart again with the Secret in place, so a wrong guess is refused."""
        if not hasattr(self, "_chart_secrets"):
            self._chart_secrets: dict[str, list[dict[str, Any]]] = {}
        if chart_dir not in self._chart_secrets:
            try:
                found = [d for d in invariant.chart_release(self.inv.path(chart_dir)) if d.get("kind") == "Secret"] \
                    if helm.available() else []
            except invariant.Unverifiable:
                found = []  # the invariant names it
            self._chart_secrets[chart_dir] = found
        keys = set()
        for sec in self._chart_secrets[chart_dir]:
            for section in ("data", "stringData"):
                entries = sec.get(section)
                for k, v in (entries.items() if isinstance(entries, dict) else []):
                    try:
                        got = base64.b64decode(str(v), validate=True) if section == "data" else str(v).encode()
                    except ValueError:
                        continue
                    if got == value.reveal():
                        keys.add(str(k))
        return naming.secret_key(keys.pop()) if len(keys) == 1 else naming.secret_key(leaf)
