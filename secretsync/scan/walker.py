# long-file: every place a value can stand in an object (pod specs, env, flags, CRs, kustomize, patches), walked once
"""Where values stand in Kubernetes objects, Helm values and kustomizations.

The walker knows the shape of the objects and nothing about secrets: it yields a
:class:`Candidate` for every value that *could* hold one (an env ``value``, a flag in
``command``/``args``, a ConfigMap entry or a key inside a file it holds, every Secret value,
every Helm values leaf, every generator literal) with its JSON path, key, container and line.
:mod:`.detectors` decides; :mod:`.scanner` turns the verdicts into findings.

Malformed objects (``env: "notalist"``, ``containers: null``, a Secret value that is not
base64) never raise: the walker records a :class:`Problem` naming the field and goes on.

Paths: dotted, ``[i]`` for list items, ``["a.b"]`` for keys that are not identifiers (``data["tls.key"]``).
Objects inside a ``List`` keep the document path (``items[3].spec...``) so a rewriter can walk
the document. Values inside an inline kustomize patch use ``patches[0].patch::<path in patch>``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsync.kube.labels import LAST_APPLIED_ANNOTATION
from secretsync.kube.podspec import CONTAINER_LISTS, pod_spec_paths
from secretsync.manifests.documents import (
    TEMPLATE_MARKER,
    is_literal_block,
    key_line,
    parse_yaml_stream,
    value_line,
)

from .detectors import Verdict, find_tokens
from .findings import LocationKind
from .formats import iter_leaves, parse_embedded, parse_env, parse_flags, path_join, split_path


@dataclass(slots=True)
class Candidate:
    """A value the detectors should look at, and where it stands."""

    location: LocationKind
    path: str
    key: str
    value: str | bytes
    line: int | None
    resource: str
    container: str | None = None
    subkey: str | None = None
    #: Every real value here is plaintext (Secret objects, secretGenerator).
    forced: bool = False
    #: Further lines where an ignore comment may stand (e.g. the env entry's ``name:`` line).
    anchors: tuple[int, ...] = ()
    #: The file the value stands in, when not the document's own (kustomize env files).
    file: str | None = None
    #: What to judge when it differs from ``value`` (``user:pass`` -> ``pass``).
    judged: str | None = None
    #: The name to judge by when it differs from ``key`` (a flag inside ``JAVA_OPTS``).
    judge_key: str | None = None
    #: Decided already (a token found in free text).
    verdict: Verdict | None = None
    #: Looked at only when this candidate is not a finding (flags inside ``JAVA_OPTS``).
    children: list[Candidate] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something malformed in an object: ``path`` names the field; the message never a value."""

    resource: str
    path: str
    message: str
    file: str | None = None


class Sink:
    """Collects problems while walking (one per object walk)."""

    __slots__ = ("problems",)

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, resource: str, path: str, message: str, file: str | None = None) -> None:
        self.problems.append(Problem(resource, path, message, file))


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _readable(name: str) -> str:
    return name.replace(TEMPLATE_MARKER, "{{ }}")


