"""Benchmark: 1,000 rotations across 500 workloads, from provider rotation to restart request (issue 13).

Run from the repository root (needs scripts/testenv kube and the test extra for moto):

    python -m bench.rotation_bench [--secrets 1000] [--workloads 500] [--bursts 10] [--refresh 10s]
                                   [--debounce 1] [--json FILE]

Setup: one etcd + kube-apiserver (no controller-manager, so a restart is the pod-template
patch itself), moto, ``--secrets`` AWS secrets each synced by an ExternalSecret with
``rollout: auto`` into a Secret with keys ``password`` (rotated) and ``host`` (a shared key
that never changes), and ``--workloads`` Deployments. Deployment w reads ``password`` of
Secrets 2w and 2w+1 (env ``secretKeyRef``) and ``host`` of Secret 2w; a tenth of the
Deployments also read ``host`` only from one more Secret (bystanders for that Secret).

Each burst rotates every secret of ``workloads/bursts`` Deployments in the provider at once
(``put_secret_value``: AWSCURRENT moves), so over all bursts each secret rotates once and
each Deployment's two Secrets rotate within the same burst. A watch on Secrets and on
Deployments timestamps each arrival:

* time from the provider rotation to the Secret updated, and to the restart requested
  (the Deployment's generation moving), p50 and p99;
* restarts per workload per burst (bar: exactly 1), bystander restarts (bar: 0);
* provider calls spent during the bursts.

Baselines, measured in the same run from the same event stream:

* **restarts**: a Reloader-style restarter (restart every workload that references a Secret
  by name, on each data change of that Secret) is run on the same watch events and counts
  the restarts it would request (it does not patch, so it cannot disturb the measurement);
* **provider calls**: ExternalSecrets Operator reads every remote key of every
  ExternalSecret per refresh: ``secrets * 2 keys * elapsed / refresh``.

Bar (issue 13): p99 of rotation -> restart requested <= refresh interval + 2 s; exactly one
restart per workload per burst.
"""

from __future__ import annotations

import argparse
import json
import platform
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

from secretsync.api.models import parse_duration  # noqa: E402
from secretsync.controller import Controller  # noqa: E402
from secretsync.controller.settings import (  # noqa: E402
    MetricsSettings,
    QueueSettings,
    RefreshSettings,
    RolloutSettings,
)
from secretsync.core.calls import CallRecorder  # noqa: E402
from secretsync.kube.client import NAMESPACES, SECRETS, KubeApi, KubeError, Resource  # noqa: E402
from tests.harness.controller import create, es_manifest, fast_settings, install_crds, store_manifest  # noqa: E402
from tests.harness.kube import start_kube  # noqa: E402

from .controller_bench import log, parallel  # noqa: E402

DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
NS = "rotation-bench"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


class Observer:
    """Watches Secrets and Deployments of the namespace; timestamps what changed and when."""

    def __init__(self, api: KubeApi, reads: dict[str, list[str]]) -> None:
        self.api = api
        #: Secret -> Deployments that reference it by name (what a name-based restarter uses).
        self.readers = reads
        self.secret_data: dict[str, str] = {}
        self.secret_times: dict[str, list[float]] = {}
        self.generations: dict[str, int] = {}
        self.restart_times: dict[str, list[float]] = {}
        self.naive_restarts: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(SECRETS,), daemon=True),
                         threading.Thread(target=self._watch, args=(DEPLOYMENTS,), daemon=True)]
        self.lock = threading.Lock()

    def start(self) -> None:
        for res in (SECRETS, DEPLOYMENTS):
            for obj in self.api.list(res, NS)["items"]:
                self._seen(res, obj, initial=True)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, res: Resource) -> None:
        rv = self.api.list(res, NS, limit=1)["metadata"]["resourceVersion"]
        while not self._stop.is_set():
            try:
                for ev in self.api.watch(res, NS, resource_version=rv, timeout_seconds=60):
                    obj = ev.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if ev.get("type") in ("ADDED", "MODIFIED"):
                        self._seen(res, obj)
                    if self._stop.is_set():
                        return
            except KubeError:
                time.sleep(0.2)

    def _seen(self, res: Resource, obj: dict[str, Any], initial: bool = False) -> None:
        now = time.monotonic()
        name = obj["metadata"]["name"]
        with self.lock:
            if res is SECRETS:
                data = json.dumps(obj.get("data") or {}, sort_keys=True)
                before = self.secret_data.get(name)
                self.secret_data[name] = data
                if not initial and before is not None and before != data:
                    self.secret_times.setdefault(name, []).append(now)
                    for wl in self.readers.get(name, ()):
                        self.naive_restarts.setdefault(wl, []).append(now)
            else:
                gen = int(obj["metadata"].get("generation") or 0)
                before_gen = self.generations.get(name)
                self.generations[name] = gen
                if not initial and before_gen is not None and gen > before_gen:
                    self.restart_times.setdefault(name, []).extend([now] * (gen - before_gen))


