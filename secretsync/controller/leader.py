"""Leader election through a ``coordination.k8s.io/v1`` Lease (client-go's algorithm).

Why our own instead of ``kubernetes.leaderelection``: that module runs its own loop on
generated models, has no clean release on shutdown and exits the process on a lost lease.
This is ~150 lines of the same algorithm on the JSON client: optimistic concurrency on the
Lease's resourceVersion, expiry judged by *our* clock from when we last saw the record
change (so clock skew between replicas does not matter), a renew deadline after which a
leader that cannot reach the API steps down, and a release on clean shutdown so a rolling
update fails over at once instead of after a lease duration.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from secretsync.kube.client import LEASES, KubeApi, KubeError

from .settings import LeaderSettings

log = logging.getLogger(__name__)


def _now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class LeaderElector:
    """Runs in a thread; calls ``on_started`` when it becomes leader, ``on_stopped`` when it stops."""

    def __init__(self, api: KubeApi, settings: LeaderSettings, *,
                 on_started: Callable[[], None], on_stopped: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.settings = settings
        self.identity = settings.identity or default_identity()
        self.on_started = on_started
        self.on_stopped = on_stopped
        self._clock = clock
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._observed: tuple[str, str, str] | None = None  # (holder, renewTime, rv)
        self._observed_at = 0.0
        self._last_renew = 0.0
        self.transitions = 0

    def run(self) -> None:
        s = self.settings
        while not self._stop.is_set():
            # The renew counts from *before* the request: the server's renewTime is no later,
            # so holds() never overestimates how long the lease is ours.
            started = self._clock()
            ok = self._try_acquire_or_renew()
            now = self._clock()
            if ok:
                self._last_renew = started
                if not self.leading.is_set():
                    log.info("leader election: %s became leader of %s/%s", self.identity,
                             s.lease_namespace, s.lease_name)
                    self.leading.set()
                    self.transitions += 1
                    self._call(self.on_started)
            elif self.leading.is_set() and now - self._last_renew > s.renew_deadline:
                log.warning("leader election: %s could not renew within %.0fs; stepping down",
                            self.identity, s.renew_deadline)
                self._step_down()
            self._stop.wait(s.retry_period)
        if self.leading.is_set():
            self._release()
            self._step_down()

    def stop(self) -> None:
        self._stop.set()

    def holds(self) -> bool:
        """Leading, and the last renew is within the renew deadline. Another replica can take
        the lease only a lease duration after our last renew, so a write checked here cannot
        overlap one of the next leader's (renew deadline < lease duration is the margin)."""
        margin = min(self.settings.renew_deadline, self.settings.lease_duration)
        return self.leading.is_set() and self._clock() - self._last_renew < margin

    def _step_down(self) -> None:
        self.leading.clear()
        self._call(self.on_stopped)

    @staticmethod
    def _call(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("leader election callback failed")

    def _record(self, holder: str) -> dict[str, Any]:
        return {"holderIdentity": holder, "leaseDurationSeconds": max(1, round(self.settings.lease_duration)),
                "renewTime": _now_micro()}

    def _try_acquire_or_renew(self) -> bool:
        s = self.settings
        try:
            lease = self.api.get(LEASES, s.lease_name, s.lease_namespace)
        except KubeError as exc:
            if not exc.not_found:
                log.debug("leader election: get lease failed: %s", exc)
                return False
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": s.lease_name, "namespace": s.lease_namespace},
                    "spec": {**self._record(self.identity), "acquireTime": _now_micro(), "leaseTransitions": 0}}
            try:
                self.api.create(LEASES, body, s.lease_namespace)
            except KubeError as exc2:
                log.debug("leader election: create lease failed: %s", exc2)
                return False
            return True
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        md = lease.get("metadata") or {}
        observed = (holder, str(spec.get("renewTime") or ""), str(md.get("resourceVersion") or ""))
        now = self._clock()
        if observed != self._observed:
            self._observed = observed
            self._observed_at = now
        duration = float(spec.get("leaseDurationSeconds") or s.lease_duration)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # someone else holds an unexpired lease
        new_spec = dict(spec)
        new_spec.update(self._record(self.identity))
        if holder != self.identity:
            new_spec["acquireTime"] = _now_micro()
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        try:
            self.api.replace(LEASES, s.lease_name, lease, s.lease_namespace)
        except KubeError as exc:
            log.debug("leader election: update lease failed: %s", exc)
            return False
        return True

    def _release(self) -> None:
        """Hand the lease back on clean shutdown so a standby takes over immediately."""
        s = self.settings
        try:
            lease = self.api.get(LEASES, s.lease_name, s.lease_namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return
            spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _now_micro()})
            lease["spec"] = spec
            self.api.replace(LEASES, s.lease_name, lease, s.lease_namespace)
            log.info("leader election: %s released the lease", self.identity)
        except KubeError as exc:
            log.debug("leader election: release failed: %s", exc)
