"""The sync controller against a real kube-apiserver, with the in-process memory and file stores.

The controller runs in this process (threads) with 0.2-1 s refresh intervals; every test
uses fresh namespaces and a controller scoped to them (a unique namespace label), so tests
do not see each other's objects.
"""

from __future__ import annotations

import base64
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsync.controller.runtime import CSS_RES, ES_RES, SS_RES
from secretsync.controller.settings import ScopeSettings
from secretsync.core.calls import CallRecorder
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi
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

pytestmark = pytest.mark.kube


@pytest.fixture(scope="module")
def crds(kube: KubeCluster) -> KubeCluster:
    install_crds(kube)
    return kube


@pytest.fixture
def api(crds: KubeCluster) -> Iterator[KubeApi]:
    a = kube_api(crds)
    yield a
    a.close()


@pytest.fixture
def scope_label() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def ns(crds: KubeCluster, scope_label: str) -> str:
    return crds.new_namespace("ctl", labels={"secretsync-test": scope_label})


@pytest.fixture
def calls() -> CallRecorder:
    return CallRecorder()


@pytest.fixture
def controller(crds: KubeCluster, scope_label: str, calls: CallRecorder):  # type: ignore[no-untyped-def]
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={scope_label}"))
    with running_controller(crds, settings, calls) as ctl:
        yield ctl


@pytest.fixture
def memstore() -> tuple[str, object]:
    name = f"ctl-{uuid.uuid4().hex[:8]}"
    return name, open_store(f"memory://{name}")


def _memory_store(api: KubeApi, ns: str, store_name: str, mem_name: str, **spec: object) -> None:
    create(api, store_manifest(store_name, ns, "memory", {"name": mem_name}, **spec))


def test_external_secret_creates_secret_with_data(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("app/db", SecretValue('{"user":"admin","password":"pw-1"}'))
    mem.put("app/token", SecretValue("tok-1"))
    _memory_store(api, ns, "mem", mem_name)
    es = es_manifest("db", ns, "mem", [("token", "app/token")], refresh="1h")
    es["spec"]["data"].append({"secretKey": "password", "remoteRef": {"key": "app/db", "property": "password"}})
    create(api, es)
    cond = wait_for(es_ready(api, ns, "db"), message="ExternalSecret Ready")
    assert cond["reason"] == "SecretSynced"
    assert secret_data(api, ns, "db") == {"token": "tok-1", "password": "pw-1"}
    secret = api.get(SECRETS, "db", ns)
    md = secret["metadata"]
    assert md["labels"]["app.kubernetes.io/managed-by"] == "secretsync"
    assert md["annotations"]["secretsync.io/data-hash"].startswith("h2:")  # data + owned metadata
    owner = md["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("ExternalSecret", "db", True)
    status = api.get(ES_RES, "db", ns)["status"]
    assert status["binding"] == {"name": "db", "resourceVersion": md["resourceVersion"]}
    assert set(status["syncedVersions"]) == {"app/db", "app/token"}
    assert md["resourceVersion"] in cond["message"]
    # The store reports Ready with its capabilities.
    store_cond = wait_for(lambda: ready_condition(api, SS_RES, ns, "mem"), message="store status")
    assert store_cond["status"] == "True"
    assert api.get(SS_RES, "mem", ns)["status"]["capabilities"]["batchGet"] is True


def test_provider_change_propagates_within_refresh(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("v1"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1s"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v1"}, message="first sync")
    mem.put("k", SecretValue("v2"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v2"}, timeout=5, message="new value synced")


def test_hand_edited_secret_is_restored(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("real"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "real"}, message="first sync")
    api.patch(SECRETS, "s", {"data": {"k": base64.b64encode(b"hacked").decode(), "extra": "eA=="}}, ns)
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "real"}, timeout=5, message="drift repaired")
    # The counter moves once the write has returned to the worker: a moment after the
    # restored Secret is visible to this test (asserting at once raced it under load).
    wait_for(lambda: controller.metrics.drift_repaired._value.get() >= 1, timeout=5, message="drift counted")
    assert controller.metrics.drift_repaired._value.get() >= 1


def test_deleted_secret_is_recreated(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("real"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "real"}, message="first sync")
    api.delete(SECRETS, "s", ns)
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "real"}, timeout=5, message="Secret recreated")


