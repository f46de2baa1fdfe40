"""Parsing the four custom resources: types, defaults, and errors that name object and field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from secretsync.api.models import (
    API_VERSION,
    Condition,
    ExternalSecretStatus,
    InvalidSpec,
    RegexpRewrite,
    Rewrite,
    apply_decoding,
    apply_rewrites,
    external_secret_manifest,
    format_duration,
    parse_cluster_external_secret,
    parse_duration,
    parse_external_secret,
    parse_object,
    parse_secret_store,
    secret_store_manifest,
    set_condition,
)
from secretsync.core.errors import InvalidInput, ProviderError
from secretsync.core.values import SecretValue

ES: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "ExternalSecret",
    "metadata": {"name": "db", "namespace": "app", "uid": "u-1", "generation": 3},
    "spec": {
        "secretStoreRef": {"name": "aws", "kind": "ClusterSecretStore"},
        "refreshInterval": "1h30m",
        "target": {"name": "db-creds", "template": {"type": "kubernetes.io/basic-auth",
                                                    "data": {"dsn": "{{ user }}"}}},
        "data": [
            {"secretKey": "user", "remoteRef": {"key": "prod/db", "property": "user"}},
            {"secretKey": "password", "remoteRef": {"key": "prod/db", "property": "password", "version": "v3"}},
        ],
        "dataFrom": [
            {"extract": {"key": "prod/shared"}},
            {"find": {"path": "prod/", "name": {"regexp": "^api-"}},
             "rewrite": [{"regexp": {"source": "^api-(.*)$", "target": "${1}"}}]},
        ],
    },
}


def es(**spec_changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(ES)
    obj["spec"].update(spec_changes)
    return obj


def problems(exc: InvalidSpec) -> dict[str, str]:
    return dict(exc.problems)


def test_external_secret_parses_into_typed_frozen_model() -> None:
    parsed = parse_external_secret(ES)
    assert parsed.ref == "ExternalSecret/app/db"
    assert parsed.target_name == "db-creds"
    assert parsed.meta.generation == 3
    assert parsed.spec.refresh_interval == 5400
    assert parsed.spec.secret_store_ref.kind == "ClusterSecretStore"
    assert parsed.spec.data[1].remote_ref.version == "v3"
    assert parsed.spec.data_from[1].find is not None
    assert parsed.spec.data_from[1].find.name is not None
    assert parsed.spec.remote_keys() == ("prod/db", "prod/shared")
    assert parsed.spec.target.creation_policy == "Owner"
    with pytest.raises(AttributeError):
        parsed.spec.refresh_interval = 1  # type: ignore[misc]


def test_defaults_follow_eso() -> None:
    obj = {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "x", "namespace": "n"},
           "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "r"}}]}}
    parsed = parse_external_secret(obj)
    assert parsed.spec.refresh_interval == 3600
    assert parsed.spec.secret_store_ref.kind == "SecretStore"
    assert parsed.target_name == "x"
    assert (parsed.spec.target.creation_policy, parsed.spec.target.deletion_policy) == ("Owner", "Retain")


def test_error_names_object_and_field_path() -> None:
    bad = es()
    del bad["spec"]["data"][1]["remoteRef"]["key"]
    with pytest.raises(InvalidSpec, match=r"^ExternalSecret/app/db: spec\.data\[1\]\.remoteRef\.key: required$"):
        parse_external_secret(bad)


def test_all_problems_are_reported_at_once_and_are_invalid_input_not_a_provider_error() -> None:
    bad = es(refreshInterval="1x", target={"creationPolicy": "Sometimes", "name": "Bad_Name"}, taget={})
    bad["spec"]["secretStoreRef"]["kind"] = "Store"
    with pytest.raises(InvalidInput) as info:
        parse_external_secret(bad)
    assert not isinstance(info.value, ProviderError)  # a bad object must not read as a store failure
    found = problems(info.value)  # type: ignore[arg-type]
    assert set(found) == {"spec.refreshInterval", "spec.target.creationPolicy", "spec.target.name",
                          "spec.taget", "spec.secretStoreRef.kind"}
    assert "did you mean 'target'" in found["spec.taget"]
    assert "Owner, Orphan, Merge, None" in found["spec.target.creationPolicy"]


@pytest.mark.parametrize(("change", "path", "message"), [
    ({"data": [{"secretKey": "a", "remoteRef": {"key": "x"}}, {"secretKey": "a", "remoteRef": {"key": "y"}}]},
     "spec.data[1].secretKey", "duplicate"),
    ({"data": [{"secretKey": "no/slash", "remoteRef": {"key": "x"}}]}, "spec.data[0].secretKey", "valid Secret key"),
    ({"dataFrom": [{"extract": {"key": "a"}, "find": {"path": "p"}}]}, "spec.dataFrom[0]", "exactly one"),
    ({"dataFrom": [{"find": {}}]}, "spec.dataFrom[0].find", "refusing to sync a whole store"),
    ({"dataFrom": [{"find": {"name": {"regexp": "("}}}]}, "spec.dataFrom[0].find.name.regexp", "regular expression"),
    ({"target": {"creationPolicy": "Merge", "deletionPolicy": "Delete"}}, "spec.target.deletionPolicy",
     "not allowed"),
    ({"data": [], "dataFrom": [], "target": {}}, "spec", "at least one of"),
    ({"data": "nope"}, "spec.data", "must be a list"),
])
def test_invalid_specs_are_rejected_with_field_path(change: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_external_secret(es(**change))
    assert message in problems(info.value)[path]


def test_namespace_is_required_unless_defaulted() -> None:
    obj = copy.deepcopy(ES)
    del obj["metadata"]["namespace"]
    with pytest.raises(InvalidSpec, match=r"metadata\.namespace: required"):
        parse_external_secret(obj)
    assert parse_external_secret(obj, default_namespace="dflt").namespace == "dflt"


def test_wrong_api_version_or_kind_is_named() -> None:
    obj = dict(ES, apiVersion="external-secrets.io/v1")
    with pytest.raises(InvalidSpec, match=r"apiVersion: must be secretsync\.io/v1alpha1"):
        parse_external_secret(obj)
    with pytest.raises(InvalidSpec, match="kind: must be one of"):
        parse_object(dict(ES, kind="Widget"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("1h", 3600), ("30m", 1800), ("15s", 15), ("1h30m", 5400), ("0", 0), ("1h0m0s", 3600), ("500ms", 0.5),
    ("1.5h", 5400), ("2h45m30s", 9930),
])
def test_go_durations_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "-1h", "1d", "h", "1h 30m", "abc"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_format_back_shortest() -> None:
    assert [format_duration(s) for s in (3600, 5400, 15, 0, 0.5, 90061)] == ["1h", "1h30m", "15s", "0", "500ms",
                                                                               "25h1m1s"]


def store(kind: str = "SecretStore", **spec: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "s"}
    if kind == "SecretStore":
        md["namespace"] = "app"
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": md,
            "spec": {"provider": {"aws": {"region": "eu-central-1"}}, **spec}}


def test_store_provider_config_and_credentials_are_separated() -> None:
    obj = store(provider={"aws": {"region": "eu-central-1", "role": "arn:aws:iam::123456789012:role/x",
                                  "secretRef": {"accessKeyID": {"name": "aws", "key": "id"},
                                                "secretAccessKey": {"name": "aws", "key": "secret"}}}},
                allowedKeyPrefix="team-a/", rateLimit={"rate": 5})
    parsed = parse_secret_store(obj)
    assert parsed.spec.provider.name == "aws"
    assert parsed.spec.provider.config == {"region": "eu-central-1", "role": "arn:aws:iam::123456789012:role/x"}
    assert [(r.credential, r.selector.name, r.selector.key) for r in parsed.spec.provider.credential_refs()] == [
        ("accessKeyID", "aws", "id"), ("secretAccessKey", "aws", "secret")]
    assert parsed.key_allowed("team-a/db") and not parsed.key_allowed("team-b/db")
    assert parsed.spec.rate_limit is not None and parsed.spec.rate_limit.burst == 20


def test_store_needs_exactly_one_provider() -> None:
    with pytest.raises(InvalidSpec, match=r"SecretStore/app/s: spec\.provider: exactly one .* \(got aws, vault\)"):
        parse_secret_store(store(provider={"aws": {}, "vault": {}}))


def test_namespaced_store_cannot_borrow_credentials_from_another_namespace() -> None:
    obj = store(provider={"vault": {"address": "https://v:8200", "secretRef": {
        "token": {"name": "t", "key": "k", "namespace": "kube-system"}}}})
    with pytest.raises(InvalidSpec, match=r"spec\.provider\.vault\.secretRef\.token\.namespace: a SecretStore may "
                                          r"only reference Secrets in its own namespace"):
        parse_secret_store(obj)
    obj["kind"] = "ClusterSecretStore"
    assert parse_secret_store(obj).spec.provider.credential_refs()[0].selector.namespace == "kube-system"


def test_malformed_credential_refs_are_named() -> None:
    obj = store(provider={"aws": {"secretRef": {"accessKeyID": {"name": "x"}}, "serviceAccountRef": {}}})
    with pytest.raises(InvalidSpec) as info:
        parse_secret_store(obj)
    assert set(problems(info.value)) == {"spec.provider.aws.secretRef.accessKeyID.key",
                                         "spec.provider.aws.serviceAccountRef.name"}


def test_cluster_store_conditions_restrict_namespaces() -> None:
    obj = store("ClusterSecretStore", conditions=[
        {"namespaces": ["payments"]},
        {"namespaceSelector": {"matchLabels": {"team": "a"},
                               "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}},
        {"namespaceRegexes": ["^dev-"]},
    ])
    parsed = parse_secret_store(obj)
    assert parsed.ref == "ClusterSecretStore/s"
    assert parsed.namespace_allowed("payments")
    assert parsed.namespace_allowed("x", {"team": "a"})
    assert parsed.namespace_allowed("x", {"team": "a", "env": "dev"})
    assert not parsed.namespace_allowed("x", {"team": "a", "env": "prod"})
    assert parsed.namespace_allowed("dev-42")
    assert not parsed.namespace_allowed("prod-1", {"team": "b"})
    assert parse_secret_store(store("ClusterSecretStore")).namespace_allowed("anything")
    assert not parse_secret_store(store()).namespace_allowed("other")


@pytest.mark.parametrize(("op", "values", "labels", "expected"), [
    ("In", ["a", "b"], {"k": "a"}, True), ("In", ["a"], {}, False), ("NotIn", ["a"], {}, True),
    ("NotIn", ["a"], {"k": "a"}, False), ("Exists", [], {"k": ""}, True), ("DoesNotExist", [], {"k": "x"}, False),
])
def test_label_selector_expressions(op: str, values: list[str], labels: dict[str, str], expected: bool) -> None:
    obj = store("ClusterSecretStore", conditions=[
        {"namespaceSelector": {"matchExpressions": [{"key": "k", "operator": op, "values": values}]}}])
    assert parse_secret_store(obj).namespace_allowed("ns", labels) is expected


def test_selector_expression_without_values_is_rejected() -> None:
    obj = store("ClusterSecretStore", conditions=[
        {"namespaceSelector": {"matchExpressions": [{"key": "k", "operator": "In"}]}}])
    with pytest.raises(InvalidSpec, match=r"spec\.conditions\[0\]\.namespaceSelector\.matchExpressions\[0\]\.values"):
        parse_secret_store(obj)


def test_only_cluster_stores_take_conditions() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.conditions: only a ClusterSecretStore"):
        parse_secret_store(store(conditions=[{"namespaces": ["a"]}]))


def ces(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ClusterExternalSecret", "metadata": {"name": "shared"},
            "spec": {"externalSecretSpec": copy.deepcopy(ES["spec"]), **spec}}


def test_cluster_external_secret_selects_namespaces_and_stamps_manifests() -> None:
    parsed = parse_cluster_external_secret(ces(namespaces=["a"], namespaceSelectors=[{"matchLabels": {"x": "1"}}],
                                               externalSecretMetadata={"labels": {"team": "t"}}))
    assert parsed.ref == "ClusterExternalSecret/shared"
    assert parsed.selects("a") and parsed.selects("b", {"x": "1"}) and not parsed.selects("b")
    assert parsed.spec.refresh_time == 60
    manifest = parsed.external_secret_manifest("b")
    child = parse_external_secret(manifest)
    assert child.namespace == "b" and child.name == "shared"
    assert child.meta.labels["team"] == "t"
    assert child.spec == parsed.spec.external_secret_spec


def test_cluster_external_secret_must_select_something() -> None:
    with pytest.raises(InvalidSpec, match="ClusterExternalSecret/shared: spec: set namespaces or namespaceSelectors"):
        parse_cluster_external_secret(ces())
    # Naming no store is accepted as ESO's CRD accepts it; the reconciler reports StoreNotSet.
    storeless = parse_cluster_external_secret(ces(namespaces=["a"], externalSecretSpec={
        "data": [{"secretKey": "a", "remoteRef": {"key": "k"}}]}))
    assert storeless.spec.external_secret_spec.storeless_items() == ("spec.data[0]",)


def test_spec_round_trips_through_to_dict() -> None:
    parsed = parse_external_secret(ES)
    again = parse_external_secret(dict(ES, spec=parsed.spec.to_dict()))
    assert again.spec == parsed.spec


def test_external_secret_manifest_builder_makes_valid_objects() -> None:
    manifest = external_secret_manifest("db", "app", "aws", "db-secret",
                                        [("password", "prod/db", "password"), ("user", "prod/db", None)],
                                        refresh_interval="30m", store_kind="ClusterSecretStore",
                                        labels={"app.kubernetes.io/managed-by": "secretsync"})
    assert manifest["spec"]["secretStoreRef"] == {"name": "aws", "kind": "ClusterSecretStore"}
    assert manifest["spec"]["refreshInterval"] == "30m"
    parsed = parse_external_secret(manifest)
    assert parsed.target_name == "db-secret"
    assert [(d.secret_key, d.remote_ref.key, d.remote_ref.property) for d in parsed.spec.data] == [
        ("password", "prod/db", "password"), ("user", "prod/db", None)]
    with pytest.raises(InvalidSpec, match=r"spec\.data\[0\]\.secretKey"):
        external_secret_manifest("db", "app", "aws", None, [("bad key", "k", None)])


def test_secret_store_manifest_builder() -> None:
    m = secret_store_manifest("aws", None, "aws", {"region": "eu-west-1"}, allowed_key_prefix="app/")
    assert m["kind"] == "ClusterSecretStore"
    assert parse_secret_store(m).spec.allowed_key_prefix == "app/"


def test_rewrites_use_go_group_syntax() -> None:
    rw = [Rewrite(RegexpRewrite("exp-(.*?)-ression", "rewriting-${1}-with-groups")),
          Rewrite(RegexpRewrite("^(?P<p>rew)", "$p-")), Rewrite(RegexpRewrite("x", "$$"))]
    assert apply_rewrites("exp-foo-ression", rw[:1]) == "rewriting-foo-with-groups"
    assert apply_rewrites("rewriting", rw[1:2]) == "rew-riting"
    assert apply_rewrites("axb", rw[2:]) == "a$b"


def test_decoding_strategies() -> None:
    assert apply_decoding(SecretValue("aGk="), "Base64").reveal() == b"hi"
    assert apply_decoding(SecretValue("_-8"), "Base64URL").reveal() == b"\xff\xef"
    assert apply_decoding(SecretValue("aGk="), "Auto").reveal() == b"hi"
    assert apply_decoding(SecretValue("not base64!"), "Auto").reveal() == b"not base64!"
    assert apply_decoding(SecretValue("x"), "None").reveal() == b"x"
    with pytest.raises(ValueError, match="not valid Base64") as info:
        apply_decoding(SecretValue("hunter2!!"), "Base64")
    assert "hunter2" not in str(info.value)


def test_status_is_parsed_and_serialised_without_values() -> None:
    cond = Condition("Ready", "True", "SecretSynced", "synced", "2024-01-01T00:00:00Z", 3)
    status = ExternalSecretStatus(conditions=(cond,), refresh_time="2024-01-01T00:00:00Z",
                                  synced_versions={"prod/db": "v3"})
    as_dict = status.to_dict()
    assert as_dict["conditions"][0] == {"type": "Ready", "status": "True", "reason": "SecretSynced",
                                        "message": "synced", "lastTransitionTime": "2024-01-01T00:00:00Z",
                                        "observedGeneration": 3}
    parsed = parse_external_secret(dict(ES, status=as_dict))
    assert parsed.status == status
    # a garbled status never blocks the spec
    assert parse_external_secret(dict(ES, status={"conditions": "x"})).status is None


def test_set_condition_keeps_transition_time_when_status_is_unchanged() -> None:
    first = set_condition((), Condition("Ready", "True", "A", last_transition_time="t1"))
    again = set_condition(first, Condition("Ready", "True", "B", last_transition_time="t2"))
    assert again[0].last_transition_time == "t1" and again[0].reason == "B"
    flipped = set_condition(again, Condition("Ready", "False", "C", last_transition_time="t3"))
    assert flipped[0].last_transition_time == "t3"
