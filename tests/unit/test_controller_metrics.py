"""What an ESO user's dashboards and alerts scrape is served, and the shipped ones read only that."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from secretsync.controller.metrics import Metrics, ObjectCondition

FILES = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "secretsync" / "files"


def _exercised(object_labels: bool = True) -> Metrics:
    """A Metrics with one of everything the controller records."""
    m = Metrics(object_labels=object_labels)
    m.call_listener("aws", "GetSecretValue", "OK")
    m.call_listener("aws", "GetSecretValue", "Throttled")
    m.eso.reconciled("team-a", "db", 0.25)
    m.eso.reconciled("team-a", "api", 0.5)
    m.eso.failed("team-a", "db")
    m.sync_duration.labels("ExternalSecret").observe(0.1)
    m.secrets_written.labels("create").inc()
    m.drift_repaired.inc()
    m.reconcile_errors.labels("ExternalSecret", "Throttled").inc()
    m.store_cycles.labels("list", "ok").inc()
    m.leader.set(1)
    m.watch_conditions(lambda: [("True", "SecretSynced")])
    m.watch_object_conditions(lambda: [
        ObjectCondition("ExternalSecret", "team-a", "db", "Ready", "False"),
        ObjectCondition("ExternalSecret", "team-a", "api", "Ready", "True"),
        ObjectCondition("SecretStore", "team-a", "aws", "Ready", "True"),
        ObjectCondition("ClusterSecretStore", "", "shared", "Ready", "False"),
        ObjectCondition("ClusterExternalSecret", "", "fanout", "Ready", "True"),
    ])
    return m


def _samples(m: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def test_eso_metric_names_and_labels_are_served() -> None:
    s = _samples(_exercised())
    assert ({"name": "db", "namespace": "team-a"}, 2.0) not in s["externalsecret_sync_calls_total"]
    assert ({"name": "db", "namespace": "team-a"}, 1.0) in s["externalsecret_sync_calls_total"]
    assert ({"name": "db", "namespace": "team-a"}, 1.0) in s["externalsecret_sync_calls_error"]
    assert ({"name": "db", "namespace": "team-a"}, 0.25e9) in s["externalsecret_reconcile_duration"]
    assert ({"provider": "aws", "call": "GetSecretValue", "status": "error"}, 1.0) in \
        s["externalsecret_provider_api_calls_count"]
    ready = s["externalsecret_status_condition"]
    assert ({"name": "db", "namespace": "team-a", "condition": "Ready", "status": "False"}, 1.0) in ready
    assert ({"name": "db", "namespace": "team-a", "condition": "Ready", "status": "True"}, 0.0) in ready
    assert ({"name": "aws", "namespace": "team-a", "condition": "Ready", "status": "True"}, 1.0) in \
        s["secretstore_status_condition"]
    assert ({"name": "shared", "condition": "Ready", "status": "False"}, 1.0) in \
        s["clustersecretstore_status_condition"]
    assert ({"name": "fanout", "condition": "Ready", "status": "True"}, 1.0) in \
        s["clusterexternalsecret_status_condition"]


def test_process_and_build_info_are_served_and_no_created_twins() -> None:
    s = _samples(_exercised())
    assert "process_resident_memory_bytes" in s and "process_cpu_seconds_total" in s
    [(labels, value)] = s["secretsync_build_info"]
    assert value == 1.0 and labels["version"] and labels["python_version"]
    assert not [name for name in s if name.endswith("_created")]


def test_without_object_labels_series_are_summed_per_namespace() -> None:
    s = _samples(_exercised(object_labels=False))
    assert s["externalsecret_sync_calls_total"] == [({"namespace": "team-a"}, 2.0)]
    ready = s["externalsecret_status_condition"]
    assert ({"namespace": "team-a", "condition": "Ready", "status": "False"}, 1.0) in ready
    assert ({"namespace": "team-a", "condition": "Ready", "status": "True"}, 1.0) in ready
    assert all("name" not in labels for samples in s.values() for labels, _ in samples)


def test_a_deleted_externalsecret_leaves_no_series() -> None:
    m = _exercised()
    m.eso.forget("team-a", "db")
    s = _samples(m)
    assert all(labels.get("name") != "db" for labels, _ in s["externalsecret_sync_calls_total"])
    assert all(labels.get("name") != "db" for labels, _ in s.get("externalsecret_sync_calls_error", []))


# -- the shipped dashboard and alerts ---------------------------------------------------------
_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "by", "without", "on", "ignoring", "group_left",
    "group_right", "rate", "irate", "increase", "delta", "histogram_quantile", "absent", "and", "or", "unless",
    "offset", "bool", "clamp_min", "clamp_max", "time", "vector", "scalar", "le", "label_replace",
}


def _metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (label matchers, groupings and durations removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text)) - _PROMQL_WORDS
    return {n for n in names if not re.fullmatch(r"\d+\w*", n)}


def _dashboard_queries() -> list[str]:
    dash = json.loads((FILES / "grafana-dashboard.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]


def _rule_queries() -> list[str]:
    rules = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_shipped_query_names_a_metric_the_controller_serves(source: str) -> None:
    served = set(_samples(_exercised())) | set(_samples(_exercised(object_labels=False)))
    queries = _dashboard_queries() if source == "dashboard" else _rule_queries()
    assert queries
    for expr in queries:
        names = _metric_names(expr)
        assert names, expr
        assert names <= served, f"{expr!r} reads {sorted(names - served)}, which the controller does not serve"


def test_the_rules_cover_what_an_operator_is_paged_for() -> None:
    rules = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for needed in ("SecretSyncExternalSecretNotReady", "SecretSyncProviderErrors", "SecretSyncProviderThrottled",
                   "SecretSyncStoreCircuitOpen", "SecretSyncLeaderMissing"):
        assert needed in alerts
        assert alerts[needed]["for"] and alerts[needed]["labels"]["severity"]


def test_a_probe_can_ask_for_one_metric_by_name_as_prometheus_client_allows() -> None:
    """``/metrics?name[]=X`` serves X alone: at 10k ExternalSecrets the whole page is tens of
    thousands of series, and a readiness probe polling one gauge must not render them all."""
    import urllib.request

    from secretsync.controller.metrics import HealthServer

    m = _exercised()
    server = HealthServer("127.0.0.1", 0, m, lambda: True, lambda: True)
    server.start()
    try:
        for wanted in ("secretsync_externalsecrets", "externalsecret_status_condition"):
            url = f"http://127.0.0.1:{server.port}/metrics?name[]={wanted}"
            with urllib.request.urlopen(url, timeout=10) as resp:
                names = {s.name for fam in text_string_to_metric_families(resp.read().decode()) for s in fam.samples}
            assert names == {wanted}
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as resp:
            assert b"externalsecret_sync_calls_total" in resp.read()
    finally:
        server.stop()