def test_remote_deleted_with_retain_keeps_the_secret(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("keep-me"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1s"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "keep-me"}, message="first sync")
    mem.delete("k")
    cond = wait_for(es_ready(api, ns, "s", "False", "RemoteSecretNotFound"), timeout=5, message="not found status")
    assert "Retain" in cond["message"]
    assert secret_data(api, ns, "s") == {"k": "keep-me"}


def test_remote_deleted_with_delete_policy_removes_the_secret(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("v"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1s", target={"deletionPolicy": "Delete"}))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v"}, message="first sync")
    mem.delete("k")
    wait_for(lambda: secret_data(api, ns, "s") is None, timeout=5, message="Secret deleted")
    wait_for(es_ready(api, ns, "s", "False", "RemoteSecretDeleted"), timeout=5, message="deleted status")
    # The remote secret comes back: so does the Secret.
    mem.put("k", SecretValue("v2"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v2"}, timeout=5, message="Secret back")


def test_existing_unmanaged_secret_is_not_taken_over(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("from-provider"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "taken", "namespace": ns},
                 "data": {"mine": base64.b64encode(b"hands-off").decode()}})
    create(api, es_manifest("taken", ns, "mem", [("k", "k")], refresh="1h"))
    cond = wait_for(es_ready(api, ns, "taken", "False", "SecretNotManaged"), message="refusal")
    assert "adopt" in cond["message"]
    assert secret_data(api, ns, "taken") == {"mine": "hands-off"}
    # An explicit adopt annotation hands it over.
    api.patch(ES_RES, "taken", {"metadata": {"annotations": {"secretsync.io/adopt": "true"}}}, ns)
    api.patch(ES_RES, "taken", {"spec": {"refreshInterval": "2h"}}, ns)
    wait_for(lambda: secret_data(api, ns, "taken") == {"k": "from-provider"}, message="adopted")


def test_merge_policy_merges_into_an_existing_secret(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("merged"))
    _memory_store(api, ns, "mem", mem_name)
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shared", "namespace": ns},
                 "data": {"theirs": base64.b64encode(b"kept").decode()}})
    create(api, es_manifest("m", ns, "mem", [("k", "k")], refresh="1h",
                            target={"name": "shared", "creationPolicy": "Merge"}))
    wait_for(lambda: secret_data(api, ns, "shared") == {"theirs": "kept", "k": "merged"}, message="merge")


def test_cluster_secret_store_conditions_deny_a_namespace(api, crds, ns, scope_label, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("k", SecretValue("v"))
    other = crds.new_namespace("ctl-denied", labels={"secretsync-test": scope_label})
    css = f"css-{uuid.uuid4().hex[:6]}"
    create(api, store_manifest(css, None, "memory", {"name": mem_name}, conditions=[{"namespaces": [ns]}]))
    create(api, es_manifest("s", ns, css, [("k", "k")], store_kind="ClusterSecretStore", refresh="1h"))
    create(api, es_manifest("s", other, css, [("k", "k")], store_kind="ClusterSecretStore", refresh="1h"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v"}, message="allowed namespace synced")
    cond = wait_for(es_ready(api, other, "s", "False", "StoreNotAllowed"), message="denied namespace")
    assert other in cond["message"]
    assert secret_data(api, other, "s") is None
    wait_for(lambda: ready_condition(api, CSS_RES, None, css), message="cluster store status")


def test_allowed_key_prefix_is_enforced(api, ns, controller, memstore) -> None:
    mem_name, mem = memstore
    mem.put("team-b/k", SecretValue("v"))
    _memory_store(api, ns, "mem", mem_name, allowedKeyPrefix="team-a/")
    create(api, es_manifest("s", ns, "mem", [("k", "team-b/k")], refresh="1h"))
    cond = wait_for(es_ready(api, ns, "s", "False", "KeyNotAllowed"), message="prefix refusal")
    assert "team-a/" in cond["message"]
    assert secret_data(api, ns, "s") is None


def test_cluster_external_secret_fans_out_with_one_fetch(api, crds, scope_label, controller, calls, memstore) -> None:
    mem_name, mem = memstore
    mem.put("shared/key", SecretValue("fanned"))
    team = uuid.uuid4().hex[:6]
    namespaces = [crds.new_namespace("ctl-fan", labels={"secretsync-test": scope_label, "team": team})
                  for _ in range(4)]
    css = f"css-{uuid.uuid4().hex[:6]}"
    create(api, store_manifest(css, None, "memory", {"name": mem_name}))
    ces_name = f"ces-{uuid.uuid4().hex[:6]}"
    # The controller is shared with this module's other tests: count only once their
    # ExternalSecrets have stopped fetching (no provider get for 2 s).
    def quiet() -> bool:
        before = calls.total(provider="memory", operation="get")
        time.sleep(2.0)
        return calls.total(provider="memory", operation="get") == before
    wait_for(quiet, 30, message="earlier tests' fetches settled")
    calls.reset()
    create(api, {"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterExternalSecret",
                 "metadata": {"name": ces_name},
                 "spec": {"namespaceSelectors": [{"matchLabels": {"team": team}}],
                          "externalSecretName": "fan",
                          "externalSecretSpec": {"secretStoreRef": {"name": css, "kind": "ClusterSecretStore"},
                                                 "refreshInterval": "1h",
                                                 "data": [{"secretKey": "k", "remoteRef": {"key": "shared/key"}}]}}})
    for n in namespaces:
        wait_for(lambda n=n: secret_data(api, n, "fan") == {"k": "fanned"}, message=f"Secret in {n}")
    assert calls.total(provider="memory", operation="get") == 1, calls.snapshot()
    from secretsync.controller.runtime import CES_RES

    status = wait_for(lambda: (api.get(CES_RES, ces_name).get("status") or {}).get("provisionedNamespaces"),
                      message="CES status")
    assert sorted(status) == sorted(namespaces)


def test_store_outage_keeps_the_secret_and_recovers(api, ns, controller, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    path = tmp_path / "store.json"
    fs = open_store(f"file://{path}")
    fs.put("db", SecretValue("before"))
    # A file of the controller: only the admin's ClusterSecretStore may name it (docs/security.md).
    css = f"fs-{ns}"
    create(api, store_manifest(css, None, "file", {"path": str(path)}, conditions=[{"namespaces": [ns]}]))
    create(api, es_manifest("s", ns, css, [("k", "db")], refresh="1s", store_kind="ClusterSecretStore"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "before"}, message="first sync")
    saved = path.read_bytes()
    path.unlink()
    path.mkdir()  # reading the store now fails with an OS error: Unavailable, not NotFound
    cond = wait_for(es_ready(api, ns, "s", "False"), timeout=10, message="outage status")
    assert cond["reason"] in ("Unavailable", "StoreUnavailable")
    wait_for(es_ready(api, ns, "s", "False", "StoreUnavailable"), timeout=10, message="circuit open")
    assert secret_data(api, ns, "s") == {"k": "before"}
    wait_for(lambda: (ready_condition(api, CSS_RES, None, css) or {}).get("status") == "False", timeout=10,
             message="store not ready")
    shutil.rmtree(path)
    path.write_bytes(saved)
    open_store(f"file://{path}").put("db", SecretValue("after"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "after"}, timeout=15, message="recovered")
    wait_for(es_ready(api, ns, "s", "True"), timeout=5, message="ready again")
    wait_for(lambda: (ready_condition(api, CSS_RES, None, css) or {}).get("status") == "True", timeout=10,
             message="store ready again")


def test_invalid_spec_is_reported_by_field(api, ns, controller) -> None:
    bad = es_manifest("bad", ns, "nope", [("k", "k")], refresh="1h")
    bad["spec"]["target"] = {"creationPolicy": "Merge", "deletionPolicy": "Delete"}
    create(api, bad)
    cond = wait_for(es_ready(api, ns, "bad", "False", "InvalidSpec"), message="invalid spec status")
    assert "spec.target.deletionPolicy" in cond["message"]
