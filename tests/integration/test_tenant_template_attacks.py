"""A hostile tenant's templates and regexes, on the real API server: refused, bounded, silent.

Each attack is an ExternalSecret a namespace owner could write. The controller must answer
each with a Ready=False condition naming the template key (or the field), stay responsive
(/healthz), keep its peak memory far below what the attack asks for, and never let the
canary value, or a slice or transform of it, reach status, Events, logs or metrics.
"""

from __future__ import annotations

import base64
import json
import logging
import resource
import time
import urllib.request
import uuid
from dataclasses import replace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from secretsync.controller.runtime import ES_RES
from secretsync.controller.settings import MetricsSettings, ScopeSettings
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import EVENTS
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

#: What the ExternalSecret's template says, and the reason its Ready condition must carry.
TEMPLATE_ATTACKS = {
    "center": ("{{ a.center(10**9) }}", "TemplateError"),
    "pem": ("{{ a | filterPEM(a) }}", "TemplateError"),
    "secretkey": ("{{ values[secretKey('creds', 'k') | upper] }}", "TemplateError"),
    "b64": ("{{ values[a | b64enc] }}", "TemplateError"),
    "slice": ("{{ {}[a[3:15]] }}", "TemplateError"),
    "loop": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "TemplateError"),
    "laughs": ("{% set ns = namespace(x=[a]) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}"
               "{{ ns.x | toJson }}", "TemplateError"),
}


#: Exponential on "aaaa...a!" with a backtracking engine (the first alternative fails slowly).
SLOW_PATTERN = "^(a+)+$"


def _forms(value: str) -> list[str]:
    return [value, value.upper(), value.lower(), value[3:15], value[::-1], base64.b64encode(value.encode()).decode()]


