"""``migrate`` on the layouts real repositories use: one app per folder, dev/prod with the same names,
kustomize bases with overlays, patches and name prefixes, a Helm chart with values.

Written as a platform team with a messy monorepo would check it: after the migration every container
in every deploy unit reads exactly what it read before (overlays built with the real ``kubectl
kustomize``), dev and prod never share a provider key, patches stay patches, new ExternalSecrets are
in the kustomization that deploys them, and rollback restores every byte.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsync.cli.main import cli
from secretsync.core.registry import open_store
from secretsync.migrator.apply import ApplyOptions, UnsafePlan
from secretsync.migrator.manifests import Inventory
from secretsync.migrator.plan import PlanOptions
from secretsync.migrator.plan.select import Selection
from secretsync.migrator.resolve import build_store, resolve_tree, resolve_workload
from secretsync.migrator.workflow import apply_plan, plan_paths, rollback_journal, write_plan
from secretsync.scan import scan_paths, write_baseline
from tests.harness.roundtrip import migrate_and_check, tree_bytes, write_tree

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH: overlays cannot be built with "
                                   "the real kustomize (kubectl kustomize)")


def _deploy(name: str, cm: str, ns: str | None = None, key: str = "API_TOKEN") -> str:
    meta = f"{{name: {name}{', namespace: ' + ns if ns else ''}}}"
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {meta}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: example/app:1
        env:
        - name: {key}
          valueFrom: {{configMapKeyRef: {{name: {cm}, key: {key}}}}}
        - name: LOG_LEVEL
          valueFrom: {{configMapKeyRef: {{name: {cm}, key: LOG_LEVEL}}}}
"""


def _cm(name: str, data: dict[str, str], ns: str | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}, sort_keys=False)


DEV_TOKEN = "dev-tok-9f3KqL2xWm7Z"
PROD_TOKEN = "prod-tok-Hq81LmZt4Rw0"
BASE_PW = "b4se-Pw-7XqLm29KdfZv"


def _plan(tree: Path, work: Path, **kw: Any) -> dict[str, Any]:
    plan = plan_paths([tree], PlanOptions(store_url=f"file://{work}/store.json", **kw))
    write_plan(plan, work / "plan.json")
    return plan.doc


def test_same_configmap_name_in_two_app_folders_is_resolved_in_its_own_folder(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {
        "collector-a/deploy.yaml": _deploy("collector", "collector-conf"),
        "collector-a/cm.yaml": _cm("collector-conf", {"API_TOKEN": DEV_TOKEN, "LOG_LEVEL": "info"}),
        "collector-b/deploy.yaml": _deploy("collector", "collector-conf"),
        "collector-b/cm.yaml": _cm("collector-conf", {"API_TOKEN": "${TOKEN}", "LOG_LEVEL": "debug"}),
    })
    untouched = {k: v for k, v in tree_bytes(tree).items() if k.startswith("collector-b/")}
    out = migrate_and_check(tree, tmp_path, values=[DEV_TOKEN], rollback=False)
    assert out.manual == []
    assert {k: v for k, v in out.migrated.items() if k.startswith("collector-b/")} == untouched
    changed = {c["file"] for c in out.plan["changes"]}
    assert changed == {"collector-a/cm.yaml", "collector-a/deploy.yaml"}


def test_dev_and_prod_with_the_same_names_keep_their_own_values_and_keys(tmp_path: Path) -> None:
    files = {}
    for env, tok in (("dev", DEV_TOKEN), ("prod", PROD_TOKEN)):
        files[f"envs/{env}/api.yaml"] = _deploy("api", "api-config")
        files[f"envs/{env}/config.yaml"] = _cm("api-config", {"API_TOKEN": tok, "LOG_LEVEL": env})
    tree = write_tree(tmp_path / "t", files)
    reads = resolve_tree(Inventory.load([tree]))
    assert {k: v["containers/app"].env["API_TOKEN"] for k, v in reads.items()} == {
        "Deployment/default/api @ folder:envs/dev": DEV_TOKEN.encode(),
        "Deployment/default/api @ folder:envs/prod": PROD_TOKEN.encode()}
    out = migrate_and_check(tree, tmp_path, values=[DEV_TOKEN, PROD_TOKEN])
    assert out.manual == []
    keys = sorted(s["providerKey"] for s in out.plan["secrets"])
    assert keys == ["envs/dev/default/api-config/API_TOKEN", "envs/prod/default/api-config/API_TOKEN"]
    store = open_store(f"file://{tmp_path}/store.json")
    assert store.get("envs/prod/default/api-config/API_TOKEN").reveal_text() == PROD_TOKEN


