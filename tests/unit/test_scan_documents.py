"""Parsing: line numbers, multi-document streams, JSON, templates, broken and hostile input."""

from __future__ import annotations

from secretsync.manifests.documents import (
    TEMPLATE_MARKER,
    LocatedMap,
    detemplate,
    key_line,
    parse_json_text,
    parse_yaml_stream,
    value_line,
)
from secretsync.scan.formats import path_join, split_path


def test_every_value_knows_its_line() -> None:
    stream = parse_yaml_stream("a: 1\nb:\n  c: x\n  d:\n  - y\n  - z\ne: |\n  block\n")
    root = stream.documents[0].root
    assert isinstance(root, LocatedMap)
    assert value_line(root, "a") == 1
    assert value_line(root["b"], "c") == 3
    assert value_line(root["b"]["d"], 1) == 6
    assert value_line(root, "e") == 8  # first content line of a block scalar
    assert key_line(root, "e") == 7


def test_multi_document_indices_match_the_stream() -> None:
    stream = parse_yaml_stream("# head\n---\na: 1\n---\n---\nb: 2\n")
    assert [d.index for d in stream.documents] == [0, 1, 2]
    assert stream.documents[1].root is None
    assert value_line(stream.documents[2].root, "b") == 6


def test_one_broken_document_does_not_hide_the_others() -> None:
    stream = parse_yaml_stream("a: 1\n---\nb: [unclosed\n---\nc: 3\n")
    roots = {d.index: d.root for d in stream.documents}
    assert roots[0]["a"] == "1" and roots[2]["c"] == "3"
    assert len(stream.problems) == 1 and "document 1" in stream.problems[0]
    assert value_line(roots[2], "c") == 5


def test_helm_templates_parse_with_actions_blanked() -> None:
    text = (
        "{{- if .Values.enabled }}\n"
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        "  name: {{ include \"x.fullname\" . }}\n"
        "  labels:\n"
        "    {{- include \"x.labels\" . | nindent 4 }}\n"
        "data:\n"
        "  password: {{ .Values.password | b64enc | quote }}\n"
        "  literal: aGVsbG8=\n"
        "{{- end }}\n"
    )
    stream = parse_yaml_stream(text)
    assert not stream.problems
    doc = stream.documents[0]
    assert doc.templated
    assert TEMPLATE_MARKER in doc.root["data"]["password"]
    assert value_line(doc.root["data"], "literal") == 10


def test_detemplate_keeps_lines() -> None:
    text = "a: 1\n{{- /* a\nmulti-line comment */ -}}\nb: {{ .x }}\n"
    out = detemplate(text)
    assert out.count("\n") == text.count("\n")
    assert out.splitlines()[3] == f"b: {TEMPLATE_MARKER}"


def test_untemplatable_template_is_a_problem_not_a_crash() -> None:
    stream = parse_yaml_stream("a: {{ .x\nb: [\n")
    assert stream.problems and not stream.documents


def test_alias_bomb_is_stopped() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join(f"*{prev}" for _ in range(10)) + "]")
    stream = parse_yaml_stream("\n".join(lines) + "\n", budget=10_000)
    # Aliases are converted once and shared, so conversion itself stays small.
    assert stream.documents or stream.problems


def test_merge_keys_fill_missing_keys() -> None:
    stream = parse_yaml_stream("base: &b {x: 1, y: 2}\nobj:\n  <<: *b\n  y: 3\n")
    obj = stream.documents[0].root["obj"]
    assert obj["x"] == "1" and obj["y"] == "3"


def test_json_gets_line_numbers() -> None:
    text = '{\n  "kind": "ConfigMap",\n  "data": {\n    "a": "b"\n  }\n}\n'
    stream = parse_json_text(text)
    assert value_line(stream.documents[0].root["data"], "a") == 4


def test_json_that_yaml_rejects_falls_back_to_json() -> None:
    text = '{"kind": "ConfigMap",\n\t"data": {"url": "http:\\/\\/x", "k": "v"}}'
    stream = parse_json_text(text)
    assert not stream.problems
    assert stream.documents[0].root["data"]["k"] == "v"


def test_malformed_json_is_a_problem() -> None:
    stream = parse_json_text('{"kind": ')
    assert stream.problems and not stream.documents


def test_paths_round_trip() -> None:
    path = path_join(path_join(path_join("", "data"), "tls.key"), 3)
    assert path == 'data["tls.key"][3]'
    assert split_path(path) == ["data", "tls.key", 3]
    assert split_path("spec.template.spec.containers[0].env[2].value") == [
        "spec", "template", "spec", "containers", 0, "env", 2, "value"]
    assert split_path("patches[0].patch::spec.containers[1].env[0].value")[:2] == ["spec", "containers"]


def test_jinja_raw_blocks_are_blanked() -> None:
    stream = parse_yaml_stream("{% raw %}\nkind: Secret\nstringData:\n  a: '{{ .x }}'\n{% endraw %}\n")
    assert not stream.problems
    assert value_line(stream.documents[0].root["stringData"], "a") == 4