def deployment(w: int, secrets: int) -> tuple[dict[str, Any], list[str]]:
    env = [("P0", f"s-{2 * w:04d}", "password"), ("P1", f"s-{2 * w + 1:04d}", "password"),
           ("HOST", f"s-{2 * w:04d}", "host")]
    if w % 10 == 0:  # a bystander read: only the key that never changes, of another Secret
        env.append(("OTHER_HOST", f"s-{(2 * w + 2) % secrets:04d}", "host"))
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"app-{w:04d}", "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"app-{w:04d}"}},
                     "template": {"metadata": {"labels": {"app": f"app-{w:04d}"}}, "spec": {"containers": [
                         {"name": "app", "image": "busybox",
                          "env": [{"name": n, "valueFrom": {"secretKeyRef": {"name": s, "key": k}}}
                                  for n, s, k in env]}]}}}}
    return body, sorted({s for _, s, _ in env})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.rotation_bench")
    ap.add_argument("--secrets", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=500)
    ap.add_argument("--bursts", type=int, default=10)
    ap.add_argument("--refresh", default="10s")
    ap.add_argument("--debounce", type=float, default=RolloutSettings().debounce)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.secrets != 2 * args.workloads:
        raise SystemExit("--secrets must be 2 x --workloads (each workload reads two rotated Secrets)")
    refresh = parse_duration(args.refresh)
    from tests.harness.aws import ACCESS_KEY, REGION, SECRET_KEY, raw_boto3, start_moto

    work = Path(tempfile.mkdtemp(prefix="rotation-bench-"))
    kube = start_kube(work / "kube")
    moto = start_moto()
    api = KubeApi(kube.configuration(), pool_size=32)
    ctl: Controller | None = None
    obs: Observer | None = None
    try:
        install_crds(kube)
        api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        sm = raw_boto3(moto.endpoint)
        sm.create_secret(Name="bench/host", SecretString="db.internal")
        parallel(lambda i: sm.create_secret(Name=f"bench/p-{i:04d}", SecretString=f"p{i}-0"), range(args.secrets), 8)
        create(api, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
                     "stringData": {"id": ACCESS_KEY, "secret": SECRET_KEY}})
        create(api, store_manifest("aws", NS, "aws", {
            "region": REGION, "endpoint": moto.endpoint,
            "secretRef": {"accessKeyID": {"name": "creds", "key": "id"},
                          "secretAccessKey": {"name": "creds", "key": "secret"}}}))
        parallel(lambda i: create(api, es_manifest(
            f"s-{i:04d}", NS, "aws", [("password", f"bench/p-{i:04d}"), ("host", "bench/host")],
            refresh=args.refresh, rollout={"policy": "auto"})), range(args.secrets), 16)
        reads: dict[str, list[str]] = {}
        bodies = []
        for w in range(args.workloads):
            body, secrets = deployment(w, args.secrets)
            bodies.append(body)
            for s in secrets:
                reads.setdefault(s, []).append(body["metadata"]["name"])
        parallel(lambda b: api.create(DEPLOYMENTS, b, NS), bodies, 16)
        log(f"created {args.secrets} ExternalSecrets and {args.workloads} Deployments")
        calls = CallRecorder()
        settings = fast_settings(
            queue=QueueSettings(workers=8, backoff_base=0.5, backoff_max=10.0, jitter=0.2),
            refresh=RefreshSettings(),
            metrics=MetricsSettings(port=None),
            rollout=RolloutSettings(enabled=True, debounce=args.debounce))
        settings = replace(settings, refresh=replace(settings.refresh, floor=1.0))
        t0 = time.monotonic()
        ctl = Controller(KubeApi(kube.configuration(), pool_size=32), settings, calls=calls)
        ctl.start()
        assert ctl.wait_ready(120)
        while True:
            done = sum(1 for i in range(args.secrets) if _synced(api, i)) if time.monotonic() - t0 > 5 else 0
            if done == args.secrets:
                break
            time.sleep(2)
        log(f"cold sync of {args.secrets} ExternalSecrets in {time.monotonic() - t0:.0f}s")
        time.sleep(refresh * 2)
        obs = Observer(api, reads)
        obs.start()
        per_burst = args.workloads // args.bursts
        to_secret: list[float] = []
        to_restart: list[float] = []
        restarts_per_burst: list[int] = []
        naive_per_burst: list[int] = []
        bystander_restarts = 0
        calls.reset()
        t_bursts = time.monotonic()
        for b in range(args.bursts):
            wls = list(range(b * per_burst, (b + 1) * per_burst))
            idx = [i for w in wls for i in (2 * w, 2 * w + 1)]
            with obs.lock:
                names = [f"app-{w:04d}" for w in range(args.workloads)]
                r_before = {n: len(obs.restart_times.get(n, [])) for n in names}
                n_before = {n: len(obs.naive_restarts.get(n, [])) for n in names}
                s_before = {i: len(obs.secret_times.get(f"s-{i:04d}", [])) for i in idx}
            rotated_at: dict[int, float] = {}

            def rotate(i: int, rotated_at: dict[int, float] = rotated_at, b: int = b) -> None:
                rotated_at[i] = time.monotonic()
                sm.put_secret_value(SecretId=f"bench/p-{i:04d}", SecretString=f"p{i}-{b + 1}")

            parallel(rotate, idx, 8)
            deadline = time.monotonic() + refresh * 3 + args.debounce + 30
            while time.monotonic() < deadline:
                with obs.lock:
                    ok = all(len(obs.restart_times.get(f"app-{w:04d}", [])) > r_before[f"app-{w:04d}"] for w in wls)
                if ok:
                    break
                time.sleep(0.2)
            time.sleep(args.debounce + refresh)  # late, duplicate restarts would show up here
            with obs.lock:
                for i in idx:
                    times = obs.secret_times.get(f"s-{i:04d}", [])[s_before[i]:]
                    if times:
                        to_secret.append(times[0] - rotated_at[i])
                burst_restarts = 0
                burst_naive = 0
                for w in range(args.workloads):
                    name = f"app-{w:04d}"
                    new = obs.restart_times.get(name, [])[r_before[name]:]
                    burst_naive += len(obs.naive_restarts.get(name, [])[n_before[name]:])
                    if w in wls:
                        burst_restarts += len(new)
                        restarts_per_burst.append(len(new))
                        if new:
                            first = min(rotated_at[2 * w], rotated_at[2 * w + 1])
                            to_restart.append(new[0] - first)
                    else:
                        bystander_restarts += len(new)
                naive_per_burst.append(burst_naive)
            log(f"burst {b + 1}/{args.bursts}: {len(idx)} rotations, {burst_restarts} restarts "
                f"(name-based restarter: {burst_naive})")
        elapsed = time.monotonic() - t_bursts
        spent = calls.total("aws")
        eso_calls = args.secrets * 2 * elapsed / refresh
        ours = sum(restarts_per_burst)
        naive = sum(naive_per_burst)
        result = {
            "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {_cpus()} CPU, "
            f"Python {platform.python_version()}", "secrets": args.secrets, "workloads": args.workloads,
            "bursts": args.bursts, "refresh_s": refresh, "debounce_s": args.debounce,
            "rotation_to_secret_p50_s": round(pct(to_secret, 50), 2), "rotation_to_secret_p99_s":
            round(pct(to_secret, 99), 2), "rotation_to_restart_p50_s": round(pct(to_restart, 50), 2),
            "rotation_to_restart_p99_s": round(pct(to_restart, 99), 2), "secrets_observed": len(to_secret),
            "restarts": ours, "workload_bursts": len(restarts_per_burst),
            "exactly_one_restart": sum(1 for n in restarts_per_burst if n == 1),
            "max_restarts_per_workload_per_burst": max(restarts_per_burst, default=0),
            "bystander_restarts": bystander_restarts, "name_based_restarts": naive,
            "restart_ratio": round(ours / naive, 3) if naive else None,
            "provider_calls": spent, "eso_calls": round(eso_calls),
            "calls_ratio": round(spent / eso_calls, 4) if eso_calls else None,
            "bar_p99_s": refresh + 2,
        }
        print(json.dumps(result, indent=2))
        ok = (result["rotation_to_restart_p99_s"] <= refresh + 2 and result["exactly_one_restart"]
              == len(restarts_per_burst) and bystander_restarts == 0)
        print(f"restart p99 {result['rotation_to_restart_p99_s']} s (bar {refresh + 2:g} s); "
              f"{result['exactly_one_restart']}/{len(restarts_per_burst)} workload-bursts with exactly one restart; "
              f"restarts {ours} vs name-based {naive} (ratio {result['restart_ratio']}); provider calls {spent} vs "
              f"ESO {round(eso_calls)} (ratio {result['calls_ratio']}): {'PASS' if ok else 'FAIL'}")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 0 if ok else 1
    finally:
        if obs is not None:
            obs.stop()
        if ctl is not None:
            ctl.stop()
        api.close()
        moto.stop()
        kube.stop()


def _synced(api: KubeApi, i: int) -> bool:
    try:
        obj = api.get(SECRETS, f"s-{i:04d}", NS)
    except KubeError:
        return False
    return bool(obj.get("data"))


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
