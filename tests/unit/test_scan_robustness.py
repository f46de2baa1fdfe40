"""Bad input never crashes the scanner: every problem is an error naming the file (and object and
field), never a value, and the rest of the tree is still scanned."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsync.manifests.documents import parse_yaml_stream, too_deep
from secretsync.scan import scan_objects, scan_paths, scan_text

GOOD = """\
apiVersion: v1
kind: Secret
metadata: {name: good}
stringData:
  password: Str0ng-Good-Pw
"""

#: Kubernetes-shaped objects with a finding in every place the walker looks.
BASE: list[dict[str, Any]] = [
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "d", "namespace": "n", "uid": "u1", "ownerReferences": [{"uid": "u0", "controller": True}],
                  "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                                  '{"kind":"Deployment","spec":{"template":{"spec":{"containers":'
                                  '[{"name":"c","env":[{"name":"DB_PASSWORD","value":"pw12345x"}]}]}}}}'}},
     "spec": {"template": {"spec": {
         "initContainers": [{"name": "i", "command": ["sh", "-c", "mysql -psecretpw"]}],
         "containers": [{"name": "c", "args": ["--db-password=Xy12345zz", "--token", "abcdef123456"],
                         "env": [{"name": "DB_PASSWORD", "value": "pw12345x"},
                                 {"name": "JAVA_OPTS", "value": "-Dx.password=abc12345"},
                                 {"name": "R", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                         "envFrom": [{"configMapRef": {"name": "cm"}}],
                         "volumeMounts": [{"name": "v", "mountPath": "/x"}]}],
         "volumes": [{"name": "v", "configMap": {"name": "cm"}}]}}}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
     "data": {"app.properties": "a.password=xyz12345\nb=c\n", "API_KEY": "abcdefghij1234567890XYZ",
              "cfg.json": '{"password": "p4ssw0rdX"}'}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
     "data": {"k": "cGFzc3dvcmQxMjM=", "tls.crt": "eA=="}, "stringData": {"t": "tok123456"}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"}, "spec": {"jobTemplate": {"spec": {
        "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "TOKEN", "value": "T0ken-Value-1"}]}]}}}}}},
    {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "stringData": {"password": "abc12345"}}]},
]
WEIRD: list[Any] = [None, 1, -(2**80), 2**80, 3.5, float("nan"), True, "", "x", [], {}, [1], {"a": None}, [[]],
                    {"1": [None]}, "\x00", "é", b"\xff", ["x", {"y": [1]}]]


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


@st.composite
def _mutated(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The objects above with one to four fields (at any depth) given a wrong type."""
    objs = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(objs) - 1))
        path = draw(st.sampled_from([p for p in _paths(objs[i]) if p]))
        _set(objs[i], path, copy.deepcopy(draw(st.sampled_from(WEIRD))))
    return objs


def _no_internal_errors(result: Any) -> None:
    assert not [e for e in result.errors if "internal error" in e.message]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_mutated())
def test_wrong_types_at_any_level_never_crash_the_scan(objs: list[dict[str, Any]]) -> None:
    for source in ("cluster", "manifest"):
        _no_internal_errors(scan_objects(objs, source=source))
    try:
        text = yaml.safe_dump_all(objs, allow_unicode=True)
    except yaml.YAMLError:
        return
    _no_internal_errors(scan_text(text, "x.yaml"))


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
_json_like = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.sampled_from(["kind", "apiVersion", "metadata", "spec", "template", "containers", "env", "name", "value",
                     "data", "stringData", "items", "args", "x"]), c, max_size=4), max_leaves=25)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_json_like, max_size=3))
def test_random_json_shaped_objects_never_crash_the_scan(objs: list[Any]) -> None:
    _no_internal_errors(scan_objects(objs))
    _no_internal_errors(scan_text(json.dumps(objs[0] if objs else {}), "x.json"))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=st.sampled_from(list("ab:- \n\t{}[]&*!|>'\"#%@`,?~\r\ufeff\x85")), max_size=200))
def test_random_yaml_punctuation_never_crashes_the_parser(text: str) -> None:
    parse_yaml_stream(text)
    _no_internal_errors(scan_text(text, "x.yaml"))


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_random_bytes_in_a_tree_give_errors_not_crashes(tmp_path_factory: pytest.TempPathFactory,
                                                       data: bytes) -> None:
    root = tmp_path_factory.mktemp("bytes")
    (root / "junk.yaml").write_bytes(data)
    (root / "good.yaml").write_text(GOOD)
    result = scan_paths([root])
    _no_internal_errors(result)
    assert [f.resource for f in result.findings if f.file == "good.yaml"] == ["Secret//good"]


