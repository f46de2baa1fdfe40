"""Secret objects are replaced by an ExternalSecret that recreates them."""

from __future__ import annotations

from typing import Any

from .. import objpath
from ..findings import Detection
from ..manifests import (
    Obj,
    read_locator,
)
from .base import PlannerBase
from .model import LAST_APPLIED, Group, Manual, where


class SecretSource(PlannerBase):
    """Secret objects are replaced by an ExternalSecret that recreates them."""

    def _secret(self, det: Detection, obj: Obj) -> None:
        f = det.finding
        if obj.kind != "Secret":
            raise Manual(f"a secret finding on a {obj.kind}")
        stype = str(obj.data.get("type") or "Opaque")
        if stype == "kubernetes.io/service-account-token":
            raise Manual("service account token Secrets are filled in by Kubernetes; leave them")
        gkey = self._group_key(obj.resource, obj.file)
        if gkey in self._failed:
            raise Manual(self._failed[gkey])
        new = gkey not in self.groups
        group = self._group(obj.resource, "Secret", obj.name, obj.namespace, obj.explicit_namespace, obj.file,
                            name=obj.name, target=obj.name,
                            creation_policy="Merge" if self.cluster else "Owner")
        if new:
            with self._all_or_nothing(gkey, group):
                self._secret_group(obj, group, stype)
        section, key = self._data_key(obj, f, ("stringData", "data"))
        enc = "base64" if section == "data" else "text"
        locator = {"kind": "field", **where(obj),
                   "path": objpath.format_path([objpath.Key(section), objpath.Key(key)]), "encoding": enc}
        ps = self._secret_by_loc.get(self._loc_id(group, locator))
        if ps is None:
            raise Manual(f"key {key} of Secret {obj.name} is shadowed by stringData")
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
                raise Manual(f"{section} of Secret {obj.name} is not a mapping")
            for key in sec:
                if section == "data" and isinstance(string_data, dict) and key in string_data:
                    raise Manual(f"key {key} of Secret {obj.name} is in both data and stringData; keep one "
                                  "(the API server uses stringData) and plan again")
                locator = {"kind": "field", **where(obj),
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
