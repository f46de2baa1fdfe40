"""``kill -9`` of the ``secretsync controller`` process at random points, then a restart.

A bounded number of kills (3) at random moments of a cold start and of the steady state. After
each restart the controller must converge (every Secret right, every ExternalSecret Ready) and
restart no workload: the Deployment reading the Secrets keeps its pod template (no rollout
annotation written or changed) because no value changed. A rotation made just before one kill
must still land after the restart.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from secretsync.kube.client import SECRETS, KubeApi
from tests.harness.controller import (
    create,
    es_manifest,
    es_ready,
    secret_data,
    store_manifest,
    wait_for,
)
from tests.harness.kube import KubeCluster
from tests.harness.workloads import deployment, restart_state

pytestmark = pytest.mark.kube

N = 12
KILLS = 3


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def _start(kube: KubeCluster, label: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kube.kubeconfig),
            "--log-level", "debug", "--log-format", "json", "controller",
            "--namespace-selector", f"secretsync-test={label}", "--metrics-port", "0",
            "--no-leader-elect", "--min-refresh", "0.5", "--allow-cluster-store-files", "--rollout",
            "--rollout-debounce", "0.5"]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _converged(api: KubeApi, ns: str, expected: dict[str, str]) -> bool:
    return all(secret_data(api, ns, n) == {"v": v} and es_ready(api, ns, n)() for n, v in expected.items())


def test_kill_9_at_random_points_converges_and_restarts_no_workload(
        kube: KubeCluster, api: KubeApi, procs: list[subprocess.Popen[bytes]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    seed = int(os.environ.get("SECRETSYNC_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"kill -9 points drawn with SECRETSYNC_FAULT_SEED={seed}")
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", key)
    env = {"SECRETSYNC_FILE_KEY": key}
    path = tmp_path / "store.json"
    fs = open_store(f"file://{path}")
    expected = {f"s{i}": f"v{i}" for i in range(N)}
    for i in range(N):
        fs.put(f"k{i}", SecretValue(f"v{i}"))
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("fault-kill", labels={"secretsync-test": label})
    css = f"fs-{label}"
    create(api, store_manifest(css, None, "file", {"path": str(path)}, conditions=[{"namespaces": [ns]}]))
    for i in range(N):
        create(api, es_manifest(f"s{i}", ns, css, [("v", f"k{i}")], refresh="1s", store_kind="ClusterSecretStore",
                                rollout={"policy": "auto"}))
    deployment(api, ns, "reader", env=[(f"s{i}", "v") for i in range(N)])
    before = restart_state(api, ns, "reader")
    log = tmp_path / "controller.log"

    # Kill 1: somewhere in the cold start (Secrets being created).
    procs.append(_start(kube, label, env, log))
    time.sleep(rng.uniform(1.0, 4.0))
    os.killpg(procs[-1].pid, signal.SIGKILL)
    procs[-1].wait(5)
    for attempt in range(2, KILLS + 1):
        procs.append(_start(kube, label, env, log))
        wait_for(lambda: _converged(api, ns, expected), timeout=40, message=f"converged before kill {attempt}")
        versions = {n: api.get(SECRETS, n, ns)["metadata"]["resourceVersion"] for n in expected}
        if attempt == KILLS:  # a rotation the dying process may or may not have seen
            fs.put("k0", SecretValue("v0-rotated"))
            expected["s0"] = "v0-rotated"
        time.sleep(rng.uniform(0.1, 2.5))
        os.killpg(procs[-1].pid, signal.SIGKILL)
        procs[-1].wait(5)
    procs.append(_start(kube, label, env, log))
    wait_for(lambda: _converged(api, ns, expected), timeout=40, message="converged after the last kill")
    time.sleep(3)  # a few refreshes of the restarted controller
    after = {n: api.get(SECRETS, n, ns)["metadata"]["resourceVersion"] for n in expected}
    # Nothing rewritten that did not change; the only restart is the rotation's.
    assert {n for n in expected if after[n] != versions[n]} <= {"s0"}, (versions, after)
    generation, stamps = restart_state(api, ns, "reader")
    assert set(stamps) <= {"rollout.secretsync.io/s0"}, stamps
    assert generation <= before[0] + 1, (before, generation)
    assert "v0-rotated" not in log.read_text(errors="replace")
