"""The resolver computes what the kubelet would give a container (so equivalence tests mean something)."""

from __future__ import annotations

from pathlib import Path

from secretsync.migrator.manifests import Inventory
from secretsync.migrator.resolve import differences, expand, resolve_tree

POD = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cm, namespace: n}
data: {A: from-cm, B: cm-b, f.conf: "x=1"}
---
apiVersion: v1
kind: Secret
metadata: {name: s, namespace: n}
stringData: {B: from-secret, token: t0k}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: n}
spec:
  containers:
  - name: c
    image: x
    command: [run, "--token=$(TOKEN)", "$$(TOKEN)", "$(NOPE)"]
    envFrom:
    - configMapRef: {name: cm}
    - secretRef: {name: s}
      prefix: S_
    env:
    - {name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: token}}}
    - {name: GREETING, value: "hi $(A)"}
    - {name: B, value: literal}
    volumeMounts:
    - {name: v, mountPath: /etc/app}
    - {name: v, mountPath: /one.conf, subPath: f.conf}
  volumes:
  - name: v
    projected:
      defaultMode: 0400
      sources:
      - configMap: {name: cm, items: [{key: f.conf, path: f.conf}]}
      - secret: {name: s, items: [{key: token, path: tok, mode: 0600}]}
"""


def _view(tmp_path: Path, text: str) -> dict:  # type: ignore[type-arg]
    (tmp_path / "p.yaml").write_text(text)
    return resolve_tree(Inventory.load([tmp_path]))


def test_env_precedence_prefixes_and_expansion(tmp_path: Path) -> None:
    c = _view(tmp_path, POD)["Pod/n/p"]["containers/c"]
    assert c.env["A"] == b"from-cm"
    assert c.env["S_B"] == b"from-secret" and c.env["B"] == b"literal"
    assert c.env["GREETING"] == b"hi from-cm"
    assert c.argv == [b"run", b"--token=t0k", b"$(TOKEN)", b"$(NOPE)"]


def test_projected_files_with_modes_and_subpath(tmp_path: Path) -> None:
    c = _view(tmp_path, POD)["Pod/n/p"]["containers/c"]
    assert c.files["/etc/app/f.conf"] == (b"x=1", 0o400)
    assert c.files["/etc/app/tok"] == (b"t0k", 0o600)
    assert c.files["/one.conf"] == (b"x=1", 0o400)


def test_a_missing_reference_shows_as_a_difference(tmp_path: Path) -> None:
    before = _view(tmp_path, POD)
    after = _view(tmp_path, POD.replace("secretKeyRef: {name: s,", "secretKeyRef: {name: gone,"))
    assert differences(before, after) == ["Pod/n/p containers/c: env TOKEN differs",
                                          "Pod/n/p containers/c: argv differs"]


def test_expansion_rules_match_kubernetes() -> None:
    env = {"A": b"1"}
    assert expand("$(A)-$$(A)-$(B)-$A", env) == b"1-$(A)-$(B)-$A"
