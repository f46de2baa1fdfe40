"""The YAML rewriter changes the edited lines and nothing else."""

from __future__ import annotations

import difflib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsync.migrator import objpath
from secretsync.migrator.rewrite import edit_documents, split_documents

DEPLOY = """\
# leading comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api     # odd spacing kept
  labels: {app: api, tier: "web"}
spec:
  template:
    spec:
      containers:
        - name: app
          image:   "x:1"
          env:
            - name: A
              value: 'plain'
            - name: PW
              value: "s3cr3t-Value"  # rotate me
          args: [--a, "--password=s3cr3t-Arg"]
...
---
# second doc, untouched
apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data:
  k:    v
"""


def _changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:])
        elif line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:])
    return removed, added


def test_only_the_edited_lines_change() -> None:
    op = {"op": "replace-key", "path": "spec.template.spec.containers[name=app].env[name=PW]", "old": "value",
          "new": "valueFrom", "value": {"secretKeyRef": {"name": "api-secrets", "key": "PW"}}}
    new = edit_documents(DEPLOY, {0: lambda d: objpath.apply_op(d, op)}, "deploy.yaml")
    removed, added = _changed_lines(DEPLOY, new)
    assert removed == ['              value: "s3cr3t-Value"  # rotate me']
    assert added == ["              valueFrom:", "                secretKeyRef:", "                  name: api-secrets",
                     "                  key: PW"]


def test_untouched_documents_stay_byte_identical() -> None:
    op = {"op": "set", "path": "spec.template.spec.containers[name=app].args[1]", "value": "--password=$(PW)"}
    new = edit_documents(DEPLOY, {0: lambda d: objpath.apply_op(d, op)}, "deploy.yaml")
    tail = DEPLOY[DEPLOY.index("---\n# second doc") :]
    assert new.endswith(tail)
    assert '["--a", "--password=$(PW)"]' in new or "[--a, \"--password=$(PW)\"]" in new


def test_flow_style_entry_stays_flow_style() -> None:
    text = "env:\n  - {name: B, value: x}\n  - name: C\n    value: y\n"
    op = {"op": "replace-key", "path": "env[name=B]", "old": "value", "new": "valueFrom",
          "value": {"secretKeyRef": {"name": "s", "key": "B"}}}
    new = edit_documents(text, {0: lambda d: objpath.apply_op(d, op)})
    assert new == "env:\n  - {name: B, valueFrom: {secretKeyRef: {name: s, key: B}}}\n  - name: C\n    value: y\n"


def test_crlf_and_missing_final_newline_are_kept() -> None:
    text = "a: 1\r\nb: secret\r\nc: 3"
    new = edit_documents(text, {0: lambda d: objpath.apply_op(d, {"op": "set", "path": "b", "value": "ref"})})
    assert new == "a: 1\r\nb: ref\r\nc: 3"


def test_removing_a_key_keeps_comments_of_its_neighbours() -> None:
    text = "data:\n  A: 1  # eol a\n  # about B\n  B: 2\n  # about C\n  C: 3\n"
    new = edit_documents(text, {0: lambda d: objpath.apply_op(d, {"op": "remove", "path": "data.B"})})
    assert new == "data:\n  A: 1  # eol a\n  # about C\n  C: 3\n"


def test_removing_a_list_item_keeps_comments_of_the_rest() -> None:
    text = "l:\n  - a\n  # about b\n  - b\n\n  # about c\n  - c\n  - d  # eol d\n"
    new = edit_documents(text, {0: lambda d: objpath.apply_op(d, {"op": "remove", "path": "l[1]"})})
    assert new == "l:\n  - a\n\n  # about c\n  - c\n  - d  # eol d\n"


def test_document_indexes_match_load_all() -> None:
    import yaml

    text = "# only a comment\n---\na: 1\n---\n---\nb: 2\n"
    spans = split_documents(text)
    assert len(spans) == len(list(yaml.safe_load_all(text)))