def resource_id(obj: Mapping[str, Any], kind: str | None = None) -> str:
    """``Kind/namespace/name`` of an object (empty parts when unknown)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    name = _text(meta.get("name")) or _text(meta.get("generateName")) or ""
    namespace = _text(meta.get("namespace")) or ""
    return f"{_readable(kind or _text(obj.get('kind')) or '')}/{_readable(namespace)}/{_readable(name)}"


# --------------------------------------------------------------------------------------------
# Kubernetes objects
# --------------------------------------------------------------------------------------------

_PUBLIC_KEY_NAMES = re.compile(r"(?i)(^|[./_-])(known_hosts|authorized_keys|[\w.-]*\.pub|ca\.crt|tls\.crt|"
                               r"ca-bundle\.crt|ca\.pem|cert\.pem|[\w.-]*\.crt)$")


def walk_object(obj: Any, sink: Sink, *, prefix: str = "", kind_hint: str | None = None) -> Iterator[Candidate]:
    """Every candidate value in one Kubernetes object (recursing into ``List`` items)."""
    if not isinstance(obj, Mapping):
        return
    kind = _text(obj.get("kind")) or kind_hint or ""
    items = obj.get("items")
    if (kind == "List" or kind.endswith("List")) and "items" in obj:
        ipath = path_join(prefix, "items")
        if not isinstance(items, list):
            if items is not None:
                sink.add(resource_id(obj, kind), ipath, "is not a list of objects")
            return
        item_kind = kind[:-4] if kind.endswith("List") and kind != "List" else None
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                sink.add(resource_id(obj, kind), f"{ipath}[{index}]", "is not an object")
                continue
            yield from walk_object(item, sink, prefix=f"{ipath}[{index}]", kind_hint=item_kind)
        return
    if not kind:
        if obj.get("kind") is not None:
            sink.add(resource_id(obj, "?"), path_join(prefix, "kind"), "is not a string")
        return
    resource = resource_id(obj, kind)
    yield from _walk_last_applied(obj, kind, resource, prefix, sink)
    if is_custom_resource(obj):
        yield from _walk_custom_resource(obj, kind, resource, prefix, sink)
        return
    yield from _walk_other_fields(obj, kind, resource, prefix)
    if kind == "Secret":
        yield from _walk_secret(obj, resource, prefix, sink)
        return
    if kind == "ConfigMap":
        yield from _walk_configmap(obj, resource, prefix, sink)
        return
    for spec_path in pod_spec_paths(kind):
        spec: Any = obj
        for part in spec_path:
            spec = spec.get(part) if isinstance(spec, Mapping) else None
        if spec is None:
            continue
        base = prefix
        for part in spec_path:
            base = path_join(base, part)
        if not isinstance(spec, Mapping):
            sink.add(resource, base, "is not a mapping")
            continue
        yield from _walk_pod_spec(spec, resource, base, sink)


#: kubectl keeps the whole object it last applied here, as JSON: every plaintext value again.
LAST_APPLIED = LAST_APPLIED_ANNOTATION


def _walk_last_applied(obj: Mapping[str, Any], kind: str, resource: str, prefix: str,
                       sink: Sink) -> Iterator[Candidate]:
    """The object inside ``kubectl.kubernetes.io/last-applied-configuration``, walked like the object.

    Its candidates keep the annotation's path and line, with the path inside the JSON after
    ``::`` (``metadata.annotations["kubectl..."]::spec.template...``).
    """
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    text = annotations.get(LAST_APPLIED) if isinstance(annotations, Mapping) else None
    if not isinstance(text, str) or not text.strip():
        return
    apath = path_join(path_join(path_join(prefix, "metadata"), "annotations"), LAST_APPLIED)
    try:
        inner = json.loads(text)
    except (ValueError, RecursionError):
        sink.add(resource, apath, "is not valid JSON; not scanned")
        return
    if not isinstance(inner, Mapping):
        return
    inner = {k: v for k, v in inner.items() if k != "metadata"} | {"kind": kind}  # no second annotation walk
    line = value_line(annotations, LAST_APPLIED)
    inner_sink = Sink()
    for cand in walk_object(inner, inner_sink):
        cand.path = f"{apath}::{cand.path}"
        cand.line, cand.anchors, cand.resource = line, (), resource
        cand.extra["in"] = "last-applied-configuration"
        yield cand
    for problem in inner_sink.problems:
        sink.add(resource, f"{apath}::{problem.path}", problem.message)


#: Subtrees the kind-specific walks cover; every other string in an object is searched for
#: known credential formats only (a token in a CRD's URL, an annotation).
_COVERED: dict[str, tuple[tuple[str, ...], ...]] = {
    "Secret": (("data",), ("stringData",)),
    "ConfigMap": (("data",), ("binaryData",)),
}
#: Helm values inside GitOps resources: judged like a values file (keyword names count).
_VALUES_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "HelmRelease": (("spec", "values"),),
    "Application": (("spec", "source", "helm", "valuesObject"),),
}
_NOT_CONFIG = frozenset({"status", "managedFields"})


def _under(base: str, path: str) -> str:
    """A path made by :func:`path_join` put under ``base`` (both already escaped)."""
    if not base:
        return path
    return base + path if not path or path.startswith("[") else f"{base}.{path}"


def _covered(kind: str) -> set[tuple[str, ...]]:
    paths = set(_COVERED.get(kind, ())) | set(_VALUES_FIELDS.get(kind, ()))
    for spec_path in pod_spec_paths(kind):
        paths |= {(*spec_path, group) for group in CONTAINER_LISTS}
    return paths


def _walk_other_fields(obj: Mapping[str, Any], kind: str, resource: str, prefix: str,
                       budget: int = 50_000, extra_covered: set[tuple[str, ...]] | None = None
                       ) -> Iterator[Candidate]:
    """Known credential formats in fields no kind-specific walk looks at, and Helm values kept in
    a Flux HelmRelease or an Argo CD Application (``location`` ``field``: moved by hand)."""
    covered = _covered(kind) | (extra_covered or set())
    for steps in _VALUES_FIELDS.get(kind, ()):
        node: Any = obj
        for part in steps:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            base = prefix
            for part in steps:
                base = path_join(base, part)
            try:
                for cand in walk_values(node, resource, budget, location="field"):
                    cand.path = _under(base, cand.path)
                    yield cand
            except ValueError:
                pass  # over budget: the values walk of the file reports it
    stack: list[tuple[Any, tuple[str, ...], str, Any, str]] = [(obj, (), prefix, None, "")]
    count: dict[str, int] = {}
    while stack and budget > 0:
        node, steps, path, parent, key = stack.pop()
        budget -= 1
        if steps in covered:
            continue
        if isinstance(node, Mapping):
            for k, v in node.items():
                name = str(k)
                if name in _NOT_CONFIG or (steps == ("metadata", "annotations") and name == LAST_APPLIED):
                    continue
                stack.append((v, (*steps, name), path_join(path, name), node, name))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                stack.append((v, steps, f"{path}[{i}]", node, key))
        elif isinstance(node, str) and len(node) >= 16:
            line = value_line(parent, key if isinstance(parent, Mapping) else 0)
            for tok in find_tokens(node):
                count[tok.rule] = count.get(tok.rule, 0) + 1
                yield Candidate("field", path, key, node[tok.start:tok.end], line, resource,
                                subkey=f"{tok.rule}#{count[tok.rule]}", verdict=Verdict(tok.rule, tok.confidence))


#: API groups of custom resources that name secrets rather than hold them (their fields are
#: references, ciphertext or our own objects): only known token formats are searched there.
_REFERENCE_GROUPS = ("external-secrets.io", "secretsync.io", "cert-manager.io", "bitnami.com",
                     "secrets-store.csi.x-k8s.io", "secrets.hashicorp.com")


def is_custom_resource(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is a custom resource: its API group has a dot and is not a Kubernetes one.

    ``apps/v1``, ``batch/v1``, ``networking.k8s.io/v1`` are built in; ``kafka.strimzi.io/v1beta2``,
    ``ray.io/v1``, ``jobset.x-k8s.io/v1alpha2``, ``argoproj.io/v1alpha1`` are not.
    """
    api = _text(obj.get("apiVersion")) or ""
    group = api.rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io") and group != "k8s.io"


