"""Hostile input, with the memory it costs measured: each bad thing is an error naming it, the rest goes on.

* One tree holding every kind of bad file (an alias bomb, a 50 MB manifest, binary and
  non-UTF-8 files, symlinks leaving the tree, 10,000-deep nesting) next to one good manifest,
  through ``scan``, ``migrate plan`` and ``audit`` (the CLI, in a child whose peak RSS is read
  with ``wait4``): exit as usual, each bad file named, the good one found, no traceback,
  bounded memory.
* Hypothesis-generated ExternalSecrets and SecretStores through the real apiserver, next to a
  good pair: whatever the apiserver's schema lets through, the controller answers with Ready=False
  naming the field, and the good ExternalSecret keeps syncing.

The parsers' own limits are unit-tested (tests/unit/test_scan_robustness.py,
test_migrate_robustness.py); this is the end-to-end, measured check.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsync.controller.runtime import ES_RES, SS_RES
from secretsync.controller.settings import ScopeSettings
from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import KubeApi, KubeError
from tests.harness.controller import (
    create,
    es_manifest,
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

REPO = Path(__file__).resolve().parents[2]
#: Peak RSS a CLI run on the hostile tree may add to the same run on the good file alone
#: (measured in the same test: the CLI's imports alone are ~250 MB of this machine's RSS).
RSS_OVER_BASELINE_MB = 64
GOOD = ("apiVersion: v1\nkind: Secret\nmetadata: {name: good, namespace: shop}\n"
        "stringData:\n  password: G00d-Fault-Pw-1\n")


def _hostile_tree(root: Path) -> dict[str, str]:
    """Write the tree; return {file: what its error must say (a word of it)}."""
    root.mkdir(parents=True)
    (root / "good.yaml").write_text(GOOD)
    bomb = ["a: &a [x,x,x,x,x,x,x,x,x]"] + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]"
                                            for p, n in zip("abcdefgh", "bcdefghi", strict=True)]
    (root / "bomb.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n"
                                    + "".join(f"  {line}\n" for line in bomb))
    with (root / "huge.yaml").open("w") as f:  # 50 MB of ConfigMaps
        block = "".join(f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\ndata:\n  k: v{i}\n"
                        for i in range(1000))
        while f.tell() < 50 * 1024 * 1024:
            f.write(block)
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 64)
    (root / "latin1.yaml").write_bytes(b"apiVersion: v1\nkind: Secret\nmetadata: {name: l}\n"
                                       b"stringData: {password: caf\xe9-Pw-9}\n")
    (root / "deep.yaml").write_text("- " * 10_000 + "x\n")
    (root / "flow.yaml").write_text("[" * 10_000 + "]" * 10_000)
    outside = root.parent / "outside.yaml"
    outside.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: out}\nstringData:\n  password: 0ut-Pw-1\n")
    (root / "out.yaml").symlink_to(outside)
    (root / "outdir").symlink_to(root.parent)
    return {"bomb.yaml": "", "huge.yaml": "", "binary.yaml": "binary", "latin1.yaml": "", "deep.yaml": "",
            "flow.yaml": "", "out.yaml": "outside", "outdir": "outside"}


#: The CLI, reporting its own peak RSS (VmHWM) at exit. Not wait4's ru_maxrss: that counts the
#: pages the child shared with this (large) pytest process between fork and exec.
_MEASURED = ("import atexit, os, sys\n"
             "def _peak():\n"
             "    with open('/proc/self/status') as f, open(os.environ['PEAK_FILE'], 'w') as out:\n"
             "        out.write(next(line.split()[1] for line in f if line.startswith('VmHWM')))\n"
             "atexit.register(_peak)\n"
             "from secretsync.cli.main import main\n"
             "sys.argv[0] = 'secretsync'\n"
             "sys.exit(main())\n")


def _run_measured(args: list[str], cwd: Path) -> tuple[int, str, str, float]:
    """Run the CLI; (exit code, stdout, stderr, its peak RSS in MB)."""
    peak_file = cwd / "peak.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAK_FILE": str(peak_file)}
    r = subprocess.run([sys.executable, "-c", _MEASURED, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    return r.returncode, r.stdout, r.stderr, int(peak_file.read_text()) / 1024


@pytest.mark.slow
def test_hostile_tree_through_scan_plan_and_audit_names_each_file_with_bounded_memory(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    bad = _hostile_tree(tree)
    runs = {
        "scan": ["scan", "tree", "-o", "json"],
        "migrate plan": ["migrate", "plan", "tree", "--to", f"file://{tmp_path}/store.json", "-o", "plan.json"],
        "audit": ["audit", "tree", "-o", "json"],
    }
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "good.yaml").write_text(GOOD)
    peaks, baselines = {}, {}
    for name, args in runs.items():
        base_args = [a.replace("tree", "baseline").replace("plan.json", "base-plan.json") for a in args]
        baselines[name] = _run_measured(base_args, tmp_path)[3]
        code, out, err, peak = _run_measured(args, tmp_path)
        peaks[name] = peak
        assert code in (0, 1, 8), f"{name}: exit {code}\n{err[-3000:]}"
        assert "Traceback" not in err, f"{name}:\n{err[-3000:]}"
        assert peak < baselines[name] + RSS_OVER_BASELINE_MB, f"{name}: peak RSS {peak:.0f} MB vs {baselines[name]:.0f}"
        text = out + err
        if name == "migrate plan":
            text += (tmp_path / "plan.json").read_text()
        if name != "audit":  # the audit reads manifests for workloads and Secrets, not for values
            missing = [f for f, word in bad.items() if f not in text or word not in text]
            assert missing == [], f"{name}: not named: {missing}\n{err[-3000:]}"
        assert "good" in text, f"{name}: the good manifest was not read"
        for value in ("G00d-Fault-Pw-1", "0ut-Pw-1", "caf\xe9-Pw-9"):
            assert value not in out + err, f"{name}: a value in the output"
    print("peak RSS (MB), hostile tree vs the good file alone: "
          + ", ".join(f"{k} {v:.0f} vs {baselines[k]:.0f}" for k, v in peaks.items()))
    assert "good.yaml" in json.dumps(json.loads((tmp_path / "plan.json").read_text())["secrets"])


# -- hypothesis-generated CRs through the real apiserver ----------------------------------------
_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=12),
              st.sampled_from(["-1s", "1x", "", "0", "(((", "Merge", "None", "Owner", "ClusterSecretStore",
                               "9999999h", "k/../../etc", "{{ .x }}", "\x00"])),
    lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=6), inner, max_size=2)),
    max_leaves=4,
)
_ES_PATHS = [("refreshInterval",), ("secretStoreRef",), ("secretStoreRef", "name"), ("secretStoreRef", "kind"),
             ("data",), ("data", 0), ("data", 0, "secretKey"), ("data", 0, "remoteRef"),
             ("data", 0, "remoteRef", "key"), ("data", 0, "remoteRef", "property"),
             ("data", 0, "remoteRef", "decodingStrategy"), ("target",), ("target", "name"),
             ("target", "creationPolicy"), ("target", "deletionPolicy"), ("target", "template"),
             ("dataFrom",), ("rollout",)]
_SS_PATHS = [("provider",), ("provider", "memory"), ("provider", "memory", "name"), ("refreshInterval",),
             ("rateLimit",), ("allowedKeyPrefix",), ("conditions",), ("provider", "aws")]


def _set(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for step in path[:-1]:
        node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
    if isinstance(node, list):
        node[int(path[-1])] = value
    elif isinstance(node, dict):
        node[path[-1]] = value
    return out


@pytest.fixture(scope="module")
def cluster_with_controller(kube: KubeCluster) -> Iterator[tuple[KubeApi, str, Any]]:
    install_crds(kube)
    api = kube_api(kube)
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("fault-bad", labels={"secretsync-test": label})
    mem_name = f"bad-{label}"
    mem = open_store(f"memory://{mem_name}")
    mem.put("good", SecretValue("good-1"))
    create(api, store_manifest("mem", ns, "memory", {"name": mem_name}))
    create(api, es_manifest("good", ns, "mem", [("v", "good")], refresh="1s"))
    settings_ = fast_settings(scope=ScopeSettings(namespace_selector=f"secretsync-test={label}"))
    with running_controller(kube, settings_):
        wait_for(lambda: secret_data(api, ns, "good") == {"v": "good-1"}, message="good synced")
        yield api, ns, mem
    api.close()


_created: list[tuple[str, str]] = []


@pytest.mark.slow
# The running controller's jitter uses `random` in other threads while Hypothesis draws.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["ExternalSecret", "SecretStore"]), data=st.data())
def test_generated_bad_crs_get_a_named_error_and_the_rest_keeps_syncing(
        cluster_with_controller: tuple[KubeApi, str, Any], kind: str, data: st.DataObject) -> None:
    api, ns, _ = cluster_with_controller
    name = f"h-{uuid.uuid4().hex[:8]}"
    if kind == "ExternalSecret":
        base = es_manifest(name, ns, "mem", [("v", "good")], refresh="1s")
        path = data.draw(st.sampled_from(_ES_PATHS))
    else:
        base = store_manifest(name, ns, "memory", {"name": "x"})
        path = data.draw(st.sampled_from(_SS_PATHS))
    obj = _set(base, ("spec", *path), data.draw(_ANY))
    try:
        create(api, obj)
    except KubeError as exc:
        assert exc.status in (400, 422), exc  # the apiserver's schema refused it: fine, and named
        return
    _created.append((kind, name))


@pytest.mark.slow
def test_after_the_generated_crs_each_has_a_verdict_and_the_good_one_still_syncs(
        cluster_with_controller: tuple[KubeApi, str, Any]) -> None:
    api, ns, mem = cluster_with_controller
    if not _created:
        pytest.skip("the apiserver refused every generated object")
    verdicts: dict[str, int] = {}
    for kind, name in _created:
        res = ES_RES if kind == "ExternalSecret" else SS_RES
        cond = wait_for(lambda r=res, n=name: ready_condition(api, r, ns, n), timeout=20,
                        message=f"a Ready condition on {kind} {name}")
        verdict = f"{kind}:{cond['status']}:{cond['reason']}"
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        if cond["status"] == "False" and cond["reason"] == "InvalidSpec":
            assert "spec." in cond["message"], (kind, name, cond)
    print(f"{len(_created)} generated objects accepted by the apiserver; verdicts: {verdicts}")
    mem.put("good", SecretValue("good-2"))
    wait_for(lambda: secret_data(api, ns, "good") == {"v": "good-2"}, timeout=15,
             message="the good ExternalSecret still syncs next to the bad ones")
