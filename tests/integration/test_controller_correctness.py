"""What the spec says is what the cluster gets: edits and failures a user makes every day.

Each test is one behaviour of issue 9 (and 8 §2/§3), driven from the outside on the real
kube-apiserver: edit an ExternalSecret / store / ClusterExternalSecret the way a user would,
break or fix the provider, and look only at what lands in the cluster (Secrets, status,
Events). The controller runs in this process with short intervals (tests/harness/controller.py).
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

from secretsync.controller.runtime import CES_RES, CSS_RES, ES_RES
from secretsync.controller.settings import CircuitSettings, ProviderSettings, ScopeSettings
from secretsync.core.calls import CallRecorder
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import EVENTS, SECRETS, KubeApi, KubeError
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
def label() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def ns(crds: KubeCluster, label: str) -> str:
    return crds.new_namespace("fix", labels={"secretsync-test": label})


@pytest.fixture
def scope(label: str) -> ScopeSettings:
    return ScopeSettings(namespace_selector=f"secretsync-test={label}")


@pytest.fixture
def controller(crds: KubeCluster, scope: ScopeSettings):  # type: ignore[no-untyped-def]
    with running_controller(crds, fast_settings(scope=scope), CallRecorder()) as ctl:
        yield ctl


@pytest.fixture
def mem() -> tuple[str, Any]:
    name = f"fix-{uuid.uuid4().hex[:8]}"
    return name, open_store(f"memory://{name}")


def _store(api: KubeApi, ns: str, mem_name: str, name: str = "mem") -> None:
    create(api, store_manifest(name, ns, "memory", {"name": mem_name}))


def _secret(api: KubeApi, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return api.get(SECRETS, name, ns)
    except KubeError as exc:
        if exc.not_found:
            return None
        raise


def _patch_es(api: KubeApi, ns: str, name: str, spec: dict[str, Any]) -> None:
    api.patch(ES_RES, name, {"spec": spec}, ns)


def _events(api: KubeApi, ns: str, reason: str | None = None) -> list[dict[str, Any]]:
    items = api.list(EVENTS, ns).get("items") or []
    return [e for e in items if reason is None or e.get("reason") == reason]


# -- spec changes reach the Secret ----------------------------------------------------------------
def test_template_metadata_orphan_and_immutable_changes_reach_the_secret(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v"))
    _store(api, ns, mem_name)
    es = es_manifest("s", ns, "mem", [("k", "k")], refresh="1h",
                     target={"template": {"metadata": {"labels": {"team": "a", "tier": "1"},
                                                       "annotations": {"note": "x"}}}})
    create(api, es)
    wait_for(lambda: (_secret(api, ns, "s") or {}).get("metadata", {}).get("labels", {}).get("team") == "a",
             message="first sync with template labels")
    # A label removed, one changed, a reloader annotation added: data unchanged.
    _patch_es(api, ns, "s", {"target": {"template": {"metadata": {
        "labels": {"team": "b", "tier": None},
        "annotations": {"note": None, "reloader.stakater.com/match": "true"}}}}})

    def metadata_applied() -> bool:
        md = (_secret(api, ns, "s") or {}).get("metadata", {})
        labels, ann = md.get("labels", {}), md.get("annotations", {})
        return (labels.get("team") == "b" and "tier" not in labels and "note" not in ann
                and ann.get("reloader.stakater.com/match") == "true")

    wait_for(metadata_applied, timeout=10, message="template label/annotation changes and removals applied")
    # Owner -> Orphan: the ownerReference goes, so deleting the ExternalSecret keeps the Secret.
    _patch_es(api, ns, "s", {"target": {"creationPolicy": "Orphan"}})
    wait_for(lambda: not (_secret(api, ns, "s") or {}).get("metadata", {}).get("ownerReferences"), timeout=10,
             message="ownerReference removed under Orphan")
    # immutable: true is applied to the existing Secret.
    _patch_es(api, ns, "s", {"target": {"immutable": True}})
    wait_for(lambda: (_secret(api, ns, "s") or {}).get("immutable") is True, timeout=10, message="immutable")
    assert secret_data(api, ns, "s") == {"k": "v"}
    # A hand edit of an owned label is drift, repaired like a data edit.
    api.patch(SECRETS, "s", {"metadata": {"labels": {"team": "hacked"}}}, ns)
    wait_for(lambda: (_secret(api, ns, "s") or {})["metadata"]["labels"].get("team") == "b", timeout=10,
             message="owned label restored")



def test_templated_metadata_follows_the_value_hashed_and_never_carries_it(api, ns, controller, mem) -> None:
    import hashlib

    mem_name, store = mem
    store.put("pw", SecretValue("templated-metadata-canary"))
    _store(api, ns, mem_name)
    create(api, es_manifest("t", ns, "mem", [("pw", "pw")], refresh="1h", target={"template": {"metadata": {
        "annotations": {"checksum/pw": "{{ pw | sha256sum }}"}, "labels": {"rev": "{{ (pw | sha256sum)[:8] }}"}}}}))
    want = hashlib.sha256(b"templated-metadata-canary").hexdigest()
    wait_for(lambda: (_secret(api, ns, "t") or {}).get("metadata", {}).get("annotations", {}).get("checksum/pw")
             == want, message="templated annotation")
    assert (_secret(api, ns, "t") or {})["metadata"]["labels"]["rev"] == want[:8]
    # A template that would put the value itself into metadata: refused naming the field.
    _patch_es(api, ns, "t", {"target": {"template": {"metadata": {"annotations": {"leak": "x{{ pw }}"}}}}})
    cond = wait_for(es_ready(api, ns, "t", "False"), timeout=10, message="leaking metadata refused")
    assert "metadata.annotations.leak" in cond["message"]
    md = (_secret(api, ns, "t") or {})["metadata"]
    assert "templated-metadata-canary" not in json.dumps(md)
    assert not [e for e in _events(api, ns) if "templated-metadata-canary" in json.dumps(e)]

def test_target_name_change_deletes_the_old_secret_or_releases_it_under_orphan(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v"))
    _store(api, ns, mem_name)
    create(api, es_manifest("own", ns, "mem", [("k", "k")], refresh="1h", target={"name": "old-own"}))
    create(api, es_manifest("orph", ns, "mem", [("k", "k")], refresh="1h",
                            target={"name": "old-orph", "creationPolicy": "Orphan"}))
    wait_for(lambda: secret_data(api, ns, "old-own") and secret_data(api, ns, "old-orph"), message="first sync")
    _patch_es(api, ns, "own", {"target": {"name": "new-own"}})
    _patch_es(api, ns, "orph", {"target": {"name": "new-orph"}})
    wait_for(lambda: secret_data(api, ns, "new-own") == {"k": "v"} and secret_data(api, ns, "new-orph"),
             timeout=10, message="new targets written")
    wait_for(lambda: _secret(api, ns, "old-own") is None, timeout=10, message="old Owner Secret deleted")

    def released() -> bool:
        md = (_secret(api, ns, "old-orph") or {}).get("metadata") or {}
        return bool(md) and "app.kubernetes.io/managed-by" not in (md.get("labels") or {}) and \
            "secretsync.io/external-secret" not in (md.get("annotations") or {})

    wait_for(released, timeout=10, message="old Orphan Secret released, data kept")
    assert secret_data(api, ns, "old-orph") == {"k": "v"}


def test_cluster_external_secret_name_change_removes_the_old_external_secrets(api, crds, label, controller,
                                                                              mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v"))
    team = uuid.uuid4().hex[:6]
    spaces = [crds.new_namespace("fix-ces", labels={"secretsync-test": label, "team": team}) for _ in range(2)]
    css = f"css-{uuid.uuid4().hex[:6]}"
    create(api, store_manifest(css, None, "memory", {"name": mem_name}))
    ces = f"ces-{uuid.uuid4().hex[:6]}"
    create(api, {"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterExternalSecret", "metadata": {"name": ces},
                 "spec": {"namespaceSelectors": [{"matchLabels": {"team": team}}], "externalSecretName": "first",
                          "externalSecretSpec": {"secretStoreRef": {"name": css, "kind": "ClusterSecretStore"},
                                                 "refreshInterval": "1h",
                                                 "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]}}})
    for n in spaces:
        wait_for(lambda n=n: secret_data(api, n, "first") == {"k": "v"}, message=f"first in {n}")
    api.patch(CES_RES, ces, {"spec": {"externalSecretName": "second"}})

    def only_second(n: str) -> bool:
        names = {o["metadata"]["name"] for o in api.list(ES_RES, n).get("items") or []}
        return names == {"second"}

    for n in spaces:
        wait_for(lambda n=n: only_second(n), timeout=10, message=f"old ExternalSecret removed in {n}")
        wait_for(lambda n=n: secret_data(api, n, "second") == {"k": "v"}, timeout=10, message=f"second in {n}")


def test_type_change_never_leaves_the_workload_without_a_secret(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v"))
    _store(api, ns, mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v"}, message="first sync")
    # A type the API server refuses for this data (basic-auth needs username or password):
    # the old Secret must still be there afterwards.
    _patch_es(api, ns, "s", {"target": {"template": {"type": "kubernetes.io/basic-auth"}}})
    uid = (_secret(api, ns, "s") or {})["metadata"]["uid"]
    cond = wait_for(es_ready(api, ns, "s", "False"), timeout=10, message="refused type reported")
    assert cond["reason"] == "KubernetesError", cond
    after = _secret(api, ns, "s") or {}
    assert (after["metadata"]["uid"], after.get("type")) == (uid, "Opaque")  # never deleted
    assert secret_data(api, ns, "s") == {"k": "v"}
    # A valid type change replaces it.
    _patch_es(api, ns, "s", {"data": [{"secretKey": "username", "remoteRef": {"key": "k"}}]})
    wait_for(lambda: (_secret(api, ns, "s") or {}).get("type") == "kubernetes.io/basic-auth", timeout=10,
             message="type changed")
    assert secret_data(api, ns, "s") == {"username": "v"}


# -- fresh reads ---------------------------------------------------------------------------------
def test_force_sync_reads_the_provider_not_the_cache(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v1"))
    _store(api, ns, mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v1"}, message="first sync")
    store.put("k", SecretValue("v2"))
    api.patch(ES_RES, "s", {"metadata": {"annotations": {"secretsync.io/force-sync": "1"}}}, ns)
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v2"}, timeout=5, message="force-sync read the provider")


def test_permanent_error_is_retried_with_backoff_from_the_provider(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("db", SecretValue('{"user":"u"}'))
    _store(api, ns, mem_name)
    es = es_manifest("s", ns, "mem", refresh="1h")
    es["spec"]["data"] = [{"secretKey": "pw", "remoteRef": {"key": "db", "property": "password"}}]
    create(api, es)
    wait_for(es_ready(api, ns, "s", "False", "InvalidConfig"), message="missing property reported")
    # Fixed at the provider: the retry (backoff, not the 1h interval) reads it, not the cache.
    store.put("db", SecretValue('{"user":"u","password":"pw"}'))
    wait_for(lambda: secret_data(api, ns, "s") == {"pw": "pw"}, timeout=10, message="retry synced the fix")


def test_store_spec_change_drops_its_cache_and_circuit_breaker(crds, api, ns, scope, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = (f"fix-{uuid.uuid4().hex[:8]}" for _ in range(2))
    open_store(f"memory://{a}").put("k", SecretValue("from-a"))
    open_store(f"memory://{b}").put("k", SecretValue("from-b"))  # same version "1" as in a
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    path = tmp_path / "store.json"
    open_store(f"file://{path}").put("k", SecretValue("from-file"))
    # A long breaker pause: recovery must come from the spec change, not from the pause ending.
    settings = fast_settings(scope=scope, provider=ProviderSettings(
        circuit=CircuitSettings(failures=2, open_for=60.0, max_open=60.0)))
    # The store is pointed at a controller file on the way: only a ClusterSecretStore may name
    # one, and only when the admin allows it (docs/security.md).
    assert settings.trust.cluster_store_files
    css = f"css-{uuid.uuid4().hex[:6]}"

    def point_at(provider: str, block: dict[str, Any]) -> None:
        obj = api.get(CSS_RES, css)
        obj["spec"] = {"provider": {provider: block}}
        api.replace(CSS_RES, css, obj)

    try:
        with running_controller(crds, settings):
            create(api, store_manifest(css, None, "memory", {"name": a}))
            create(api, es_manifest("s", ns, css, [("k", "k")], store_kind="ClusterSecretStore", refresh="1s"))
            wait_for(lambda: secret_data(api, ns, "s") == {"k": "from-a"}, message="first sync")
            point_at("memory", {"name": b})
            wait_for(lambda: secret_data(api, ns, "s") == {"k": "from-b"}, timeout=5,
                     message="the other backend read (the old cache, same versions, dropped)")
            point_at("file", {"path": str(path)})
            wait_for(lambda: secret_data(api, ns, "s") == {"k": "from-file"}, timeout=5, message="file store")
            path.unlink()
            path.mkdir()  # the store now fails: Unavailable, until the circuit opens (for 60 s)
            wait_for(es_ready(api, ns, "s", "False", "StoreUnavailable"), timeout=15, message="circuit open")
            point_at("memory", {"name": a})
            wait_for(lambda: secret_data(api, ns, "s") == {"k": "from-a"}, timeout=5,
                     message="fixed store used at once (the open breaker dropped)")
    finally:
        _delete_cluster_store(api, css)


def test_an_outage_gives_about_one_event_per_external_secret_and_the_probe_calls_the_provider(
        crds, api, ns, scope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    path = tmp_path / "store.json"
    fs = open_store(f"file://{path}")
    fs.put("k", SecretValue("before"))
    calls = CallRecorder()
    settings = fast_settings(scope=scope, provider=ProviderSettings(
        circuit=CircuitSettings(failures=2, open_for=0.5, max_open=1.0)))
    # A file store names a controller file: a ClusterSecretStore, with the admin's permission.
    assert settings.trust.cluster_store_files
    css = f"css-{uuid.uuid4().hex[:6]}"
    kind = "ClusterSecretStore"
    n = 10
    try:
        with running_controller(crds, settings, calls) as ctl:
            create(api, store_manifest(css, None, "file", {"path": str(path)}))
            for i in range(n):
                create(api, es_manifest(f"s{i}", ns, css, [("k", "k")], store_kind=kind, refresh="1s"))
            for i in range(n):
                wait_for(lambda i=i: secret_data(api, ns, f"s{i}") == {"k": "before"}, message="first sync")
            saved = path.read_bytes()
            path.unlink()
            path.mkdir()
            wait_for(es_ready(api, ns, "s0", "False", "StoreUnavailable"), timeout=10, message="circuit open")
            calls.reset()
            import time

            time.sleep(6)
            # Half-open probes really reach the provider (a pause of 0.5-1 s: a few probes in 6 s),
            # one at a time: not one call per ExternalSecret per pause.
            assert 2 <= calls.total(provider="file") <= 6 * 4, calls.snapshot()
            handles = ctl.stores.handles_of((kind, "", css))
            assert handles and all(h.breaker.is_open for h in handles)
            for i in range(n):
                assert secret_data(api, ns, f"s{i}") == {"k": "before"}
            shutil_rmtree(path)
            path.write_bytes(saved)
            for i in range(n):
                wait_for(es_ready(api, ns, f"s{i}", "True"), timeout=15, message="recovered")
    finally:
        _delete_cluster_store(api, css)
    warnings = [e for e in _events(api, ns) if e.get("type") == "Warning"]
    per_es: dict[str, int] = {}
    for e in warnings:
        per_es[e["involvedObject"]["name"]] = per_es.get(e["involvedObject"]["name"], 0) + 1
    # One outage: the provider's error and "store paused", each once, per ExternalSecret.
    assert max(per_es.values()) <= 3, per_es


def _delete_cluster_store(api: KubeApi, name: str) -> None:
    """ClusterSecretStores outlive the test's namespace: remove the test's own."""
    try:
        api.delete(CSS_RES, name)
    except KubeError as exc:
        if not exc.not_found:
            raise


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


# -- ESO's meaning for ESO's field names ----------------------------------------------------------
def test_data_wins_over_data_from(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("bundle", SecretValue('{"password":"from-dataFrom","user":"u"}'))
    store.put("pw", SecretValue("from-data"))
    _store(api, ns, mem_name)
    es = es_manifest("s", ns, "mem", [("password", "pw")], refresh="1h")
    es["spec"]["dataFrom"] = [{"extract": {"key": "bundle"}}]
    create(api, es)
    wait_for(lambda: secret_data(api, ns, "s") == {"password": "from-data", "user": "u"}, message="data wins")


def test_refresh_interval_zero_and_refresh_policies_behave_as_in_eso(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v1"))
    _store(api, ns, mem_name)
    create(api, es_manifest("zero", ns, "mem", [("k", "k")], refresh="0s"))
    on_change = es_manifest("onchange", ns, "mem", [("k", "k")], refresh="1s")
    on_change["spec"]["refreshPolicy"] = "OnChange"
    create(api, on_change)
    once = es_manifest("once", ns, "mem", [("k", "k")], refresh="1s")
    once["spec"]["refreshPolicy"] = "CreatedOnce"
    create(api, once)
    periodic = es_manifest("periodic", ns, "mem", [("k", "k")], refresh="1s")
    create(api, periodic)
    for name in ("zero", "onchange", "once", "periodic"):
        wait_for(lambda name=name: secret_data(api, ns, name) == {"k": "v1"}, message=f"{name} first sync")
    store.put("k", SecretValue("v2"))
    wait_for(lambda: secret_data(api, ns, "periodic") == {"k": "v2"}, timeout=5, message="Periodic follows")
    import time

    time.sleep(2.5)
    for name in ("zero", "onchange", "once"):
        assert secret_data(api, ns, name) == {"k": "v1"}, name
    # A spec change: refreshInterval 0 and OnChange sync again, CreatedOnce does not.
    for name in ("zero", "onchange", "once"):
        api.patch(ES_RES, name, {"spec": {"data": [{"secretKey": "k2", "remoteRef": {"key": "k"}}]}}, ns)
    wait_for(lambda: secret_data(api, ns, "zero") == {"k2": "v2"}, timeout=5, message="0s re-syncs on spec change")
    wait_for(lambda: secret_data(api, ns, "onchange") == {"k2": "v2"}, timeout=5, message="OnChange re-syncs")
    time.sleep(1.5)
    assert secret_data(api, ns, "once") == {"k": "v1"}
    # CreatedOnce re-creates a deleted Secret.
    api.delete(SECRETS, "once", ns)
    wait_for(lambda: secret_data(api, ns, "once") is not None, timeout=5, message="CreatedOnce re-creates")
    # Failures are still retried with backoff under CreatedOnce.
    late = es_manifest("late", ns, "mem", [("k", "not-yet")], refresh="1h")
    late["spec"]["refreshPolicy"] = "CreatedOnce"
    create(api, late)
    wait_for(es_ready(api, ns, "late", "False"), message="missing key reported")
    store.put("not-yet", SecretValue("here"))
    wait_for(lambda: secret_data(api, ns, "late") == {"k": "here"}, timeout=10, message="retried")


def test_merge_lets_several_external_secrets_share_a_helm_secret(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("a", SecretValue("va"))
    store.put("b", SecretValue("vb"))
    _store(api, ns, mem_name)
    create(api, {"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "app", "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "Helm"}},
                 "data": {"helm": base64.b64encode(b"chart").decode()}})
    merge = {"name": "app", "creationPolicy": "Merge"}
    create(api, es_manifest("one", ns, "mem", [("a", "a")], refresh="1h", target=merge))
    create(api, es_manifest("two", ns, "mem", [("b", "b")], refresh="1h", target=merge))
    wait_for(lambda: secret_data(api, ns, "app") == {"helm": "chart", "a": "va", "b": "vb"}, timeout=10,
             message="both merged")
    create(api, es_manifest("three", ns, "mem", [("a", "b")], refresh="1h", target=merge))
    cond = wait_for(es_ready(api, ns, "three", "False", "KeyOwnedByOther"), message="clash refused")
    assert "one" in cond["message"]
    api.delete(ES_RES, "three", ns)  # else it would (rightly) take key a once "one" lets go
    api.delete(ES_RES, "one", ns)
    wait_for(lambda: secret_data(api, ns, "app") == {"helm": "chart", "b": "vb"}, timeout=10,
             message="ownership released with the ExternalSecret")
    assert (_secret(api, ns, "app") or {})["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_a_deny_sync_window_holds_back_refreshes_but_not_syncs_or_repairs(api, ns, controller, mem) -> None:
    """ESO's spec.syncWindows: inside a deny window a rotated value waits; the first sync, the
    repair of a deleted Secret and a spec change (here: the window removed) still run at once."""
    import time

    mem_name, store = mem
    store.put("k", SecretValue("v1"))
    _store(api, ns, mem_name)
    always = {"kind": "deny", "windows": [{"schedule": "* * * * *", "duration": "2m"}]}  # open all the time
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1s", syncWindows=always))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v1"}, message="first sync inside the deny window")
    store.put("k", SecretValue("v2"))
    time.sleep(4)  # four refresh intervals
    assert secret_data(api, ns, "s") == {"k": "v1"}, "a refresh changed the Secret inside a deny window"
    cond = ready_condition(api, ES_RES, ns, "s")
    assert cond and cond["status"] == "True", cond
    api.delete(SECRETS, "s", ns)  # a repair is not a refresh: the Secret comes back (with the new value)
    wait_for(lambda: secret_data(api, ns, "s") is not None, timeout=10, message="deleted Secret repaired")
    store.put("k", SecretValue("v3"))
    time.sleep(3)
    assert secret_data(api, ns, "s") != {"k": "v3"}, "a refresh changed the Secret inside a deny window"
    _patch_es(api, ns, "s", {"syncWindows": None})
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v3"}, timeout=10, message="synced once the window went")


def test_an_allow_sync_window_that_is_closed_holds_back_refreshes(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("k", SecretValue("v1"))
    _store(api, ns, mem_name)
    # Open one minute a year (1 January, 00:00-00:01 UTC): closed now, bar that minute.
    closed = {"kind": "allow", "windows": [{"schedule": "@yearly", "duration": "1m"}]}
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1s", syncWindows=closed))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v1"}, message="first sync outside the allow window")
    store.put("k", SecretValue("v2"))
    import time

    time.sleep(4)
    assert secret_data(api, ns, "s") == {"k": "v1"}, "a refresh ran outside every allow window"
    _patch_es(api, ns, "s", {"syncWindows": {"kind": "allow", "windows": [{"schedule": "* * * * *",
                                                                          "duration": "2m"}]}})
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "v2"}, timeout=10, message="synced inside the window")


def test_a_bad_sync_window_is_refused_naming_its_field(api, ns, controller, mem) -> None:
    mem_name, _ = mem
    _store(api, ns, mem_name)
    bad = {"kind": "deny", "windows": [{"schedule": "61 * * * *", "duration": "1h"}]}
    try:
        create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h", syncWindows=bad))
    except KubeError as exc:  # refused at admission (the webhook, when installed)
        assert "spec.syncWindows.windows[0].schedule" in str(exc), exc
        return
    cond = wait_for(es_ready(api, ns, "s", "False", "InvalidSpec"), message="bad window reported")
    assert "spec.syncWindows.windows[0].schedule" in cond["message"], cond


def test_find_matching_nothing_keeps_the_secret_under_retain(api, ns, controller, mem) -> None:
    mem_name, store = mem
    store.put("app/x", SecretValue("1"))
    _store(api, ns, mem_name)
    es = es_manifest("s", ns, "mem", refresh="1s")
    es["spec"]["dataFrom"] = [{"find": {"path": "app/"}}]
    create(api, es)
    wait_for(lambda: secret_data(api, ns, "s") == {"app_x": "1"}, message="first sync")
    store.delete("app/x")
    wait_for(es_ready(api, ns, "s", "False", "RemoteSecretNotFound"), timeout=10, message="nothing matches")
    assert secret_data(api, ns, "s") == {"app_x": "1"}


# -- HA ------------------------------------------------------------------------------------------
def test_a_write_loop_with_another_writer_is_damped_and_reported_once(api, ns, controller, mem) -> None:
    import time

    mem_name, store = mem
    store.put("k", SecretValue("ours"))
    _store(api, ns, mem_name)
    create(api, es_manifest("s", ns, "mem", [("k", "k")], refresh="1h"))
    wait_for(lambda: secret_data(api, ns, "s") == {"k": "ours"}, message="first sync")
    theirs = {"data": {"k": base64.b64encode(b"theirs").decode()}}
    start = controller.metrics.drift_repaired._value.get()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:  # another writer that keeps putting its value back
        if secret_data(api, ns, "s") == {"k": "ours"}:
            api.patch(SECRETS, "s", theirs, ns)
        time.sleep(0.05)
    repaired = controller.metrics.drift_repaired._value.get() - start
    # Undamped, each repair follows the edit within ~0.1 s (dozens in 6 s); damped: 3 at once,
    # then 0.4, 0.8, 1.6, 2 s apart.
    assert 3 <= repaired <= 10, repaired
    wait_for(lambda: _events(api, ns, "WriteLoop"), timeout=5, message="WriteLoop event")
    assert len(_events(api, ns, "WriteLoop")) == 1


def test_cluster_external_secret_status_under_sharding_keeps_every_shard_namespaces(api, crds, label, mem) -> None:
    import time

    mem_name, store = mem
    store.put("k", SecretValue("v"))
    team = uuid.uuid4().hex[:6]
    spaces = [crds.new_namespace("fix-shard", labels={"secretsync-test": label, "team": team}) for _ in range(4)]
    css = f"css-{uuid.uuid4().hex[:6]}"
    create(api, store_manifest(css, None, "memory", {"name": mem_name}))
    ces = f"ces-{uuid.uuid4().hex[:6]}"
    base = fast_settings()
    shard = [replace(base, scope=ScopeSettings(namespace_selector=f"secretsync-test={label}", shard=i, shards=2))
             for i in range(2)]
    with running_controller(crds, shard[0]), running_controller(crds, shard[1]):
        create(api, {"apiVersion": "secretsync.io/v1alpha1", "kind": "ClusterExternalSecret",
                     "metadata": {"name": ces},
                     "spec": {"namespaceSelectors": [{"matchLabels": {"team": team}}], "refreshTime": "1s",
                              "externalSecretSpec": {"secretStoreRef": {"name": css, "kind": "ClusterSecretStore"},
                                                     "refreshInterval": "1h",
                                                     "data": [{"secretKey": "k", "remoteRef": {"key": "k"}}]}}})

        def provisioned() -> list[str]:
            return sorted((api.get(CES_RES, ces).get("status") or {}).get("provisionedNamespaces") or [])

        wait_for(lambda: provisioned() == sorted(spaces), timeout=15, message="every shard's namespaces")
        for _ in range(20):  # both shards keep re-writing: nobody drops the other's entries
            assert provisioned() == sorted(spaces)
            time.sleep(0.15)


def test_lost_lease_fences_writes_and_a_new_term_rewrites_status(crds, api, ns, scope, mem) -> None:
    """A replica whose lease was taken writes nothing more, even from a reconcile in flight, and
    when it leads again it does not trust the status it wrote in its previous term."""
    from secretsync.controller.settings import LeaderSettings
    from secretsync.kube.client import LEASES

    mem_name, store = mem
    store.put("k", SecretValue("v1"))
    _store(api, ns, mem_name)
    lease = f"fix-{uuid.uuid4().hex[:6]}"
    settings = fast_settings(scope=scope, leader=LeaderSettings(
        enabled=True, lease_name=lease, lease_namespace=ns, lease_duration=2.0, renew_deadline=1.2,
        retry_period=0.2))
    with running_controller(crds, settings) as ctl:
        wait_for(lambda: ctl.leading.is_set(), message="leader")
        create(api, es_manifest("s", ns, "mem", [("k", "missing")], refresh="1s"))
        cond = wait_for(es_ready(api, ns, "s", "False"), message="failing ExternalSecret reported")
        # Another replica takes the lease (a long one, renewed by nobody).
        def take_lease() -> bool:
            # The leader renews concurrently: a read-modify-replace may lose that race (409).
            obj = api.get(LEASES, lease, ns)
            obj["spec"].update({"holderIdentity": "other-replica", "leaseDurationSeconds": 3})
            try:
                api.replace(LEASES, lease, obj, ns)
            except KubeError as exc:
                if exc.conflict:
                    return False
                raise
            return True

        wait_for(take_lease, timeout=5, interval=0.05, message="lease taken by another replica")
        wait_for(lambda: not ctl.may_write(), timeout=5, message="writes fenced")
        with pytest.raises(KubeError) as err:
            ctl.writer.api.patch(SECRETS, "any", {}, ns)
        assert err.value.reason == "NotLeader"
        # The other replica writes Ready=True meanwhile (what it saw).
        status = api.get(ES_RES, "s", ns)["status"]
        status["conditions"] = [{**cond, "status": "True", "reason": "SecretSynced", "message": "other"}]
        api.patch(ES_RES, "s", {"status": status}, ns, subresource="status")
        # Its lease expires; this replica leads again and reports the truth (no stale memo).
        wait_for(lambda: ctl.may_write(), timeout=10, message="leading again")
        wait_for(es_ready(api, ns, "s", "False"), timeout=10, message="Ready=False re-written")


def test_one_tenant_on_a_cluster_store_cannot_stop_the_others(crds, api, scope, label, openbao) -> None:
    """Two namespaces on one ClusterSecretStore on OpenBao: tenant B has a key its policy
    denies and a find on a path it may not list; tenant A keeps syncing and rotating."""
    root = f"fixt-{uuid.uuid4().hex[:6]}"
    raw = openbao.raw()
    policy = f"""