def test_a_template_without_the_unit_still_never_shares_a_key_across_units(tmp_path: Path) -> None:
    files = {}
    for env in ("dev", "prod"):
        files[f"envs/{env}/api.yaml"] = _deploy("api", "api-config")
        files[f"envs/{env}/config.yaml"] = _cm("api-config", {"API_TOKEN": DEV_TOKEN, "LOG_LEVEL": env})
    tree = write_tree(tmp_path / "t", files)
    doc = _plan(tree, tmp_path, name_template="{namespace}/{name}/{key}")
    keys = [s["providerKey"] for s in doc["secrets"]]
    assert len(keys) == 2 and len(set(keys)) == 2, keys


# -- kustomize ------------------------------------------------------------------------------------
def _kustomize_tree(root: Path, prod_patch_overrides_secret: bool = False, prod_namespace: str = "prod") -> Path:
    prod_patch = {"API_TOKEN": PROD_TOKEN} if prod_patch_overrides_secret else {"LOG_LEVEL": "warn"}
    return write_tree(root, {
        "base/kustomization.yaml": "resources:\n- deploy.yaml\n- config.yaml\n",
        "base/deploy.yaml": _deploy("api", "api-config"),
        "base/config.yaml": _cm("api-config", {"API_TOKEN": BASE_PW, "LOG_LEVEL": "info"}),
        "overlays/dev/kustomization.yaml": "namespace: dev\nnamePrefix: dev-\nresources:\n- ../../base\n"
                                           "patches:\n- path: patch.yaml\n",
        "overlays/dev/patch.yaml": _cm("api-config", {"LOG_LEVEL": "debug"}),
        "overlays/prod/kustomization.yaml": f"namespace: {prod_namespace}\nnamePrefix: prod-\nresources:\n"
                                            "- ../../base\n"
                                            "patches:\n- path: patch.yaml\n",
        "overlays/prod/patch.yaml": _cm("api-config", prod_patch),
    })