def _is_pod_spec(node: Mapping[str, Any]) -> bool:
    return any(isinstance(node.get(g), list) for g in CONTAINER_LISTS)


def _is_container(node: Mapping[str, Any]) -> bool:
    """A container-shaped mapping: an ``env`` list of ``name``d entries, or an image with a command."""
    env = node.get("env")
    if isinstance(env, list) and env and all(isinstance(e, Mapping) and "name" in e for e in env):
        return True
    return isinstance(node.get("image"), str) and ("command" in node or "args" in node)


def _walk_custom_resource(obj: Mapping[str, Any], kind: str, resource: str, prefix: str,
                          sink: Sink, budget: int = 50_000) -> Iterator[Candidate]:
    """A custom resource, with the same care as a workload and a ConfigMap.

    Any pod spec (a mapping holding ``containers``) or container (an ``env`` list, an image
    with a command) anywhere in it is walked as a workload's (RayCluster head and worker
    groups, JobSet jobs, Argo Workflow templates, Tekton steps). Every other leaf of the
    object, outside ``metadata`` and ``status``, is judged by its key's name like a ConfigMap
    entry (Kafka Connect ``config`` with ``connection.password``, Strimzi ``sasl.jaas.config``);
    known token formats are searched in every string, as for any object. Findings in these
    fields are ``location`` ``field``: the migrator leaves them to be moved by hand.
    """
    if any(str(obj.get("apiVersion", "")).startswith(g) or f".{g}/" in str(obj.get("apiVersion", ""))
           for g in _REFERENCE_GROUPS):
        yield from _walk_other_fields(obj, kind, resource, prefix)
        return
    covered: set[tuple[str, ...]] = set()
    values_fields = set(_VALUES_FIELDS.get(kind, ()))  # walked as Helm values by _walk_other_fields
    leaves: list[tuple[str, str, str, Any, tuple[str, ...]]] = []  # (path, key, text, parent, steps)
    stack: list[tuple[Any, tuple[str, ...], str, Any, str]] = [(obj, (), prefix, None, "")]
    while stack and budget > 0:
        node, steps, path, parent, key = stack.pop()
        budget -= 1
        if steps in values_fields:
            continue
        if isinstance(node, Mapping):
            if steps and _is_pod_spec(node):
                covered |= {(*steps, g) for g in CONTAINER_LISTS}
                yield from _walk_pod_spec(node, resource, path, sink)
                rest = {k: v for k, v in node.items() if k not in CONTAINER_LISTS}
                node = rest
            elif steps and _is_container(node):
                covered |= {(*steps, f) for f in ("env", "command", "args")}
                name = _text(node.get("name"))
                yield from _walk_env(node, resource, path, name, sink)
                yield from _walk_command(node, resource, path, name, sink)
                node = {k: v for k, v in node.items() if k not in ("env", "command", "args")}
            for k, v in node.items():
                name = str(k)
                if not steps and name in ("metadata", "apiVersion", "kind"):
                    continue
                if name in _NOT_CONFIG:
                    continue
                stack.append((v, (*steps, name), path_join(path, name), node, name))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                stack.append((v, steps, f"{path}[{i}]", node, key))
        else:
            text = _text(node)
            if text is not None and isinstance(parent, Mapping):
                leaves.append((path, key, text, parent, steps))
    yield from _walk_other_fields(obj, kind, resource, prefix, extra_covered=covered)
    for path, key, text, parent, _steps in reversed(leaves):
        if len(text) >= 16 and next(find_tokens(text), None) is not None:
            continue  # the token search above reports it
        line = value_line(parent, key)
        yield from embedded_candidates(key, text, line, is_literal_block(parent, key), path, resource,
                                       location="field", anchors=tuple(x for x in (key_line(parent, key),) if x))


