"""kustomize secretGenerators become ExternalSecrets; their files go."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .. import naming, objpath
from ..findings import Detection, Finding
from ..manifests import (
    LocateError,
    normalize_path,
    parse_env_file,
    read_locator,
    read_manifest,
    stabilize,
)
from .base import PlannerBase
from .model import Group, Manual, PSecret, as_list, generator_paths


class KustomizeSource(PlannerBase):
    """kustomize secretGenerators become ExternalSecrets; their files go."""

    def _kustomize(self, det: Detection) -> None:
        f = det.finding
        rel = self.inv.resolve_file(f.file, [self._root] if self._root else self.roots)
        if rel is None:
            raise Manual(f"file {f.file!r} is not under the planned paths")
        self._check_unit(rel)
        section = "configMapGenerator" if f.path.startswith("configMapGenerator") else "secretGenerator"
        if section == "configMapGenerator":
            raise Manual("a secret in a configMapGenerator: move it to a secretGenerator (or a Secret) "
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
                      for gen in as_list(x.data.get("secretGenerator"))
                      if isinstance(gen, Mapping) and rel in generator_paths(x.dir, gen)]
            if len(owners) > 1:
                owners = [o for o in owners if wanted.endswith("/" + o[1])]
            if len(owners) == 1:
                k, gen_name = owners[0]
            elif not owners:
                raise Manual("no kustomization in the planned paths reads this file")
        if k is None or not gen_name:
            raise Manual("cannot tell which secretGenerator holds the value")
        self._secret_generator(k, gen_name, f)

    def _secret_generator(self, k: Any, gen_name: str, f: Finding) -> None:
        owner = f"kustomize:{k.file}:secretGenerator/{gen_name}"
        gens = [g for g in k.data.get("secretGenerator") or [] if str(g.get("name")) == gen_name]
        if len(gens) != 1:
            raise Manual(f"secretGenerator {gen_name} is missing or defined twice")
        gen = gens[0]
        if gen.get("behavior") in ("merge", "replace"):
            raise Manual(f"secretGenerator {gen_name} has behavior {gen['behavior']} (it patches a base "
                          "generator); migrate the base and drop the overlay by hand")
        ns = str(gen.get("namespace") or k.namespace or "default")
        gkey = self._group_key(owner, k.file)
        if gkey in self._failed:
            raise Manual(self._failed[gkey])
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
            raise Manual(f"cannot match the finding to an entry of secretGenerator {gen_name}")
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
                raise Manual(f"cannot read env file {rel}: {exc}") from None
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
            raise Manual(f"file {path!r} of the secretGenerator is outside the kustomization's directory; "
                          "kustomize refuses it too")
        p = self.inv.path(rel)
        if p.is_symlink() or not p.is_file():
            raise Manual(f"file {rel} of the secretGenerator is a symlink or not a regular file; move its "
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
                    if rel in generator_paths(k.dir, gen):
                        raise Manual(f"{rel} is also read by {section} {gen.get('name')} in {k.file}; migrate "
                                      "that one first or give each generator its own file")
        if not any(d["file"] == rel for d in self.delete_files):
            self.delete_files.append({"file": rel, "group": group.id, "reason": reason})