path "secret/data/{root}/a/*" {{ capabilities = ["read"] }}
path "secret/metadata/{root}/a/*" {{ capabilities = ["read", "list"] }}
path "secret/detailed-metadata/{root}/a/*" {{ capabilities = ["list"] }}
path "secret/data/{root}/b/ok" {{ capabilities = ["read"] }}
"""
    raw.sys.create_or_update_policy(name=root, policy=policy)
    token = raw.auth.token.create(policies=[root], ttl="10m")["auth"]["client_token"]
    openbao.kv2_write(f"{root}/a/db", encode_value("a-1"))
    openbao.kv2_write(f"{root}/b/ok", encode_value("b-ok"))
    openbao.kv2_write(f"{root}/b/denied", encode_value("b-denied"))
    openbao.kv2_write(f"{root}/b/private/x", encode_value("b-x"))
    ns_a = crds.new_namespace("fix-ta", labels={"secretsync-test": label})
    ns_b = crds.new_namespace("fix-tb", labels={"secretsync-test": label})
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bao", "namespace": ns_a},
                 "stringData": {"token": token}})
    css = f"css-{uuid.uuid4().hex[:6]}"
    create(api, store_manifest(css, None, "vault", {
        "address": openbao.address, "mount": "secret",
        "secretRef": {"token": {"name": "bao", "key": "token", "namespace": ns_a}}}))
    kind = "ClusterSecretStore"
    with running_controller(crds, fast_settings(scope=scope)):
        create(api, es_manifest("a", ns_a, css, [("db", f"{root}/a/db")], store_kind=kind, refresh="1s"))
        b_ok = es_manifest("ok", ns_b, css, [("ok", f"{root}/b/ok")], store_kind=kind, refresh="1s")
        create(api, b_ok)
        create(api, es_manifest("denied", ns_b, css, [("d", f"{root}/b/denied")], store_kind=kind, refresh="1s"))
        find = es_manifest("find", ns_b, css, store_kind=kind, refresh="1s")
        find["spec"]["dataFrom"] = [{"find": {"path": f"{root}/b/private/"}}]
        create(api, find)
        wait_for(lambda: secret_data(api, ns_a, "a") == {"db": "a-1"}, timeout=15, message="tenant A synced")
        wait_for(lambda: secret_data(api, ns_b, "ok") == {"ok": "b-ok"}, timeout=15, message="B's allowed key")
        wait_for(es_ready(api, ns_b, "denied", "False", "PermissionDenied"), timeout=15, message="denied key")
        wait_for(es_ready(api, ns_b, "find", "False", "PermissionDenied"), timeout=15, message="denied find")
        for i in range(2, 4):  # A keeps rotating while B keeps failing
            openbao.kv2_write(f"{root}/a/db", encode_value(f"a-{i}"))
            wait_for(lambda i=i: secret_data(api, ns_a, "a") == {"db": f"a-{i}"}, timeout=10,
                     message=f"rotation {i} synced")
        assert es_ready(api, ns_a, "a", "True")()
        assert es_ready(api, ns_b, "ok", "True")()
        # The store may not list the keys' common prefix: it reads directly and says so.
        cond = wait_for(lambda: ready_condition(api, CSS_RES, None, css), timeout=10, message="store status")
        wait_for(lambda: "listing is denied" in (ready_condition(api, CSS_RES, None, css) or {}).get("message", ""),
                 timeout=10, message=f"store status names the denied listing (last: {cond})")


def encode_value(text: str) -> dict[str, str]:
    from tests.harness.vault import encode

    return encode(SecretValue(text))
