"""Migration never loses a value and keeps every workload's view, on the YAML that real trees hold:
CRLF, several documents, anchors, flow style, block scalars, comments, shared Secrets and
ConfigMaps, special characters, kubectl dumps. Each test migrates a small tree end to end
(tests/harness/roundtrip.py checks resolve-equivalence, leftovers, no value in plan or journal,
and byte-identical rollback)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsync.core.registry import open_store
from secretsync.migrator.apply import ApplyOptions, ManifestApply
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan
from tests.harness.roundtrip import migrate_and_check, tree_bytes, write_tree


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    (tmp_path / "t").mkdir()
    return tmp_path / "t"


def _deploy(name: str, env: str, extra: str = "") -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n"
            f"      containers:\n      - name: app\n        image: x\n        env:\n{env}{extra}")


def test_crlf_file_keeps_crlf_and_comes_back_byte_identical(tree: Path) -> None:
    text = _deploy("crlf", "        - name: DB_PASSWORD\n          value: CrLf-Passw0rd\n"
                           "        - name: OTHER\n          value: plain\n").replace("\n", "\r\n")
    write_tree(tree, {"crlf.yaml": text})
    out = migrate_and_check(tree, tree.parent, values=["CrLf-Passw0rd"])
    new = out.migrated["crlf.yaml"].decode()
    assert "\r\n" in new and "\n" not in new.replace("\r\n", "")
    assert "valueFrom" in new


def test_only_the_touched_document_of_a_multi_document_file_changes(tree: Path) -> None:
    first = "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: untouched\ndata:\n" \
            "  a: b   # keep this comment\n  weird:    \"spacing\"\n"
    second = _deploy("touched", "          # the db password\n"
                                "        - name: DB_PASSWORD   # inline comment\n"
                                "          value: \"Multi#Doc: pw-1\"  # trailing\n"
                                "        - name: API_TOKEN\n          value: 'it''s-a-t0ken'\n")
    third = "apiVersion: v1\nkind: Service\nmetadata: {name: svc}\nspec: {ports: [{port: 80}]}\n"
    write_tree(tree, {"multi.yaml": f"{first}---\n{second}---\n{third}"})
    out = migrate_and_check(tree, tree.parent, values=["Multi#Doc: pw-1", "it's-a-t0ken", "it''s-a-t0ken"])
    new = out.migrated["multi.yaml"].decode()
    assert new.startswith(first + "---\n") and new.endswith("---\n" + third)
    assert "# the db password" in new and "# inline comment" in new


def test_an_env_list_shared_through_an_anchor_is_manual_and_untouched(tree: Path) -> None:
    text = _deploy("shared", "        - name: SHARED_PASSWORD\n          value: Anch0r-Passw0rd\n",
                   "      - name: sidecar\n        image: y\n        env: *common\n").replace(
        "        env:\n", "        env: &common\n", 1)
    merged = ("x-common: &common\n  name: MERGED_PASSWORD\n  value: M3rged-Passw0rd\n" +
              _deploy("merged", "        - <<: *common\n"))
    scalar = _deploy("scalar", "        - name: ONE_PASSWORD\n          value: &pw Sc4lar-Anch0r\n"
                               "        - name: TWO_PASSWORD\n          value: *pw\n")
    write_tree(tree, {"shared.yaml": text, "merged.yaml": merged, "scalar.yaml": scalar})
    out = migrate_and_check(tree, tree.parent)
    assert out.plan["secrets"] == []
    assert out.manual and all("anchor, alias or merge" in r for r in out.reasons())
    assert tree_bytes(tree) == out.migrated  # nothing was rewritten


def test_an_anchor_nobody_aliases_does_not_stop_the_migration(tree: Path) -> None:
    write_tree(tree, {"a.yaml": _deploy("lonely", "        - name: DB_PASSWORD\n          value: &pw L0nely-Anch0r\n")})
    out = migrate_and_check(tree, tree.parent, values=["L0nely-Anch0r"])
    assert out.manual == []


def test_flow_style_block_scalars_and_special_characters(tree: Path) -> None:
    flow = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: flow}\nspec:\n  template:\n    spec:\n"
            "      containers:\n      - {name: app, image: x, env: [{name: FLOW_PASSWORD, value: Fl0w-Passw0rd},"
            " {name: X, value: y}]}\n")
    cm = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: scal
data:
  multi.env: |
    DB_PASSWORD=Bl0ck-Pw-123
    OTHER=1
  folded_secret: >-
    f0lded-S3cret
    second-line-x9
  special_password: "*st&r: #hash ünïcödé"
  quoted_token: 'single ''quoted'' t0ken'
  escaped_secret: "a\\tb\\\\c\\"d\\u00e9-Esc4ped"
  LOG_LEVEL: info
"""
    consumer = _deploy("consumer", "        - name: FROM_CM\n          valueFrom:\n"
                                   "            configMapKeyRef: {name: scal, key: special_password}\n",
                       "        envFrom:\n        - configMapRef: {name: scal}\n"
                       "        volumeMounts:\n        - {name: cfg, mountPath: /cfg}\n"
                       "        - {name: one, mountPath: /etc/multi.env, subPath: multi.env}\n"
                       "      volumes:\n      - name: cfg\n        configMap: {name: scal, defaultMode: 0440}\n"
                       "      - name: one\n        configMap:\n          name: scal\n          items:\n"
                       "          - {key: multi.env, path: multi.env, mode: 0400}\n"
                       "          - {key: LOG_LEVEL, path: level}\n")
    write_tree(tree, {"flow.yaml": flow, "cm.yaml": cm, "consumer.yaml": consumer})
    out = migrate_and_check(tree, tree.parent, values=["Fl0w-Passw0rd", "Bl0ck-Pw-123", "*st&r: #hash ünïcödé",
                                                         "t0ken", "Esc4ped", "f0lded-S3cret"])
    assert out.manual == []
    new_flow = out.migrated["flow.yaml"].decode()
    assert "env: [{name: FLOW_PASSWORD, valueFrom: {secretKeyRef:" in new_flow  # still flow style
    consumer_after = out.migrated["consumer.yaml"].decode()
    assert "defaultMode: 0440" in consumer_after and "mode: 0400" in consumer_after  # modes stay readable
    assert yaml.safe_load(consumer_after)["spec"]["template"]["spec"]["volumes"][0]["projected"]["defaultMode"] == 0o440


