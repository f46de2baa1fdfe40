"""An ESO user's PushSecret, ClusterPushSecret and ExternalSecret fields, as ESO documents them, on moto (issue 12).

The manifests are ESO's documented shapes with only ``apiVersion`` (and store names) changed.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from secretsync.api.eso import convert_text
from secretsync.api.models import API_VERSION
from secretsync.controller.pushsecret import CPS_RES, PS_RES
from secretsync.controller.runtime import ES_RES, SS_RES
from secretsync.controller.settings import PushSettings, ScopeSettings
from secretsync.kube.client import CONFIGMAPS, EVENTS, SECRETS, KubeApi, KubeError
from tests.harness.aws import raw_boto3
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    ready_condition,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.workloads import aws_store

pytestmark = pytest.mark.kube

CANARY = "Pikachu-canary-7f3a"


@pytest.fixture
def api(kube: KubeCluster) -> Iterator[KubeApi]:
    install_crds(kube)
    a = kube_api(kube)
    wait_for(lambda: _served(a), message="PushSecret served")
    yield a
    a.close()


def _served(api: KubeApi) -> bool:
    try:
        api.list(PS_RES, limit=1)
        api.list(CPS_RES, limit=1)
        return True
    except KubeError:
        return False


def _remote(sm: Any, key: str) -> str | None:
    """The remote value; None when it does not exist or is deleted (AWS: scheduled for deletion)."""
    try:
        return str(sm.get_secret_value(SecretId=key)["SecretString"])
    except (sm.exceptions.ResourceNotFoundException, sm.exceptions.InvalidRequestException):
        return None


def _push_ready(api: KubeApi, ns: str, name: str, status: str = "True") -> Any:
    def check() -> dict[str, Any] | None:
        cond = ready_condition(api, PS_RES, ns, name)
        return cond if cond and cond.get("status") == status else None
    return check


def _settings(label: str) -> Any:
    return fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"),
                         push=PushSettings(enabled=True, tick=0.2, source_poll=0.5, retry_max=1.0))


def test_pushsecret_as_eso_documents_it_pushes_updates_and_deletes_only_what_it_created(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    p = uuid.uuid4().hex[:6]
    sm.create_secret(Name=f"{p}/theirs", SecretString="owned by another team")
    sm.create_secret(Name=f"{p}/keep", SecretString="first")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("push", labels={"secretsync-test": label})
    other = kube.new_namespace("push-other", labels={"secretsync-test": label})
    aws_store(api, ns, aws_endpoint)
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pokedex-credentials", "namespace": ns},
                 "stringData": {"best-pokemon": CANARY, "other": "two"}})
    # ESO's full-pushsecret-no-key-with-property example, apiVersion and store changed.
    api.create(PS_RES, {
        "apiVersion": API_VERSION, "kind": "PushSecret", "metadata": {"name": "pokedex-credentials", "namespace": ns},
        "spec": {"deletionPolicy": "Delete", "refreshInterval": "1h0m0s",
                 "secretStoreRefs": [{"name": "aws", "kind": "SecretStore"}],
                 "selector": {"secret": {"name": "pokedex-credentials"}},
                 "data": [
                     {"match": {"secretKey": "best-pokemon",
                                "remoteRef": {"remoteKey": f"{p}/params", "property": "single-value-secret"}},
                      "metadata": {"apiVersion": "kubernetes.external-secrets.io/v1alpha1",
                                   "kind": "PushSecretMetadata", "spec": {"tags": {"team": "a"}}}},
                     {"match": {"secretKey": "other", "remoteRef": {"remoteKey": f"{p}/theirs"}}},
                 ]}}, ns)
    # updatePolicy IfNotExists never overwrites a remote secret that exists.
    api.create(PS_RES, {
        "apiVersion": API_VERSION, "kind": "PushSecret", "metadata": {"name": "once", "namespace": ns},
        "spec": {"updatePolicy": "IfNotExists", "secretStoreRefs": [{"name": "aws"}],
                 "selector": {"secret": {"name": "pokedex-credentials"}},
                 "data": [{"match": {"secretKey": "other", "remoteRef": {"remoteKey": f"{p}/keep"}}}]}}, ns)
    # A hostile tenant: names the other namespace's store (not visible from here).
    api.create(PS_RES, {
        "apiVersion": API_VERSION, "kind": "PushSecret", "metadata": {"name": "steal", "namespace": other},
        "spec": {"secretStoreRefs": [{"name": "aws"}], "selector": {"secret": {"name": "pokedex-credentials"}},
                 "data": [{"match": {"remoteRef": {"remoteKey": f"{p}/stolen"}}}]}}, other)
    # A tenant who may write PushSecret status forges "created" for another team's key.
    sm.create_secret(Name=f"{p}/theirs2", SecretString="another team's")
    api.create(PS_RES, {
        "apiVersion": API_VERSION, "kind": "PushSecret", "metadata": {"name": "forger", "namespace": ns},
        "spec": {"deletionPolicy": "Delete", "secretStoreRefs": [{"name": "aws"}],
                 "selector": {"secret": {"name": "pokedex-credentials"}},
                 "data": [{"match": {"secretKey": "other", "remoteRef": {"remoteKey": f"{p}/theirs2"}}}]}}, ns)
    api.patch(PS_RES, "forger", {"status": {"syncedPushSecrets": [
        {"store": f"SecretStore/{ns}/aws", "remoteKey": f"{p}/theirs2", "created": True, "proof": "0" * 64}]}},
        ns, subresource="status")
    with running_controller(kube, _settings(label)):
        wait_for(_push_ready(api, ns, "pokedex-credentials"), message="PushSecret Ready")
        wait_for(_push_ready(api, ns, "forger"), message="forger pushed")
        api.delete(PS_RES, "forger", ns)
        wait_for(lambda: not _exists(api, ns, "forger"), message="forger's finalizer released")
        assert _remote(sm, f"{p}/theirs2") == "two"  # overwritten (Replace), never deleted
        assert json.loads(_remote(sm, f"{p}/params") or "{}") == {"single-value-secret": CANARY}
        tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=f"{p}/params").get("Tags", [])}
        assert tags == {"team": "a"}
        assert _remote(sm, f"{p}/theirs") == "two"
        wait_for(_push_ready(api, ns, "once"), message="IfNotExists PushSecret Ready")
        assert _remote(sm, f"{p}/keep") == "first"
        cond = wait_for(_push_ready(api, other, "steal", "False"), message="foreign store refused")
        assert cond["reason"] == "StoreNotFound"
        assert _remote(sm, f"{p}/stolen") is None

        status = api.get(PS_RES, "pokedex-credentials", ns)["status"]
        synced = {(k["remoteKey"], k.get("property")): k["created"] for k in status["syncedPushSecrets"]}
        assert synced == {(f"{p}/params", "single-value-secret"): True, (f"{p}/theirs", None): False}

        # The source changes: the provider follows.
        api.patch(SECRETS, "pokedex-credentials", {"stringData": {"best-pokemon": "Raichu"}}, ns)
        wait_for(lambda: json.loads(_remote(sm, f"{p}/params") or "{}") == {"single-value-secret": "Raichu"},
                 message="source change pushed")

        # Deleting the PushSecret deletes what it created, and only that.
        api.delete(PS_RES, "pokedex-credentials", ns)
        wait_for(lambda: _remote(sm, f"{p}/params") is None, message="created key deleted")
        assert _remote(sm, f"{p}/theirs") == "two"
        wait_for(lambda: not _exists(api, ns, "pokedex-credentials"), message="finalizer released")

        texts = json.dumps([api.get(PS_RES, n, x).get("status") for x, n in ((ns, "once"), (other, "steal"))])
        texts += json.dumps(api.list(EVENTS, ns).get("items", []))
        assert CANARY not in texts and base64.b64encode(CANARY.encode()).decode() not in texts


def _exists(api: KubeApi, ns: str, name: str) -> bool:
    try:
        api.get(PS_RES, name, ns)
    except KubeError as exc:
        if exc.not_found:
            return False
        raise
    return True


def test_clusterpushsecret_stamps_a_pushsecret_into_selected_namespaces(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    p = uuid.uuid4().hex[:6]
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("cps", labels={"secretsync-test": label, "cool": "label"})
    aws_store(api, ns, aws_endpoint)
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "source-secret", "namespace": ns},
                 "stringData": {"best-pokemon-src": "Pikachu"}})
    cps_name = f"hello-{p}"
    api.create(CPS_RES, {
        "apiVersion": API_VERSION, "kind": "ClusterPushSecret", "metadata": {"name": cps_name},
        "spec": {"pushSecretName": "hello-world-ps", "namespaceSelectors": [{"matchLabels": {"cool": "label"}}],
                 "refreshTime": "1m",
                 "pushSecretSpec": {"updatePolicy": "Replace", "deletionPolicy": "Delete", "refreshInterval": "1h",
                                    "secretStoreRefs": [{"name": "aws", "kind": "SecretStore"}],
                                    "selector": {"secret": {"name": "source-secret"}},
                                    "data": [{"match": {"secretKey": "best-pokemon-src",
                                                        "remoteRef": {"remoteKey": f"{p}/destination-secret",
                                                                      "property": "best-pokemon-dst"}}}]}}})
    with running_controller(kube, _settings(label)):
        wait_for(_push_ready(api, ns, "hello-world-ps"), message="stamped PushSecret Ready")
        assert json.loads(_remote(sm, f"{p}/destination-secret") or "{}") == {"best-pokemon-dst": "Pikachu"}
        wait_for(lambda: ns in ((api.get(CPS_RES, cps_name).get("status") or {}).get("provisionedNamespaces") or []),
                 message="provisionedNamespaces")
        api.delete(CPS_RES, cps_name)
        wait_for(lambda: _remote(sm, f"{p}/destination-secret") is None, message="cleanup through the PushSecret")


def test_externalsecret_metadata_fetch_conversion_and_decoding_as_eso(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    p = uuid.uuid4().hex[:6]
    sm.create_secret(Name=f"{p}/tagged", SecretString="value-not-read",
                     Tags=[{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}])
    sm.create_secret(Name=f"{p}/odd-keys", SecretString=json.dumps({"a/b": "1", "c d": "2"}))
    sm.create_secret(Name=f"{p}/b64", SecretString=base64.b64encode(b"decoded!").decode())
    sm.create_secret(Name=f"{p}/merge/one", SecretString=json.dumps({"user": "u1"}))
    sm.create_secret(Name=f"{p}/merge/two", SecretString=json.dumps({"pass": "p2"}))
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("esfields", labels={"secretsync-test": label})
    aws_store(api, ns, aws_endpoint)
    # ESO's merge and transform rewrites: the JSON values merged into keys, then renamed.
    create(api, {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "merged", "namespace": ns},
                 "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws"},
                          "dataFrom": [{"find": {"path": f"{p}/merge/"},
                                        "rewrite": [{"merge": {"strategy": "Extract", "conflictPolicy": "Error"}},
                                                    {"transform": {"template": "DB_{{ value | upper }}"}}]}]}})
    create(api, {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "fields", "namespace": ns},
                 "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws", "kind": "SecretStore"},
                          "data": [
                              {"secretKey": "team", "remoteRef": {"key": f"{p}/tagged", "property": "team",
                                                                  "metadataPolicy": "Fetch"}},
                              {"secretKey": "plain", "remoteRef": {"key": f"{p}/b64", "decodingStrategy": "Base64",
                                                                   "conversionStrategy": "Default"}},
                          ],
                          "dataFrom": [
                              {"extract": {"key": f"{p}/tagged", "metadataPolicy": "Fetch"}},
                              {"extract": {"key": f"{p}/odd-keys", "conversionStrategy": "Unicode"}},
                              {"extract": {"key": f"{p}/odd-keys", "conversionStrategy": "Default"},
                               "rewrite": [{"regexp": {"source": "^(.*)$", "target": "rw-$1"}}]},
                          ]}})
    with running_controller(kube, _settings(label)):
        cond = wait_for(lambda: ready_condition(api, ES_RES, ns, "fields"), message="ExternalSecret status")
        # "rw-a/b" and "rw-c d" are not valid keys: with rewrite, ESO converts nothing.
        assert cond["status"] == "False" and "not a valid Secret key" in cond["message"]
        api.patch(ES_RES, "fields", {"spec": {"dataFrom": [
            {"extract": {"key": f"{p}/tagged", "metadataPolicy": "Fetch"}},
            {"extract": {"key": f"{p}/odd-keys", "conversionStrategy": "Unicode"}},
            {"extract": {"key": f"{p}/odd-keys", "conversionStrategy": "Default"},
             "rewrite": [{"regexp": {"source": "[/ ]", "target": "-"}}]}]}}, ns)
        wait_for(es_ready(api, ns, "fields"), message="ExternalSecret Ready")
        wait_for(es_ready(api, ns, "merged"), message="merge/transform ExternalSecret Ready")
        assert secret_data(api, ns, "merged") == {"DB_USER": "u1", "DB_PASS": "p2"}
        assert secret_data(api, ns, "fields") == {
            "team": "payments", "env": "prod", "plain": "decoded!",
            "a_U002f_b": "1", "c_U0020_d": "2", "a-b": "1", "c-d": "2"}


def test_items_read_from_their_own_sourceref_store_each_under_its_namespace_rules(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    p = uuid.uuid4().hex[:6]
    sm.create_secret(Name=f"{p}/a", SecretString="alpha")
    sm.create_secret(Name=f"{p}/json", SecretString=json.dumps({"user": "u1"}))
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("sourceref", labels={"secretsync-test": label})
    aws_store(api, ns, aws_endpoint)
    denied = f"denied-{p}"
    create(api, store_manifest(denied, None, "memory", {"name": denied}, conditions=[{"namespaces": ["nobody"]}]))
    item_store = {"storeRef": {"name": "aws", "kind": "SecretStore"}}
    # No spec.secretStoreRef: every item names its store (ESO's sourceRef.storeRef).
    create(api, {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "multi", "namespace": ns},
                 "spec": {"refreshInterval": "1h",
                          "data": [{"secretKey": "a", "remoteRef": {"key": f"{p}/a"}, "sourceRef": item_store}],
                          "dataFrom": [{"extract": {"key": f"{p}/json"}, "sourceRef": item_store}]}})
    # An item naming a ClusterSecretStore this namespace may not use fails the object, naming the item.
    create(api, {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "sneaky", "namespace": ns},
                 "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws"},
                          "data": [{"secretKey": "a", "remoteRef": {"key": f"{p}/a"}},
                                   {"secretKey": "b", "remoteRef": {"key": "anything"},
                                    "sourceRef": {"storeRef": {"name": denied, "kind": "ClusterSecretStore"}}}]}})
    # An item whose own store cannot be reached: the message names that item and store, not the
    # main store (a provider's "connection refused" never says which store answered).
    create(api, store_manifest("down", ns, "aws", {
        "region": "us-east-1", "endpoint": "http://127.0.0.1:9",
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret"}}}))
    create(api, {"apiVersion": API_VERSION, "kind": "ExternalSecret", "metadata": {"name": "partly", "namespace": ns},
                 "spec": {"refreshInterval": "1h", "secretStoreRef": {"name": "aws"},
                          "data": [{"secretKey": "a", "remoteRef": {"key": f"{p}/a"}},
                                   {"secretKey": "b", "remoteRef": {"key": "anything"},
                                    "sourceRef": {"storeRef": {"name": "down"}}}]}})
    with running_controller(kube, _settings(label)):
        wait_for(es_ready(api, ns, "multi"), message="multi-store ExternalSecret Ready")
        assert secret_data(api, ns, "multi") == {"a": "alpha", "user": "u1"}
        cond = wait_for(es_ready(api, ns, "sneaky", "False"), message="foreign store refused")
        assert "data[1].sourceRef.storeRef" in cond["message"] and "does not allow namespace" in cond["message"]
        assert secret_data(api, ns, "sneaky") is None
        cond = wait_for(es_ready(api, ns, "partly", "False"), message="unreachable item store named")
        assert f"data[1].sourceRef.storeRef SecretStore/{ns}/down: " in cond["message"], cond["message"]


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "eso-examples"


def test_esos_full_pushsecret_example_converted_by_import_eso_pushes_its_templated_value(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    """ESO's documented full-pushsecret.yaml through `import-eso`; only the namespace, the store it
    points at (an ESO store named aws-parameterstore) and the remote key are ours, and the selector
    names the example's own Secret (ESO's example selects pokedex-credentials but ships pushsecret-example)."""
    path = SHARED / "full-pushsecret.yaml"
    if not path.is_file():
        pytest.skip("shared ESO examples not present")
    result = convert_text(path.read_text(encoding="utf-8"), path.name)
    assert result.ok, result.issues
    sm = raw_boto3(aws_endpoint)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("esodoc", labels={"secretsync-test": label})
    aws_store(api, ns, aws_endpoint)
    p = uuid.uuid4().hex[:6]
    # The example's templateFrom ConfigMap (its content is ours: import-eso does not translate it).
    api.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "application-config-tmpl", "namespace": ns},
                            "data": {"config.yml": "pokemon: {{ values['best-pokemon-src'] }}"}}, ns)
    for doc in result.documents:
        doc["metadata"]["namespace"] = ns
        if doc["kind"] == "PushSecret":
            doc["spec"]["secretStoreRefs"][0]["name"] = "aws"
            doc["spec"]["data"][0]["match"]["remoteRef"]["remoteKey"] = f"{p}/destination-secret"
            doc["spec"]["selector"]["secret"]["name"] = "pushsecret-example"
            api.create(PS_RES, doc, ns)
        else:
            api.create(SECRETS, doc, ns)
    with running_controller(kube, _settings(label)):
        wait_for(_push_ready(api, ns, "pushsecret-example"), message="ESO example PushSecret Ready")
        assert json.loads(_remote(sm, f"{p}/destination-secret") or "{}") == {
            "best-pokemon-dst": "PIKACHU is the really best!"}


def test_a_store_of_another_controller_class_is_left_to_that_controller(
        kube: KubeCluster, api: KubeApi, aws_endpoint: str) -> None:
    sm = raw_boto3(aws_endpoint)
    p = uuid.uuid4().hex[:6]
    sm.create_secret(Name=f"{p}/k", SecretString="v")
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("classes", labels={"secretsync-test": label})
    aws_store(api, ns, aws_endpoint)
    block = api.get(SS_RES, "aws", ns)["spec"]["provider"]["aws"]
    create(api, store_manifest("aws-dev", ns, "aws", block, controller="dev"))
    create(api, es_manifest("mine", ns, "aws", [("k", f"{p}/k")], refresh="1h"))
    create(api, es_manifest("theirs", ns, "aws-dev", [("k", f"{p}/k")], refresh="1h"))
    with running_controller(kube, _settings(label)):
        wait_for(es_ready(api, ns, "mine"), message="default-class ExternalSecret Ready")
        wait_for(lambda: ready_condition(api, SS_RES, ns, "aws") is not None, message="own store status")
        assert ready_condition(api, ES_RES, ns, "theirs") is None
        assert ready_condition(api, SS_RES, ns, "aws-dev") is None
        assert secret_data(api, ns, "theirs") is None
    with running_controller(kube, replace(_settings(label), controller_class="dev")):
        wait_for(es_ready(api, ns, "theirs"), message="dev-class ExternalSecret Ready")
        assert secret_data(api, ns, "theirs") == {"k": "v"}