def test_deep_nesting_is_refused_before_the_c_parser_overflows_its_stack(tmp_path: Path) -> None:
    # libyaml's composer recurses in C: 100,000 '[' used to kill the process with SIGSEGV.
    (tmp_path / "flow.yaml").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "block.yaml").write_text("- " * 100_000 + "x\n")
    (tmp_path / "deep.json").write_text('{"a":' * 50_000 + "1" + "}" * 50_000)
    (tmp_path / "good.yaml").write_text(GOOD)
    code = ("import sys; from secretsync.scan import scan_paths; r = scan_paths([sys.argv[1]]); "
            "print(len(r.findings)); [print(e) for e in r.errors]")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "1"
    for name in ("flow.yaml", "block.yaml", "deep.json"):
        assert any(line.startswith(name) and "nested" in line for line in lines[1:]), lines


def test_nesting_bound_leaves_ordinary_manifests_alone() -> None:
    assert not too_deep(GOOD)
    assert not too_deep("a: [" + ", ".join("[1, 2]" for _ in range(5000)) + "]")
    assert too_deep("[" * 600)


def test_alias_bomb_is_cut_off_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lines) + "\n"
    result = scan_text(text, "values.yaml")
    assert any("too many values" in e.message for e in result.errors)
    result = scan_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n" +
                       "".join("  " + line + "\n" for line in lines), "bomb.yaml")
    assert result.errors and all("internal" not in e.message for e in result.errors)


def test_symlink_loops_fifos_and_links_out_of_the_tree_are_errors_and_the_rest_is_scanned(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "loop1.yaml").symlink_to("loop2.yaml")
    (tmp_path / "loop2.yaml").symlink_to("loop1.yaml")
    (tmp_path / "self").symlink_to("self")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text(GOOD)
    (tmp_path / "out.yaml").symlink_to(outside)
    os.mkfifo(tmp_path / "pipe.yaml")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "up").symlink_to("..")
    (sub / "etc").symlink_to("/etc")
    result = scan_paths([tmp_path])
    errors = {e.file: e.message for e in result.errors}
    assert "loop" in errors["loop1.yaml"] and "loop" in errors["loop2.yaml"]
    assert "outside" in errors["out.yaml"]
    assert "regular file" in errors["pipe.yaml"]
    assert "outside" in errors["sub/etc"]
    assert [f.file for f in result.findings] == ["good.yaml"]


def test_bom_crlf_tabs_empty_documents_and_bad_utf8(tmp_path: Path) -> None:
    (tmp_path / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "dashes.yaml").write_text("---\n---\n...\n")
    (tmp_path / "tabs.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata:\n\tname: t\n")
    (tmp_path / "latin1.yaml").write_bytes(GOOD.replace("Good", "G\xf6\xf6d").encode("latin-1"))
    result = scan_paths([tmp_path])
    assert [(f.file, f.line) for f in result.findings] == [("bom.yaml", 5)]
    errors = {e.file: e.message for e in result.errors}
    assert set(errors) == {"tabs.yaml", "latin1.yaml"}
    assert "line 4" in errors["tabs.yaml"] and "UTF-8" in errors["latin1.yaml"]


def test_wrong_shapes_are_named_by_object_and_field() -> None:
    text = """\
apiVersion: v1
kind: List
items: {a: 1}
---
apiVersion: v1
kind: List
items: [1, null]
---
apiVersion: v1
kind: [Secret]
metadata: {name: k}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {template: {spec: {containers: {}}}}
"""
    result = scan_text(text, "x.yaml")
    got = {(e.resource, e.path, e.message) for e in result.errors}
    assert ("List//", "items", "is not a list of objects") in got
    assert ("List//", "items[0]", "is not an object") in got
    assert any(e.path == "kind" and e.message == "is not a string" for e in result.errors)
    assert ("Deployment//d", "spec.template.spec.containers", "is not a list of containers") in got


def test_parser_messages_never_carry_values() -> None:
    from secretsync.migrator.rewrite import RewriteError, load

    with pytest.raises(RewriteError) as info:
        load("password: first-Secret-1\npassword: second-Secret-2\n", "dup.yaml")
    assert "first-Secret-1" not in str(info.value) and "second-Secret-2" not in str(info.value)
    assert "duplicate key" in str(info.value) and "password" in str(info.value)


def test_a_directory_tree_deeper_than_the_recursion_limit_is_scanned(tmp_path: Path) -> None:
    from secretsync.migrator.manifests import Inventory

    levels = [tmp_path]
    for _ in range(1200):  # os.walk recursed once per level and raised RecursionError
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    try:
        (levels[-1] / "s.yaml").write_text(GOOD)
        (tmp_path / "top.yaml").write_text(GOOD.replace("good", "top"))
        result = scan_paths([tmp_path])
        assert sorted(f.resource for f in result.findings) == ["Secret//good", "Secret//top"]
        assert sorted(o.name for o in Inventory.load([tmp_path]).objects) == ["good", "top"]
    finally:
        # shutil.rmtree (pytest's cleanup of old temp dirs) recurses too: leave no deep tree behind
        (levels[-1] / "s.yaml").unlink(missing_ok=True)
        for level in reversed(levels[1:]):
            level.rmdir()