def test_one_secret_used_by_two_workloads_and_two_findings_in_one_env_var(tree: Path) -> None:
    files = {
        "secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: shared-secret\ntype: Opaque\n"
                       "stringData:\n  password: Sh4red-Secret-Pw\n",
        "users.yaml": _deploy("user1", "        - name: P\n          valueFrom: {secretKeyRef: {name: shared-secret, "
                                       "key: password}}\n") + "---\n" +
                      _deploy("user2", "        - name: TWO\n"
                                       "          value: \"--password=TwoIn0ne-1 --token=TwoIn0ne-2\"\n"
                                       "        - name: CONN\n"
                                       "          value: \"postgres://u:C0nn-Pw1@h/db?password=C0nn-Pw2\"\n",
                              "        envFrom:\n        - secretRef: {name: shared-secret}\n"),
    }
    write_tree(tree, files)
    out = migrate_and_check(tree, tree.parent, values=["Sh4red-Secret-Pw", "TwoIn0ne-1", "C0nn-Pw1", "C0nn-Pw2"])
    assert out.manual == []
    assert b"kind: ExternalSecret" in out.migrated["secret.yaml"]


def test_kubectl_dump_loses_its_last_applied_copies_of_migrated_values(tree: Path) -> None:
    env = [{"name": "DB_PASSWORD", "value": "L4st<Applied>&Pw"}]
    applied: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "prod"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x", "env": env}]}}}}
    go_json = json.dumps(applied, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")
    dump = {**applied, "metadata": {**applied["metadata"], "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": go_json + "\n", "deployment.kubernetes.io/revision": "3"}}}
    stale_applied = json.loads(json.dumps(applied).replace("L4st<Applied>&Pw", "0ld-Stal3-Pw")
                               .replace('"api"', '"stale"'))
    stale = {**stale_applied, "metadata": {"name": "stale", "namespace": "prod", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(stale_applied)}}}
    stale["spec"] = json.loads(json.dumps(applied["spec"]).replace("L4st<Applied>&Pw", "N3w-Current-Pw"))
    secret_applied: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "prod"},
        "stringData": {"token": "Tok3n-In-Secret"}}
    secret = {**secret_applied, "metadata": {**secret_applied["metadata"], "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(secret_applied), "team": "a"}}}
    write_tree(tree, {"dump.yaml": yaml.safe_dump_all([dump, stale, secret], sort_keys=False)})
    out = migrate_and_check(tree, tree.parent, values=["L4st<Applied>&Pw", "L4st\\u003cApplied\\u003e\\u0026Pw",
                                                         "N3w-Current-Pw", "Tok3n-In-Secret", "0ld-Stal3-Pw"])
    docs = list(yaml.safe_load_all(out.migrated["dump.yaml"]))
    assert "kubectl.kubernetes.io/last-applied-configuration" not in docs[0]["metadata"]["annotations"]
    assert docs[2]["kind"] == "ExternalSecret"
    assert docs[2]["spec"]["target"]["template"]["metadata"]["annotations"] == {"team": "a"}
    # the stale copy is the only place the old value lives: it stays, as a manual item
    assert "0ld-Stal3-Pw" in docs[1]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert [m["resource"] for m in out.manual] == ["Deployment/prod/stale"]


def test_base64_wrapped_over_lines_never_reaches_the_journal(tree: Path) -> None:
    value = b"wrapped-secret-value-long-enough-to-wrap-over-several-lines-0123456789"
    b64 = base64.b64encode(value).decode()
    lines = "".join(f"    {b64[i:i + 40]}\n" for i in range(0, len(b64), 40))
    write_tree(tree, {"s.yaml": f"apiVersion: v1\nkind: Secret\nmetadata: {{name: wrapped}}\ndata:\n  key: |\n{lines}"})
    migrate_and_check(tree, tree.parent, values=[b64[i:i + 40] for i in range(0, len(b64), 40)])


def test_a_secret_with_one_unreadable_key_is_left_whole_and_nothing_is_stored(tree: Path) -> None:
    write_tree(tree, {
        "bad.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: half}\ndata:\n"
                    f"  good: {base64.b64encode(b'G00d-Value-1').decode()}\n  broken: '***not base64***'\n",
        "both.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: both}\ndata:\n"
                     f"  password: {base64.b64encode(b'Sh4dowed-1').decode()}\nstringData:\n  password: Vis1ble-2\n",
    })
    out = migrate_and_check(tree, tree.parent)
    assert out.plan["secrets"] == [] and out.plan["changes"] == []
    assert {m["resource"] for m in out.manual} == {"Secret//half", "Secret//both"}
    assert any("both data and stringData" in r for r in out.reasons())


def test_generator_files_outside_the_kustomization_are_never_read_or_removed(tree: Path) -> None:
    outside = tree.parent / "outside.env"
    outside.write_text("STOLEN=0utside-Value\n")
    write_tree(tree, {
        "app/kustomization.yaml": "secretGenerator:\n- name: app\n  literals:\n  - PASSWORD=L1teral-Pw\n"
                                  "  envs:\n  - ../../outside.env\n",
    })
    out = migrate_and_check(tree, tree.parent)
    assert outside.read_text() == "STOLEN=0utside-Value\n"
    assert out.plan["secrets"] == [] and out.plan["deleteFiles"] == []
    assert any("outside the kustomization" in r for r in out.reasons())
    store = tree.parent / "store.json"
    assert not store.exists() or "0utside-Value" not in store.read_text()


def test_rollback_after_a_partial_apply_restores_what_was_done(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tree, {
        "a.yaml": _deploy("a", "        - name: A_PASSWORD\n          value: Part1al-A\n"),
        "b.yaml": _deploy("b", "        - name: B_PASSWORD\n          value: Part1al-B\n"),
    })
    original = tree_bytes(tree)
    work = tree.parent
    write_plan(plan_paths([tree], PlanOptions(store_url=f"file://{work}/store.json")), work / "plan.json")
    real = ManifestApply._rewrite
    calls = []

    def fail_second(self: ManifestApply, step: object) -> None:
        calls.append(step)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real(self, step)  # type: ignore[arg-type]

    monkeypatch.setattr(ManifestApply, "_rewrite", fail_second)
    with pytest.raises(RuntimeError):
        apply_plan(work / "plan.json", ApplyOptions())
    half = tree_bytes(tree)
    assert sum(half[f] != original[f] for f in original) == 1
    store = open_store(f"file://{work}/store.json")
    assert sorted(m.name for m in store.list()) == ["default/a/A_PASSWORD", "default/b/B_PASSWORD"]
    rb = rollback_journal(work / "plan.journal")
    assert rb.problems == [] and tree_bytes(tree) == original


def test_json_manifests_are_migrated_and_stay_json(tree: Path) -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "prod"},
              "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "x", "env": [
                  {"name": "DATABASE_URL", "value": "postgres://api:J50n-Db-Pw@pg:5432/api"},
                  {"name": "WORKERS", "value": "4"}]}]}}}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "prod"},
              "data": {"token": base64.b64encode("J50n-T0ken-\u00e9".encode()).decode()}}
    write_tree(tree, {"api.json": json.dumps(deploy, indent=4) + "\n",
                      "secret.json": json.dumps(secret, indent=2, ensure_ascii=True)})
    out = migrate_and_check(tree, tree.parent, values=["J50n-Db-Pw", "J50n-T0ken-"])
    assert out.manual == []
    api = json.loads(out.migrated["api.json"])
    env = api["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "api-secrets",
                                                                               "key": "DATABASE_URL"}}}
    assert env[1] == {"name": "WORKERS", "value": "4"}
    assert out.migrated["api.json"].decode().startswith('{\n    "apiVersion"')  # its own indentation
    assert json.loads(out.migrated["secret.json"])["kind"] == "ExternalSecret"
    assert not out.migrated["secret.json"].endswith(b"\n")


