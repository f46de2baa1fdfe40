"""The consumer index: which workloads read which keys of which Secret (issue 13, issue 11)."""

from __future__ import annotations

from typing import Any

from secretsync.kube.consumers import (
    STAMP_PREFIX,
    ConsumerIndex,
    merge_keys,
    secret_reads,
    stamp_annotation,
    workload_record,
)


def _deployment(name: str, pod: dict[str, Any], ns: str = "shop", **md: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns, **md},
            "spec": {"template": {"metadata": {"annotations": {"other": "x", STAMP_PREFIX + "db": "h1:old"}},
                                  "spec": pod}}}


def test_env_keys_volume_items_and_whole_secret_readers_are_told_apart() -> None:
    pod = {
        "initContainers": [{"name": "init", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {
            "name": "db", "key": "host"}}}]}],
        "containers": [
            {"name": "app", "env": [{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                                    {"name": "PLAIN", "value": "not-a-ref"}],
             "envFrom": [{"secretRef": {"name": "flags"}}],
             "volumeMounts": [{"name": "tls", "mountPath": "/tls"}, {"name": "bundle", "mountPath": "/b"}]}],
        "volumes": [
            {"name": "tls", "secret": {"secretName": "tls", "items": [{"key": "tls.crt", "path": "c"}]}},
            {"name": "bundle", "projected": {"sources": [{"secret": {"name": "api"}},
                                                          {"configMap": {"name": "cm"}}]}},
        ],
        "imagePullSecrets": [{"name": "registry"}],
    }
    assert secret_reads(pod) == {
        "db": frozenset({"host", "password"}), "flags": None, "tls": frozenset({"tls.crt"}), "api": None,
    }


def test_a_workload_record_keeps_only_identity_reads_opt_out_and_our_annotations() -> None:
    obj = _deployment("api", {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "db"}}]}]},
                      uid="u1", annotations={"secretsync.io/rollout": "false"})
    wl = workload_record("Deployment", obj)
    assert (wl.kind, wl.namespace, wl.name, wl.uid) == ("Deployment", "shop", "api", "u1")
    assert wl.reads == {"db": None}
    assert wl.opted_out
    assert wl.stamps == {STAMP_PREFIX + "db": "h1:old"}


def test_malformed_pod_specs_never_break_the_index() -> None:
    pods: tuple[Any, ...] = ({"containers": "nope"}, {"containers": [{"env": [{"valueFrom": {"secretKeyRef": {}}}]}]},
                             {"volumes": [{"secret": None}]}, [])
    for pod in pods:
        wl = workload_record("DaemonSet", _deployment("x", pod))
        assert wl.reads == {}


def test_index_answers_by_namespace_and_secret_and_forgets_removed_workloads() -> None:
    idx = ConsumerIndex()
    reads_db = {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "db"}}]}]}
    a = workload_record("Deployment", _deployment("a", reads_db))
    b = workload_record("StatefulSet", _deployment("b", reads_db))
    other_ns = workload_record("Deployment", _deployment("a", reads_db, ns="other"))
    for wl in (a, b, other_ns):
        idx.put(wl)
    assert [w.id for w in idx.consumers("shop", "db")] == [a.id, b.id]
    # The workload stops reading the Secret: it is no longer a consumer.
    idx.put(workload_record("StatefulSet", _deployment("b", {"containers": [{"name": "c"}]})))
    assert [w.id for w in idx.consumers("shop", "db")] == [a.id]
    idx.remove(a.id)
    assert idx.consumers("shop", "db") == []
    assert [w.id for w in idx.consumers("other", "db")] == [other_ns.id]


def test_stamp_annotation_keys_stay_valid_for_long_secret_names() -> None:
    assert stamp_annotation("db") == "rollout.secretsync.io/db"
    long = "a" * 200
    ann = stamp_annotation(long)
    name = ann.split("/", 1)[1]
    assert len(name) <= 63 and ann != stamp_annotation("a" * 199)


def test_every_key_absorbs_a_key_list() -> None:
    assert merge_keys(frozenset({"a"}), None) is None
    assert merge_keys(frozenset({"a"}), frozenset({"b"})) == frozenset({"a", "b"})
