"""The planner: every finding ends as a change or a manual item, and the plan holds no value."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.workflow import plan_paths
from secretsync.scan import scan_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    return tmp_path / "ex"


def _opts(tmp: Path, **kw: str) -> PlanOptions:
    return PlanOptions(store_url=f"file://{tmp}/store.json", **kw)  # type: ignore[arg-type]


def _values(tree: Path) -> list[str]:
    return [d.value.reveal_text() for d in scan_paths([tree]).detections]


def test_every_example_finding_is_migrated_and_none_is_manual(tree: Path) -> None:
    plan = plan_paths([tree], _opts(tree.parent))
    doc = plan.doc
    assert doc["findings"], "the examples must have findings"
    assert {f["disposition"] for f in doc["findings"]} == {"migrate"}
    assert doc["manual"] == []
    kinds = {g["kind"] for g in doc["groups"]}
    assert kinds == {"Deployment", "ConfigMap", "Secret", "SecretGenerator", "HelmValues"}
    # every finding points at a secret that exists
    ids = {s["id"] for s in doc["secrets"]}
    assert all(f["secret"] in ids for f in doc["findings"])


def test_plan_holds_no_value_and_no_base64_of_one(tree: Path) -> None:
    plan = plan_paths([tree], _opts(tree.parent))
    text = plan.to_json()
    import base64

    for v in _values(tree) + [s.reveal_text() for s in plan.values.values()]:
        for line in v.splitlines():
            if len(line.strip()) >= 6 and "=" in line and "password" in line:
                assert line.strip() not in text
        if len(v) >= 6 and "\n" not in v:
            assert v not in text, "a value leaked into the plan"
            assert base64.b64encode(v.encode()).decode() not in text


def test_masked_diffs_show_no_value(tree: Path) -> None:
    plan = plan_paths([tree], _opts(tree.parent))
    blob = "".join(plan.diffs.values())
    assert "valueFrom" in blob and "***" in blob
    for v in _values(tree):
        assert v not in blob


def test_helm_value_without_existing_secret_option_is_manual_with_reason(tmp_path: Path) -> None:
    d = tmp_path / "chart"
    d.mkdir()
    (d / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (d / "values.yaml").write_text("db:\n  password: Kq8-vB3n-zT5w-prod\n")
    doc = plan_paths([d], _opts(tmp_path)).doc
    assert [f["disposition"] for f in doc["findings"]] == ["manual"]
    assert "existingSecret" in doc["manual"][0]["reason"]
    assert doc["secrets"] == []


def test_env_literal_using_expansion_is_manual(tmp_path: Path) -> None:
    # The scanner skips such values; a detection made by hand shows the planner's own guard.
    from secretsync.core.values import SecretValue
    from secretsync.migrator.findings import Detection, Finding
    from secretsync.migrator.manifests import Inventory
    from secretsync.migrator.plan import Planner

    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n"
        "    env:\n    - {name: DB_PASSWORD, value: 'Zq8-$(SUFFIX)-Lm4v'}\n")
    f = Finding(file="pod.yaml", line=9, resource="Pod//p", path="spec.containers[0].env[0].value",
                key="DB_PASSWORD", rule="keyword-password", confidence="high", location="env", container="c")
    det = Detection(f, SecretValue("Zq8-$(SUFFIX)-Lm4v"))
    doc = Planner(Inventory.load([tmp_path]), [tmp_path], _opts(tmp_path)).build([det]).doc
    assert doc["findings"][0]["disposition"] == "manual"
    assert "expansion" in doc["manual"][0]["reason"]


def test_configmap_consumers_in_other_files_are_switched(tree: Path) -> None:
    doc = plan_paths([tree], _opts(tree.parent)).doc
    deploy = next(c for c in doc["changes"] if c["resource"] == "Deployment/shop/api")
    ops = {op["op"] + ":" + op["path"] for op in deploy["ops"]}
    assert any("volumes[name=config]" in o for o in ops)
    assert any(o.startswith("insert:") and "envFrom" in o for o in ops)
    assert any("env[name=SESSION_SECRET].valueFrom" in o for o in ops)


def test_same_value_under_one_provider_key_is_shared_and_different_values_get_distinct_keys(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w, namespace: n}\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: a\n        image: x\n        env:\n"
        "        - {name: DB_PASSWORD, value: Hq3-vN8x-Lp2w-one}\n"
        "      - name: b\n        image: x\n        env:\n        - {name: DB_PASSWORD, value: Hq3-vN8x-Lp2w-two}\n")
    doc = plan_paths([tmp_path], _opts(tmp_path)).doc
    keys = [s["providerKey"] for s in doc["secrets"]]
    skeys = [s["secretKey"] for s in doc["secrets"]]
    assert len(set(keys)) == 2 and len(set(skeys)) == 2


def test_name_template_and_store_kind_reach_the_manifests(tree: Path) -> None:
    plan = plan_paths([tree], PlanOptions(store_url=f"file://{tree.parent}/s.json",
                                          name_template="apps/{namespace}-{workload}-{key}",
                                          store_name="vault-prod", store_kind="ClusterSecretStore"))
    doc = plan.doc
    assert all(s["providerKey"].startswith("apps/") for s in doc["secrets"])
    es = next(f for f in doc["newFiles"] if f["kind"] == "ExternalSecret")
    assert "name: vault-prod" in es["text"] and "kind: ClusterSecretStore" in es["text"]
    assert any(f["kind"] == "ClusterSecretStore" for f in doc["newFiles"])
    json.dumps(doc)


def test_a_file_that_cannot_be_rewritten_becomes_manual_and_the_rest_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: dup}\ntype: Opaque\ntype: Opaque\n"
        "stringData: {password: Lq8-vN3x-Tz5w-bad}\n")
    (tmp_path / "good.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ok}\nstringData: {password: Lq8-vN3x-Tz5w-good}\n")
    doc = plan_paths([tmp_path], _opts(tmp_path)).doc
    by_file = {f["file"]: f for f in doc["findings"]}
    assert by_file["bad.yaml"]["disposition"] == "manual"
    assert "duplicate key" in by_file["bad.yaml"]["reason"]
    assert by_file["good.yaml"]["disposition"] == "migrate"
    assert [c["file"] for c in doc["changes"]] == ["good.yaml"]


def _live(ns: str) -> list[dict[str, object]]:
    return [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "api", "namespace": ns, "uid": f"u-{ns}"},
             "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
                 "metadata": {"labels": {"app": "api"}},
                 "spec": {"containers": [{"name": "app", "image": "x",
                                          "env": [{"name": "DB_PASSWORD", "value": "Wq7-rT2v!Lp9-" + ns}]}]}}}}]


def test_cluster_plan_creates_a_cluster_store_per_namespace_admitting_only_it(tmp_path: Path) -> None:
    """A store made from a URL has no credentials: as a namespaced SecretStore the controller would
    refuse it (docs/security.md rule 3). Live mode runs as the admin: a ClusterSecretStore per
    namespace whose conditions admit that namespace only, and its ExternalSecrets use it."""
    from secretsync.api.models import parse_secret_store
    from secretsync.migrator.manifests import Inventory
    from secretsync.migrator.plan import Planner
    from secretsync.scan import scan_objects

    objects = _live("shop") + _live("billing")
    plan = Planner(Inventory.from_objects(objects), [], _opts(tmp_path)).build(
        scan_objects(objects, source="cluster").detections, None)
    new = plan.doc["newObjects"]
    stores = {o["name"]: o["manifest"] for o in new if o["kind"] == "ClusterSecretStore"}
    assert not any(o["kind"] == "SecretStore" for o in new)
    assert set(stores) == {"secretsync-shop", "secretsync-billing"}
    for name, m in stores.items():
        ns = name.removeprefix("secretsync-")
        assert m["spec"]["conditions"] == [{"namespaces": [ns]}]
        parse_secret_store(m)
    for o in new:
        if o["kind"] == "ExternalSecret":
            assert o["manifest"]["spec"]["secretStoreRef"] == {"name": f"secretsync-{o['namespace']}",
                                                               "kind": "ClusterSecretStore"}
    # --store-ref NAME (no store made): the ExternalSecrets use that SecretStore as asked
    opts = PlanOptions(store_url=f"file://{tmp_path}/store.json", store_name="provider", store_manifest=False)
    plan = Planner(Inventory.from_objects(objects), [], opts).build(
        scan_objects(objects, source="cluster").detections, None)
    assert {o["kind"] for o in plan.doc["newObjects"]} == {"ExternalSecret"}
    assert all(o["manifest"]["spec"]["secretStoreRef"] == {"name": "provider", "kind": "SecretStore"}
               for o in plan.doc["newObjects"])