def test_dollar_escapes_stay_and_a_value_repeated_in_one_argument_moves_once(tree: Path) -> None:
    write_tree(tree, {"a.yaml": _deploy(
        "twice", "        - name: DOLLAR_PASSWORD\n          value: \"pa$$w0rd-Dollar\"\n",
        "        command: [sh, -c, \"mysql -pS4me-Pw-12 db && mysqldump -pS4me-Pw-12 db > /x\"]\n")})
    out = migrate_and_check(tree, tree.parent, values=["S4me-Pw-12"])
    # Kubernetes turns $$ into $ in env values, but not in values read from a Secret
    assert [m["key"] for m in out.manual] == ["DOLLAR_PASSWORD"] and "$$" in out.reasons()[0]
    assert b"mysql -p$(SECRETSYNC_PASSWORD) db && mysqldump -p$(SECRETSYNC_PASSWORD) db" in out.migrated["a.yaml"]
    assert len(out.plan["secrets"]) == 1


def test_an_env_file_two_generators_read_is_not_removed(tree: Path) -> None:
    write_tree(tree, {
        "base/kustomization.yaml": "secretGenerator:\n- name: app\n  envs: [shared/s.env]\n"
                                   "configMapGenerator:\n- name: copy\n  envs: [shared/s.env]\n",
        "base/shared/s.env": "DB_PASSWORD=Sh4red-Env-Pw\n",
    })
    out = migrate_and_check(tree, tree.parent)
    assert out.plan["deleteFiles"] == [] and out.plan["secrets"] == []
    assert any("also read by configMapGenerator copy" in r for r in out.reasons())