def _walk_pod_spec(spec: Mapping[str, Any], resource: str, base: str, sink: Sink) -> Iterator[Candidate]:
    for group in CONTAINER_LISTS:
        containers = spec.get(group)
        if containers is None:
            continue
        gpath = path_join(base, group)
        if not isinstance(containers, list):
            sink.add(resource, gpath, "is not a list of containers")
            continue
        for index, container in enumerate(containers):
            cpath = f"{gpath}[{index}]"
            if not isinstance(container, Mapping):
                sink.add(resource, cpath, "is not a container mapping")
                continue
            name = _text(container.get("name"))
            yield from _walk_env(container, resource, cpath, name, sink)
            yield from _walk_command(container, resource, cpath, name, sink)


def _walk_env(container: Mapping[str, Any], resource: str, cpath: str, cname: str | None,
              sink: Sink) -> Iterator[Candidate]:
    env = container.get("env")
    if env is None:
        return
    epath = path_join(cpath, "env")
    if not isinstance(env, list):
        sink.add(resource, epath, "is not a list of env vars")
        return
    for index, item in enumerate(env):
        ipath = f"{epath}[{index}]"
        if not isinstance(item, Mapping):
            sink.add(resource, ipath, "is not an env var mapping")
            continue
        if "value" not in item:
            continue  # valueFrom: a reference
        raw = item.get("value")
        if raw is None:
            continue
        value = _text(raw)
        name = _text(item.get("name")) or ""
        if value is None:
            sink.add(resource, f"{ipath}.value", f"env var {name or '?'} has a non-scalar value")
            continue
        line = value_line(item, "value")
        anchors = tuple(x for x in (key_line(item, "name"), value_line(env, index)) if x)
        cand = Candidate("env", f"{ipath}.value", name, value, line, resource, container=cname, anchors=anchors)
        if " -" in value or value.startswith("-") or "=" in value:
            for hit in parse_flags([value]):
                cand.children.append(Candidate(
                    "env", f"{ipath}.value", name, hit.value, line, resource, container=cname,
                    subkey=hit.key, anchors=anchors, judged=hit.judged,
                    judge_key="password" if hit.judged is not None else hit.key,
                ))
        yield cand


