"""A real kube-apiserver (1.20.2) + etcd on free loopback ports: the controller's and scanner's cluster.

Why a bare apiserver and not kind/k3s: the controller, the scanner and the audit only need the
API (CRDs, Secrets, Events, Leases, RBAC, audit log), not nodes. Both processes start in about
five seconds and use about 350 MB together. No controller-manager runs, so nothing is garbage
collected and a deleted namespace stays Terminating: tests use a fresh namespace each
(:meth:`KubeCluster.new_namespace`) and never rely on GC or pods running.

Usable two ways: the session-scoped pytest fixture ``kube``, and as a library
(:func:`start_kube` / :meth:`KubeCluster.stop`) for benchmarks.

Both server processes run in their own process group and are killed at interpreter exit
(``atexit``) as well as by :meth:`KubeCluster.stop`, so a crashed test run does not leave
them behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness.ports import free_port, wait_for_port

KUBE_VERSION = "v1.20.2"
CACHE = Path(os.environ.get("SECRETSYNC_CACHE", Path.home() / ".cache" / "secretsync"))
DEFAULT_APISERVER = CACHE / f"kube-apiserver-{KUBE_VERSION}"
DEFAULT_ETCD = "/usr/bin/etcd"

#: The unprivileged user's name (authenticated, no RBAC bindings unless a test adds them).
USER_NAME = "secretsync-test-user"
ADMIN_NAME = "secretsync-test-admin"

#: Secrets, ConfigMaps and token reviews at Metadata level at most: request and response
#: bodies of a Secret carry its values, so RequestResponse is never allowed for them.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # Noise that would drown the log: lease renewals, events, health probes.
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version"]},
        {"level": "Metadata", "resources": [
            {"group": "", "resources": ["secrets", "configmaps", "serviceaccounts/token"]},
            {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
        ]},
        {"level": "Metadata"},
    ],
}


def find_apiserver() -> Path | None:
    """The kube-apiserver binary: ``$SECRETSYNC_KUBE_APISERVER`` or the testenv cache."""
    env = os.environ.get("SECRETSYNC_KUBE_APISERVER")
    candidate = Path(env) if env else DEFAULT_APISERVER
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def find_etcd() -> str | None:
    env = os.environ.get("SECRETSYNC_ETCD")
    if env and Path(env).is_file():
        return env
    return shutil.which("etcd") or (DEFAULT_ETCD if Path(DEFAULT_ETCD).is_file() else None)


#: Processes started here and not yet stopped; the Popen (not the bare pid) so that atexit
#: never signals a process group whose id the kernel has since handed to someone else.
_live: dict[int, subprocess.Popen[bytes]] = {}


def _kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@atexit.register
def _kill_leftovers() -> None:
    for pid, proc in list(_live.items()):
        if proc.poll() is None:
            _kill_group(pid)


def _spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    _live[proc.pid] = proc
    return proc


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        _kill_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait(5)
    _live.pop(proc.pid, None)


def _rsa_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


@dataclass
class KubeCluster:
    """A running apiserver + etcd. ``token`` is cluster-admin; ``user_token`` is unprivileged."""

    kubeconfig: Path
    server: str
    token: str
    user_token: str
    audit_log: Path
    ca_file: Path
    workdir: Path
    user_name: str = USER_NAME
    etcd_endpoint: str = ""
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    #: How the apiserver was started, so the fault suite can restart it on the same port and etcd.
    _apiserver_argv: list[str] = field(default_factory=list, repr=False)

    def configuration(self, token: str | None = None) -> Any:
        """A ``kubernetes.client.Configuration`` for this cluster (admin unless ``token``)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.server
        cfg.api_key = {"authorization": f"Bearer {token or self.token}"}
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.verify_ssl = True
        return cfg

    def api_client(self, token: str | None = None) -> Any:
        """A fresh ``kubernetes.client.ApiClient`` (admin unless ``token`` is given)."""
        from kubernetes import client

        return client.ApiClient(self.configuration(token))

    def user_api_client(self) -> Any:
        """An ApiClient authenticated as the unprivileged user."""
        return self.api_client(self.user_token)

    def new_namespace(self, prefix: str = "t", labels: dict[str, str] | None = None) -> str:
        """Create a uniquely named namespace and return its name."""
        from kubernetes import client

        name = f"{prefix}-{uuid.uuid4().hex[:8]}"[:63].rstrip("-")
        with self.api_client() as api:
            client.CoreV1Api(api).create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {}))
            )
        return name

    def kubeconfig_for(self, token: str, path: Path) -> Path:
        """Write a kubeconfig for another identity (e.g. the unprivileged user)."""
        _write_kubeconfig(path, self.server, self.ca_file, token, "user")
        return path

    def alive(self) -> bool:
        return all(p.poll() is None for p in self._procs)

    def stop_apiserver(self, sig: int = signal.SIGTERM) -> None:
        """Stop only the kube-apiserver (etcd keeps the data): a control-plane restart."""
        api = self._procs[-1]
        if sig == signal.SIGTERM:
            _stop(api)
        else:
            _kill_group(api.pid, sig)
            api.wait(10)
            _live.pop(api.pid, None)

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start the kube-apiserver again with the same flags (port, certs, tokens, etcd)."""
        assert self._procs[-1].poll() is not None, "the apiserver is still running"
        log = self.workdir / "kube-apiserver.log"
        self._procs[-1] = _spawn(self._apiserver_argv, log)
        _wait_ready(f"{self.server}/readyz", self.token, self._procs, log, timeout)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            _stop(proc)
        self._procs.clear()


def _write_kubeconfig(path: Path, server: str, ca_file: Path, token: str, user: str) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "secretsync-test", "cluster": {"server": server,
                                                             "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "secretsync-test", "context": {"cluster": "secretsync-test", "user": user,
                                                             "namespace": "default"}}],
        "current-context": "secretsync-test",
    }
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)


def _wait_ready(url: str, token: str, procs: list[subprocess.Popen[bytes]], log: Path,
                timeout: float) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only for the readiness probe: the CA file appears later
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise RuntimeError(f"{log.parent}: a server exited with {p.returncode}:\n{tail}")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"kube-apiserver not ready after {timeout}s ({last}); log: {log}")


def start_kube(workdir: Path | None = None, *, apiserver: Path | None = None, etcd: str | None = None,
               timeout: float = 60.0, extra_args: list[str] | None = None) -> KubeCluster:
    """Start etcd and kube-apiserver on free loopback ports; return once ``/readyz`` answers."""
    apiserver = apiserver or find_apiserver()
    etcd = etcd or find_etcd()
    if apiserver is None:
        raise FileNotFoundError(
            f"kube-apiserver not found (set SECRETSYNC_KUBE_APISERVER or run scripts/testenv kube; "
            f"looked at {DEFAULT_APISERVER})")
    if etcd is None:
        raise FileNotFoundError("etcd not found (apt-get install etcd-server, or set SECRETSYNC_ETCD)")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="secretsync-kube-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # etcd on tmpfs when there is one: a test cluster needs no durability, and fsync on a
    # shared disk would dominate every write.
    shm = Path("/dev/shm")
    etcd_data = Path(tempfile.mkdtemp(prefix="secretsync-etcd-", dir=shm if shm.is_dir() else workdir))
    cert_dir = workdir / "certs"
    cert_dir.mkdir(exist_ok=True)

    admin_token = secrets.token_hex(20)
    user_token = secrets.token_hex(20)
    tokens = workdir / "tokens.csv"
    tokens.write_text(f'{admin_token},{ADMIN_NAME},uid-admin,"system:masters"\n'
                      f"{user_token},{USER_NAME},uid-user\n")
    tokens.chmod(0o600)
    sa_key = workdir / "sa.key"
    sa_key.write_bytes(_rsa_key_pem())
    sa_key.chmod(0o600)
    policy = workdir / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    audit_log = workdir / "audit.log"

    client_port, peer_port, secure_port = free_port(), free_port(), free_port()
    etcd_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    procs: list[subprocess.Popen[bytes]] = []
    etcd_log = workdir / "etcd.log"
    procs.append(_spawn([
        etcd, "--name", "default", "--data-dir", str(etcd_data),
        "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
        "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
        "--initial-cluster", f"default={peer_url}", "--initial-cluster-state", "new",
        "--logger", "zap", "--log-level", "error", "--quota-backend-bytes", str(4 * 1024**3),
    ], etcd_log))
    cluster: KubeCluster | None = None
    try:
        wait_for_port(client_port, timeout=timeout, proc=procs[0])
        api_log = workdir / "kube-apiserver.log"
        apiserver_argv = [
            str(apiserver),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={secure_port}", "--insecure-port=0",
            f"--cert-dir={cert_dir}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--disable-admission-plugins=ServiceAccount",
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--profiling=false",
            "--logtostderr=true", "--v=0",
            *(extra_args or []),
        ]
        procs.append(_spawn(apiserver_argv, api_log))
        _wait_ready(f"https://127.0.0.1:{secure_port}/readyz", admin_token, procs, api_log, timeout)
        ca_file = cert_dir / "apiserver.crt"
        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, f"https://127.0.0.1:{secure_port}", ca_file, admin_token, "admin")
        cluster = KubeCluster(
            kubeconfig=kubeconfig, server=f"https://127.0.0.1:{secure_port}", token=admin_token,
            user_token=user_token, audit_log=audit_log, ca_file=ca_file, workdir=workdir,
            etcd_endpoint=etcd_url, _procs=procs, _apiserver_argv=apiserver_argv,
        )
        _wait_default_namespace(cluster, timeout)
        return cluster
    except BaseException:
        for proc in reversed(procs):
            _stop(proc)
        raise
    finally:
        if cluster is None:
            shutil.rmtree(etcd_data, ignore_errors=True)
        else:
            # Remove the tmpfs data dir once the cluster stops (or the interpreter exits).
            atexit.register(shutil.rmtree, etcd_data, True)


def _wait_default_namespace(cluster: KubeCluster, timeout: float) -> None:
    """readyz can answer before the bootstrap controller has created ``default``."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        while True:
            try:
                core.read_namespace("default")
                return
            except ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    """One apiserver + etcd per test session (skips when the binaries are missing)."""
    if find_apiserver() is None:
        pytest.skip(f"kube-apiserver {KUBE_VERSION} not found: run scripts/testenv kube "
                    f"(or set SECRETSYNC_KUBE_APISERVER)")
    if find_etcd() is None:
        pytest.skip("etcd not found: apt-get install etcd-server (or set SECRETSYNC_ETCD)")
    cluster = start_kube(tmp_path_factory.mktemp("kube"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kube_namespace(kube: KubeCluster) -> str:
    """A fresh namespace per test (namespaces are never reused: nothing garbage-collects them)."""
    return kube.new_namespace("t")


def audit_events(cluster: KubeCluster) -> list[dict[str, Any]]:
    """The audit log's events so far (one JSON object per line)."""
    if not cluster.audit_log.exists():
        return []
    return [json.loads(line) for line in cluster.audit_log.read_text().splitlines() if line.strip()]
