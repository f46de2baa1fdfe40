# long-file: one ESO converter, kind by kind, one report; a split now would collide with wip/esofields
"""Convert External Secrets Operator manifests (external-secrets.io v1beta1 / v1) to secretsync's.

Why a converter that reports instead of one that guesses: a migration tool that silently
drops ``metadataPolicy: Fetch`` or a generator leaves a cluster with Secrets that look
right and are not. Every field is either converted, dropped with a *note* because it has
no effect here, or reported as an *issue* naming ``Kind/namespace/name`` and the field
path (``ExternalSecret/default/x: spec.dataFrom[0].sourceRef.generatorRef: generators are
not supported``). Each converted object is then parsed with our own parser (and its
provider block checked by the provider's factory when installed), so whatever we print
is accepted by the controller.

Provider blocks are kept as ESO writes them: each provider reads its own block, in ESO's
dialect as in ours (:class:`secretsync.api.models.ProviderSpec`), so a store converts by its
apiVersion alone and the provider names what it cannot do. A scalar field written as a
documentation placeholder in brackets (``projectID: [PROJECT_ID]``, which YAML reads as a list)
is taken as that placeholder, with a note to fill it in.

Templates: Go templates are translated by :mod:`.gotemplate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from secretsync.core.registry import provider_for_block, provider_names

from .fields import child
from .fields import plain as _plain
from .gotemplate import translate
from .models import (
    API_VERSION,
    KIND_CLUSTER_EXTERNAL_SECRET,
    KIND_CLUSTER_PUSH_SECRET,
    KIND_CLUSTER_SECRET_STORE,
    KIND_EXTERNAL_SECRET,
    KIND_PUSH_SECRET,
    KIND_SECRET_STORE,
    PUSH_METADATA_KEYS,
    InvalidSpec,
    check_provider_config,
    format_duration,
    object_ref,
    parse_duration,
    parse_object,
)
from .template import TemplateEngine

ESO_GROUP = "external-secrets.io"
ESO_VERSIONS = ("v1", "v1beta1", "v1alpha1")
_CONVERTIBLE = (KIND_EXTERNAL_SECRET, KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE, KIND_CLUSTER_EXTERNAL_SECRET,
                KIND_PUSH_SECRET, KIND_CLUSTER_PUSH_SECRET)
_UNSUPPORTED_KINDS: dict[str, str] = {}
#: metadata fields a cluster export carries that must not be re-applied.
_DROP_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                  "ownerReferences", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "finalizers")


@dataclass
class Conversion:
    """Converted documents, what could not be converted (issues) and what changed (notes)."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Per output document: the issues that concern it (written as comments above it).
    doc_issues: list[list[str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues


class _Obj:
    """Collects issues and notes for one object, prefixed with its reference."""

    def __init__(self, ref: str, result: Conversion) -> None:
        self.ref = ref
        self.result = result
        self.issues: list[str] = []

    def cannot(self, path: str, why: str) -> None:
        text = f"{self.ref}: {path}: {why}" if path else f"{self.ref}: {why}"
        self.issues.append(text)
        self.result.issues.append(text)

    def note(self, path: str, what: str) -> None:
        self.result.notes.append(f"{self.ref}: {path}: {what}" if path else f"{self.ref}: {what}")

    def rest(self, obj: Mapping[str, Any], path: str, handled: set[str]) -> None:
        """Report every field of ``obj`` not handled (none may vanish silently)."""
        for key in obj:
            if key not in handled:
                self.cannot(child(path, str(key)), "no equivalent in secretsync (field not converted)")


# --------------------------------------------------------------------------- YAML in
class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (ESO's docs contain some)."""

    duplicates: list[tuple[int, str, bool]]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            same = loader.construct_object(seen[key], deep=True) == loader.construct_object(value_node, deep=True)
            loader.duplicates.append((key_node.start_mark.line + 1, str(key), same))
        seen[key] = value_node
    return yaml.SafeLoader.construct_mapping(loader, node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text: str, source: str = "<input>") -> tuple[list[Any], list[str], list[str]]:
    """Parse a YAML stream: (documents, issues, notes).

    Lines that are exactly ``{% raw %}`` / ``{% endraw %}`` (a docs-site wrapper around
    examples) are removed with a note. A YAML error is an issue naming the line; documents
    before it are kept. Duplicate keys: the last value wins (as PyYAML and most tools do);
    an issue when the values differ, a note when they are equal.
    """
    issues: list[str] = []
    notes: list[str] = []
    lines = text.splitlines(keepends=True)
    kept = [ln if ln.strip() not in ("{% raw %}", "{% endraw %}") else "\n" for ln in lines]
    if kept != lines:
        notes.append("removed {% raw %}/{% endraw %} wrapper lines (documentation markup, not YAML)")
    text = "".join(kept)
    loader = _Loader(text)
    loader.duplicates = []
    docs: list[Any] = []
    try:
        while loader.check_data():  # type: ignore[no-untyped-call]
            docs.append(loader.get_data())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        issues.append(f"{where}not valid YAML ({problem}); nothing after this point was converted")
    finally:
        loader.dispose()
    for line, key, same in loader.duplicates:
        if same:
            notes.append(f"line {line}: duplicate key {key!r} with the same value")
        else:
            issues.append(f"line {line}: duplicate key {key!r}: the earlier value is ignored (fix the source)")
    return docs, issues, notes


# --------------------------------------------------------------------------- helpers
def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _mapping_or_none(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _list(value: Any, o: _Obj, path: str) -> list[Any]:
    """A list field; anything else is reported (and treated as empty)."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    o.cannot(path, "must be a list")
    return []


def _sel(ref: Any) -> dict[str, Any] | None:
    """ESO SecretKeySelector -> ours (same shape: name, key, namespace)."""
    if not isinstance(ref, Mapping):
        return None
    return {k: ref[k] for k in ("name", "key", "namespace") if ref.get(k) is not None}


def _labels(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _interval(value: Any) -> str | None:
    """ESO durations are Go strings; a few places take integer seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return format_duration(float(value))
    if isinstance(value, str):
        try:
            return format_duration(parse_duration(value))
        except ValueError:
            return value
    return None


# --------------------------------------------------------------------------- stores
def _convert_store(doc: Mapping[str, Any], o: _Obj) -> dict[str, Any]:
    spec = _mapping(doc.get("spec"))
    out: dict[str, Any] = {}
    provider = spec.get("provider")
    if isinstance(provider, Mapping):
        names = [str(n) for n in provider if provider.get(n) is not None]
        if len(names) != 1:
            o.cannot("spec.provider", f"exactly one provider must be set (got {', '.join(names) or 'none'}); "
                                      "a store holds one provider block in ESO too")
        elif provider_for_block(names[0]) is None:
            o.cannot(f"spec.provider.{names[0]}", f"no installed provider answers to {names[0]!r} "
                                                   f"(installed: {', '.join(provider_names())})")
        else:
            out["provider"] = {names[0]: _plain(provider[names[0]])}
    else:
        o.cannot("spec.provider", "required")
    if spec.get("controller"):
        out["controller"] = str(spec["controller"])
    if "retrySettings" in spec:
        o.note("spec.retrySettings", "dropped: secretsync retries with its own bounded backoff")
    if spec.get("refreshInterval") is not None:
        interval = _interval(spec["refreshInterval"])
        if interval:
            out["refreshInterval"] = interval
    if isinstance(spec.get("conditions"), list):
        conds = []
        for i, c in enumerate(spec["conditions"]):
            if not isinstance(c, Mapping):
                continue
            conds.append({k: c[k] for k in ("namespaces", "namespaceSelector", "namespaceRegexes") if k in c})
            o.rest(c, f"spec.conditions[{i}]", {"namespaces", "namespaceSelector", "namespaceRegexes"})
        if conds:
            out["conditions"] = conds
    o.rest(spec, "spec", {"provider", "controller", "retrySettings", "refreshInterval", "conditions"})
    return out


def _note_tenant_rules(store: Any, o: _Obj) -> None:
    """Where secretsync refuses on purpose what ESO lets a namespaced SecretStore do (docs/security.md)."""
    from secretsync.core.contract import DescribesCredentialUse
    from secretsync.core.errors import ProviderError
    from secretsync.core.registry import get_factory

    spec = store.spec.provider
    try:
        factory = get_factory(spec.name)
    except ProviderError:
        return
    if not isinstance(factory, DescribesCredentialUse):
        return
    use = factory.credential_use(spec.config, frozenset(c.credential for c in spec.credentials))
    path = f"spec.provider.{spec.key}"
    if use.ambient:
        o.note(path, "differs from ESO on purpose: a SecretStore must bring its own credentials; without them "
                     "it would use the controller's identity, which only a ClusterSecretStore may (or set "
                     "--allow-namespaced-ambient-identity)")
    for f in use.local_files:
        o.note(f"{path}.{f}", "differs from ESO on purpose: a SecretStore may not name a file of the controller; "
                              "use a ClusterSecretStore (with --allow-cluster-store-files)")


_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _unwrap_placeholders(value: Any, path: str, found: list[str]) -> Any:
    """``[PROJECT_ID]`` (a YAML list of one upper-case word, the docs' placeholder notation) -> the word."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str) and _PLACEHOLDER.match(value[0]):
        found.append(path)
        return value[0]
    if isinstance(value, Mapping):
        return {k: _unwrap_placeholders(v, f"{path}.{k}", found) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- ExternalSecret
def _remote_ref(ref: Mapping[str, Any], o: _Obj, path: str, fields: tuple[str, ...],
                also: frozenset[str] = frozenset()) -> dict[str, Any]:
    out = {k: ref[k] for k in fields if ref.get(k) is not None}
    if ref.get("decodingStrategy") not in (None, "None"):
        out["decodingStrategy"] = ref["decodingStrategy"]
    if ref.get("conversionStrategy") == "Unicode":
        out["conversionStrategy"] = "Unicode"
    elif ref.get("conversionStrategy") not in (None, "Default"):
        o.cannot(f"{path}.conversionStrategy", f"{ref['conversionStrategy']} is not supported (Default, Unicode)")
    if ref.get("metadataPolicy") == "Fetch":
        out["metadataPolicy"] = "Fetch"
    elif ref.get("metadataPolicy") not in (None, "None"):
        o.cannot(f"{path}.metadataPolicy", f"{ref['metadataPolicy']!r} is not supported (None, Fetch)")
    o.rest(ref, path, {*fields, *also, "decodingStrategy", "conversionStrategy", "metadataPolicy"})
    return out


def _source_ref(item: Mapping[str, Any], o: _Obj, path: str) -> dict[str, Any] | None:
    """An item's own store (``sourceRef.storeRef``), converted; None when the item has none."""
    src = item.get("sourceRef")
    if not isinstance(src, Mapping):
        return None
    if src.get("generatorRef") is not None:
        o.cannot(f"{path}.sourceRef.generatorRef", "generators are not supported")
    o.rest(src, f"{path}.sourceRef", {"generatorRef", "storeRef"})
    sref = src.get("storeRef")
    if isinstance(sref, Mapping):
        o.rest(sref, f"{path}.sourceRef.storeRef", {"name", "kind"})
        return {"storeRef": {"name": sref.get("name"), "kind": sref.get("kind", KIND_SECRET_STORE)}}
    return None


def _template_text(text: Any, o: _Obj, path: str, engine: TemplateEngine) -> str:
    if not isinstance(text, str):
        o.cannot(path, "must be a string")
        return ""
    tr = translate(text)
    for p in tr.problems:
        o.cannot(path, p)
    for n in tr.notes:
        o.note(path, n)
    if not tr.problems and not tr.helm_escaped:
        try:
            engine.check_syntax(o.ref, path, tr.text)
        except Exception as exc:
            o.cannot(path, f"translated template does not compile: {exc}")
    return tr.text


def _convert_template(t: Mapping[str, Any], o: _Obj, path: str, engine: TemplateEngine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if t.get("type"):
        out["type"] = t["type"]
    md = t.get("metadata")
    if isinstance(md, Mapping):
        m: dict[str, Any] = {}
        for key in ("labels", "annotations"):
            values = _labels(md.get(key))
            for k, v in list(values.items()):
                if "{{" in v:
                    where = child(f"{path}.metadata.{key}", k)
                    values[k] = _template_text(v, o, where, engine)
                    o.note(where, "templated metadata is refused when it would carry a fetched value (hash it: "
                                  "sha256sum); see docs/sync-api.md")
            if values:
                m[key] = values
        if md.get("finalizers"):
            o.cannot(f"{path}.metadata.finalizers", "setting finalizers on the Secret is not supported")
        o.rest(md, f"{path}.metadata", {"labels", "annotations", "finalizers"})
        if m:
            out["metadata"] = m
    engine_version = t.get("engineVersion", "v2")
    if engine_version == "v1":
        o.note(f"{path}.engineVersion", "v1 templates translated as v2 (values are strings)")
    elif engine_version != "v2":
        o.cannot(f"{path}.engineVersion", f"{engine_version!r} is not supported")
    if t.get("mergePolicy") in ("Replace", "Merge"):
        if t["mergePolicy"] == "Merge":
            out["mergePolicy"] = "Merge"
    elif t.get("mergePolicy") is not None:
        o.cannot(f"{path}.mergePolicy", f"{t['mergePolicy']!r} is not supported")
    data = t.get("data")
    if isinstance(data, Mapping):
        out["data"] = {str(k): _template_text(v, o, child(f"{path}.data", str(k)), engine) for k, v in data.items()}
    tf_out = []
    for i, tf in enumerate(_list(t.get("templateFrom"), o, f"{path}.templateFrom")):
        p = f"{path}.templateFrom[{i}]"
        if not isinstance(tf, Mapping):
            o.cannot(p, "must be an object")
            continue
        target = tf.get("target", "Data")
        if target not in ("Data", "Annotations", "Labels"):
            o.cannot(f"{p}.target", f"{target!r} is not supported (Data, Annotations, Labels)")
        extra = {"target": target} if target != "Data" else {}
        if tf.get("literal") is not None:
            tf_out.append({"literal": _template_text(tf["literal"], o, f"{p}.literal", engine), **extra})
        for kind in ("configMap", "secret"):
            ref = tf.get(kind)
            if not isinstance(ref, Mapping):
                continue
            items = []
            for j, item in enumerate(_list(ref.get("items"), o, f"{p}.{kind}.items")):
                if not isinstance(item, Mapping):
                    o.cannot(f"{p}.{kind}.items[{j}]", "must be an object")
                    continue
                if item.get("templateAs") not in (None, "Values"):
                    o.cannot(f"{p}.{kind}.items[{j}].templateAs", f"{item['templateAs']} is not supported")
                items.append({"key": item.get("key")})
                o.rest(item, f"{p}.{kind}.items[{j}]", {"key", "templateAs"})
            tf_out.append({kind: {"name": ref.get("name"), "items": items}, **extra})
            o.note(f"{p}.{kind}", "the referenced template is Go syntax: translate its content to Jinja2 "
                                  "(not done by import-eso)")
            o.rest(ref, f"{p}.{kind}", {"name", "items"})
        o.rest(tf, p, {"configMap", "secret", "target", "literal"})
    if tf_out:
        out["templateFrom"] = tf_out
    o.rest(t, path, {"type", "metadata", "engineVersion", "mergePolicy", "data", "templateFrom"})
    return out


def _convert_es_spec(spec: Mapping[str, Any], o: _Obj, path: str, engine: TemplateEngine) -> dict[str, Any]:
    out: dict[str, Any] = {}
    store = _mapping_or_none(spec.get("secretStoreRef"))
    if store is not None:
        out["secretStoreRef"] = {"name": store.get("name"), "kind": store.get("kind", KIND_SECRET_STORE)}
        o.rest(store, f"{path}.secretStoreRef", {"name", "kind"})
    if spec.get("refreshInterval") is not None:
        out["refreshInterval"] = _interval(spec["refreshInterval"])
    policy = spec.get("refreshPolicy", "Periodic")
    if policy in ("OnChange", "CreatedOnce"):
        out["refreshPolicy"] = policy
    elif policy != "Periodic":
        o.cannot(f"{path}.refreshPolicy", f"{policy!r} is not supported")
    windows = spec.get("syncWindows")
    if windows is not None:
        if isinstance(windows, Mapping):
            items = windows.get("windows")
            out["syncWindows"] = {"kind": windows.get("kind"), "windows": [
                {k: w[k] for k in ("schedule", "duration") if w.get(k) is not None}
                for w in (items if isinstance(items, list) else []) if isinstance(w, Mapping)]}
            o.rest(windows, f"{path}.syncWindows", {"kind", "windows"})
            for i, w in enumerate(items if isinstance(items, list) else []):
                if isinstance(w, Mapping):
                    o.rest(w, f"{path}.syncWindows.windows[{i}]", {"schedule", "duration"})
        else:
            o.cannot(f"{path}.syncWindows", "must be an object {kind, windows}")
    target = spec.get("target")
    if isinstance(target, Mapping):
        t_out: dict[str, Any] = {}
        for key in ("name", "creationPolicy", "deletionPolicy", "immutable"):
            if target.get(key) is not None:
                t_out[key] = target[key]
        if isinstance(target.get("template"), Mapping):
            t_out["template"] = _convert_template(target["template"], o, f"{path}.target.template", engine)
        if target.get("creationPolicy") == "Merge":
            o.note(f"{path}.target.creationPolicy", "Merge: each ExternalSecret owns the keys it merges; a key "
                                                     "another ExternalSecret already merged is refused "
                                                     "(KeyOwnedByOther), not overwritten")
        o.rest(target, f"{path}.target", {"name", "creationPolicy", "deletionPolicy", "immutable", "template"})
        if t_out:
            out["target"] = t_out
    data_out = []
    for i, item in enumerate(_list(spec.get("data"), o, f"{path}.data")):
        p = f"{path}.data[{i}]"
        if not isinstance(item, Mapping):
            o.cannot(p, "must be an object")
            continue
        src = _source_ref(item, o, p)
        ref = item.get("remoteRef")
        converted: dict[str, Any] = {"secretKey": item.get("secretKey")}
        if isinstance(ref, Mapping):
            converted["remoteRef"] = _remote_ref(ref, o, f"{p}.remoteRef", ("key", "property", "version"))
        if src is not None:
            converted["sourceRef"] = src
        elif store is None:
            o.note(f"{p}.sourceRef.storeRef", "names no store (ESO's documentation fragments elide it): set "
                                              "spec.secretStoreRef before applying, or the controller reports "
                                              "StoreNotSet")
        data_out.append(converted)
        o.rest(item, p, {"secretKey", "remoteRef", "sourceRef"})
    if data_out:
        out["data"] = data_out
    df_out = []
    for i, item in enumerate(_list(spec.get("dataFrom"), o, f"{path}.dataFrom")):
        p = f"{path}.dataFrom[{i}]"
        if not isinstance(item, Mapping):
            o.cannot(p, "must be an object")
            continue
        src = _source_ref(item, o, p)
        if src is None and store is None:
            o.note(f"{p}.sourceRef.storeRef", "names no store (ESO's documentation fragments elide it): set "
                                              "spec.secretStoreRef before applying, or the controller reports "
                                              "StoreNotSet")
        conv: dict[str, Any] = {}
        if isinstance(item.get("extract"), Mapping):
            conv["extract"] = _remote_ref(item["extract"], o, f"{p}.extract", ("key", "property", "version"))
        elif "key" in item:  # v1alpha1 shape: dataFrom: [{key, property, version}]
            conv["extract"] = {k: item[k] for k in ("key", "property", "version") if item.get(k) is not None}
            o.note(p, "old dataFrom shape {key: ...} converted to extract")
        if isinstance(item.get("find"), Mapping):
            f = item["find"]
            fo = _remote_ref(f, o, f"{p}.find", ("path", "tags"), frozenset({"name"}))
            if isinstance(f.get("name"), Mapping):
                fo["name"] = {"regexp": f["name"].get("regexp")}
                o.rest(f["name"], f"{p}.find.name", {"regexp"})
            conv["find"] = fo
        rewrites = []
        for j, rw in enumerate(_list(item.get("rewrite"), o, f"{p}.rewrite")):
            rp = f"{p}.rewrite[{j}]"
            if isinstance(rw, Mapping) and isinstance(rw.get("regexp"), Mapping):
                rewrites.append({"regexp": {"source": rw["regexp"].get("source"),
                                            "target": rw["regexp"].get("target")}})
            if isinstance(rw, Mapping) and isinstance(rw.get("transform"), Mapping):
                tr = rw["transform"]
                rewrites.append({"transform": {"template": _template_text(tr.get("template"), o,
                                                                          f"{rp}.transform.template", engine)}})
                o.rest(tr, f"{rp}.transform", {"template"})
            if isinstance(rw, Mapping) and isinstance(rw.get("merge"), Mapping):
                mg = rw["merge"]
                rewrites.append({"merge": {k: mg[k] for k in ("into", "priority", "strategy", "conflictPolicy")
                                           if mg.get(k) is not None}})
                o.rest(mg, f"{rp}.merge", {"into", "priority", "strategy", "conflictPolicy"})
            if isinstance(rw, Mapping):
                o.rest(rw, rp, {"regexp", "transform", "merge"})
        if rewrites:
            conv["rewrite"] = rewrites
        if src is not None:
            conv["sourceRef"] = src
        if conv.get("extract") or conv.get("find"):
            df_out.append(conv)
        o.rest(item, p, {"extract", "find", "rewrite", "sourceRef", "key", "property", "version"})
    if df_out:
        out["dataFrom"] = df_out
    o.rest(spec, path, {"secretStoreRef", "refreshInterval", "refreshPolicy", "syncWindows", "target", "data",
                        "dataFrom"})
    return out


def _convert_fanout(spec: Mapping[str, Any], o: _Obj, engine: TemplateEngine, noun: str,
                    inner: Callable[[Mapping[str, Any], _Obj, str, TemplateEngine], dict[str, Any]]) -> dict[str, Any]:
    """ClusterExternalSecret (``noun`` externalSecret) and ClusterPushSecret (pushSecret): the same
    shape around the stamped object's spec."""
    out: dict[str, Any] = {}
    if spec.get(f"{noun}Name"):
        out[f"{noun}Name"] = spec[f"{noun}Name"]
    md = spec.get(f"{noun}Metadata")
    if isinstance(md, Mapping):
        m = {k: _labels(md.get(k)) for k in ("labels", "annotations") if _labels(md.get(k))}
        if m:
            out[f"{noun}Metadata"] = m
        o.rest(md, f"spec.{noun}Metadata", {"labels", "annotations"})
    selectors = list(_list(spec.get("namespaceSelectors"), o, "spec.namespaceSelectors"))
    if spec.get("namespaceSelector") is not None:
        selectors.append(spec["namespaceSelector"])
        o.note("spec.namespaceSelector", "deprecated field merged into namespaceSelectors")
    if selectors:
        out["namespaceSelectors"] = selectors
    if spec.get("namespaces"):
        out["namespaces"] = list(spec["namespaces"])
    if spec.get("refreshTime") is not None:
        out["refreshTime"] = _interval(spec["refreshTime"])
    if isinstance(spec.get(f"{noun}Spec"), Mapping):
        out[f"{noun}Spec"] = inner(spec[f"{noun}Spec"], o, f"spec.{noun}Spec", engine)
    else:
        o.cannot(f"spec.{noun}Spec", "required")
    o.rest(spec, "spec", {f"{noun}Name", f"{noun}Metadata", "namespaceSelectors", "namespaceSelector",
                          "namespaces", "refreshTime", f"{noun}Spec"})
    return out


# --------------------------------------------------------------------------- PushSecret
def _convert_push_spec(spec: Mapping[str, Any], o: _Obj, path: str, engine: TemplateEngine) -> dict[str, Any]:
    """ESO's PushSecret spec: the same field names; generators and provider options we do not apply
    (kmsKeyID, description, replicationLocations) are reported."""
    out: dict[str, Any] = {}
    for key in ("updatePolicy", "deletionPolicy"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    if spec.get("refreshInterval") is not None:
        out["refreshInterval"] = _interval(spec["refreshInterval"])
    refs = []
    for i, ref in enumerate(_list(spec.get("secretStoreRefs"), o, f"{path}.secretStoreRefs")):
        if isinstance(ref, Mapping):
            refs.append({k: ref[k] for k in ("name", "kind", "labelSelector") if ref.get(k) is not None})
            o.rest(ref, f"{path}.secretStoreRefs[{i}]", {"name", "kind", "labelSelector"})
    out["secretStoreRefs"] = refs
    sel = _mapping(spec.get("selector"))
    if sel.get("generatorRef") is not None:
        o.cannot(f"{path}.selector.generatorRef", "generators are not supported (SecretRotation generates values"
                 + ("; ESO's own example sets both secret and generatorRef, which ESO refuses too)"
                    if sel.get("secret") is not None else ")"))
    if isinstance(sel.get("secret"), Mapping):
        out["selector"] = {"secret": {k: v for k, v in sel["secret"].items() if k in ("name", "selector")}}
        o.rest(sel["secret"], f"{path}.selector.secret", {"name", "selector"})
    o.rest(sel, f"{path}.selector", {"secret", "generatorRef"})
    if isinstance(spec.get("template"), Mapping):
        t = _convert_template(spec["template"], o, f"{path}.template", engine)
        md = t.pop("metadata", None)
        if md:
            o.cannot(f"{path}.template.metadata", "has no effect on a PushSecret")
        out["template"] = t
    data = []
    for i, item in enumerate(_list(spec.get("data"), o, f"{path}.data")):
        p = f"{path}.data[{i}]"
        if not isinstance(item, Mapping):
            o.cannot(p, "must be an object")
            continue
        d: dict[str, Any] = {}
        match = _mapping(item.get("match"))
        m: dict[str, Any] = {}
        if match.get("secretKey") is not None:
            m["secretKey"] = match["secretKey"]
        rref = _mapping(match.get("remoteRef"))
        m["remoteRef"] = {k: rref[k] for k in ("remoteKey", "property") if rref.get(k) is not None}
        o.rest(rref, f"{p}.match.remoteRef", {"remoteKey", "property"})
        o.rest(match, f"{p}.match", {"secretKey", "remoteRef"})
        d["match"] = m
        if item.get("conversionStrategy") not in (None, "None"):
            d["conversionStrategy"] = item["conversionStrategy"]
        md = item.get("metadata")
        if isinstance(md, Mapping):
            wrapped = isinstance(md.get("spec"), Mapping)
            inner: Mapping[str, Any] = md["spec"] if wrapped else md
            mpath = f"{p}.metadata" + (".spec" if wrapped else "")
            kept = {k: v for k, v in inner.items() if k in PUSH_METADATA_KEYS}
            for k in inner:
                if k not in (*PUSH_METADATA_KEYS, "apiVersion", "kind"):
                    o.cannot(f"{mpath}.{k}", f"not supported (a PushSecret sets only {', '.join(PUSH_METADATA_KEYS)})")
            if kept:
                d["metadata"] = kept
        data.append(d)
        o.rest(item, p, {"match", "metadata", "conversionStrategy"})
    if data:
        out["data"] = data
    o.rest(spec, path, {"updatePolicy", "deletionPolicy", "refreshInterval", "secretStoreRefs", "selector",
                        "template", "data"})
    return out


# --------------------------------------------------------------------------- documents
def _metadata(md: Any) -> dict[str, Any]:
    if not isinstance(md, Mapping):
        return {}
    out = {k: v for k, v in md.items() if k not in _DROP_METADATA}
    for key in ("labels", "annotations"):
        if key in out:
            out[key] = _labels(out[key])
            if not out[key]:
                del out[key]
    return out


def convert_document(doc: Any, result: Conversion, *, default_namespace: str = "default",
                     engine: TemplateEngine | None = None, check_providers: bool = True) -> None:
    """Convert one parsed document, appending to ``result``."""
    engine = engine or TemplateEngine()
    if doc is None:
        return
    if not isinstance(doc, Mapping):
        result.issues.append("a document that is not an object was skipped")
        return
    api = str(doc.get("apiVersion") or "")
    kind = str(doc.get("kind") or "")
    group, _, version = api.rpartition("/")
    md = _mapping(doc.get("metadata"))
    name = str(md.get("name") or "<unnamed>")
    namespaced = kind in (KIND_EXTERNAL_SECRET, KIND_SECRET_STORE, "PushSecret")
    ns = str(md.get("namespace") or default_namespace) if namespaced else None
    ref = object_ref(kind or "<no kind>", name, ns)
    if group == ESO_GROUP and kind in _UNSUPPORTED_KINDS:
        o = _Obj(ref, result)
        o.cannot("", _UNSUPPORTED_KINDS[kind])
        return
    if kind == "CustomResourceDefinition" and str(md.get("name", "")).endswith("." + ESO_GROUP):
        result.notes.append(f"{ref}: ESO's CRD skipped (install secretsync's with `secretsync crds`)")
        return
    if kind == "List" and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            convert_document(item, result, default_namespace=default_namespace, engine=engine,
                             check_providers=check_providers)
        return
    if group != ESO_GROUP or kind not in _CONVERTIBLE:
        if group.endswith(ESO_GROUP):
            _Obj(ref, result).cannot("", f"{api} {kind} is not supported")
            return
        result.documents.append(dict(doc))  # not ESO's (a Secret, a ServiceAccount): kept as is
        result.doc_issues.append([])
        return
    o = _Obj(ref, result)
    if version not in ESO_VERSIONS:
        o.note("apiVersion", f"{api} is not a known ESO version; converted as v1")
    elif version == "v1alpha1":
        o.note("apiVersion", f"{api}: converted with v1 field names; review the result")
    spec = _mapping(doc.get("spec"))
    if not isinstance(doc.get("spec"), Mapping):
        o.cannot("spec", "required (an object)")
    try:
        if kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
            new_spec = _convert_store(doc, o)
        elif kind == KIND_EXTERNAL_SECRET:
            new_spec = _convert_es_spec(spec, o, "spec", engine)
        elif kind == KIND_PUSH_SECRET:
            new_spec = _convert_push_spec(spec, o, "spec", engine)
        elif kind == KIND_CLUSTER_PUSH_SECRET:
            new_spec = _convert_fanout(spec, o, engine, "pushSecret", _convert_push_spec)
        else:
            new_spec = _convert_fanout(spec, o, engine, "externalSecret", _convert_es_spec)
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        # A shape so far off ESO's schema that a converter tripped over it: say so, keep going.
        o.cannot("spec", f"malformed ({type(exc).__name__}); fix the fields named by `kubectl apply "
                         "--dry-run=server` against ESO's CRD first")
        new_spec = {}
    out = {"apiVersion": API_VERSION, "kind": kind, "metadata": _metadata(md), "spec": new_spec}
    o.rest(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"})
    # Whatever we print must be accepted by our own parser (and provider, when installed).
    if not o.issues:
        placeholders: list[str] = []
        try:
            parsed = _parse_store_or_object(out, default_namespace, placeholders)
            if kind in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE):
                for p in placeholders:
                    o.note(p, "a documentation placeholder in brackets: converted as the word; fill in the value")
                if kind == KIND_SECRET_STORE:
                    _note_tenant_rules(parsed, o)
                if check_providers:
                    _check_provider(parsed, o, lenient=bool(placeholders))
        except InvalidSpec as exc:
            for p, m in exc.problems:
                o.cannot(p, m)
    result.documents.append(out)
    result.doc_issues.append(list(o.issues))


def _parse_store_or_object(out: dict[str, Any], default_namespace: str, placeholders: list[str]) -> Any:
    """Parse what we print; a store whose block only fails on bracketed placeholders is parsed
    with them taken as words (``placeholders`` lists where)."""
    try:
        return parse_object(out, default_namespace=default_namespace)
    except InvalidSpec:
        provider = (out.get("spec") or {}).get("provider")
        if out.get("kind") not in (KIND_SECRET_STORE, KIND_CLUSTER_SECRET_STORE) or not isinstance(provider, dict):
            raise
        found: list[str] = []
        unwrapped = _unwrap_placeholders(provider, "spec.provider", found)
        if not found:
            raise
        retry = {**out, "spec": {**out["spec"], "provider": unwrapped}}
        parsed = parse_object(retry, default_namespace=default_namespace)
        out["spec"]["provider"] = unwrapped
        placeholders.extend(found)
        return parsed


def _check_provider(parsed: Any, o: _Obj, *, lenient: bool = False) -> None:
    """The provider's own check of the canonical config; with placeholders still in the block,
    its objections are notes (they are about the placeholders)."""
    try:
        check_provider_config(parsed)
    except InvalidSpec as exc:
        for p, m in exc.problems:
            if "not installed" in m or "no provider named" in m or lenient:
                o.note(p, f"{'after the placeholders are filled in, check: ' if lenient else 'not checked: '}{m}")
            else:
                o.cannot(p, m)


def convert_text(text: str, source: str = "<input>", *, default_namespace: str = "default",
                 check_providers: bool = True) -> Conversion:
    """Convert a YAML stream of ESO manifests (and pass anything else through)."""
    result = Conversion()
    docs, issues, notes = load_documents(text, source)
    result.issues += issues
    result.notes += notes
    engine = TemplateEngine()
    for doc in docs:
        convert_document(doc, result, default_namespace=default_namespace, engine=engine,
                         check_providers=check_providers)
    return result


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so translated templates stay readable."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump_documents(result: Conversion) -> str:
    """The converted documents as one YAML stream; each document's issues as comments above it."""
    chunks = []
    for doc, issues in zip(result.documents, result.doc_issues, strict=True):
        head = "".join(f"# cannot convert: {i}\n" for i in issues)
        body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
        chunks.append(head + body)
    return "---\n".join(chunks)
