"""Benchmark: ``secretsync audit`` on a large generated cluster, and its HTML report in Chromium.

Input (generated, seeded): 10,000 pods (1,000 Deployments x 1 ReplicaSet x 10 Pods), 2,000
Secrets (half written by ExternalSecrets), 1,000 RBAC bindings over 50 namespaces, and an API
server audit log of Secret reads. The objects are held as the API would send them (JSON
pages of 500 items), so API *list* time is excluded, while decoding each page is counted,
exactly as ``load_cluster`` does it.

Measured, each in a fresh child process so peak RSS belongs to one phase:

1. **Full audit** (``--who-can``, ``--audit-log``, least-privilege advice): decode the
   pages into the inventory, graph, RBAC, audit log, report document. Time and peak RSS.
   Baseline in the same run: decoding the same pages only (``json.loads``, nothing kept).
2. **HTML rendering** of that report. Baseline: the JSON output path (``json.dumps``).
3. **Opening the HTML in Chromium** (headless, Debian's ``chromium``): until the page's
   script has drawn everything. Baseline: the same bytes as a page without the script.

Bars (issue 15): audit <= 2 s and <= 200 MB; the report opens in <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAMESPACES = 50
DEPLOYMENTS_PER_NS = 20
PODS_PER_DEPLOYMENT = 10
SECRETS_PER_NS = 40
BINDINGS_PER_NS = 19
CLUSTER_BINDINGS = 50
PAGE = 500


def _md(name: str, ns: str | None = None, **extra: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "uid": f"uid-{ns}-{name}", **extra}
    if ns:
        md["namespace"] = ns
    return md


def generate(seed: int) -> Iterator[dict[str, Any]]:
    """Every object of the cluster, kind by kind, as a list call returns them."""
    rnd = random.Random(seed)
    for n in range(NAMESPACES):
        ns = f"team-{n:02d}"
        yield {"apiVersion": "v1", "kind": "Namespace", "metadata": _md(ns, labels={"team": ns})}
        for s in range(2):
            provider = {"aws": {"region": "eu-west-1"}} if s == 0 else {"vault": {"server": "http://vault:8200",
                                                                                  "path": "secret"}}
            yield {"apiVersion": "secretsync.io/v1alpha1", "kind": "SecretStore",
                   "metadata": _md(f"store-{s}", ns), "spec": {"provider": provider}}
        for i in range(SECRETS_PER_NS):
            name = f"app-{i:02d}"
            ann = {"secretsync.io/external-secret": name} if i % 2 == 0 else {}
            labels = {"app.kubernetes.io/managed-by": "secretsync"} if i % 2 == 0 else {}
            yield {"apiVersion": "v1", "kind": "Secret",
                   "metadata": _md(name, ns, labels=labels, annotations=ann)}  # metadata only, as listed
            if i % 2 == 0:
                yield {"apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
                       "metadata": _md(name, ns),
                       "spec": {"secretStoreRef": {"name": f"store-{i % 4 // 2}"},
                                "target": {"name": name},
                                "data": [{"secretKey": "password",
                                          "remoteRef": {"key": f"{ns}/{name}", "property": "password"}}]}}
        for d in range(DEPLOYMENTS_PER_NS):
            name = f"svc-{d:02d}"
            uses = rnd.sample(range(SECRETS_PER_NS), 3)
            spec = {"serviceAccountName": name, "containers": [{
                "name": "app", "image": f"registry.local/{name}:1",
                "env": [{"name": f"S{u}", "valueFrom": {"secretKeyRef": {"name": f"app-{u:02d}", "key": "password"}}}
                        for u in uses[:2]],
                "volumeMounts": [{"name": "creds", "mountPath": "/creds"}]}],
                "volumes": [{"name": "creds", "secret": {"secretName": f"app-{uses[2]:02d}"}}]}
            dep_md = _md(name, ns)
            yield {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _md(name, ns)}
            yield {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dep_md,
                   "spec": {"replicas": PODS_PER_DEPLOYMENT, "template": {"spec": spec}}}
            rs = f"{name}-7d9f8b"
            owner = [{"kind": "Deployment", "name": name, "uid": dep_md["uid"], "controller": True}]
            yield {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": _md(rs, ns, ownerReferences=owner),
                   "spec": {"replicas": PODS_PER_DEPLOYMENT, "template": {"spec": spec}}}
            rs_owner = [{"kind": "ReplicaSet", "name": rs, "uid": f"uid-{ns}-{rs}", "controller": True}]
            for p in range(PODS_PER_DEPLOYMENT):
                yield {"apiVersion": "v1", "kind": "Pod", "metadata": _md(f"{rs}-{p:05x}", ns,
                                                                          ownerReferences=rs_owner),
                       "spec": {**spec, "nodeName": f"node-{p % 7}"}}
        # Roles and 19 RoleBindings per namespace: SAs reading a few named Secrets, teams reading all.
        yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _md("reader", ns),
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]}
        for b in range(BINDINGS_PER_NS - 1):
            yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _md(f"svc-{b:02d}", ns),
                   "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                              "resourceNames": [f"app-{b:02d}", f"app-{b + 1:02d}"]},
                             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}
            yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": _md(f"svc-{b:02d}", ns),
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"svc-{b:02d}"},
                   "subjects": [{"kind": "ServiceAccount", "name": f"svc-{b:02d}", "namespace": ns}]}
        yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": _md("team", ns),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
               "subjects": [{"kind": "Group", "name": f"{ns}-devs"}]}
    yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _md("edit"),
           "rules": [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "list", "create"]}]}
    yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _md("secret-admin"),
           "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]}
    for c in range(CLUSTER_BINDINGS):
        yield {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": _md(f"ops-{c:02d}"),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-admin"},
               "subjects": [{"kind": "User", "name": f"ops-{c:02d}@example.com"}]}


def pages(seed: int) -> list[bytes]:
    """The objects as JSON list pages of :data:`PAGE` items (what the API server sends)."""
    out, batch = [], []
    for obj in generate(seed):
        batch.append(obj)
        if len(batch) == PAGE:
            out.append(json.dumps({"items": batch}).encode())
            batch = []
    if batch:
        out.append(json.dumps({"items": batch}).encode())
    return out


def write_audit_log(path: Path, seed: int, events: int) -> None:
    """Metadata-level audit events as a real log mixes them: four in five are about other
    resources (pods, configmaps, leases); of the Secret reads, each SA gets its own Secrets and
    ops users list whole namespaces."""
    rnd = random.Random(seed + 1)
    with path.open("w") as fh:
        for i in range(events):
            ns = f"team-{rnd.randrange(NAMESPACES):02d}"
            b = rnd.randrange(BINDINGS_PER_NS - 1)
            resource = "secrets"
            if i % 5:
                user, resource, name, verb = "system:kube-controller-manager", rnd.choice(
                    ["pods", "configmaps", "leases"]), f"obj-{i}", rnd.choice(["get", "update", "watch"])
            elif i % 50 == 0:
                user, name, verb = f"ops-{rnd.randrange(5):02d}@example.com", None, "list"
            else:
                user, name, verb = f"system:serviceaccount:{ns}:svc-{b:02d}", f"app-{b:02d}", "get"
            ref: dict[str, Any] = {"resource": resource, "namespace": ns, "apiVersion": "v1"}
            if name:
                ref["name"] = name
            fh.write(json.dumps({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"id-{i}",
                "stage": "ResponseComplete", "verb": verb,
                "user": {"username": user, "groups": ["system:authenticated"]},
                "objectRef": ref, "responseStatus": {"code": 200},
                "requestReceivedTimestamp": f"2026-11-30T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "annotations": {"authorization.k8s.io/decision": "allow"}}) + "\n")


def _vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)


def child(phase: str, seed: int, log: Path, out: Path) -> dict[str, Any]:
    """One phase in this (fresh) process: returns seconds and peak RSS (MB, and over the start)."""
    from secretsync.audit import Inventory, Scope, audit, render_html
    from secretsync.core.gcpause import paused_gc

    data = pages(seed)
    import gc

    if phase == "audit-gc":
        # The same audit with the collector left running: what core.gcpause saves.
        import types

        import secretsync.core.gcpause as gcpause

        gcpause.gc = types.SimpleNamespace(isenabled=gc.isenabled, disable=lambda: None,  # type: ignore[assignment]
                                           enable=lambda: None)
        phase = "audit"

    gc.collect()
    _reset_peak()
    rss0 = _vm("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    result: dict[str, Any] = {"phase": phase}
    if phase == "decode":
        n = 0
        with paused_gc():  # the same conditions as the audit's own decoding
            for page in data:
                n += len(json.loads(page)["items"])
        result["objects"] = n
    else:
        inv = Inventory(default_namespace="default", secret_keys_known=False)
        with paused_gc():  # as load_cluster does
            for page in data:
                for item in json.loads(page)["items"]:
                    inv.add(item)
        doc = audit(inv, Scope(), who_can=True, audit_logs=[log], source={"mode": "cluster"})
        if phase == "audit":
            result.update(pods=sum(1 for w in inv.workloads if w.ref.kind == "Pod"), secrets=len(inv.secrets),
                          bindings=len(inv.bindings), findings=len(doc["findings"]),
                          advice=len(doc.get("leastPrivilege") or []))
        else:
            del inv
            gc.collect()
            _reset_peak()
            rss0 = _vm("VmRSS")
            t0, c0 = time.perf_counter(), time.process_time()
            text = render_html(doc) if phase == "html" else json.dumps(doc, indent=2)
            result["bytes"] = len(text.encode())
            if phase == "html":
                out.write_text(text)
    result["seconds"] = time.perf_counter() - t0
    result["cpu"] = time.process_time() - c0
    result["peak_mb"] = _vm("VmHWM")
    result["delta_mb"] = result["peak_mb"] - rss0
    return result


def run_child(phase: str, seed: int, log: Path, out: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.audit_bench", "--child", phase, "--seed", str(seed),
                           "--log", str(log), "--out", str(out)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1])
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def open_in_chromium(page: Path, baseline: Path, work: Path, runs: int) -> tuple[float, float] | None:
    """Best-of-``runs`` milliseconds until the report is drawn, and until the baseline page loads."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.harness.browser import chromium, find_chromium

    if find_chromium() is None:
        print("chromium/chromedriver not installed: skipping the browser figure")
        return None
    best_report = best_base = float("inf")
    with chromium(work / "profile") as browser:
        for _ in range(runs):
            browser.open("about:blank")
            browser.open(page.as_uri())
            ms = browser.wait_for("return window.__readyMs || 0", timeout=30)
            best_report = min(best_report, float(ms))
            browser.open("about:blank")
            browser.open(baseline.as_uri())
            ms = browser.wait_for("return performance.timing.loadEventEnd ? performance.timing.loadEventEnd - "
                                  "performance.timing.navigationStart : 0", timeout=30)
            best_base = min(best_base, float(ms))
    return best_report, best_base


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--events", type=int, default=100_000, help="audit log events (one in five on Secrets)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.seed, args.log, args.out)))
        return {}

    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        work = Path(tmp)
        log, out = work / "audit.log", work / "report.html"
        write_audit_log(log, args.seed, args.events)

        def best(phase: str) -> dict[str, Any]:
            runs = [run_child(phase, args.seed, log, out) for _ in range(args.runs)]
            return min(runs, key=lambda r: r["seconds"]) | {"peak_mb": max(r["peak_mb"] for r in runs),
                                                            "delta_mb": max(r["delta_mb"] for r in runs),
                                                            "cpu": min(r["cpu"] for r in runs)}

        decode, full, gc_on = best("decode"), best("audit"), best("audit-gc")
        as_json, as_html = best("json"), best("html")
        print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, Python {platform.python_version()}; "
              f"best of {args.runs}, each phase in a fresh process")
        print(f"input: {full['pods']} pods, {full['secrets']} Secrets, {full['bindings']} bindings, "
              f"{decode['objects']} objects in {len(pages(args.seed))} pages; audit log {args.events} events")
        print(f"report: {full['findings']} findings, {full['advice']} ServiceAccounts advised; "
              f"JSON {as_json['bytes'] / 1e6:.1f} MB, HTML {as_html['bytes'] / 1e6:.1f} MB")
        print(f"load average at start: {os.getloadavg()[0]:.1f} (wall time suffers when it exceeds the cores; "
              "CPU time much less)")
        print(f"\n{'phase':42} {'wall s':>7} {'CPU s':>6} {'x base':>7} {'peak MB':>8} {'+MB':>6} {'x base':>7}")

        def row(name: str, r: dict[str, Any], base: dict[str, Any]) -> None:
            print(f"{name:42} {r['seconds']:7.3f} {r['cpu']:6.3f} {r['cpu'] / base['cpu']:7.1f} {r['peak_mb']:8.1f} "
                  f"{r['delta_mb']:6.1f} {r['peak_mb'] / base['peak_mb']:7.2f}")

        row("baseline: decode the list pages only", decode, decode)
        row("full audit (who-can, audit log, advice)", full, decode)
        row("  the same, cyclic GC left running", gc_on, decode)
        print(f"{'  pausing the GC: CPU':42} {full['cpu'] / gc_on['cpu']:.2f}x of the run with it")
        row("baseline: render the JSON report", as_json, as_json)
        row("render the HTML report", as_html, as_json)
        base_page = work / "baseline.html"
        html = out.read_text()
        base_page.write_text(html[: html.index("<script>")] + "</body></html>")
        opened = open_in_chromium(out, base_page, work, args.runs)
        result: dict[str, Any] = {"decode": decode, "audit": full, "audit_gc_on": gc_on, "json": as_json,
                                  "html": as_html}
        if opened is not None:
            report_ms, base_ms = opened
            print(f"\nChromium: report drawn in {report_ms:.0f} ms; the same bytes without the script load in "
                  f"{base_ms:.0f} ms ({report_ms / base_ms:.1f}x)")
            result["chromium_ms"] = report_ms
            result["chromium_baseline_ms"] = base_ms
        for label, secs in (("wall", full["seconds"]), ("CPU", full["cpu"])):
            ok = secs <= 2 and full["peak_mb"] <= 200 and (opened is None or opened[0] <= 3000)
            print(f"bars (audit <= 2 s {label} and <= 200 MB peak RSS, report drawn <= 3 s): "
                  f"{'met' if ok else 'NOT met'}")
        return result


if __name__ == "__main__":
    main(sys.argv[1:])
