"""A canary value must never appear in status, events, logs or metrics, on success or failure paths."""

from __future__ import annotations

import base64
import json
import logging
import uuid

import pytest

from secretsync.controller.runtime import ES_RES, SS_RES
from secretsync.controller.settings import ScopeSettings
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import EVENTS, SECRETS
from tests.conftest import CANARY
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    fast_settings,
    install_crds,
    kube_api,
    running_controller,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster

pytestmark = pytest.mark.kube


def test_canary_never_leaves_the_secret(kube: KubeCluster, caplog: pytest.LogCaptureFixture) -> None:
    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("canary", labels={"secretsync-test": label})
    mem_name = f"canary-{uuid.uuid4().hex[:8]}"
    mem = open_store(f"memory://{mem_name}")
    mem.put("plain", SecretValue(CANARY))
    mem.put("json", SecretValue(json.dumps({"password": CANARY})))
    caplog.set_level(logging.DEBUG)
    settings = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings) as ctl:
        create(api, store_manifest("mem", ns, "memory", {"name": mem_name}))
        # Success paths: plain key, JSON property, a template, dataFrom extract.
        create(api, es_manifest("ok", ns, "mem", [("a", "plain")], refresh="1s",
                                dataFrom=[{"extract": {"key": "json"}}]))
        tmpl = es_manifest("tmpl", ns, "mem", [("a", "plain")], refresh="1s",
                           target={"template": {"data": {"conn": "user:{{ a }}@db"}}})
        create(api, tmpl)
        # Failure paths that handle the value: a property of a non-JSON secret, an undefined
        # template variable next to the value, a base64 decode of a non-base64 value.
        bad_prop = es_manifest("badprop", ns, "mem", refresh="1s")
        bad_prop["spec"]["data"] = [{"secretKey": "x", "remoteRef": {"key": "plain", "property": "nope"}}]
        create(api, bad_prop)
        create(api, es_manifest("badtmpl", ns, "mem", [("a", "plain")], refresh="1s",
                                target={"template": {"data": {"x": "{{ a | int + missing }}"}}}))
        bad_b64 = es_manifest("badb64", ns, "mem", refresh="1s")
        bad_b64["spec"]["data"] = [{"secretKey": "x", "remoteRef": {"key": "plain", "decodingStrategy": "Base64"}}]
        create(api, bad_b64)
        # An unmanaged Secret holding the canary that the controller must refuse to take.
        create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "refuse", "namespace": ns},
                     "stringData": {"k": CANARY}})
        create(api, es_manifest("refuse", ns, "mem", [("k", "plain")], refresh="1s"))
        # Merge into a shared Secret, a second ExternalSecret that clashes on the key, and a
        # type the API server refuses (the dry run reports it, with the value in the body).
        create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shared", "namespace": ns},
                     "stringData": {"theirs": "x"}})
        create(api, es_manifest("m1", ns, "mem", [("a", "plain")], refresh="1s",
                                target={"name": "shared", "creationPolicy": "Merge"}))
        create(api, es_manifest("m2", ns, "mem", [("a", "plain")], refresh="1s",
                                target={"name": "shared", "creationPolicy": "Merge"}))
        create(api, es_manifest("typ", ns, "mem", [("a", "plain")], refresh="1s"))
        wait_for(lambda: secret_data(api, ns, "ok") == {"a": CANARY, "password": CANARY}, message="ok synced")
        wait_for(lambda: secret_data(api, ns, "tmpl") == {"conn": f"user:{CANARY}@db"}, message="template")
        for name in ("badprop", "badtmpl", "badb64", "refuse"):
            wait_for(es_ready(api, ns, name, "False"), message=f"{name} not ready")
        wait_for(lambda: (secret_data(api, ns, "shared") or {}).get("a") == CANARY, message="merged")
        wait_for(lambda: es_ready(api, ns, "m1", "False", "KeyOwnedByOther")()
                 or es_ready(api, ns, "m2", "False", "KeyOwnedByOther")(), message="clash refused")
        wait_for(lambda: secret_data(api, ns, "typ") == {"a": CANARY}, message="typ synced")
        api.patch(ES_RES, "typ", {"spec": {"target": {"template": {"type": "kubernetes.io/basic-auth"}}}}, ns)
        wait_for(es_ready(api, ns, "typ", "False", "KubernetesError"), message="type refused")
        # Drift repair and a value change.
        api.patch(SECRETS, "ok", {"stringData": {"a": "edited"}}, ns)
        wait_for(lambda: (secret_data(api, ns, "ok") or {}).get("a") == CANARY, message="drift repaired")
        mem.put("plain", SecretValue(CANARY + "-2"))
        wait_for(lambda: (secret_data(api, ns, "ok") or {}).get("a") == CANARY + "-2", message="value change")
        metrics_text = ctl.metrics.render().decode()
        wait_for(lambda: ctl.events._queue.empty(), message="events sent")
    statuses = json.dumps([api.get(ES_RES, n, ns).get("status") for n in
                           ("ok", "tmpl", "badprop", "badtmpl", "badb64", "refuse", "m1", "m2", "typ")])
    store_status = json.dumps(api.get(SS_RES, "mem", ns).get("status"))
    events = json.dumps(api.list(EVENTS, ns)["items"])
    annotations = json.dumps([api.get(SECRETS, n, ns)["metadata"] for n in ("ok", "tmpl", "shared", "typ")])
    assert "SecretNotManaged" in statuses and "Created" in events  # the surfaces were exercised
    # Each surface in the forms a leak takes: plain, base64 (Secret data), JSON-escaped.
    forms = (CANARY, base64.b64encode(CANARY.encode()).decode(), json.dumps({"password": CANARY})[1:-1])
    for surface, text in (("status", statuses), ("store status", store_status), ("events", events),
                          ("metrics", metrics_text), ("logs", caplog.text), ("metadata", annotations)):
        for form in forms:
            assert form not in text, f"canary leaked into {surface}"
    api.close()
