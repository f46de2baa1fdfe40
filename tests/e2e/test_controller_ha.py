"""Two ``secretsync controller`` processes on one cluster: one writes, the other takes over.

Runs the real CLI in subprocesses against the kube harness and a file store they share
(the memory store lives inside one process, so it cannot be shared).
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsync.core.registry import open_store
from secretsync.core.values import SecretValue
from tests.conftest import CANARY
from tests.harness.controller import create, es_manifest, install_crds, kube_api, secret_data, store_manifest, wait_for
from tests.harness.kube import KubeCluster
from tests.harness.ports import free_port

pytestmark = [pytest.mark.kube, pytest.mark.slow]


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return -1.0
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            m = re.match(rf"{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", line)
            if m:
                total += float(m.group(2))
    return total


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("SECRETSYNC_FILE_KEY", key)
    return tmp_path / "store.json", {"SECRETSYNC_FILE_KEY": key}


def _start(kube: KubeCluster, label: str, lease_ns: str, lease: str, port: int, env: dict[str, str],
           log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kube.kubeconfig),
            "--log-level", "debug", "--log-format", "json", "controller",
            "--namespace-selector", f"secretsync-test={label}", "--metrics-port", str(port),
            "--metrics-host", "127.0.0.1", "--lease-name", lease, "--lease-namespace", lease_ns,
            "--lease-duration", "3", "--min-refresh", "0.5", "--identity", f"replica-{port}",
            "--allow-cluster-store-files"]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def test_two_replicas_one_writer_and_failover(kube: KubeCluster, file_store, procs, tmp_path: Path) -> None:
    install_crds(kube)
    api = kube_api(kube)
    path, env = file_store
    fs = open_store(f"file://{path}")
    fs.put("app/db", SecretValue(CANARY))
    label = uuid.uuid4().hex[:10]
    ns = kube.new_namespace("ha", labels={"secretsync-test": label})
    lease = f"ha-{label}"
    ports = [free_port(), free_port()]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    for port, log in zip(ports, logs, strict=True):
        procs.append(_start(kube, label, ns, lease, port, env, log))
    # A file of the controller: only the admin's ClusterSecretStore may name it (docs/security.md).
    css = f"fs-{label}"
    create(api, store_manifest(css, None, "file", {"path": str(path)}, conditions=[{"namespaces": [ns]}]))
    create(api, es_manifest("db", ns, css, [("password", "app/db")], refresh="1s", store_kind="ClusterSecretStore"))
    wait_for(lambda: secret_data(api, ns, "db") == {"password": CANARY}, timeout=30, message="first sync")

    # Both replicas up (metrics answer) before judging who writes.
    wait_for(lambda: all(_metric(p, "secretsync_leader") >= 0 for p in ports), timeout=30,
             message="both replicas serving metrics")
    leaders = wait_for(lambda: [p for p in ports if _metric(p, "secretsync_leader") == 1.0] or None,
                       message="a leader")
    assert len(leaders) == 1
    leader = leaders[0]
    standby = ports[1 - ports.index(leader)]
    assert _metric(leader, "secretsync_secrets_written_total") >= 1
    assert _metric(standby, "secretsync_secrets_written_total") == 0
    assert _metric(standby, "secretsync_provider_calls_total") == 0

    # The leader dies without releasing the Lease; the standby takes over and keeps syncing.
    dead = procs[ports.index(leader)]
    os.killpg(dead.pid, signal.SIGKILL)
    dead.wait(5)
    killed_at = time.monotonic()
    fs.put("app/db", SecretValue("after-failover"))
    wait_for(lambda: secret_data(api, ns, "db") == {"password": "after-failover"}, timeout=20,
             message="the standby took over")
    failover = time.monotonic() - killed_at
    print(f"failover after SIGKILL of the leader: {failover:.1f}s (lease 3s)")
    assert failover < 15, failover
    assert _metric(standby, "secretsync_leader") == 1.0
    assert _metric(standby, "secretsync_secrets_written_total") >= 1

    # No value in either replica's logs (debug level, JSON).
    for log in logs:
        text = log.read_text(errors="replace")
        assert CANARY not in text
        assert "after-failover" not in text
    api.close()
