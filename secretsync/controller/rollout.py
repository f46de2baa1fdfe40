"""Restart exactly the workloads that read a changed Secret: once, debounced, rate-limited.

After a rotation, pods keep running with the old value until something restarts them, and
a blunt restarter (restart everything that mentions the Secret, on every event) causes
loops and storms. The rules here:

* **Who**: the consumer index (:mod:`secretsync.kube.consumers`) says which Deployments,
  StatefulSets, DaemonSets and Argo Rollouts read which keys of which Secret. A workload
  restarts only if a key *it reads* changed, and only under the ExternalSecret's
  ``spec.rollout`` (``none`` by default) unless the workload opts out
  (``secretsync.io/rollout: "false"``).
* **How**: a merge patch of one pod-template annotation per Secret,
  ``rollout.secretsync.io/<secret>``, set to a keyed hash of only the keys the workload
  reads. Kubernetes rolls the pods; the annotation records what they run with.
* **No loops**: a patch is sent only when that hash differs from the annotation. A change
  is noticed by comparing per-key digests of a managed Secret's data as the informer
  receives it, so a controller restart, a failover or a relist (same data) restarts nothing.
  A new leader compares every existing annotation once (a leader that died between writing
  a Secret and patching its consumers leaves them stale; its successor finishes the job).
* **Debounce**: a workload's first pending change opens a window (``debounce`` seconds);
  everything else that changes for it in the window rides on the same, single patch.
* **Rate limit**: one cluster-wide token bucket for patches; a restart that has to wait is
  re-scheduled, never dropped.
* **Accounting**: an Event on the workload and ``secretsync_rollout_restarts_total{kind}``
  per restart. Hashes are HMACs under the installation key, never values.

Why digests are taken in the managed-Secret informer's transform: the informer drops the
data on arrival (memory), and a restart must be decided per key. 16 bytes per key are kept.
"""

from __future__ import annotations

import heapq
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from secretsync.api.models import ROLLOUT_NONE, ROLLOUT_TARGETS, RolloutPolicy
from secretsync.core.ratelimit import TokenBucket
from secretsync.kube.client import KubeApi, KubeError, Resource
from secretsync.kube.consumers import (
    WORKLOAD_KINDS,
    ConsumerIndex,
    Keys,
    Workload,
    WorkloadId,
    WorkloadKind,
    stamp_annotation,
    workload_record,
)
from secretsync.kube.labels import OWNER_ANNOTATION

from .events import EventRecorder, ObjectRef
from .hashing import canonical, data_hash, decode_data
from .informer import Informer, Key
from .settings import RolloutSettings, WatchSettings

log = logging.getLogger(__name__)

#: The workload kinds as API resources, one module-level constant each, so the chart's RBAC test
#: (tests/harness/kubecalls.py) can name the exact resources this module reads and patches.
DEPLOYMENTS, STATEFULSETS, DAEMONSETS, ROLLOUTS = WORKLOAD_KINDS
#: Kind -> resource, for the informers and the restart patch.
WORKLOAD_RESOURCES: dict[str, Resource] = {r.kind: r for r in (DEPLOYMENTS, STATEFULSETS, DAEMONSETS, ROLLOUTS)}

Digests = Mapping[str, bytes]
#: A pending restart waits for busy ExternalSecrets at most this long past its debounce window,
HOLD_MAX = 10.0
#: and fires only after this long without any of them busy (the Secret's watch event follows the write).
HOLD_QUIET = 0.3


def key_digests(hash_key: bytes, data: Mapping[str, bytes]) -> dict[str, bytes]:
    """Per-key keyed digests of a Secret's data (16 bytes each; never the values)."""
    return {k: hmac.new(hash_key, canonical({k: v}, "rollout-key"), "sha256").digest()[:16]
            for k, v in data.items()}


def stamp(hash_key: bytes, digests: Digests, keys: Keys) -> str:
    """The pod-template annotation value for a workload reading ``keys`` (None: all keys)."""
    picked = digests if keys is None else {k: digests[k] for k in keys if k in digests}
    return data_hash(hash_key, picked, "rollout")


@dataclass
class _Pending:
    due: float
    #: Secret -> the annotation value the pods had before its first change in this window.
    secrets: dict[str, str | None] = field(default_factory=dict)
    attempts: int = 0
    created: float = field(default_factory=time.monotonic)
    #: Last time an ExternalSecret writing one of the workload's Secrets was still at work.
    last_busy: float = 0.0


