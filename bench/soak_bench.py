"""Soak: the controller for many minutes under rotations, drift and provider faults (not in CI).

    python -m bench soak [-- --n 10000 --minutes 30 --refresh 30s --json FILE]

Its own kube-apiserver + etcd and moto (the test harness as a library), moto behind the fault
proxy (tests/harness/faultproxy.py), and ``secretsync controller`` as a subprocess. After the
cold start, every ``--tick`` seconds it rotates a few random keys in moto, edits a few managed
Secrets by hand (drift), and now and then breaks the provider for a while (connection resets,
black-hole, 503, 429 with Retry-After, slow answers). It samples the controller's RSS and
thread count every 5 s.

At the end (faults healed, one refresh interval plus slack to settle) every Secret must hold
the last value written for its key: **lost updates** = Secrets that do not. It reports the
**memory slope** (least-squares fit of RSS over time after the cold start, MB/min) beside the
RSS right after the cold start (the baseline of the same run: RSS end / RSS start), and the
thread count's range: a leak shows as a slope that does not flatten and threads that grow.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.controller_bench import (  # noqa: E402
    aws_backend,
    by_label,
    create_objects,
    log,
    metrics,
    parallel,
    setup,
    start_controller,
    stop_controller,
    total,
    vm_kb,
)
from secretsync.kube.client import SECRETS, KubeApi, KubeError  # noqa: E402
from tests.harness.controller import install_crds  # noqa: E402
from tests.harness.faultproxy import Fault, FaultProxy, status  # noqa: E402
from tests.harness.kube import start_kube  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402

#: The provider faults drawn at random: (name, how the proxy is switched).
FAULTS = ("reset", "blackhole", "503", "429", "slow")


class Sampler(threading.Thread):
    """(minute, RSS MB, threads) of a process every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float, int]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                rss, threads = vm_kb(self.pid, "VmRSS") / 1024, vm_kb(self.pid, "Threads")
            except OSError:
                return
            self.samples.append(((time.monotonic() - self.t0) / 60, rss, threads))


