"""What the controller keeps per ExternalSecret: one copy of each spec, status and repeated string.

At 10,000 ExternalSecrets the informer's records are most of the controller's memory, and
every status write comes back as a watch event; these pin down that such an echo costs
neither a new parse of the spec nor a second copy of the status.
"""

from __future__ import annotations

import json
from typing import Any

from secretsync.api.models import API_VERSION, ExternalSecretStatus
from secretsync.controller.runtime import es_record


def _es(name: str = "app", *, ns: str = "team-a", uid: str = "u-1", generation: int = 1,
        key: str = "db/creds", status: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "generation": generation,
                     "resourceVersion": "10"},
        "spec": {"secretStoreRef": {"kind": "SecretStore", "name": "vault"}, "refreshInterval": "1h",
                 "data": [{"secretKey": "user", "remoteRef": {"key": key, "property": "user"}},
                          {"secretKey": "password", "remoteRef": {"key": key, "property": "password"}}]},
    }
    if status is not None:
        doc["status"] = status
    return json.loads(json.dumps(doc))  # fresh string objects, as off the wire


_SYNCED = {"conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "synced",
                           "lastTransitionTime": "2026-12-02T01:00:00Z", "observedGeneration": 1}],
           "refreshTime": "2026-12-02T01:00:00Z", "syncedResourceVersion": "1"}


def test_a_status_writes_echo_reuses_the_parsed_spec() -> None:
    first = es_record(_es())
    echo = es_record(_es(status=_SYNCED), first)
    assert first.es is not None and echo.es is not None
    assert echo.es.spec is first.es.spec
    assert echo.status is not None and echo.status.synced_resource_version == "1"


def test_a_new_generation_or_a_recreated_object_is_parsed_again() -> None:
    first = es_record(_es())
    changed = es_record(_es(generation=2, key="db/other"), first)
    recreated = es_record(_es(uid="u-2", key="db/other"), first)
    for rec in (changed, recreated):
        assert rec.es is not None and first.es is not None
        assert rec.es.spec is not first.es.spec
        assert set(rec.es.spec.remote_keys()) == {"db/other"}


def test_an_invalid_spec_is_never_taken_from_the_prior_record() -> None:
    first = es_record(_es())
    bad = _es(generation=2)
    bad["spec"]["data"][0]["remoteRef"] = {"property": "user"}  # no key
    rec = es_record(bad, first)
    assert rec.es is None and rec.error and "remoteRef.key" in rec.error


def test_the_echo_of_the_status_the_controller_wrote_is_that_same_object() -> None:
    written = es_record(_es(status=_SYNCED)).status
    assert isinstance(written, ExternalSecretStatus)
    echo = es_record(_es(status=_SYNCED), None, written)
    assert echo.status is written and echo.es is not None and echo.es.status is written
    other = dict(_SYNCED, syncedResourceVersion="2")
    moved = es_record(_es(status=other), None, written)
    assert moved.status is not written and moved.status is not None
    assert moved.status.synced_resource_version == "2"


def test_repeated_short_strings_are_kept_once() -> None:
    a = es_record(_es("a", status=_SYNCED))
    b = es_record(_es("b", status=_SYNCED))
    assert a.es is not None and b.es is not None and a.status is not None and b.status is not None
    assert a.es.meta.namespace is b.es.meta.namespace
    ref_a, ref_b = (d.remote_ref for d in a.es.spec.data)
    assert ref_a is not None and ref_b is not None and ref_a.key is ref_b.key
    assert a.status.conditions[0].reason is b.status.conditions[0].reason


def test_a_remote_change_queues_exactly_the_readers_of_that_key_as_they_come_and_go() -> None:
    """The remote-key index keeps a single reader without a set; sharing and leaving still work."""
    from kubernetes.client import Configuration

    from secretsync.controller.runtime import Controller
    from secretsync.controller.settings import ControllerSettings, ScopeSettings
    from secretsync.kube.client import KubeApi

    conf = Configuration()
    conf.host = "http://127.0.0.1:9"  # never called: only the indexes are exercised
    ctl = Controller(KubeApi(conf), ControllerSettings(scope=ScopeSettings(namespaces=("team-a",))))
    ctl.ns_informer.unavailable = True  # namespaced RBAC: --namespaces is the scope
    sid = ("SecretStore", "team-a", "vault")
    recs = {name: es_record(_es(name, uid=f"u-{name}", key=key))
            for name, key in (("a", "db/shared"), ("b", "db/shared"), ("c", "db/own"))}
    for name, rec in recs.items():
        ctl._index(("team-a", name), rec)

    def queued_by(*names: str) -> set[str]:
        while len(ctl.queue):
            item = ctl.queue.get(timeout=0.1)
            if item is None:
                break
            ctl.queue.done(item)
        ctl._on_remote_changed(sid, set(names))
        got = set()
        while len(ctl.queue):
            item = ctl.queue.get(timeout=0.1)
            if item is None:
                break
            got.add(item[2])
            ctl.queue.done(item)
        return got

    assert queued_by("db/shared") == {"a", "b"}
    assert queued_by("db/own") == {"c"}
    ctl._index(("team-a", "a"), None)  # deleted
    assert queued_by("db/shared") == {"b"}
    ctl._index(("team-a", "b"), None)
    assert queued_by("db/shared") == set()
    assert ctl.usage(sid, "").keys == frozenset({"db/own"})