class RolloutManager:
    """Watches workloads, notices data changes of managed Secrets, and restarts consumers."""

    def __init__(self, api: KubeApi, settings: RolloutSettings, *, hash_key: bytes,
                 namespaces: Sequence[str | None], watch: WatchSettings, events: EventRecorder,
                 registry: CollectorRegistry, leading: threading.Event, ready: Callable[[], bool],
                 policy: Callable[[str, str], RolloutPolicy | None], in_scope: Callable[[str], bool],
                 busy: Callable[[str, str], bool] | None = None) -> None:
        self.api = api
        self.settings = settings
        self.key = hash_key
        self.events = events
        self.leading = leading
        self._ready = ready
        self.policy = policy
        self.in_scope = in_scope
        self.busy = busy
        self.index = ConsumerIndex()
        self.bucket = TokenBucket(settings.rate, settings.burst)
        self._lock = threading.Condition(threading.Lock())
        #: (namespace, Secret) -> (owning ExternalSecret, per-key digests)
        self._secrets: dict[Key, tuple[str | None, Digests]] = {}
        self._pending: dict[WorkloadId, _Pending] = {}
        self._heap: list[tuple[float, WorkloadId]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._api_versions = {k.kind: k.api_version for k in WORKLOAD_KINDS}
        self.informers: list[Informer[Workload]] = [
            Informer(api, WORKLOAD_RESOURCES[k.kind], _transform_for(k), settings=watch, namespace=ns,
                     name=f"{k.plural}@{ns or '*'}")
            for k in WORKLOAD_KINDS for ns in namespaces]
        for inf in self.informers:
            inf.add_handler(self._on_workload)
        self.restarts = Counter("secretsync_rollout_restarts", "Workload restarts requested after a Secret "
                                "changed, by workload kind.", ["kind"], registry=registry)
        self.skipped = Counter("secretsync_rollout_skipped", "Restarts not made, by reason (opted_out, "
                               "unchanged, not_found).", ["reason"], registry=registry)
        self.pending_gauge = Gauge("secretsync_rollout_pending", "Workloads waiting for a debounced restart.",
                                   registry=registry)
        self.pending_gauge.set_function(lambda: len(self._pending))

    # -- wiring ----------------------------------------------------------------------------
    def wrap_transform(self, base: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        """The managed-Secret informer's transform, taking per-key digests before data is dropped."""
        def transform(obj: dict[str, Any]) -> Any:
            self.observe_secret(obj)
            return base(obj)
        return transform

    def on_secret_event(self, etype: str, key: Key, old: Any, new: Any) -> None:
        if etype == "DELETED":
            with self._lock:
                self._secrets.pop(key, None)

    def start(self, secret_informers: Iterable[Informer[Any]]) -> None:
        for sinf in secret_informers:
            sinf.add_handler(self.on_secret_event)
        # Argo Rollouts only where its API is served: an informer on an absent CRD would retry
        # (and warn) forever. Installing Argo later takes a controller restart to be noticed.
        absent = {g for g in {inf.resource.group for inf in self.informers} if g != "apps" and not self._served(g)}
        self.informers = [inf for inf in self.informers if inf.resource.group not in absent]
        for inf in self.informers:
            inf.start()
        self._thread = threading.Thread(target=self._run, name="rollout", daemon=True)
        self._thread.start()

    def _served(self, group: str) -> bool:
        res = next(k for k in WORKLOAD_KINDS if k.group == group)
        try:
            self.api.request("GET", res.group_version_path)
            return True
        except KubeError as exc:
            if exc.status == 404:
                log.info("rollout: %s is not served; its workloads are not watched", res.api_version)
                return False
            return True  # forbidden or flaky: let the informer report it

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        stop_threads(self.informers, self._thread, timeout)

    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self.informers)

    # -- observing -------------------------------------------------------------------------
    def _on_workload(self, etype: str, key: Key, old: Workload | None, new: Workload | None) -> None:
        if new is not None:
            self.index.put(new)
        elif old is not None:
            self.index.remove(old.id)

    def observe_secret(self, obj: Mapping[str, Any]) -> None:
        """Called with every managed Secret the informer receives (list, watch, relist)."""
        md = obj.get("metadata") or {}
        key = (str(md.get("namespace") or ""), str(md.get("name") or ""))
        owner = (md.get("annotations") or {}).get(OWNER_ANNOTATION)
        digests = key_digests(self.key, decode_data(obj.get("data")))
        with self._lock:
            before = self._secrets.get(key)
            self._secrets[key] = (owner, digests)
        if before is None or before[1] == digests or not self.leading.is_set():
            return
        self.secret_changed(key[0], key[1], owner, before[1], digests)

    def secret_changed(self, ns: str, secret: str, owner: str | None, before: Digests, after: Digests) -> None:
        """Schedule a restart of every consumer that reads a key whose digest moved."""
        policy = self.policy(ns, owner) if owner else None
        if policy is None or policy.mode == ROLLOUT_NONE or not self.in_scope(ns):
            return
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        for wl, keys in self._targets(ns, secret, policy):
            if keys is not None and not keys & changed:
                continue
            if wl.opted_out:
                self.skipped.labels("opted_out").inc()
                continue
            self._schedule(wl.id, secret, stamp(self.key, before, keys))

    def _targets(self, ns: str, secret: str, policy: RolloutPolicy) -> list[tuple[Workload, Keys]]:
        if policy.mode != ROLLOUT_TARGETS:
            return [(wl, wl.reads[secret]) for wl in self.index.consumers(ns, secret)]
        out: list[tuple[Workload, Keys]] = []
        for t in policy.targets:
            wl = self.index.get((t.kind, ns, t.name))
            if wl is None:
                log.info("rollout target %s %s/%s not found; not restarting it", t.kind, ns, t.name)
                self.skipped.labels("not_found").inc()
                continue
            out.append((wl, wl.reads.get(secret) if secret in wl.reads else None))
        return out

    def _applies(self, wl: Workload, secret: str) -> bool:
        """Does the Secret's ExternalSecret ask for this workload to restart?"""
        return self._policy_for(wl, secret) is not None

    def _policy_for(self, wl: Workload, secret: str) -> RolloutPolicy | None:
        owner = self._owner(wl.namespace, secret)
        policy = self.policy(wl.namespace, owner) if owner else None
        if policy is None or policy.mode == ROLLOUT_NONE:
            return None
        if policy.mode == ROLLOUT_TARGETS and not any(
                t.kind == wl.kind and t.name == wl.name for t in policy.targets):
            return None
        return policy

    def _owner(self, ns: str, secret: str) -> str | None:
        with self._lock:
            got = self._secrets.get((ns, secret))
        return got[0] if got is not None else None

    def _digests(self, ns: str, secret: str) -> Digests | None:
        with self._lock:
            got = self._secrets.get((ns, secret))
        return got[1] if got is not None else None

    # -- scheduling ------------------------------------------------------------------------
    def _schedule(self, wid: WorkloadId, secret: str, baseline: str | None, delay: float | None = None) -> None:
        with self._lock:
            p = self._pending.get(wid)
            if p is None:
                due = time.monotonic() + (self.settings.debounce if delay is None else delay)
                p = self._pending[wid] = _Pending(due)
                heapq.heappush(self._heap, (due, wid))
                self._lock.notify_all()
            p.secrets.setdefault(secret, baseline)

    def check_all(self) -> int:
        """Compare every workload's annotations with the current data (a new leader's one pass)."""
        n = 0
        for wl in self.index.workloads():
            if wl.opted_out or not wl.stamps or not self.in_scope(wl.namespace):
                continue
            for secret, keys in wl.reads.items():
                have = wl.stamps.get(stamp_annotation(secret))
                digests = self._digests(wl.namespace, secret)
                if have is None or digests is None or not self._applies(wl, secret):
                    continue
                if stamp(self.key, digests, keys) != have:
                    self._schedule(wl.id, secret, have)
                    n += 1
        return n

    def _run(self) -> None:
        was_leading = False
        while not self._stop.is_set():
            leading = self.leading.is_set()
            if leading and not was_leading:
                if not (self._ready() and self.synced()):
                    self._stop.wait(0.1)
                    continue
                found = self.check_all()
                if found:
                    log.info("rollout: %d workload annotation(s) behind their Secrets after taking over", found)
            elif not leading and was_leading:
                with self._lock:
                    self._pending.clear()
                    self._heap.clear()
            was_leading = leading
            due = self._next_due()
            if due is None:
                continue
            wid, pending = due
            try:
                self._fire(wid, pending)
            except Exception:
                log.exception("rollout of %s %s/%s failed", *wid)
                self._retry(wid, pending)

    def _next_due(self) -> tuple[WorkloadId, _Pending] | None:
        with self._lock:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    _, wid = heapq.heappop(self._heap)
                    p = self._pending.pop(wid, None)
                    if p is not None:
                        return wid, p
                    continue
                wait = min(0.5, self._heap[0][0] - now) if self._heap else 0.5
                self._lock.wait(wait)
                return None
        return None

    def _retry(self, wid: WorkloadId, p: _Pending, delay: float | None = None) -> None:
        if p.attempts >= 5 and delay is None:
            log.warning("rollout of %s %s/%s given up after %d attempts", *wid, p.attempts)
            return
        with self._lock:
            cur = self._pending.get(wid)
            if cur is not None:
                for s, b in p.secrets.items():
                    cur.secrets.setdefault(s, b)
                return
            p.due = time.monotonic() + (delay if delay is not None else min(30.0, 2.0 ** p.attempts))
            p.attempts += 1 if delay is None else 0
            self._pending[wid] = p
            heapq.heappush(self._heap, (p.due, wid))
            self._lock.notify_all()

    # -- restarting ------------------------------------------------------------------------
    def _hold(self, wl: Workload, p: _Pending) -> bool:
        """Wait while an ExternalSecret writing a Secret this workload reads is queued or running.

        Why: one store cycle that sees a burst of rotations queues all the affected
        ExternalSecrets at once; under load their writes spread over seconds, more than the
        debounce window. Waiting until they are done makes the whole burst one restart. The
        wait is bounded (``HOLD_MAX`` after the first change) so a busy key cannot starve it.
        """
        if self.busy is None:
            return False
        now = time.monotonic()
        if now - p.created > self.settings.debounce + HOLD_MAX:
            return False
        if any((owner := self._owner(wl.namespace, s)) and self.busy(wl.namespace, owner) for s in wl.reads):
            p.last_busy = now
        if now - p.last_busy < HOLD_QUIET:
            self._retry(wl.id, p, delay=HOLD_QUIET)
            return True
        return False

    def _fire(self, wid: WorkloadId, p: _Pending) -> None:
        if not self.leading.is_set():
            return
        wl = self.index.get(wid)
        if wl is None:
            self.skipped.labels("not_found").inc()
            return
        if wl.opted_out:
            self.skipped.labels("opted_out").inc()
            return
        if self._hold(wl, p):
            return
        patch: dict[str, str] = {}
        names: list[str] = []
        for secret, baseline in sorted(p.secrets.items()):
            digests = self._digests(wl.namespace, secret)
            if digests is None:
                continue
            keys = wl.reads.get(secret) if secret in wl.reads else None
            want = stamp(self.key, digests, keys)
            ann = stamp_annotation(secret)
            have = wl.stamps.get(ann)
            if have == want or (have is None and want == baseline):
                continue  # the pods run with it, or it changed and changed back within the window
            patch[ann] = want
            names.append(secret)
        if not patch:
            self.skipped.labels("unchanged").inc()
            return
        wait = self.bucket.try_acquire()
        if wait > 0:
            self._retry(wid, p, delay=wait)
            return
        kind, ns, name = wid
        body = {"spec": {"template": {"metadata": {"annotations": patch}}}}
        try:
            out = self.api.patch(WORKLOAD_RESOURCES[kind], name, body, ns)
        except KubeError as exc:
            if exc.not_found:
                self.skipped.labels("not_found").inc()
                return
            log.warning("rollout: cannot patch %s %s/%s: %s", kind, ns, name, exc)
            self._retry(wid, p)
            return
        self.index.put(replace(wl, stamps={**wl.stamps, **patch}))
        self.restarts.labels(kind).inc()
        secrets = ", ".join(names)
        log.info("rollout: restarting %s %s/%s for Secret(s) %s", kind, ns, name, secrets)
        md = out.get("metadata") or {}
        self.events.emit(ObjectRef(self._api_versions[kind], kind, ns, name, md.get("uid") or wl.uid),
                         "Normal", "RolloutRestart", f"pods restarted: Secret(s) {secrets} changed "
                         "(keys read by this workload)")


def stop_threads(informers: Sequence[Informer[Any]], thread: threading.Thread | None, timeout: float) -> None:
    """Stop a manager's own informers and loop thread (the runtime stops its informers itself)."""
    for inf in informers:
        inf.stop()
    for inf in informers:
        inf.join(timeout)
    if thread is not None:
        thread.join(timeout)


def _transform_for(kind: WorkloadKind) -> Callable[[dict[str, Any]], Workload]:
    def transform(obj: dict[str, Any]) -> Workload:
        return workload_record(kind.kind, obj)
    return transform
