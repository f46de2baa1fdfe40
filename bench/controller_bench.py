"""Benchmark: the sync controller on 10,000 ExternalSecrets over 10,000 AWS secrets (moto).

Run from the repository root (needs scripts/testenv kube, and the test extra for moto):

    python -m bench.controller_bench [--n 10000] [--unmanaged 20000] [--workers 16] [--json FILE]

It starts its own etcd + kube-apiserver and moto server (the test harness used as a
library, not as pytest fixtures), then measures, each against a baseline measured in the
same run:

1. **Provider calls per refresh cycle** at steady state with 1% of the secrets changed per
   cycle, against the baseline of one read per ExternalSecret per refresh (what External
   Secrets Operator does). The baseline is *run*: one GetSecretValue per ExternalSecret
   through our AWS adapter, counted by the same CallRecorder, timed.
2. **Cold start**: from starting ``secretsync controller`` (a subprocess) until every
   ExternalSecret is Ready (read from its metrics endpoint). Target: <= 120 s.
3. **Memory**: the controller's peak RSS with 10k managed and 20k unmanaged Secrets in the
   cluster, against a baseline process that keeps the same objects the way a generic
   informer does (the official client's models for Secrets, dicts for ExternalSecrets).

Targets: all Ready <= 120 s; steady-state calls <= 1/20 of baseline; RSS <= 250 MB.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from secretsync.controller.kubeapi import NAMESPACES, SECRETS, KubeApi, KubeError  # noqa: E402
from secretsync.core.calls import CallRecorder  # noqa: E402
from secretsync.core.settings import ClientSettings  # noqa: E402
from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, open_aws, raw_boto3, start_moto  # noqa: E402
from tests.harness.controller import create, es_manifest, install_crds, store_manifest  # noqa: E402
from tests.harness.kube import start_kube  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402

KEY_PREFIX = "bench/app-"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parallel(fn: Callable[[Any], Any], items: Iterable[Any], workers: int = 16) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, items):
            pass


def metrics(port: int) -> dict[str, float]:
    """Scrape /metrics into {series: value} (series = name + labels as printed)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
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


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- setup
def setup(api: KubeApi, sm: Any, n: int, unmanaged: int, namespaces: int, refresh: str) -> list[str]:
    nss = [f"bench-{i:03d}" for i in range(namespaces)]
    parallel(lambda ns: api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                "metadata": {"name": ns}}), [*nss, "secretsync-bench"])
    t0 = time.monotonic()
    parallel(lambda i: sm.create_secret(Name=f"{KEY_PREFIX}{i:05d}",
                                        SecretString=json.dumps({"user": f"u{i}", "password": f"p{i}-0"})),
             range(n), workers=8)
    log(f"  {n} moto secrets in {time.monotonic() - t0:.0f}s")
    create(api, {"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "aws-creds", "namespace": "secretsync-bench"},
                 "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
    return nss


def create_objects(api: KubeApi, nss: list[str], n: int, unmanaged: int, endpoint: str, refresh: str) -> None:
    create(api, store_manifest("aws", None, "aws", {
        "region": REGION, "endpoint": endpoint,
        "secretRef": {"accessKeyID": {"name": "aws-creds", "key": "id", "namespace": "secretsync-bench"},
                      "secretAccessKey": {"name": "aws-creds", "key": "secret", "namespace": "secretsync-bench"}}}))
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
        es = es_manifest(f"es-{i:05d}", ns, "aws", store_kind="ClusterSecretStore", refresh=refresh)
        es["spec"]["data"] = [
            {"secretKey": "user", "remoteRef": {"key": f"{KEY_PREFIX}{i:05d}", "property": "user"}},
            {"secretKey": "password", "remoteRef": {"key": f"{KEY_PREFIX}{i:05d}", "property": "password"}},
        ]
        create(api, es)

    parallel(external_secret, range(n), workers=16)
    log(f"  {n} ExternalSecrets in {time.monotonic() - t0:.0f}s")


# --------------------------------------------------------------------------- phases
def baseline_reads(endpoint: str, n: int) -> tuple[int, float]:
    """What ESO does each refresh: one GetSecretValue per ExternalSecret (run, counted, timed)."""
    rec = CallRecorder()
    local = threading.local()

    def read(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = open_aws(endpoint, settings=ClientSettings(calls=rec))
        client.get(f"{KEY_PREFIX}{i:05d}")

    t0 = time.monotonic()
    parallel(read, range(n), workers=8)
    return rec.total(), time.monotonic() - t0


def start_controller(kubeconfig: Path, port: int, workers: int, logfile: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "secretsync.cli.main", "--kubeconfig", str(kubeconfig), "--log-level", "info",
            "controller", "--no-leader-elect", "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
            "--lease-namespace", "secretsync-bench", "--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
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


def changed_secrets_synced(api: KubeApi, nss: list[str], changed: dict[int, str]) -> bool:
    import base64

    for i, pw in changed.items():
        try:
            obj = api.get(SECRETS, f"es-{i:05d}", nss[i % len(nss)])
        except KubeError:
            return False
        if base64.b64decode((obj.get("data") or {}).get("password", "")).decode() != pw:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=10000, help="ExternalSecrets (and AWS secrets)")
    ap.add_argument("--unmanaged", type=int, default=20000, help="unmanaged Secrets in the cluster")
    ap.add_argument("--namespaces", type=int, default=50)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--refresh", default="30s", help="ExternalSecret refreshInterval")
    ap.add_argument("--change", type=float, default=0.01, help="fraction of secrets changed per round")
    ap.add_argument("--rounds", type=int, default=3, help="steady-state change rounds")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    args = ap.parse_args(argv)

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally blocks: stop the servers we started

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)

    work = Path(tempfile.mkdtemp(prefix="secretsync-ctlbench-"))
    results: dict[str, Any] = {"n": args.n, "unmanaged": args.unmanaged, "workers": args.workers,
                               "refresh": args.refresh, "machine": f"{platform.node()} {platform.machine()} "
                               f"{os.cpu_count()} cpus", "python": platform.python_version()}
    log(f"work dir {work}")
    kube = start_kube(work / "kube", extra_args=["--max-requests-inflight=800",
                                                 "--max-mutating-requests-inflight=400"])
    moto = start_moto()
    ctl: subprocess.Popen[bytes] | None = None
    try:
        api = KubeApi(kube.configuration(), pool_size=64, timeout=(5, 120))
        install_crds(kube)
        sm = raw_boto3(moto.endpoint)
        log("setup: namespaces, moto secrets, credentials")
        nss = setup(api, sm, args.n, args.unmanaged, args.namespaces, args.refresh)
        log("setup: ClusterSecretStore, unmanaged Secrets, ExternalSecrets")
        create_objects(api, nss, args.n, args.unmanaged, moto.endpoint, args.refresh)

        log(f"baseline: one GetSecretValue per ExternalSecret ({args.n})")
        base_calls, base_secs = baseline_reads(moto.endpoint, args.n)
        results["baseline_calls_per_refresh"] = base_calls
        results["baseline_refresh_seconds"] = round(base_secs, 1)
        log(f"  {base_calls} calls in {base_secs:.1f}s")

        port = free_port()
        log(f"cold start: secretsync controller --workers {args.workers}")
        t0 = time.monotonic()
        ctl = start_controller(kube.kubeconfig, port, args.workers, work / "controller.log")
        sampler = RssSampler(ctl.pid)
        sampler.start()
        ready_at = None
        while time.monotonic() - t0 < 900:
            if ctl.poll() is not None:
                raise RuntimeError(f"controller exited with {ctl.returncode}; see {work / 'controller.log'}")
            try:
                m = metrics(port)
            except OSError:
                time.sleep(0.5)
                continue
            ready = total(m, "secretsync_externalsecrets", status="True")
            if ready >= args.n:
                ready_at = time.monotonic() - t0
                break
            time.sleep(1.0)
        if ready_at is None:
            raise RuntimeError("not all ExternalSecrets became Ready within 900 s")
        m = metrics(port)
        results["cold_start_seconds"] = round(ready_at, 1)
        results["cold_start_provider_calls"] = int(total(m, "secretsync_provider_calls_total"))
        results["cold_start_calls_by_operation"] = {
            op: int(total(m, "secretsync_provider_calls_total", operation=op))
            for op in ("ListSecrets", "BatchGetSecretValue", "GetSecretValue", "DescribeSecret")}
        log(f"  all {args.n} Ready after {ready_at:.1f}s; provider calls {results['cold_start_calls_by_operation']}")

        log("steady state: changing "
            f"{args.change:.0%} of the secrets per round, {args.rounds} rounds")
        # Let one full cycle pass first, so the cold start's calls are out of the window.
        c0 = total(metrics(port), "secretsync_store_cycles_total")
        deadline = time.monotonic() + 300
        while total(metrics(port), "secretsync_store_cycles_total") < c0 + 1 and time.monotonic() < deadline:
            time.sleep(0.5)
        m0 = metrics(port)
        calls0, cycles0 = total(m0, "secretsync_provider_calls_total"), total(m0, "secretsync_store_cycles_total")
        per_round = max(1, int(args.n * args.change))
        rng = random.Random(7)
        sync_times = []
        for r in range(args.rounds):
            before = total(metrics(port), "secretsync_store_cycles_total")
            picked = rng.sample(range(args.n), per_round)
            changed = {i: f"p{i}-{r + 1}" for i in picked}
            tchange = time.monotonic()
            parallel(lambda item: sm.put_secret_value(
                SecretId=f"{KEY_PREFIX}{item[0]:05d}",
                SecretString=json.dumps({"user": f"u{item[0]}", "password": item[1]})),
                list(changed.items()), workers=8)
            while time.monotonic() - tchange < 600:
                if (total(metrics(port), "secretsync_store_cycles_total") > before
                        and changed_secrets_synced(api, nss, changed)):
                    break
                time.sleep(1.0)
            sync_times.append(time.monotonic() - tchange)
            log(f"  round {r + 1}: {per_round} changes synced after {sync_times[-1]:.1f}s")
        # Close the window on a cycle boundary.
        c_end = total(metrics(port), "secretsync_store_cycles_total")
        while total(metrics(port), "secretsync_store_cycles_total") < c_end + 1:
            time.sleep(0.5)
        m1 = metrics(port)
        calls = total(m1, "secretsync_provider_calls_total") - calls0
        cycles = total(m1, "secretsync_store_cycles_total") - cycles0
        per_cycle = calls / max(1.0, cycles)
        results["steady_cycles"] = int(cycles)
        results["steady_calls"] = int(calls)
        results["steady_calls_per_cycle"] = round(per_cycle, 1)
        results["steady_changes_per_round"] = per_round
        results["steady_change_sync_seconds_max"] = round(max(sync_times), 1)
        results["steady_ratio_vs_baseline"] = round(per_cycle / base_calls, 4)
        log(f"  {calls:.0f} calls over {cycles:.0f} cycles = {per_cycle:.1f}/cycle vs baseline {base_calls} "
            f"= 1/{base_calls / max(per_cycle, 1e-9):.0f}")

        rss_now = vm_kb(ctl.pid, "VmRSS")
        hwm = vm_kb(ctl.pid, "VmHWM")
        results["controller_rss_mb"] = round(rss_now / 1024, 1)
        results["controller_peak_rss_mb"] = round(max(hwm, sampler.peak_kb) / 1024, 1)
        sampler.stop.set()
        log("baseline memory: a generic informer holding the same objects")
        n_sec, n_es, base_hwm = baseline_rss(kube.kubeconfig)
        results["baseline_informer_objects"] = {"secrets": n_sec, "externalsecrets": n_es}
        results["baseline_informer_peak_rss_mb"] = round(base_hwm / 1024, 1)
        results["rss_ratio_vs_baseline"] = round(results["controller_peak_rss_mb"] / (base_hwm / 1024), 3)
    finally:
        if ctl is not None and ctl.poll() is None:
            os.killpg(ctl.pid, signal.SIGTERM)
            try:
                ctl.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(ctl.pid, signal.SIGKILL)
        moto.stop()
        kube.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"ExternalSecrets: {args.n}, unmanaged Secrets: {args.unmanaged}, workers: {args.workers}")
    print(f"cold start to all Ready:      {results['cold_start_seconds']} s   (target <= 120 s)")
    print(f"provider calls per cycle:     {results['steady_calls_per_cycle']}   vs baseline "
          f"{results['baseline_calls_per_refresh']} (one read per ExternalSecret): ratio "
          f"{results['steady_ratio_vs_baseline']} (target <= 0.05)")
    print(f"controller peak RSS:          {results['controller_peak_rss_mb']} MB   (target <= 250 MB); "
          f"generic informer baseline {results['baseline_informer_peak_rss_mb']} MB: ratio "
          f"{results['rss_ratio_vs_baseline']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    ok = (results["cold_start_seconds"] <= 120 and results["steady_ratio_vs_baseline"] <= 0.05
          and results["controller_peak_rss_mb"] <= 250)
    print("targets:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
