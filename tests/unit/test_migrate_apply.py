"""Apply and rollback on a manifest tree with the embedded file store (no servers)."""

from __future__ import annotations

import base64
import filecmp
import json
import shutil
from pathlib import Path

import pytest

from secretsync.core.errors import Conflict
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.migrator.apply import ApplyOptions, StalePlan
from secretsync.migrator.manifests import Inventory
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.resolve import differences, resolve_tree
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan
from secretsync.scan import scan_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    shutil.copytree(EXAMPLES, tmp_path / "orig")
    return tmp_path


def _plan(work: Path) -> Path:
    plan = plan_paths([work / "ex"], PlanOptions(store_url=f"file://{work}/store.json"))
    write_plan(plan, work / "plan.json")
    return work / "plan.json"


def _same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)

    def walk(c: filecmp.dircmp[str]) -> bool:
        if c.left_only or c.right_only or c.diff_files or c.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(c.left, c.right, c.common_files, shallow=False)
        return not mismatch and not errors and all(walk(s) for s in c.subdirs.values())

    return walk(cmp)


def _versions(url: str) -> dict[str, str | None]:
    return {m.name: m.version for m in open_store(url).list()}


def test_apply_moves_everything_and_rollback_restores_bytes(work: Path) -> None:
    plan_file = _plan(work)
    values = {d.finding.fingerprint: d.value for d in scan_paths([work / "ex"]).detections}
    report = apply_plan(plan_file, ApplyOptions())
    assert report.stored == len(json.loads(plan_file.read_text())["secrets"])
    assert scan_paths([work / "ex"]).detections == []
    store = open_store(f"file://{work}/store.json")
    doc = json.loads(plan_file.read_text())
    for s in doc["secrets"]:
        for fp in s["findings"]:
            if s["source"]["kind"] != "field" or "pattern" in s["source"] or values[fp] == store.get(s["providerKey"]):
                continue
            # embedded-file findings carry the line's value; the whole file moved
            assert values[fp].reveal_text() in store.get(s["providerKey"]).reveal_text()
    rb = rollback_journal(work / "plan.journal")
    assert rb.problems == []
    assert _same_tree(work / "orig", work / "ex")


def test_workloads_resolve_the_same_env_args_and_files_after_migration(work: Path) -> None:
    before = resolve_tree(Inventory.load([work / "ex"]))
    apply_plan(_plan(work), ApplyOptions())
    store = open_store(f"file://{work}/store.json")

    def get(key: str, prop: str | None) -> SecretValue:
        return store.get(key, prop=prop)

    after = resolve_tree(Inventory.load([work / "ex"]), get)
    assert set(before) == set(after) and before
    assert differences(before, after) == []
    app = after["Deployment/shop/api"]["containers/app"]
    assert any(b"tok_" in a for a in app.argv)  # the flag still gets its value, via $(SECRETSYNC_API_TOKEN)
    assert "/etc/api/app.properties" in app.files


def test_helm_existing_secret_gets_the_value(work: Path) -> None:
    apply_plan(_plan(work), ApplyOptions())
    import yaml

    values = yaml.safe_load((work / "ex/charts/billing/values.yaml").read_text())
    auth = values["postgresql"]["auth"]
    assert auth["password"] == "" and auth["existingSecret"] == "billing-postgresql-auth"
    es = yaml.safe_load((work / "ex/charts/billing/templates/billing-postgresql-auth.externalsecret.yaml").read_text())
    item = es["spec"]["data"][0]
    assert item["secretKey"] == auth["existingSecretPasswordKey"]
    orig = yaml.safe_load((work / "orig/charts/billing/values.yaml").read_text())
    store = open_store(f"file://{work}/store.json")
    assert store.get(item["remoteRef"]["key"]).reveal_text() == orig["postgresql"]["auth"]["password"]


def test_second_apply_changes_nothing_and_adds_no_versions(work: Path) -> None:
    plan_file = _plan(work)
    apply_plan(plan_file, ApplyOptions())
    url = f"file://{work}/store.json"
    versions = _versions(url)
    snapshot = {p: p.read_bytes() for p in (work / "ex").rglob("*") if p.is_file()}
    report = apply_plan(plan_file, ApplyOptions())
    assert report.stored == 0 and report.skipped > 0
    assert _versions(url) == versions
    assert {p: p.read_bytes() for p in (work / "ex").rglob("*") if p.is_file()} == snapshot


def test_a_tree_edited_after_planning_is_refused(work: Path) -> None:
    plan_file = _plan(work)
    p = work / "ex/shop/api-config.yaml"
    p.write_text(p.read_text() + "# edited\n")
    with pytest.raises(StalePlan, match=r"api-config\.yaml"):
        apply_plan(plan_file, ApplyOptions())
    assert not (work / "store.json").exists()


