"""Any input, however malformed, gives an InvalidSpec (never a TypeError or KeyError) or a model."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsync.api.eso import Conversion, convert_document
from secretsync.api.models import InvalidSpec, parse_object

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6),
                     st.sampled_from(["1h", "0", "Owner", "SecretStore", "In", "x", "a.b"]))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)

BASE: dict[str, dict[str, Any]] = {
    "ExternalSecret": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "r"}}],
                       "target": {"template": {"data": {"a": "b"}}}, "dataFrom": [{"find": {"path": "p"}}]},
    "SecretStore": {"provider": {"vault": {"address": "https://v", "secretRef": {"token": {"name": "a", "key": "b"}}}},
                    "rateLimit": {"rate": 1}},
    "ClusterSecretStore": {"provider": {"aws": {}}, "conditions": [{"namespaceSelector": {"matchLabels": {}}}]},
    "ClusterExternalSecret": {"namespaces": ["a"], "externalSecretSpec": {"secretStoreRef": {"name": "s"},
                                                                           "data": []}},
}
_paths = st.lists(st.text(max_size=12), min_size=1, max_size=4)


def _h(text: str) -> int:
    """A stable hash (str hashes change per process; examples must replay)."""
    return sum(ord(c) * (i + 1) for i, c in enumerate(text))


def _mutate(obj: Any, path: list[str], value: Any) -> None:
    node = obj
    for part in path[:-1]:
        if isinstance(node, dict) and node:
            node = node.get(part) or node[sorted(node)[_h(part) % len(node)]]
        elif isinstance(node, list) and node:
            node = node[_h(part) % len(node)]
        else:
            return
    if isinstance(node, dict):
        key = path[-1] if not node or _h(path[-1]) % 2 else sorted(node)[_h(path[-1]) % len(node)]
        node[key] = value
    elif isinstance(node, list) and node:
        node[_h(path[-1]) % len(node)] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(BASE)), path=_paths, value=_json)
def test_mutated_objects_parse_or_raise_invalid_spec(kind: str, path: list[str], value: Any) -> None:
    spec = copy.deepcopy(BASE[kind])
    _mutate(spec, path, value)
    md = {"name": "n"} if kind.startswith("Cluster") else {"name": "n", "namespace": "ns"}
    try:
        parse_object({"apiVersion": "secretsync.io/v1alpha1", "kind": kind, "metadata": md, "spec": spec})
    except InvalidSpec as exc:
        assert str(exc).startswith(f"{kind}/")


ESO_BASE: dict[str, dict[str, Any]] = {
    "ExternalSecret": {
        "secretStoreRef": {"name": "s", "kind": "SecretStore"}, "refreshPolicy": "Periodic",
        "target": {"name": "t", "template": {"engineVersion": "v2", "data": {"a": "{{ .x | b64dec }}"},
                                             "metadata": {"labels": {"a": "b"}},
                                             "templateFrom": [{"configMap": {"name": "c", "items": [{"key": "k"}]}}]}},
        "data": [{"secretKey": "k", "remoteRef": {"key": "r", "property": "p"}, "sourceRef": {"storeRef": {}}}],
        "dataFrom": [{"extract": {"key": "k"}, "rewrite": [{"regexp": {"source": "a", "target": "b"}}]},
                     {"find": {"name": {"regexp": "x"}, "tags": {"a": "b"}}}],
    },
    "SecretStore": {"provider": {"vault": {"server": "https://v", "auth": {
        "appRole": {"roleRef": {"name": "a", "key": "b"}}, "jwt": {"kubernetesServiceAccountToken": {
            "serviceAccountRef": {"name": "sa"}}}}}}, "conditions": [{"namespaces": ["a"]}]},
    "ClusterSecretStore": {"provider": {"aws": {"auth": {"secretRef": {"accessKeyIDSecretRef": {"name": "a"}}}},
                                        "azurekv": {"authSecretRef": {"clientSecret": {}}}, "gcpsm": {"auth": {}}}},
    "ClusterExternalSecret": {"namespaceSelector": {}, "externalSecretMetadata": {"labels": {}},
                              "externalSecretSpec": {"secretStoreRef": {"name": "s"}, "data": []}},
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(ESO_BASE)), path=_paths, value=_json)
def test_eso_converter_never_crashes(kind: str, path: list[str], value: Any) -> None:
    spec = copy.deepcopy(ESO_BASE[kind])
    _mutate(spec, path, value)
    result = Conversion()
    convert_document({"apiVersion": "external-secrets.io/v1", "kind": kind, "metadata": {"name": "n"},
                      "spec": spec}, result, check_providers=False)
    for issue in result.issues:
        assert issue.startswith(f"{kind}/")
