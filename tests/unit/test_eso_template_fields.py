"""ESO's templateFrom literal and target, engineVersion, and key conversion, as an ESO user writes them."""

from __future__ import annotations

import json

import pytest

from secretsync.api.eso import convert_text
from secretsync.api.models import InvalidSpec, RewriteError, convert_key, parse_external_secret, rewrite_map
from secretsync.api.template import TemplateEngine, TemplateError
from secretsync.core.values import SecretValue


def _es(template: dict[str, object]) -> object:
    return parse_external_secret({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": "app"},
        "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "password", "remoteRef": {"key": "k"}}],
                 "target": {"template": template}}})


VALUES = {"password": SecretValue("s3cr3t-hunter2"), "user": SecretValue("admin")}


def test_literal_templates_fill_data_annotations_and_labels_like_eso() -> None:
    es = _es({"templateFrom": [
        {"literal": "dsn: postgres://{{ user }}:{{ password }}@db\nuser: '{{ user }}'"},
        {"literal": "checksum/db: '{{ password | sha256sum }}'", "target": "Annotations"},
        {"literal": "tier: '{{ \"gold\" }}'", "target": "Labels"},
    ]})
    engine = TemplateEngine()
    data = engine.render_target(es, VALUES)  # type: ignore[arg-type]
    assert {k: v.reveal_text() for k, v in data.items()} == {"dsn": "postgres://admin:s3cr3t-hunter2@db",
                                                             "user": "admin"}
    labels, annotations = engine.render_metadata(es, VALUES)  # type: ignore[arg-type]
    assert labels == {"tier": "gold"}
    assert list(annotations) == ["checksum/db"] and "s3cr3t" not in annotations["checksum/db"]


def test_a_literal_that_puts_a_value_into_an_annotation_is_refused_without_quoting_it() -> None:
    es = _es({"templateFrom": [{"literal": "leak: '{{ password }}'", "target": "Annotations"}]})
    with pytest.raises(TemplateError) as err:
        TemplateEngine().render_metadata(es, VALUES)  # type: ignore[arg-type]
    assert "fetched secret value" in str(err.value) and "s3cr3t" not in str(err.value)


def test_a_literal_that_is_not_a_mapping_names_the_entry() -> None:
    es = _es({"templateFrom": [{"literal": "- a\n- b"}]})
    with pytest.raises(TemplateError, match=r"templateFrom\[0\]\.literal"):
        TemplateEngine().render_target(es, VALUES)  # type: ignore[arg-type]


def test_only_engine_version_v2_and_one_template_source_per_entry() -> None:
    with pytest.raises(InvalidSpec, match="engineVersion"):
        _es({"engineVersion": "v1", "data": {"a": "{{ user }}"}})
    with pytest.raises(InvalidSpec, match=r"templateFrom\[0\]: exactly one of configMap, secret, literal"):
        _es({"templateFrom": [{"literal": "a: b", "configMap": {"name": "c", "items": [{"key": "k"}]}}]})


@pytest.mark.parametrize(("name", "strategy", "key"), [
    ("db/password", "Default", "db_password"),
    ("db/password", "Unicode", "db_U002f_password"),
    ("with space", "Unicode", "with_U0020_space"),
    ("ok-key_1.txt", "Unicode", "ok-key_1.txt"),
])
def test_dataFrom_keys_convert_as_eso(name: str, strategy: str, key: str) -> None:
    assert convert_key(name, strategy) == key


def test_import_eso_keeps_literal_target_and_unicode() -> None:
    result = convert_text("""
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: x, namespace: n}
spec:
  secretStoreRef: {name: s}
  target:
    template:
      engineVersion: v2
      templateFrom:
      - literal: "team: '{{ .team }}'"
        target: Labels
  dataFrom:
  - extract: {key: k, conversionStrategy: Unicode, metadataPolicy: Fetch}
""")
    assert result.ok, result.issues
    spec = result.documents[0]["spec"]
    assert spec["target"]["template"]["templateFrom"] == [
        {"literal": "team: '{{ team }}'", "target": "Labels"}]
    assert spec["dataFrom"][0]["extract"] == {"key": "k", "conversionStrategy": "Unicode", "metadataPolicy": "Fetch"}


def _rw(*rewrites: dict[str, object]) -> list[object]:
    es = parse_external_secret({
        "apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret", "metadata": {"name": "x", "namespace": "n"},
        "spec": {"secretStoreRef": {"name": "s"}, "dataFrom": [{"find": {"path": "p/"}, "rewrite": list(rewrites)}]}})
    return list(es.spec.data_from[0].rewrite)


def _transform(template: str, key: str) -> str:
    return TemplateEngine().render("ExternalSecret/n/x", "rewrite", template, {"value": SecretValue(key)}).reveal_text()


def _text(d: dict[str, SecretValue]) -> dict[str, str]:
    return {k: v.reveal_text() for k, v in d.items()}


DB = {"db": SecretValue('{"user": "alice-canary", "port": 5432}'),
      "cache": SecretValue('{"user": "bob-canary", "ttl": "60"}')}


def test_transform_rewrites_each_key_with_a_template_over_value() -> None:
    out = rewrite_map({"db-password": SecretValue("x")}, _rw({"transform": {"template": "APP_{{ value | upper }}"}}),
                      _transform)
    assert list(out) == ["APP_DB-PASSWORD"]


def test_merge_extract_hoists_members_and_a_collision_is_an_error_naming_the_member() -> None:
    with pytest.raises(RewriteError, match="'user' is defined by more than one value") as err:
        rewrite_map(DB, _rw({"merge": {}}), _transform)
    assert "canary" not in str(err.value)
    out = rewrite_map(DB, _rw({"merge": {"conflictPolicy": "Ignore", "priority": ["cache"]}}), _transform)
    assert _text(out) == {"user": "bob-canary", "port": "5432", "ttl": "60"}  # cache last: it wins


def test_merge_json_writes_the_merged_object_into_one_key() -> None:
    out = rewrite_map(DB, _rw({"merge": {"strategy": "JSON", "into": "all", "conflictPolicy": "Ignore",
                                         "priority": ["db"]}}), _transform)
    assert json.loads(out["all"].reveal_text()) == {"user": "alice-canary", "port": 5432, "ttl": "60"}
    with pytest.raises(InvalidSpec, match=r"merge\.into: required with strategy JSON"):
        _rw({"merge": {"strategy": "JSON"}})