def test_a_provider_key_holding_another_value_stops_apply_unless_overwrite(work: Path) -> None:
    plan_file = _plan(work)
    doc = json.loads(plan_file.read_text())
    first = doc["secrets"][0]["providerKey"]
    store = open_store(f"file://{work}/store.json")
    store.put(first, SecretValue("someone-elses-value"))
    with pytest.raises(Conflict, match="--overwrite"):
        apply_plan(plan_file, ApplyOptions())
    assert _same_tree(work / "orig", work / "ex")
    apply_plan(plan_file, ApplyOptions(overwrite=True))
    assert store.get(first) != SecretValue("someone-elses-value")


def test_provider_key_with_the_same_value_is_reused(work: Path) -> None:
    plan_file = _plan(work)
    doc = json.loads(plan_file.read_text())
    s = next(x for x in doc["secrets"] if x["source"]["kind"] == "literal")
    store = open_store(f"file://{work}/store.json")
    from secretsync.migrator.manifests import read_locator

    store.put(s["providerKey"], read_locator(Inventory(work / "ex"), s["source"]))
    report = apply_plan(plan_file, ApplyOptions())
    assert report.reused == 1
    assert store.describe(s["providerKey"]).version == "1"


def test_dry_run_changes_nothing(work: Path) -> None:
    report = apply_plan(_plan(work), ApplyOptions(dry_run=True))
    assert any(a.startswith("would store") for a in report.actions)
    assert _same_tree(work / "orig", work / "ex")
    assert not (work / "plan.journal").exists()


def test_journal_holds_no_value(work: Path) -> None:
    plan_file = _plan(work)
    values = [d.value for d in scan_paths([work / "ex"]).detections]
    apply_plan(plan_file, ApplyOptions())
    journal = (work / "plan.journal").read_text()
    for v in values:
        assert v.reveal_text() not in journal and v.b64() not in journal


def test_rollback_refuses_a_file_edited_after_the_migration_and_restores_the_rest(work: Path) -> None:
    apply_plan(_plan(work), ApplyOptions())
    p = work / "ex/shop/api-deployment.yaml"
    p.write_text(p.read_text() + "# hand edit\n")
    rb = rollback_journal(work / "plan.journal")
    assert any("api-deployment.yaml" in m for m in rb.problems)
    assert (work / "ex/shop/api-config.yaml").read_bytes() == (work / "orig/shop/api-config.yaml").read_bytes()


def test_rollback_can_delete_the_keys_it_created(work: Path) -> None:
    apply_plan(_plan(work), ApplyOptions())
    rb = rollback_journal(work / "plan.journal", delete_created=True)
    assert rb.deleted_keys > 0
    assert list(open_store(f"file://{work}/store.json").list()) == []
    assert _same_tree(work / "orig", work / "ex")


def test_secret_generator_files_move_whole_and_come_back_byte_identical(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    d = tmp_path / "k"
    d.mkdir()
    (d / "kustomization.yaml").write_text(
        "namespace: web\nresources:\n- deploy.yaml\nsecretGenerator:\n- name: tls\n  type: kubernetes.io/tls\n"
        "  files:\n  - tls.key=server.key\n  - tls.crt\n")
    key = b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(bytes(range(256)) * 2) + b"\n-----END PRIVATE KEY-----\n"
    (d / "server.key").write_bytes(key)
    (d / "tls.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (d / "deploy.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n"
        "      containers:\n      - name: c\n        image: x\n        volumeMounts: [{name: tls, mountPath: /tls}]\n"
        "      volumes:\n      - {name: tls, secret: {secretName: tls}}\n")
    original = {p.name: p.read_bytes() for p in d.iterdir()}
    before = resolve_tree(Inventory.load([d]))
    plan = plan_paths([d], PlanOptions(store_url=f"file://{tmp_path}/store.json"))
    assert plan.doc["manual"] == [] and plan.doc["secrets"]
    write_plan(plan, tmp_path / "plan.json")
    apply_plan(tmp_path / "plan.json", ApplyOptions())
    assert not (d / "server.key").exists()
    store = open_store(f"file://{tmp_path}/store.json")
    after = resolve_tree(Inventory.load([d]), lambda k, p: store.get(k, prop=p))
    assert differences(before, after) == []
    assert after["Deployment/web/web"]["containers/c"].files["/tls/tls.key"][0] == key
    rollback_journal(tmp_path / "plan.journal")
    assert {p.name: p.read_bytes() for p in d.iterdir()} == original