def test_a_secret_inside_a_multiline_helm_value_is_manual(tree: Path) -> None:
    write_tree(tree, {"chart/Chart.yaml": "name: r\nversion: 1\n",
                      "chart/values.yaml": "master:\n  existingSecret: \"\"\n  configuration: |-\n"
                                           "    maxmemory 1gb\n    requirepass Hunt3r2-Redis\n"})
    out = migrate_and_check(tree, tree.parent)
    assert out.plan["secrets"] == [] and "multi-line setting" in out.reasons()[0]


def test_an_object_missing_from_its_file_is_not_taken_from_another_file(tree: Path) -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: PW\n"
    write_tree(tree, {"a/db.yaml": secret.replace("PW", "Ov3rlay-A-Pw"),
                      # the same object again, in a document only the scanner reads (a complex key)
                      "b/db.yaml": secret.replace("PW", "Ov3rlay-B-Pw") + "? [complex]\n: key\n"})
    out = migrate_and_check(tree, tree.parent, values=["Ov3rlay-A-Pw"])
    assert [s["source"]["file"] for s in out.plan["secrets"]] == ["a/db.yaml"]
    assert {m["file"] for m in out.manual} == {"b/db.yaml"}


def test_generator_files_in_subdirectories_are_migrated(tree: Path) -> None:
    write_tree(tree, {
        "app/kustomization.yaml": "namespace: web\nresources: [deploy.yaml]\nsecretGenerator:\n- name: app\n"
                                  "  envs: [secrets/app.env]\n  files: [api-key=keys/api.key]\n",
        "app/secrets/app.env": "DB_PASSWORD=Sub-D1r-Env-Pw\n",
        "app/keys/api.key": "Sub-D1r-Api-K3y-0123456789abcdef\n",
        "app/deploy.yaml": _deploy("web", "        - name: X\n          value: y\n",
                                   "        envFrom:\n        - secretRef: {name: app}\n"),
    })
    out = migrate_and_check(tree, tree.parent, values=["Sub-D1r-Env-Pw"])
    assert out.manual == []
    assert sorted(d["file"] for d in out.plan["deleteFiles"]) == ["app/keys/api.key", "app/secrets/app.env"]