def _walk_command(container: Mapping[str, Any], resource: str, cpath: str, cname: str | None,
                  sink: Sink) -> Iterator[Candidate]:
    args: list[str] = []
    where: list[tuple[str, int | None]] = []  # (path, line) of each element of args
    for field_name in ("command", "args"):
        items = container.get(field_name)
        if items is None:
            continue
        fpath = path_join(cpath, field_name)
        if not isinstance(items, list):
            sink.add(resource, fpath, "is not a list of strings")
            continue
        for index, item in enumerate(items):
            text = _text(item)
            if text is None:
                sink.add(resource, f"{fpath}[{index}]", "is not a string")
                continue
            args.append(text)
            where.append((f"{fpath}[{index}]", value_line(items, index)))
    if not args:
        return
    flagged: dict[int, list[str]] = {}
    for hit in parse_flags(args):
        path, line = where[hit.arg_index]
        flagged.setdefault(hit.arg_index, []).append(hit.value)
        yield Candidate("arg", path, hit.key, hit.value, line + hit.line if line else line, resource,
                        container=cname, judged=hit.judged,
                        judge_key="password" if hit.judged is not None else None)
    for index, text in enumerate(args):
        if len(text) < 16:
            continue
        count: dict[str, int] = {}
        for tok in find_tokens(text):
            token = text[tok.start:tok.end]
            if any(token in v or v in token for v in flagged.get(index, []) if v):
                continue
            path, line = where[index]
            count[tok.rule] = count.get(tok.rule, 0) + 1
            yield Candidate(
                "arg", path, path.rsplit(".", 1)[-1], token,
                (line + text.count("\n", 0, tok.start)) if line else line, resource, container=cname,
                subkey=f"{tok.rule}#{count[tok.rule]}", verdict=Verdict(tok.rule, tok.confidence),
            )


def _walk_configmap(obj: Mapping[str, Any], resource: str, prefix: str, sink: Sink) -> Iterator[Candidate]:
    data = obj.get("data")
    if data is None:
        return
    dpath = path_join(prefix, "data")
    if not isinstance(data, Mapping):
        sink.add(resource, dpath, "is not a mapping")
        return
    for key, raw in data.items():
        kpath = path_join(dpath, str(key))
        value = _text(raw)
        if value is None:
            if raw is not None:
                sink.add(resource, kpath, "is not a string")
            continue
        line = value_line(data, key)
        anchors = tuple(x for x in (key_line(data, key),) if x)
        yield from embedded_candidates(str(key), value, line, is_literal_block(data, key), kpath, resource,
                                       location="configmap", anchors=anchors)


def embedded_candidates(
    key: str, value: str, line: int | None, literal: bool, path: str, resource: str, *,
    location: LocationKind, anchors: tuple[int, ...] = (), file: str | None = None, forced: bool = False,
    budget: int = 200_000,
) -> Iterator[Candidate]:
    """A data value: one candidate when it is a plain value, its entries when it is a file.

    ``location`` is the kind for the plain case; entries of an embedded file are
    ``configmap-embedded`` (or ``kustomize-envfile`` for generator files).
    """
    is_file = "\n" in value.strip() or value.lstrip().startswith(("{", "machine ", "default "))
    if not is_file:
        cand = Candidate(location, path, key, value, line, resource, anchors=anchors, file=file, forced=forced)
        cand.children.extend(jaas_options(cand))
        yield cand
        return
    fmt, entries = parse_embedded(key, value, budget=budget)
    sub_location: LocationKind = (
        "kustomize-envfile" if location.startswith("kustomize")
        else location if location in ("helm-values", "field") else "configmap-embedded"
    )

    def at(offset: int) -> int | None:
        if line is None:
            return None
        return line + offset if literal or file is not None else line

    covered: set[int] = set()
    for entry in entries:
        covered.add(entry.line)
        cand = Candidate(sub_location, path, entry.key, entry.value, at(entry.line), resource,
                         subkey=entry.subkey, anchors=anchors, file=file, extra={"format": fmt})
        cand.children.extend(jaas_options(cand))
        yield cand
    count: dict[str, int] = {}
    line_starts: list[int] | None = None
    for tok in find_tokens(value):
        if line_starts is None:
            line_starts = [0] + [i + 1 for i, ch in enumerate(value) if ch == "\n"]
        offset = _line_index(line_starts, tok.start)
        if offset in covered:
            continue
        count[tok.rule] = count.get(tok.rule, 0) + 1
        yield Candidate(sub_location, path, key, value[tok.start:tok.end], at(offset), resource,
                        subkey=f"{tok.rule}#{count[tok.rule]}", anchors=anchors, file=file,
                        verdict=Verdict(tok.rule, tok.confidence), extra={"format": fmt or "text"})