def _build(kdir: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run([KUBECTL, "kustomize", str(kdir)], capture_output=True, check=True, timeout=60)
    return [d for d in yaml.safe_load_all(out.stdout) if isinstance(d, dict)]


def _reads(objects: list[dict[str, Any]], store: Any = None) -> dict[str, Any]:
    """What every container reads in a built overlay (ExternalSecrets read from ``store``)."""
    inv = Inventory.from_objects(objects)
    st = build_store(inv, (lambda k, p: store.get(k, prop=p)) if store is not None else None)
    return {o.resource: {c: (v.env, v.argv, v.files) for c, v in resolve_workload(st, o).items()}
            for o in inv.objects if o.pod_spec() is not None}


@needs_kubectl
def test_base_with_prefixed_overlays_and_patches_builds_and_reads_the_same(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t")
    overlays = [tree / "overlays/dev", tree / "overlays/prod"]
    before = {o.name: _reads(_build(o)) for o in overlays}
    original = tree_bytes(tree)
    doc = _plan(tree, tmp_path)
    assert doc["manual"] == [], doc["manual"]
    report = apply_plan(tmp_path / "plan.json", ApplyOptions())
    assert report.problems == []
    store = open_store(f"file://{tmp_path}/store.json")
    after = {o.name: _reads(_build(o), store) for o in overlays}
    assert after == before
    dev = {(d["kind"], d["metadata"]["name"]): d for d in _build(tree / "overlays/dev")}
    es = next(d for (kind, _), d in dev.items() if kind == "ExternalSecret")
    assert ("SecretStore", es["spec"]["secretStoreRef"]["name"]) in dev  # the prefix renamed store and reference
    assert before["dev"]["Deployment/dev/dev-api"]["containers/app"][0]["API_TOKEN"] == BASE_PW.encode()
    # patches stay patches; the new ExternalSecret is deployed by the base's kustomization
    assert (tree / "overlays/dev/patch.yaml").read_bytes() == original["overlays/dev/patch.yaml"]
    kust = yaml.safe_load((tree / "base/kustomization.yaml").read_text())
    es_files = [f["file"] for f in doc["newFiles"] if f["kind"] == "ExternalSecret"]
    assert es_files and all(Path(f).name in kust["resources"] for f in es_files)
    assert not scan_paths([tree]).findings
    assert rollback_journal(tmp_path / "plan.journal").problems == []
    assert tree_bytes(tree) == original


@needs_kubectl
def test_overlays_that_differ_each_get_their_own_external_secret_and_patches(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t", prod_patch_overrides_secret=True)
    write_tree(tree, {"overlays/staging/kustomization.yaml": "namespace: staging\nnameSuffix: -stg\n"
                                                             "resources:\n- ../../base\n"})
    overlays = [tree / "overlays" / o for o in ("dev", "prod", "staging")]
    before = {o.name: _reads(_build(o)) for o in overlays}
    assert before["prod"]["Deployment/prod/prod-api"]["containers/app"][0]["API_TOKEN"] == PROD_TOKEN.encode()
    assert before["staging"]["Deployment/staging/api-stg"]["containers/app"][0]["API_TOKEN"] == BASE_PW.encode()
    original = tree_bytes(tree)
    doc = _plan(tree, tmp_path)
    assert doc["manual"] == [], doc["manual"]
    # one provider key per overlay, each holding the value that overlay renders
    keys = {s["providerKey"] for s in doc["secrets"]}
    assert keys == {"overlays/dev/dev/api-config/API_TOKEN", "overlays/prod/prod/api-config/API_TOKEN",
                    "overlays/staging/staging/api-config/API_TOKEN"}
    assert apply_plan(tmp_path / "plan.json", ApplyOptions()).problems == []
    store = open_store(f"file://{tmp_path}/store.json")
    assert store.get("overlays/prod/prod/api-config/API_TOKEN").reveal_text() == PROD_TOKEN
    assert store.get("overlays/dev/dev/api-config/API_TOKEN").reveal_text() == BASE_PW
    built = {o.name: _build(o) for o in overlays}
    assert {name: _reads(docs, store) for name, docs in built.items()} == before
    # the base's workload is untouched: each overlay patches it to read its own synced Secret
    assert (tree / "base/deploy.yaml").read_bytes() == original["base/deploy.yaml"]
    assert "API_TOKEN" not in yaml.safe_load((tree / "base/config.yaml").read_text())["data"]
    assert "API_TOKEN" not in (yaml.safe_load((tree / "overlays/prod/patch.yaml").read_text()).get("data") or {})
    for o in overlays:
        kust = yaml.safe_load((o / "kustomization.yaml").read_text())
        assert any(d["kind"] == "ExternalSecret" for d in built[o.name]), o.name
        assert any(p.get("target") == {"kind": "Deployment", "name": "api"} for p in kust["patches"])
    assert not scan_paths([tree]).findings
    text = (tmp_path / "plan.json").read_text() + (tmp_path / "plan.journal").read_text()
    text += "".join(p.read_text() for p in tree.rglob("*.patch.yaml"))
    assert BASE_PW not in text and PROD_TOKEN not in text, "a value in the plan, the journal or a written patch"
    assert rollback_journal(tmp_path / "plan.journal").problems == []
    assert tree_bytes(tree) == original


@needs_kubectl
def test_an_overlay_left_out_keeps_the_base_value_and_the_others_move(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t", prod_patch_overrides_secret=True)
    overlays = [tree / "overlays/dev", tree / "overlays/prod"]
    before = {o.name: _reads(_build(o)) for o in overlays}
    prod_before = {k: v for k, v in tree_bytes(tree).items() if k.startswith("overlays/prod/")}
    doc = _plan(tree, tmp_path, selection=Selection(exclude=("overlays/prod/*",)))
    assert [s["providerKey"] for s in doc["secrets"]] == ["overlays/dev/dev/api-config/API_TOKEN"]
    assert [(m["file"], m["reason"].split(":")[0]) for m in doc["manual"]] == [
        ("base/config.yaml", "the base keeps the value")]
    assert apply_plan(tmp_path / "plan.json", ApplyOptions()).problems == []
    store = open_store(f"file://{tmp_path}/store.json")
    assert {o.name: _reads(_build(o), store) for o in overlays} == before
    assert {k: v for k, v in tree_bytes(tree).items() if k.startswith("overlays/prod/")} == prod_before


@needs_kubectl
def test_an_overlay_without_a_namespace_gets_its_external_secret_in_the_namespace_of_the_base(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {
        "base/kustomization.yaml": "namespace: shop\nresources:\n- deploy.yaml\n- config.yaml\n",
        "base/deploy.yaml": _deploy("api", "api-config"),
        "base/config.yaml": _cm("api-config", {"API_TOKEN": "${TOKEN}", "LOG_LEVEL": "info"}),
        "prod/kustomization.yaml": "resources:\n- ../base\npatches:\n- path: patch.yaml\n",
        "prod/patch.yaml": _cm("api-config", {"API_TOKEN": PROD_TOKEN}),
    })
    before = _reads(_build(tree / "prod"))
    doc = _plan(tree, tmp_path)
    assert doc["manual"] == [], doc["manual"]
    assert apply_plan(tmp_path / "plan.json", ApplyOptions()).problems == []
    built = _build(tree / "prod")
    assert _reads(built, open_store(f"file://{tmp_path}/store.json")) == before
    assert {(d["kind"], d["metadata"].get("namespace")) for d in built} >= {("ExternalSecret", "shop"),
                                                                             ("SecretStore", "shop")}


@needs_kubectl
def test_a_value_only_an_overlay_patch_sets_moves_into_that_overlay_alone(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t")
    worker = yaml.safe_load(_deploy("worker", "api-config"))
    worker["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "api-config"}}]
    tree = write_tree(tree, {
        "base/config.yaml": _cm("api-config", {"API_TOKEN": "${TOKEN}", "LOG_LEVEL": "info"}),
        "base/worker.yaml": yaml.safe_dump(worker),
        "base/kustomization.yaml": "resources:\n- deploy.yaml\n- config.yaml\n- worker.yaml\n",
        "overlays/prod/patch.yaml": _cm("api-config", {"API_TOKEN": PROD_TOKEN}),
    })
    overlays = [tree / "overlays/dev", tree / "overlays/prod"]
    before = {o.name: _reads(_build(o)) for o in overlays}
    original = tree_bytes(tree)
    doc = _plan(tree, tmp_path)
    assert doc["manual"] == [], doc["manual"]
    assert [s["providerKey"] for s in doc["secrets"]] == ["overlays/prod/prod/api-config/API_TOKEN"]
    assert before["prod"]["Deployment/prod/prod-worker"]["containers/app"][0]["API_TOKEN"] == PROD_TOKEN.encode()
    touched = {c["file"] for c in doc["changes"]} | {f["file"] for f in doc["newFiles"]}
    assert all(f.startswith("overlays/prod/") for f in touched), touched
    assert apply_plan(tmp_path / "plan.json", ApplyOptions()).problems == []
    store = open_store(f"file://{tmp_path}/store.json")
    assert {o.name: _reads(_build(o), store) for o in overlays} == before
    assert not scan_paths([tree]).findings
    assert rollback_journal(tmp_path / "plan.journal").problems == []
    assert tree_bytes(tree) == original


@needs_kubectl
def test_an_env_literal_an_overlay_patch_sets_becomes_a_secret_key_ref_in_that_patch(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t")
    patch = yaml.safe_load(_deploy("api", "api-config"))
    patch["spec"] = {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "DB_PASSWORD", "value": PROD_TOKEN}]}]}}}
    write_tree(tree, {"overlays/prod/deploy-patch.yaml": yaml.safe_dump(patch),
                      "overlays/prod/kustomization.yaml": "namespace: prod\nnamePrefix: prod-\nresources:\n"
                                                          "- ../../base\npatches:\n- path: patch.yaml\n"
                                                          "- path: deploy-patch.yaml\n"})
    overlays = [tree / "overlays/dev", tree / "overlays/prod"]
    before = {o.name: _reads(_build(o)) for o in overlays}
    assert before["prod"]["Deployment/prod/prod-api"]["containers/app"][0]["DB_PASSWORD"] == PROD_TOKEN.encode()
    original = tree_bytes(tree)
    doc = _plan(tree, tmp_path, selection=Selection(exclude=("base/*",)))
    assert doc["manual"] == [], doc["manual"]
    assert [s["providerKey"] for s in doc["secrets"]] == ["overlays/prod/prod/api/DB_PASSWORD"]
    assert apply_plan(tmp_path / "plan.json", ApplyOptions()).problems == []
    store = open_store(f"file://{tmp_path}/store.json")
    assert {o.name: _reads(_build(o), store) for o in overlays} == before
    env = yaml.safe_load((tree / "overlays/prod/deploy-patch.yaml").read_text())["spec"]["template"]["spec"][
        "containers"][0]["env"][0]
    assert env["valueFrom"]["secretKeyRef"]["name"] == "prod-api-secrets" and "value" not in env
    assert [f.file for f in scan_paths([tree]).findings] == ["base/config.yaml"]
    assert rollback_journal(tmp_path / "plan.journal").problems == []
    assert tree_bytes(tree) == original


@needs_kubectl
def test_an_overlay_kustomize_cannot_build_is_refused_without_quoting_it(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t")
    # a patch of an object that is not in the base: kustomize fails and may quote the patch whole
    (tree / "overlays/dev/patch.yaml").write_text(_cm("no-such-config", {"API_TOKEN": DEV_TOKEN}))
    doc = _plan(tree, tmp_path)
    text = (tmp_path / "plan.json").read_text()
    assert DEV_TOKEN not in text and BASE_PW not in text
    assert any("'kubectl kustomize dev' fails" in m["reason"] for m in doc["manual"]), doc["manual"]
    assert doc["secrets"] == []


@needs_kubectl
def test_prefixed_overlays_side_by_side_in_one_namespace_never_share_the_synced_secret(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t", prod_namespace="dev")
    doc = _plan(tree, tmp_path)
    assert doc["secrets"] == []
    assert all("would both make Secret api-config-secrets in namespace dev" in m["reason"] for m in doc["manual"])


def test_without_kubectl_an_overlay_with_patches_is_not_guessed(tmp_path: Path) -> None:
    tree = _kustomize_tree(tmp_path / "t")
    doc = _plan(tree, tmp_path, use_kubectl=False)
    assert doc["secrets"] == [] and doc["changes"] == []
    assert all("kubectl is not on PATH" in m["reason"] for m in doc["manual"]), doc["manual"]


def test_a_file_listed_by_two_kustomizations_goes_to_manual_with_the_reason(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {
        "a/kustomization.yaml": "resources:\n- ../shared/config.yaml\n",
        "b/kustomization.yaml": "resources:\n- ../shared/config.yaml\n",
        "shared/config.yaml": _cm("api-config", {"API_TOKEN": BASE_PW}),
    })
    doc = _plan(tree, tmp_path)
    assert [m["reason"] for m in doc["manual"]] == [
        "the deploy unit cannot be decided: shared/config.yaml is listed by several kustomizations "
        "(a/kustomization.yaml, b/kustomization.yaml); nothing is rewired"]


# -- Helm -------------------------------------------------------------------------------------------
def test_a_chart_with_values_is_its_own_unit(tmp_path: Path) -> None:
    pytest.importorskip("helm_python", reason="the Helm engine (helm-python-sdk) is not installed")
    tree = write_tree(tmp_path / "t", {
        **_chart(),
        "apps/db.yaml": _deploy("db", "db-config"),
        "apps/config.yaml": _cm("db-config", {"API_TOKEN": DEV_TOKEN, "LOG_LEVEL": "info"}),
    })
    out = migrate_and_check(tree, tmp_path, values=[BASE_PW, DEV_TOKEN])
    keys = sorted(s["providerKey"] for s in out.plan["secrets"])
    assert keys == ["apps/default/db-config/API_TOKEN", "charts/db/default/db/password"]


_CHART_DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-db
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: example/db:1
        env:
        - name: DB_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ .Values.auth.existingSecret | default (printf "%s-db" .Release.Name) }}
              key: {{ .Values.auth.existingSecretPasswordKey | default "password" }}
"""
_CHART_SECRET = """{{- if not .Values.auth.existingSecret }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-db
stringData:
  password: {{ .Values.auth.password | quote }}
{{- end }}
"""


def _chart(existing_secret_option: bool = True) -> dict[str, str]:
    option = "  existingSecret: \"\"\n  existingSecretPasswordKey: \"\"\n" if existing_secret_option else ""
    return {
        "charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 1.0.0\n",
        "charts/db/values.yaml": f"auth:\n  password: {BASE_PW}\n{option}",
        "charts/db/templates/deploy.yaml": _CHART_DEPLOY,
        "charts/db/templates/secret.yaml": _CHART_SECRET,
    }


def _release_reads(chart_dir: Path, store: Any = None) -> dict[str, Any]:
    """What every container of the chart's release reads, rendered by Helm's own engine."""
    from secretsync.manifests import helm

    chart = helm.Chart.read(chart_dir)
    assert chart is not None
    docs = [d for _, t in helm.rendered_documents(helm.render(chart)) for d in yaml.safe_load_all(t) if d]
    return _reads(docs, store)


def test_a_helm_values_secret_moves_into_the_chart_templates_and_the_release_reads_the_same(tmp_path: Path) -> None:
    pytest.importorskip("helm_python", reason="the Helm engine (helm-python-sdk) is not installed")
    tree = write_tree(tmp_path / "t", _chart())
    before = _release_reads(tree / "charts/db")
    assert before["Deployment//db-db"]["containers/db"][0]["DB_PASSWORD"] == BASE_PW.encode()
    doc = _plan(tree, tmp_path)
    assert doc["manual"] == [], doc["manual"]
    # Helm deploys templates/ only: the ExternalSecret and its store are there, with no namespace (the release's)
    assert sorted(f["file"] for f in doc["newFiles"]) == [
        "charts/db/templates/db-auth.externalsecret.yaml", "charts/db/templates/secretsync.secretstore.yaml"]
    assert all("namespace" not in yaml.safe_load(f["text"])["metadata"] for f in doc["newFiles"])
    assert BASE_PW not in (tmp_path / "plan.json").read_text()
    assert apply_plan(tmp_path / "plan.json", ApplyOptions()).problems == []
    values = yaml.safe_load((tree / "charts/db/values.yaml").read_text())
    assert values["auth"] == {"password": "", "existingSecret": "db-auth", "existingSecretPasswordKey": "password"}
    store = open_store(f"file://{tmp_path}/store.json")
    assert _release_reads(tree / "charts/db", store) == before
    assert not scan_paths([tree]).findings


def test_a_chart_without_an_existing_secret_option_stays_manual_with_the_reason(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", _chart(existing_secret_option=False))
    doc = _plan(tree, tmp_path)
    assert doc["newFiles"] == [] and doc["changes"] == []
    assert any("offers no existingSecret option" in m["reason"] for m in doc["manual"]), doc["manual"]


# -- choosing what moves -------------------------------------------------------------------------
def test_min_confidence_exclude_only_and_baseline_leave_findings_listed_as_skipped(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {
        "a/cm.yaml": _cm("a", {"API_TOKEN": DEV_TOKEN, "DB_PASSWORD": "changeme"}),
        "b/cm.yaml": _cm("b", {"API_TOKEN": PROD_TOKEN}),
    })
    findings = scan_paths([tree]).findings
    low = {f.fingerprint for f in findings if f.confidence == "low"}
    base = tmp_path / "baseline.json"
    write_baseline(base, [f for f in findings if f.file and f.file.startswith("b/")])
    sel = Selection(min_confidence="medium", exclude=("b/*",))
    doc = _plan(tree, tmp_path, selection=sel)
    skipped = {f["fingerprint"]: f["reason"] for f in doc["findings"] if f["disposition"] == "skipped"}
    assert {f.fingerprint for f in findings if f.file == "b/cm.yaml"} <= set(skipped)
    assert low <= set(skipped)
    moved = {f["key"] for f in doc["findings"] if f["disposition"] == "migrate"}
    assert "DB_PASSWORD" not in moved or not low
    only = _plan(tree, tmp_path, selection=Selection(only=("no-such-rule",)))
    assert only["secrets"] == [] and all(f["disposition"] == "skipped" for f in only["findings"])
    from secretsync.scan import load_baseline

    by_base = _plan(tree, tmp_path, selection=Selection(baseline=load_baseline(base)))
    assert all(f["disposition"] == "skipped" for f in by_base["findings"] if f["file"].startswith("b/"))


def test_apply_refuses_a_plan_edited_into_changing_what_a_container_reads(tmp_path: Path) -> None:
    files = {"api.yaml": _deploy("api", "api-config"),
             "config.yaml": _cm("api-config", {"API_TOKEN": DEV_TOKEN, "LOG_LEVEL": "info"})}
    tree = write_tree(tmp_path / "t", files)
    original = tree_bytes(tree)
    _plan(tree, tmp_path)
    plan_file = tmp_path / "plan.json"
    doc = json.loads(plan_file.read_text())
    # drop the consumer's rewiring but keep removing the key from the ConfigMap
    doc["changes"] = [c for c in doc["changes"] if c["role"] != "consumer"]
    plan_file.write_text(json.dumps(doc))
    with pytest.raises(UnsafePlan, match="API_TOKEN"):
        apply_plan(plan_file, ApplyOptions())
    assert tree_bytes(tree) == original


# -- the diff -------------------------------------------------------------------------------------
def test_the_diff_masks_the_value_not_every_line_that_looks_like_it(tmp_path: Path) -> None:
    conf = "apiVersion: v1\nkind: Config\nmetadata:\n  name: x\nusers:\n- token: " + DEV_TOKEN + "\n"
    block = "".join("    " + line + "\n" for line in conf.splitlines())
    tree = write_tree(tmp_path / "t", {
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube\ndata:\n  kubeconfig: |\n" + block,
        "pod.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"
                    "    image: x\n    volumeMounts: [{name: k, mountPath: /k}]\n  volumes:\n"
                    "  - name: k\n    configMap: {name: kube}\n",
    })
    plan = plan_paths([tree], PlanOptions(store_url=f"file://{tmp_path}/s.json"))
    text = "".join(plan.diffs.values())
    assert DEV_TOKEN not in text
    assert "***" in text
    # the object's own structure stays readable although the moved file has the same lines
    lines = text.splitlines()
    assert " metadata:" in lines and "   name: kube" in lines
    assert "-    apiVersion: v1" not in lines and "-    ***" in lines


# -- ESO ------------------------------------------------------------------------------------------
def test_emit_eso_writes_external_secrets_io_objects_a_team_running_eso_can_apply(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {"api.yaml": _deploy("api", "api-config"),
                                       "config.yaml": _cm("api-config", {"API_TOKEN": DEV_TOKEN, "LOG_LEVEL": "x"})})
    plan = plan_paths([tree], PlanOptions(store_url="vault://vault.example:8200/kv", emit="eso"))
    docs = [yaml.safe_load(f["text"]) for f in plan.doc["newFiles"]]
    by_kind = {d["kind"]: d for d in docs}
    es, store = by_kind["ExternalSecret"], by_kind["SecretStore"]
    assert es["apiVersion"] == store["apiVersion"] == "external-secrets.io/v1"
    assert es["spec"]["secretStoreRef"] == {"name": "secretsync", "kind": "SecretStore"}
    assert es["spec"]["data"] == [{"secretKey": "API_TOKEN",
                                   "remoteRef": {"key": "default/api-config/API_TOKEN"}}]
    assert store["spec"]["provider"] == {"vault": {"server": "https://vault.example:8200", "path": "kv",
                                                   "version": "v2"}}


def test_the_cli_takes_the_selection_flags_and_reports_skipped_items(tmp_path: Path) -> None:
    from click.testing import CliRunner

    tree = write_tree(tmp_path / "t", {"a/cm.yaml": _cm("a", {"API_TOKEN": DEV_TOKEN}),
                                       "b/cm.yaml": _cm("b", {"API_TOKEN": PROD_TOKEN})})
    res = CliRunner().invoke(cli, ["migrate", "plan", str(tree), "--to", f"file://{tmp_path}/s.json",
                                   "-o", str(tmp_path / "p.json"), "--exclude", "b/*", "--min-confidence", "medium",
                                   "--only", "keyword-token,keyword-password"])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "p.json").read_text())
    assert [s["providerKey"] for s in doc["secrets"]] == ["a/default/a/API_TOKEN"]
    assert "1 skipped" in res.output


def test_a_plan_with_one_item_dropped_whole_applies_and_leaves_that_item_alone(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "t", {
        "a/api.yaml": _deploy("api", "api-config"), "a/config.yaml": _cm("api-config", {"API_TOKEN": DEV_TOKEN}),
        "b/api.yaml": _deploy("api", "api-config"), "b/config.yaml": _cm("api-config", {"API_TOKEN": PROD_TOKEN}),
    })
    _plan(tree, tmp_path)
    plan_file = tmp_path / "plan.json"
    doc = json.loads(plan_file.read_text())
    gid = next(s["group"] for s in doc["secrets"] if s["source"]["file"].startswith("b/"))
    half = {**doc, "secrets": [s for s in doc["secrets"] if s["group"] != gid]}
    plan_file.write_text(json.dumps(half))
    with pytest.raises(Exception, match=r"groups\[\d\]\.secrets"):
        apply_plan(plan_file, ApplyOptions())
    whole = {**half, "groups": [g for g in doc["groups"] if g["id"] != gid],
             "newFiles": [f for f in doc["newFiles"] if f["group"] != gid],
             "changes": [c for c in doc["changes"] if gid not in c["groups"]]}
    plan_file.write_text(json.dumps(whole))
    b_before = {k: v for k, v in tree_bytes(tree).items() if k.startswith("b/")}
    assert apply_plan(plan_file, ApplyOptions()).problems == []
    assert {k: v for k, v in tree_bytes(tree).items() if k.startswith("b/") and "secretstore" not in k} == b_before
    assert [f.file for f in scan_paths([tree]).findings] == ["b/config.yaml"]


def test_an_overlay_patch_for_a_mounted_config_map_replaces_the_volume_by_name() -> None:
    from secretsync.migrator.plan import consumer_ops_for_configmap
    from secretsync.migrator.plan.overlay import strategic_patch

    dep = yaml.safe_load(_deploy("api", "dev-api-config"))
    spec = dep["spec"]["template"]["spec"]
    spec["volumes"] = [{"name": "conf", "configMap": {"name": "dev-api-config", "defaultMode": 0o440}}]
    spec["containers"][0]["envFrom"] = [{"configMapRef": {"name": "dev-api-config"}}]
    ops, _ = consumer_ops_for_configmap(dep, "spec.template.spec", "dev-api-config", {"API_TOKEN"}, "t")
    patch = strategic_patch(dep, ops, "api")
    pod = patch["spec"]["template"]["spec"]
    assert patch["metadata"] == {"name": "api"}
    assert pod["volumes"] == [{"name": "conf", "configMap": None, "projected": {
        "sources": [{"configMap": {"name": "dev-api-config"}}, {"secret": {"name": "t"}}], "defaultMode": 0o440}}]
    app = pod["containers"][0]
    # a list with no merge key is written whole, in order: the Secret right after the ConfigMap
    assert app["envFrom"] == [{"configMapRef": {"name": "dev-api-config"}}, {"secretRef": {"name": "t"}}]
    assert app["env"] == [{"name": "API_TOKEN", "valueFrom": {"configMapKeyRef": None,
                                                              "secretKeyRef": {"name": "t", "key": "API_TOKEN"}}}]


def test_a_value_a_json6902_patch_file_sets_is_found_and_sent_to_manual_with_the_reason(tmp_path: Path) -> None:
    """A JSON 6902 patch file is a list of operations, not an object: its values are plaintext too."""
    tree = write_tree(tmp_path / "t", {
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": _cm("api-config", {"LOG_LEVEL": "info"}),
        "overlays/prod/kustomization.yaml": "resources: [../../base]\npatches:\n- path: cm-json.yaml\n"
                                            "  target: {kind: ConfigMap, name: api-config}\n",
        "overlays/prod/cm-json.yaml": f"- op: add\n  path: /data/API_TOKEN\n  value: {PROD_TOKEN}\n"
                                      "- op: remove\n  path: /data/LOG_LEVEL\n",
    })
    doc = _plan(tree, tmp_path)
    assert doc["secrets"] == []
    (manual,) = [m for m in doc["manual"] if m["file"].endswith("cm-json.yaml")]
    assert "JSON 6902 patch" in manual["reason"] and PROD_TOKEN not in json.dumps(doc)