def rss_profile(samples: list[tuple[float, float, int]], width: float) -> list[float]:
    """Median RSS (MB) of each ``width``-minute window after the cold start, in order."""
    import statistics

    if not samples:
        return []
    start = samples[0][0]
    windows: dict[int, list[float]] = {}
    for minute, rss, _ in samples:
        windows.setdefault(int((minute - start) // width), []).append(rss)
    return [round(statistics.median(windows[k]), 1) for k in sorted(windows)]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def apply_fault(proxy: FaultProxy, kind: str) -> None:
    if kind == "reset":
        proxy.connection_fault(Fault("reset"))
        proxy.sever()
    elif kind == "blackhole":
        proxy.connection_fault(Fault("blackhole"))
        proxy.sever()
    elif kind == "503":
        proxy.request_fault(status(503))
    elif kind == "429":
        proxy.request_fault(status(429, retry_after=2))
    elif kind == "slow":
        proxy.request_fault(Fault("delay", delay=1.5))


def wrong_secrets(api: KubeApi, nss: list[str], n: int, expected: dict[int, str]) -> list[str]:
    """ExternalSecret names whose Secret does not hold the expected password (or is missing)."""
    seen: dict[int, str] = {}
    for ns in nss:
        cont = None
        while True:
            page = api.list(SECRETS, ns, label_selector="app.kubernetes.io/managed-by=secretsync", limit=500,
                            continue_=cont)
            for obj in page["items"]:
                name = obj["metadata"]["name"]
                if name.startswith("es-"):
                    pw = (obj.get("data") or {}).get("password", "")
                    seen[int(name[3:])] = base64.b64decode(pw).decode()
            cont = page["metadata"].get("continue")
            if not cont:
                break
    return [f"es-{i:05d}" for i in range(n) if seen.get(i) != expected[i]]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    results: dict[str, Any] = {"n": args.n, "minutes": args.minutes, "refresh": args.refresh, "tick": args.tick,
                               "loadavg_start": [round(x, 2) for x in os.getloadavg()]}
    kube = start_kube(work / "kube", extra_args=["--max-requests-inflight=800",
                                                 "--max-mutating-requests-inflight=400"])
    backend = ctl = proxy = None
    try:
        backend = aws_backend(work)
        moto_port = int(str(backend.store_block["endpoint"]).rsplit(":", 1)[1])
        proxy = FaultProxy(("127.0.0.1", moto_port), http=True).start()
        backend = replace(backend, store_block={**backend.store_block, "endpoint": proxy.url()})
        api = KubeApi(kube.configuration(), pool_size=32, timeout=(5, 120))
        install_crds(kube)
        log(f"setup: {args.n} moto secrets, {args.n} ExternalSecrets in {args.namespaces} namespaces")
        nss = setup(api, backend, args.n, args.namespaces)
        create_objects(api, backend, nss, args.n, args.n, 0, args.refresh)
        expected = {j: f"p{j}-0" for j in range(args.n)}

        port = free_port()
        t0 = time.monotonic()
        ctl = start_controller(kube.kubeconfig, port, args.workers, work / "controller.log", args.profile)
        sampler = Sampler(ctl.pid)
        sampler.start()
        while True:
            if ctl.poll() is not None:
                raise RuntimeError(f"controller exited with {ctl.returncode}; see {work / 'controller.log'}")
            try:
                if total(metrics(port), "secretsync_externalsecrets", status="True") >= args.n:
                    break
            except OSError:
                pass
            if time.monotonic() - t0 > 900:
                raise RuntimeError("cold start did not finish within 900 s")
            time.sleep(1.0)
        results["cold_start_seconds"] = round(time.monotonic() - t0, 1)
        warm_minute = (time.monotonic() - sampler.t0) / 60
        rss_start = vm_kb(ctl.pid, "VmRSS") / 1024
        log(f"cold start {results['cold_start_seconds']} s, RSS {rss_start:.0f} MB; soaking {args.minutes} min")
        if args.profile is not None:
            os.kill(ctl.pid, signal.SIGUSR1)  # the profiler's first report: what growth is measured from

        rotations = drifts = 0
        faults: dict[str, int] = {}
        fault_until = 0.0
        next_fault = time.monotonic() + rng.uniform(20, 60)
        end = time.monotonic() + args.minutes * 60
        gen = 0
        while time.monotonic() < end:
            now = time.monotonic()
            if fault_until and now >= fault_until:
                proxy.heal()
                fault_until = 0.0
                next_fault = now + rng.uniform(30, 90)
            elif not fault_until and now >= next_fault and now + 30 < end:
                kind = rng.choice(FAULTS)
                apply_fault(proxy, kind)
                faults[kind] = faults.get(kind, 0) + 1
                fault_until = now + rng.uniform(10, 30)
                log(f"  fault {kind} for {fault_until - now:.0f}s")
            gen += 1
            changed = {j: f"p{j}-{gen}" for j in rng.sample(range(args.n), max(1, args.n // 200))}
            backend.change(changed)
            expected.update(changed)
            rotations += len(changed)
            drifted = rng.sample(range(args.n), max(1, args.n // 500))

            def drift(i: int) -> None:
                with contextlib.suppress(KubeError):  # a Secret not created yet: nothing to drift
                    api.patch(SECRETS, f"es-{i:05d}", {"stringData": {"password": "drifted-by-hand"}},
                              nss[i % len(nss)])

            parallel(drift, drifted, workers=8)
            drifts += len(drifted)
            time.sleep(max(0.0, args.tick - (time.monotonic() - now)))
        proxy.heal()
        log(f"soak over: {rotations} rotations, {drifts} drifts, faults {faults}; settling")
        settle_until = time.monotonic() + args.settle
        wrong = wrong_secrets(api, nss, args.n, expected)
        while wrong and time.monotonic() < settle_until:
            time.sleep(5)
            wrong = wrong_secrets(api, nss, args.n, expected)
        sampler.stop.set()
        if args.profile is not None:
            os.kill(ctl.pid, signal.SIGUSR1)  # what grew over the soak, written while still running
            time.sleep(min(60.0, 5 + args.n / 200))
        m = metrics(port)
        results["store_cycles"] = int(total(m, "secretsync_store_cycles_total"))
        results["provider_calls_by_outcome"] = by_label(m, "secretsync_provider_calls_total", "outcome")
        samples = [s for s in sampler.samples if s[0] >= warm_minute]
        rss_end = vm_kb(ctl.pid, "VmRSS") / 1024
        results.update({
            "rotations": rotations, "drifts": drifts, "faults": faults,
            "lost_updates": len(wrong), "lost_examples": wrong[:5],
            "proxy_requests": len(proxy.requests()),
            "rss_start_mb": round(rss_start, 1), "rss_end_mb": round(rss_end, 1),
            "rss_ratio_end_vs_start": round(rss_end / rss_start, 3),
            "rss_peak_mb": round(max(s[1] for s in samples), 1) if samples else None,
            "memory_slope_mb_per_min": round(slope([(m, r) for m, r, _ in samples]), 3),
            "memory_slope_second_half_mb_per_min": round(slope([(m, r) for m, r, _ in
                                                                 samples[len(samples) // 2:]]), 3),
            "memory_slope_last_third_mb_per_min": round(slope([(m, r) for m, r, _ in
                                                                samples[2 * len(samples) // 3:]]), 3),
            # The curve's shape: a leak climbs at the same rate to the end, a warm-up levels off.
            "rss_median_mb_by_5_min": rss_profile(samples, 5.0),
            "threads_min": min(s[2] for s in samples) if samples else None,
            "threads_max": max(s[2] for s in samples) if samples else None,
            "threads_start": samples[0][2] if samples else None, "threads_end": samples[-1][2] if samples else None,
            "samples": len(samples),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        })
    finally:
        if ctl is not None:
            stop_controller(ctl)
        if proxy is not None:
            proxy.stop()
        if backend is not None:
            backend.stop()
        kube.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=10000, help="ExternalSecrets (one moto key each)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--refresh", default="30s", help="ExternalSecret refreshInterval")
    ap.add_argument("--tick", type=float, default=10.0, help="seconds between rotation/drift rounds")
    ap.add_argument("--namespaces", type=int, default=20)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--settle", type=float, default=180.0, help="seconds allowed to converge after the soak")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    ap.add_argument("--profile", type=Path, help="run the controller under bench/sampler.py (BENCH_PROFILE=mem: "
                    "tracemalloc; the report written at the end lists what grew since the cold start)")
    args = ap.parse_args(argv)

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # run the finally blocks: stop the servers we started

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    work = Path(tempfile.mkdtemp(prefix="secretsync-soak-"))
    machine = f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"
    log(f"work dir {work}; {machine}")
    try:
        r = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    r["machine"] = machine
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    print()
    print(f"== soak: {r['n']} ExternalSecrets, {r['minutes']} min, refresh {r['refresh']}, load "
          f"{r['loadavg_start']} -> {r['loadavg_end']} ({machine})")
    print(f"rotations {r['rotations']}, drift edits {r['drifts']}, provider faults {r['faults']}, "
          f"requests through the proxy {r['proxy_requests']}, store cycles {r['store_cycles']}, provider calls "
          f"{r['provider_calls_by_outcome']}")
    print(f"lost updates:   {r['lost_updates']} {r['lost_examples'] or ''}  (target 0)")
    print(f"memory:         RSS {r['rss_start_mb']} MB after the cold start -> {r['rss_end_mb']} MB at the end "
          f"(ratio {r['rss_ratio_end_vs_start']}), peak {r['rss_peak_mb']} MB; slope "
          f"{r['memory_slope_mb_per_min']} MB/min (second half {r['memory_slope_second_half_mb_per_min']}, "
          f"last third {r['memory_slope_last_third_mb_per_min']}); median by 5 min {r['rss_median_mb_by_5_min']}")
    print(f"threads:        {r['threads_start']} -> {r['threads_end']} (min {r['threads_min']}, "
          f"max {r['threads_max']}), {r['samples']} samples")
    return 0 if r["lost_updates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
