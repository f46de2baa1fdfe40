"""``migrate plan`` and ``apply`` on hostile and malformed trees: nothing crashes or hangs, every
problem becomes a manual item or a warning naming the file, object and field (never a value),
and whatever is migrated still resolves the same and rolls back byte for byte."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.workflow import plan_paths
from tests.harness.roundtrip import migrate_and_check, write_tree
from tests.unit.test_scan_robustness import BASE, WEIRD, _paths, _set

KUSTOMIZATION: dict[str, Any] = {
    "namespace": "n", "resources": ["a.yaml"],
    "secretGenerator": [{"name": "gen", "literals": ["PASSWORD=L1t-Pw-123", "X=y"], "envs": ["s.env"]}],
    "configMapGenerator": [{"name": "cmg", "literals": ["TOKEN=abc123def456"]}],
}
VALUES: dict[str, Any] = {"auth": {"password": "H3lm-Pw-1", "existingSecret": "", "existingSecretPasswordKey": ""},
                          "other": {"apiKey": "abcdefABCDEF123456"}}


@pytest.fixture(autouse=True)
def _no_file_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)


@st.composite
def _broken_tree(draw: st.DrawFn) -> dict[str, str]:
    """Objects, a kustomization and Helm values, with up to three fields given a wrong type."""
    objs = copy.deepcopy([o for o in BASE if o["kind"] != "List"])
    docs: list[Any] = [*objs, copy.deepcopy(KUSTOMIZATION), copy.deepcopy(VALUES)]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(docs) - 1))
        path = draw(st.sampled_from([p for p in _paths(docs[i]) if p]))
        _set(docs[i], path, copy.deepcopy(draw(st.sampled_from(WEIRD))))
    flow = draw(st.booleans())
    texts = [yaml.safe_dump(d, allow_unicode=True, default_flow_style=flow) for d in objs]
    split = draw(st.integers(1, len(texts)))
    return {
        "a.yaml": "---\n".join(texts[:split]),
        "b.yaml": "---\n".join(texts[split:]) or "{}\n",
        "kustomization.yaml": yaml.safe_dump(docs[-2], allow_unicode=True),
        "chart/values.yaml": yaml.safe_dump(docs[-1], allow_unicode=True),
        "chart/Chart.yaml": "name: c\nversion: 1\n",
        "s.env": "DB_PASSWORD=Env-Pw-99\n# comment\n",
    }


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(_broken_tree())
def test_wrong_types_anywhere_never_crash_and_what_moves_resolves_the_same(
        tmp_path_factory: pytest.TempPathFactory, files: dict[str, str]) -> None:
    work = tmp_path_factory.mktemp("broken")
    write_tree(work / "t", files)
    out = migrate_and_check(work / "t", work)
    assert all("internal" not in r for r in out.reasons())


_ALPHABET = "abcXYZ019 -_:#&*!|>'\"\\{}[],%@`?~\t=/ü€😀"


def _scalar(style: str, value: str, indent: int) -> str:
    if style == "plain" and value.strip() == value and not any(c in value for c in ":#&*!|>'\"{}[],%@`?~\t\\=-"):
        return value
    if style == "lit" and "\t" not in value and value.strip() == value:
        return "|-\n" + " " * (indent + 2) + value
    if style == "sq":
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, ensure_ascii=False)


@st.composite
def _styled_tree(draw: st.DrawFn) -> tuple[str, list[str]]:
    """One file: a Deployment, the ConfigMap it reads and a Secret, holding random values in every
    scalar style, with comments, CRLF, a BOM or no final newline."""
    count = draw(st.integers(1, 3))
    # Not a shell command's output (`...` or $(...)): the scanner rightly takes those for references.
    value = st.text(alphabet=_ALPHABET, min_size=6, max_size=16).filter(
        lambda v: not v.lstrip("\"'").startswith(("$(", "`")))
    values = [draw(value) + "9Qz" for _ in range(count)]
    styles = st.sampled_from(["plain", "sq", "dq", "lit"])
    env = "".join(
        (draw(st.sampled_from(["", f"          # about {i}\n"])) + f"        - name: VAR{i}_PASSWORD"
         + draw(st.sampled_from(["\n", "  # why\n"])) + f"          value: {_scalar(draw(styles), v, 10)}"
         + draw(st.sampled_from(["\n", "  # trailing\n"])))
        for i, v in enumerate(values))
    deploy = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
              "      containers:\n      - name: app\n        image: x\n        env:\n" + env +
              "        - name: FROM_CM\n          valueFrom:\n"
              "            configMapKeyRef: {name: cm, key: KEY0_SECRET}\n"
              "        envFrom:\n        - configMapRef: {name: cm}\n        volumeMounts:\n"
              "        - {name: v, mountPath: /v}\n      volumes:\n      - name: v\n"
              "        configMap: {name: cm, defaultMode: 0400}\n")
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n" + "".join(
        f"  KEY{i}_SECRET: {_scalar(draw(styles), v, 2)}\n" for i, v in enumerate(values))
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n" + "".join(
        f"  k{i}: {_scalar(draw(styles), v, 2)}\n" for i, v in enumerate(values))
    text = "---\n".join(draw(st.permutations([deploy, cm, secret])))
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    return text, values


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(_styled_tree())
def test_values_in_any_scalar_style_move_and_come_back_byte_identical(
        tmp_path_factory: pytest.TempPathFactory, case: tuple[str, list[str]]) -> None:
    text, values = case
    work = tmp_path_factory.mktemp("styled")
    write_tree(work / "t", {"all.yaml": text})
    out = migrate_and_check(work / "t", work, values=values)
    assert out.manual == []
    assert len(out.plan["secrets"]) >= len(values)


def test_plan_on_a_hostile_tree_finishes_and_names_every_problem(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    write_tree(tree, {
        "good.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: good}\nstringData:\n  password: G00d-Pw-1\n",
        "dup.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: dup}\nstringData:\n"
                    "  password: F1rst-Value\n  password: S3cond-Value\n",
        "deep.yaml": "[" * 100_000 + "]" * 100_000,
        "block.yaml": "- " * 100_000 + "x\n",
        "empty.yaml": "", "dashes.yaml": "---\n---\n...\n", "tabs.yaml": "a:\n\tb: c\n",
        "bomb/values.yaml": "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
            f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
        "latin1.yaml": b"apiVersion: v1\nkind: Secret\nmetadata: {name: l}\nstringData: {password: caf\xe9-Pw}\n",
    })
    os.mkfifo(tree / "pipe.yaml")
    (tree / "loop.yaml").symlink_to("loop.yaml")
    outside = tmp_path / "outside.yaml"
    outside.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: out}\nstringData:\n  password: 0ut-Pw-1\n")
    (tree / "out.yaml").symlink_to(outside)
    code = ("import json, sys; from pathlib import Path; from secretsync.migrator.plan import PlanOptions; "
            "from secretsync.migrator.workflow import plan_paths; errs = []; "
            "p = plan_paths([Path(sys.argv[1])], PlanOptions(store_url='file://' + sys.argv[2]), "
            "on_scan_error=errs.append); print(json.dumps({'doc': p.doc, 'errors': errs}))")
    proc = subprocess.run([sys.executable, "-c", code, str(tree), str(tmp_path / "store.json")], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    doc, errors = out["doc"], out["errors"]
    assert [s["source"]["file"] for s in doc["secrets"]] == ["good.yaml"]
    manual = {m["file"]: m["reason"] for m in doc["manual"]}
    assert "duplicate key" in manual["dup.yaml"]
    for name in ("deep.yaml", "block.yaml", "pipe.yaml", "loop.yaml", "out.yaml", "tabs.yaml", "latin1.yaml",
                 "bomb/values.yaml"):
        assert any(e.startswith(name) for e in errors), (name, errors)
    everything = proc.stdout + proc.stderr
    for value in ("F1rst-Value", "S3cond-Value", "0ut-Pw-1", "G00d-Pw-1"):
        assert value not in everything


def test_a_symlinked_manifest_is_left_alone_and_its_target_is_migrated(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    write_tree(tree, {"real/s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData:\n"
                                     "  password: L1nked-Pw-1\n"})
    (tree / "link.yaml").symlink_to("real/s.yaml")
    out = migrate_and_check(tree, tmp_path, values=["L1nked-Pw-1"])
    assert (tree / "link.yaml").is_symlink()
    assert b"ExternalSecret" in out.migrated["real/s.yaml"]
    assert {s["source"]["file"] for s in out.plan["secrets"]} == {"real/s.yaml"}


def test_a_consumer_too_malformed_to_read_keeps_the_configmap_keys_where_they_are(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    write_tree(tree, {
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n  API_TOKEN: T0ken-Value-99\n",
        "use.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: use}\nspec:\n  template:\n    spec:\n"
                    "      containers:\n      - name: c\n        image: x\n        envFrom: [{configMapRef: cm}]\n",
    })
    plan = plan_paths([tree], PlanOptions(store_url=f"file://{tmp_path}/store.json"))
    assert plan.doc["secrets"] == []
    assert any("malformed" in m["reason"] and "Deployment/default/use" in m["reason"] for m in plan.doc["manual"])


def test_a_hand_edited_plan_is_refused_naming_the_field_before_any_step(tmp_path: Path) -> None:
    from secretsync.core.errors import InvalidConfig
    from secretsync.migrator.apply import ApplyOptions
    from secretsync.migrator.workflow import apply_plan, write_plan

    tree = tmp_path / "t"
    write_tree(tree, {"s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: Ed1t-Pw}\n"})
    plan_file = tmp_path / "plan.json"
    write_plan(plan_paths([tree], PlanOptions(store_url=f"file://{tmp_path}/store.json")), plan_file)
    good = json.loads(plan_file.read_text())
    breakers: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
        ("secrets[0].source", lambda d: d["secrets"][0].pop("source")),
        ("changes", lambda d: d.__setitem__("changes", "x")),
        ("changes[0].ops[0]", lambda d: d["changes"][0]["ops"].__setitem__(0, 7)),
    ]
    for field, breaker in breakers:
        doc = copy.deepcopy(good)
        breaker(doc)
        plan_file.write_text(json.dumps(doc))
        with pytest.raises(InvalidConfig, match=re.escape(field)):
            apply_plan(plan_file, ApplyOptions())
    assert not (tmp_path / "store.json").exists() and not (tmp_path / "plan.journal").exists()


def test_a_hand_edited_journal_costs_its_step_not_the_rollback(tmp_path: Path) -> None:
    from secretsync.migrator.apply import ApplyOptions
    from secretsync.migrator.workflow import apply_plan, rollback_journal, write_plan

    tree = tmp_path / "t"
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: NAME}\nstringData: {password: J0urnal-NAME}\n"
    write_tree(tree, {"a.yaml": secret.replace("NAME", "a"), "b.yaml": secret.replace("NAME", "b")})
    original_b = (tree / "b.yaml").read_bytes()
    write_plan(plan_paths([tree], PlanOptions(store_url=f"file://{tmp_path}/store.json")), tmp_path / "plan.json")
    apply_plan(tmp_path / "plan.json", ApplyOptions())
    journal = tmp_path / "plan.journal"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    for rec in lines:
        if rec.get("step") == "rewrite:a.yaml" and rec["event"] == "begin":
            del rec["reverse"]
    journal.write_text("".join(json.dumps(r) + "\n" for r in lines))
    rb = rollback_journal(journal)
    assert any("rewrite:a.yaml" in p and "malformed" in p for p in rb.problems)
    assert (tree / "b.yaml").read_bytes() == original_b