def test_ops_are_idempotent() -> None:
    data = {"spec": {"containers": [{"name": "app", "env": [{"name": "X", "value": "v"}]}]}}
    ops = [
        {"op": "replace-key", "path": "spec.containers[name=app].env[name=X]", "old": "value", "new": "valueFrom",
         "value": {"secretKeyRef": {"name": "s", "key": "X"}}},
        {"op": "insert", "path": "spec.containers[name=app].env", "value": {"name": "Y", "value": "1"}},
    ]
    objpath.apply_ops(data, ops)
    once = repr(data)
    assert objpath.all_applied(data, ops)
    objpath.apply_ops(data, ops)
    assert repr(data) == once


# -- property: whatever the rewriter did not touch round-trips unchanged ----------------------------
_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8).map(lambda w: "k" + w)
_scalar = st.one_of(
    _words,
    _words.map(lambda w: f'"{w} x"'),
    _words.map(lambda w: f"'{w}'"),
    st.integers(0, 9999).map(str),
    st.sampled_from(["true", "null", "~", '""', "1.5"]),
)
_comment = st.one_of(st.just(""), _words.map(lambda w: f"  # {w}"))


@st.composite
def _block(draw: st.DrawFn, depth: int, indent: int, mstep: int, offset: int) -> list[str]:
    lines: list[str] = []
    keys = draw(st.lists(_words, min_size=1, max_size=4, unique=True))
    pad = " " * indent
    for k in keys:
        if draw(st.booleans()):
            lines.append(f"{pad}# {draw(_words)}")
        kind = draw(st.sampled_from(["scalar", "scalar", "map", "list", "flow"])) if depth < 3 else "scalar"
        if kind == "scalar":
            lines.append(f"{pad}{k}: {draw(_scalar)}{draw(_comment)}")
        elif kind == "flow":
            items = draw(st.lists(_words, min_size=0, max_size=3))
            lines.append(f"{pad}{k}: [{', '.join(items)}]{draw(_comment)}")
        elif kind == "map":
            lines.append(f"{pad}{k}:{draw(_comment)}")
            lines += draw(_block(depth + 1, indent + mstep, mstep, offset))
        else:
            lines.append(f"{pad}{k}:")
            for _ in range(draw(st.integers(1, 3))):
                lines.append(f"{pad}{' ' * offset}- {draw(_scalar)}{draw(_comment)}")
    return lines


@st.composite
def _documents(draw: st.DrawFn) -> str:
    docs = []
    for _ in range(draw(st.integers(1, 3))):
        mstep = draw(st.sampled_from([2, 4]))
        offset = draw(st.sampled_from([0, 2]))
        docs.append("\n".join(draw(_block(0, 0, mstep, offset))) + "\n")
    return "---\n".join(docs)


def _leaves(data: object, path: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            p = objpath.join(path, str(k)) if path else objpath.format_path([objpath.Key(str(k))])
            if isinstance(v, dict):
                out += _leaves(v, p)
            elif not isinstance(v, list):
                out.append(p)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents(), st.data())
def test_untouched_content_round_trips_unchanged(text: str, data: st.DataObject) -> None:
    # A no-op edit changes nothing at all.
    spans = split_documents(text)
    assert edit_documents(text, {s.index: lambda d: None for s in spans}) == text
    # Setting one leaf changes that leaf's line(s) and nothing else.
    from secretsync.migrator.rewrite import load

    doc_i = data.draw(st.integers(0, len(spans) - 1))
    body = text[spans[doc_i].start : spans[doc_i].end]
    leaves = _leaves(load(body))
    if not leaves:
        return
    target = data.draw(st.sampled_from(leaves))
    new = edit_documents(text, {doc_i: lambda d: objpath.apply_op(d, {"op": "set", "path": target,
                                                                     "value": "ZZ-new-value"})})
    removed, added = _changed_lines(text, new)
    assert len(removed) <= 1, (removed, added)
    assert all("ZZ-new-value" in a for a in added) and len(added) == 1
    other = [s for s in spans if s.index != doc_i]
    new_spans = split_documents(new)
    for s in other:
        assert text[s.start : s.end] == new[new_spans[s.index].start : new_spans[s.index].end]