_JAAS_OPTION = re.compile(r"""\b([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def jaas_options(cand: Candidate) -> list[Candidate]:
    """The ``password="..."`` options of a JAAS line (Kafka's ``sasl.jaas.config``), judged by option name.

    ``org.apache.kafka...PlainLoginModule required username="app" password="...";`` under a
    neutral key holds a password all the same; each quoted option becomes a child candidate
    (looked at only when the whole value is not a finding), keeping the value's line.
    """
    value = cand.value if isinstance(cand.value, str) else ""
    if "LoginModule" not in value:
        return []
    out: list[Candidate] = []
    for match in _JAAS_OPTION.finditer(value):
        option = match.group(1)
        text = match.group(2) if match.group(2) is not None else match.group(3)
        out.append(Candidate(cand.location, cand.path, cand.key, text, cand.line, cand.resource,
                             subkey=option, anchors=cand.anchors, file=cand.file, judge_key=option,
                             extra=dict(cand.extra)))
    return out


def _line_index(starts: list[int], pos: int) -> int:
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if starts[mid] <= pos:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


def _walk_secret(obj: Mapping[str, Any], resource: str, prefix: str, sink: Sink) -> Iterator[Candidate]:
    for field_name in ("data", "stringData"):
        data = obj.get(field_name)
        if data is None:
            continue
        dpath = path_join(prefix, field_name)
        if not isinstance(data, Mapping):
            sink.add(resource, dpath, "is not a mapping")
            continue
        for key, raw in data.items():
            k = str(key)
            kpath = path_join(dpath, k)
            text = _text(raw)
            if text is None:
                if raw is not None:
                    sink.add(resource, kpath, "is not a string")
                continue
            line = value_line(data, key)
            anchors = tuple(x for x in (key_line(data, k),) if x)
            value: str | bytes = text
            judged: str | None = None
            if field_name == "data" and text.strip() and TEMPLATE_MARKER not in text and "{{" not in text:
                try:
                    decoded = base64.b64decode("".join(text.split()), validate=True)
                except (binascii.Error, ValueError):
                    sink.add(resource, kpath, "is not valid base64 (reported as plaintext)")
                else:
                    value = decoded
                    try:
                        judged = decoded.decode("utf-8")
                    except UnicodeDecodeError:
                        judged = None  # binary (a keystore): the scanner reports it as is
            if _PUBLIC_KEY_NAMES.search(k) and "PRIVATE KEY" not in (judged or text):
                continue
            yield Candidate("secret", kpath, k, value, line, resource, forced=True, anchors=anchors,
                            judged=judged)


# --------------------------------------------------------------------------------------------
# Helm values
# --------------------------------------------------------------------------------------------


def walk_values(root: Any, resource: str, budget: int = 200_000,
                location: LocationKind = "helm-values") -> Iterator[Candidate]:
    """Every leaf of a Helm values file, by dotted path (``db.password``).

    A multi-line leaf is usually a file the chart writes into a ConfigMap (``config: |`` with
    an ``.ini``, ``redis.conf``, ``application.yml``): its entries are judged one by one.
    """
    for path, key, value, line in iter_leaves(root, budget=budget):
        if "\n" in value.strip():
            yield from embedded_candidates(key, value, line, _literal_leaf(root, path), path, resource,
                                           location=location, budget=budget)
            continue
        yield Candidate(location, path, key, value, line, resource)


def _literal_leaf(root: Any, path: str) -> bool:
    """Whether the leaf at ``path`` was written as a ``|`` block (its lines map 1:1 to the file)."""
    try:
        steps = split_path(path)
    except ValueError:
        return False
    node = root
    for step in steps[:-1]:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return False
    return bool(steps) and isinstance(steps[-1], str) and is_literal_block(node, steps[-1])


# --------------------------------------------------------------------------------------------
# Kustomize
# --------------------------------------------------------------------------------------------

#: read(relative path from the kustomization's directory) -> (text, display path) or raises OSError/ValueError
FileReader = Callable[[str], tuple[str, str]]


def walk_kustomization(doc: Mapping[str, Any], sink: Sink, read: FileReader, *, file: str,
                       budget: int = 200_000) -> Iterator[Candidate]:
    """secretGenerator/configMapGenerator literals, env files and files; inline patches."""
    default_ns = _text(doc.get("namespace")) or ""
    for gen_field, kind in (("secretGenerator", "Secret"), ("configMapGenerator", "ConfigMap")):
        gens = doc.get(gen_field)
        if gens is None:
            continue
        if not isinstance(gens, list):
            sink.add(f"Kustomization//{file}", gen_field, "is not a list")
            continue
        for gi, gen in enumerate(gens):
            gpath = f"{gen_field}[{gi}]"
            if not isinstance(gen, Mapping):
                sink.add(f"Kustomization//{file}", gpath, "is not a mapping")
                continue
            name = _text(gen.get("name")) or ""
            ns = _text(gen.get("namespace")) or default_ns
            resource = f"{kind}/{ns}/{name}"
            forced = kind == "Secret"
            yield from _generator_literals(gen, gpath, resource, forced, sink)
            yield from _generator_envs(gen, gpath, resource, forced, sink, read)
            yield from _generator_files(gen, gpath, resource, forced, sink, read, budget)
    charts = doc.get("helmCharts")
    for ci, chart in enumerate(charts if isinstance(charts, list) else []):
        inline = chart.get("valuesInline") if isinstance(chart, Mapping) else None
        if isinstance(inline, Mapping):  # kustomize --enable-helm: values written in the kustomization
            name = _text(chart.get("releaseName")) or _text(chart.get("name")) or ""
            for cand in walk_values(inline, f"HelmChart/{default_ns}/{name}", budget, location="field"):
                cand.path = _under(f"helmCharts[{ci}].valuesInline", cand.path)
                yield cand
    yield from _inline_patches(doc, sink)


def _generator_literals(gen: Mapping[str, Any], gpath: str, resource: str, forced: bool,
                        sink: Sink) -> Iterator[Candidate]:
    literals = gen.get("literals")
    if literals is None:
        return
    lpath = f"{gpath}.literals"
    if not isinstance(literals, list):
        sink.add(resource, lpath, "is not a list")
        return
    for li, literal in enumerate(literals):
        text = _text(literal)
        if text is None or "=" not in text:
            sink.add(resource, f"{lpath}[{li}]", "is not a KEY=VALUE string")
            continue
        key, _, value = text.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        yield Candidate("kustomize-literal", f"{lpath}[{li}]", key.strip(), value, value_line(literals, li),
                        resource, forced=forced)


def _file_list(gen: Mapping[str, Any], name: str) -> list[Any]:
    value = gen.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _generator_envs(gen: Mapping[str, Any], gpath: str, resource: str, forced: bool, sink: Sink,
                    read: FileReader) -> Iterator[Candidate]:
    for field_name in ("envs", "env"):
        for ei, item in enumerate(_file_list(gen, field_name)):
            epath = f"{gpath}.{field_name}" + (f"[{ei}]" if isinstance(gen.get(field_name), list) else "")
            rel = _text(item)
            if rel is None:
                sink.add(resource, epath, "is not a file path")
                continue
            try:
                text, shown = read(rel)
            except (OSError, ValueError) as exc:
                sink.add(resource, epath, f"env file {rel!r}: {exc}")
                continue
            for entry in parse_env(text):
                yield Candidate("kustomize-envfile", epath, entry.key, entry.value, entry.line + 1, resource,
                                forced=forced, file=shown)


def _generator_files(gen: Mapping[str, Any], gpath: str, resource: str, forced: bool, sink: Sink,
                     read: FileReader, budget: int) -> Iterator[Candidate]:
    items = _file_list(gen, "files")
    for fi, item in enumerate(items):
        fpath = f"{gpath}.files[{fi}]"
        spec = _text(item)
        if spec is None:
            sink.add(resource, fpath, "is not a file path")
            continue
        key, sep, rel = spec.partition("=")
        if not sep:
            rel = key
            key = rel.rstrip("/").rsplit("/", 1)[-1]
        try:
            text, shown = read(rel.strip())
        except (OSError, ValueError) as exc:
            sink.add(resource, fpath, f"file {rel.strip()!r}: {exc}")
            continue
        if forced:
            if _PUBLIC_KEY_NAMES.search(key) and "PRIVATE KEY" not in text:
                continue
            yield Candidate("kustomize-envfile", fpath, key.strip(), text, 1, resource, forced=True, file=shown)
        else:
            yield from embedded_candidates(key.strip(), text, 1, True, fpath, resource,
                                           location="kustomize-envfile", file=shown, budget=budget)


def _inline_patches(doc: Mapping[str, Any], sink: Sink) -> Iterator[Candidate]:
    patches: list[tuple[str, Any, int | None]] = []
    raw = doc.get("patches")
    if isinstance(raw, list):
        for index, patch in enumerate(raw):
            if isinstance(patch, Mapping) and isinstance(patch.get("patch"), str):
                patches.append((f"patches[{index}].patch", patch["patch"], value_line(patch, "patch")))
    for field_name in ("patchesStrategicMerge", "patchesJson6902"):
        raw = doc.get(field_name)
        if isinstance(raw, list):
            for index, patch in enumerate(raw):
                if isinstance(patch, str) and "\n" in patch:
                    patches.append((f"{field_name}[{index}]", patch, value_line(raw, index)))
                elif isinstance(patch, Mapping) and isinstance(patch.get("patch"), str):
                    patches.append((f"{field_name}[{index}].patch", patch["patch"], value_line(patch, "patch")))
    for path, text, line in patches:
        offset = (line - 1) if line else 0
        stream = parse_yaml_stream("\n" * offset + text)
        for problem in stream.problems:
            sink.add("Kustomization//", path, f"inline patch: {problem}")
        for document in stream.documents:
            root = document.root
            if isinstance(root, Mapping):
                for cand in walk_object(root, sink):
                    cand.path = f"{path}::{cand.path}"
                    yield cand
            elif isinstance(root, list):  # JSON 6902 operations
                for cand in json6902_candidates(root, "Kustomization//"):
                    cand.path = f"{path}::{cand.path}"
                    yield cand


def is_json6902(root: Any) -> bool:
    """A JSON 6902 patch document: a list of ``{op, path, ...}`` operations."""
    return isinstance(root, list) and bool(root) and all(
        isinstance(op, Mapping) and isinstance(op.get("op"), str) and isinstance(op.get("path"), str) for op in root)


def json6902_candidates(ops: list[Any], resource: str) -> Iterator[Candidate]:
    """The values a JSON 6902 patch sets (``add``/``replace``), each named by the last segment of
    its target path (``/data/DB_PASSWORD`` -> ``DB_PASSWORD``; an env entry ``{name, value}`` by
    its name), so keyword rules judge them as they judge the object the patch lands in."""
    for index, op in enumerate(ops):
        if not isinstance(op, Mapping) or op.get("op") not in ("add", "replace") or "value" not in op:
            continue
        where = f"json6902[{index}].value"
        value = op["value"]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            segment = str(op.get("path") or "").rstrip("/").rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
            yield Candidate("field", where, segment or "value", str(value), value_line(op, "value"), resource)
        elif isinstance(value, Mapping | list):
            for leaf_path, key, leaf, vline in iter_leaves(value):
                yield Candidate("field", path_join(where, leaf_path), key, leaf, vline, resource)