def _two_workloads(tree: Path) -> Path:
    write_tree(tree, {
        "a.yaml": _deploy("a", "        - name: A_PASSWORD\n          value: Keep-Me-A1\n"),
        "b.yaml": _deploy("b", "        - name: B_PASSWORD\n          value: Keep-Me-B2\n"),
    })
    work = tree.parent
    write_plan(plan_paths([tree], PlanOptions(store_url=f"file://{work}/store.json")), work / "plan.json")
    return work


def test_a_provider_value_changed_after_it_was_stored_stops_apply_before_any_source(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _two_workloads(tree)
    original = tree_bytes(tree)

    def crash(self: ManifestApply, step: object) -> None:
        raise RuntimeError("killed")

    monkeypatch.setattr(ManifestApply, "_create", crash)
    with pytest.raises(RuntimeError):
        apply_plan(work / "plan.json", ApplyOptions())
    monkeypatch.undo()
    monkeypatch.delenv("SECRETSYNC_FILE_KEY", raising=False)
    store = open_store(f"file://{work}/store.json")
    from secretsync.core.values import SecretValue

    store.put("default/a/A_PASSWORD", SecretValue("someone-else-wrote-this"))
    with pytest.raises(Exception, match="changed since this apply stored it"):
        apply_plan(work / "plan.json", ApplyOptions())
    now = tree_bytes(tree)
    assert {f: now[f] for f in original} == original  # no source touched


def test_rollback_keeps_created_keys_while_a_source_is_not_restored(tree: Path) -> None:
    work = _two_workloads(tree)
    apply_plan(work / "plan.json", ApplyOptions())
    edited = tree / "a.yaml"
    migrated = edited.read_bytes()
    edited.write_bytes(migrated + b"# edited after the migration\n")
    rb = rollback_journal(work / "plan.journal", delete_created=True)
    assert rb.deleted_keys == 0 and any("kept" in p for p in rb.problems)
    store = open_store(f"file://{work}/store.json")
    assert sorted(m.name for m in store.list()) == ["default/a/A_PASSWORD", "default/b/B_PASSWORD"]
    edited.write_bytes(migrated)  # undo the edit: now everything can go back, and the keys with it
    rb = rollback_journal(work / "plan.journal", delete_created=True)
    assert rb.problems == [] and rb.deleted_keys == 2
    assert b"Keep-Me-A1" in edited.read_bytes()


def test_a_credential_in_a_custom_resource_is_manual_and_untouched(tree: Path) -> None:
    write_tree(tree, {"hr.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: pg}\n"
                                 "spec:\n  values:\n    auth: {password: Flux-Inline-Pw1}\n"})
    out = migrate_and_check(tree, tree.parent)
    assert out.plan["secrets"] == [] and "HelmRelease pg" in out.reasons()[0]