def test_tenant_templates_and_regexes_are_bounded_and_leak_nothing(
        kube: KubeCluster, caplog: pytest.LogCaptureFixture) -> None:
    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("tenant", labels={"secretsync-test": label})
    mem_name = f"attack-{uuid.uuid4().hex[:8]}"
    mem = open_store(f"memory://{mem_name}")
    mem.put("plain", SecretValue(CANARY))
    slow_name = "a" * 28 + "!"  # SLOW_PATTERN takes minutes on this with a backtracking engine
    mem.put(slow_name, SecretValue("x"))
    mem.put("doc", SecretValue(json.dumps({slow_name: "y"})))
    caplog.set_level(logging.DEBUG)
    settings = replace(fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}")),
                       metrics=MetricsSettings(port=0, host="127.0.0.1"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with running_controller(kube, settings) as ctl:
        assert ctl.health is not None
        health = f"http://127.0.0.1:{ctl.health.port}/healthz"
        create(api, store_manifest("mem", ns, "memory", {"name": mem_name}))
        create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
                     "stringData": {"k": CANARY}})
        for name, (source, _reason) in TEMPLATE_ATTACKS.items():
            create(api, es_manifest(name, ns, "mem", [("a", "plain")], refresh="1s",
                                    target={"template": {"data": {"out": source}}}))
        # Catastrophic patterns run on RE2 (linear); RE2-less constructs are refused by field.
        create(api, es_manifest("find", ns, "mem", refresh="1s",
                                dataFrom=[{"find": {"name": {"regexp": SLOW_PATTERN + "|!$"}},
                                           "rewrite": [{"regexp": {"source": SLOW_PATTERN + "|^a+!$",
                                                                   "target": "k"}}]}]))
        create(api, es_manifest("rewrite", ns, "mem", refresh="1s",
                                dataFrom=[{"extract": {"key": "doc"},
                                           "rewrite": [{"regexp": {"source": SLOW_PATTERN + "|^a+!$",
                                                                   "target": "k"}}]}]))
        create(api, es_manifest("backref", ns, "mem", refresh="1s",
                                dataFrom=[{"find": {"name": {"regexp": "(a)\\1"}}}]))
        create(api, es_manifest("satoken", ns, "mem", [("token", "plain")], refresh="1s",
                                target={"template": {"type": "kubernetes.io/service-account-token",
                                                     "metadata": {"annotations": {
                                                         "kubernetes.io/service-account.name": "default"}}}}))
        # Nor may Merge (or adoption) write into a Secret Kubernetes fills with a token.
        create(api, {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                     "metadata": {"name": "sa-token", "namespace": ns,
                                  "annotations": {"kubernetes.io/service-account.name": "default"}}})
        create(api, es_manifest("satoken-merge", ns, "mem", [("ca.crt", "plain")], refresh="1s",
                                target={"name": "sa-token", "creationPolicy": "Merge"}))
        # A well-behaved template next to the attacks still syncs.
        create(api, es_manifest("ok", ns, "mem", [("a", "plain")], refresh="1s",
                                target={"template": {"data": {"out": "{{ a | upper }}"}}}))

        slowest = 0.0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            with urllib.request.urlopen(health, timeout=5) as resp:
                assert resp.status == 200
            slowest = max(slowest, time.monotonic() - t0)
            if secret_data(api, ns, "ok") and all(es_ready(api, ns, n, "False")() for n in TEMPLATE_ATTACKS):
                break
            time.sleep(0.2)
        for name, (_source, reason) in TEMPLATE_ATTACKS.items():
            cond = wait_for(es_ready(api, ns, name, "False", reason), message=f"{name} refused")
            assert "template 'out'" in cond["message"]
        assert wait_for(es_ready(api, ns, "find", "True"), message="find on RE2")
        assert secret_data(api, ns, "find") == {"k": "x"}
        wait_for(es_ready(api, ns, "rewrite", "True"), message="rewrite on RE2")
        assert secret_data(api, ns, "rewrite") == {"k": "y"}
        backref = wait_for(es_ready(api, ns, "backref", "False", "InvalidSpec"), message="backreference refused")
        assert "spec.dataFrom[0].find.name.regexp" in backref["message"]
        satoken = wait_for(es_ready(api, ns, "satoken", "False", "InvalidSpec"), message="privileged type refused")
        assert "spec.target.template.type" in satoken["message"]
        assert secret_data(api, ns, "satoken") is None
        wait_for(es_ready(api, ns, "satoken-merge", "False", "SecretTypeNotAllowed"), message="no merge into a token")
        assert "ca.crt" not in (secret_data(api, ns, "sa-token") or {})
        assert secret_data(api, ns, "ok") == {"out": CANARY.upper()}
        assert slowest < 3.0, f"/healthz took {slowest:.1f}s during the attacks"
        metrics_text = ctl.metrics.render().decode()
        wait_for(lambda: ctl.events._queue.empty(), message="events sent")
    # The ESO-compatible series are fed by the real reconcilers.
    samples = {(x.name, tuple(sorted(x.labels.items()))): x.value
               for f in text_string_to_metric_families(metrics_text) for x in f.samples}
    assert samples[("externalsecret_status_condition", (("condition", "Ready"), ("name", "center"),
                                                        ("namespace", ns), ("status", "False")))] == 1
    assert samples[("externalsecret_sync_calls_error", (("name", "center"), ("namespace", ns)))] >= 1
    assert samples[("secretstore_status_condition", (("condition", "Ready"), ("name", "mem"), ("namespace", ns),
                                                     ("status", "True")))] == 1
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"peak RSS growth {rss_growth_mib:.1f} MiB, slowest /healthz {slowest * 1000:.0f} ms")
    assert rss_growth_mib < 200, f"peak RSS grew {rss_growth_mib:.0f} MiB under the template bombs"
    names = [*TEMPLATE_ATTACKS, "find", "rewrite", "backref", "satoken", "satoken-merge", "ok"]
    statuses = json.dumps([api.get(ES_RES, n, ns).get("status") for n in names])
    events = json.dumps(api.list(EVENTS, ns)["items"])
    for surface, text in (("status", statuses), ("events", events), ("metrics", metrics_text),
                          ("logs", caplog.text)):
        for form in _forms(CANARY):
            assert form not in text, f"a form of the canary leaked into {surface}"
    api.close()
