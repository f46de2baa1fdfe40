"""core/v1 Events on create, update and error, sent off the reconcile path, never with values.

Why asynchronous and de-duplicated: a cold start of 10k ExternalSecrets is 10k "Created"
events; posting them inline would double the API round trips of every reconcile. A bounded
queue and one sender thread keep reconciles fast; when the queue is full, events are dropped
(and counted) rather than blocking. The same warning repeated for one object within
``repeat_after`` seconds is sent once: an outage must not turn into an event storm. The
memory is per (object, reason, message), not just the object's last event: an outage makes
one ExternalSecret alternate between two warnings (the provider's error, then "store
paused"), and remembering only the last one let both through every time.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from secretsync.kube.client import EVENTS, KubeApi, KubeError

log = logging.getLogger(__name__)

#: Distinct (reason, message) pairs remembered per object.
_PER_OBJECT = 8
#: Every this many recorded events, entries older than ``repeat_after`` are swept out.
_SWEEP_EVERY = 10000


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    uid: str | None


#: An event waiting for the sender: (object, type, reason, message, unix time).
_Pending = tuple[ObjectRef, str, str, str, int]


class EventRecorder:
    def __init__(self, api: KubeApi, *, component: str = "secretsync-controller", instance: str = "",
                 maxsize: int = 20000, normal_backlog: int = 1000, repeat_after: float = 600.0,
                 fallback_namespace: str = "default", yield_to: Callable[[], bool] | None = None,
                 max_defer: float = 120.0, on_drop: Callable[[], None] | None = None) -> None:
        self.api = api
        #: Normal events are dropped (and counted) while this many events wait; Warnings queue
        #: on up to ``maxsize``. Why: a cold start of 10k ExternalSecrets queues 10k "Created"
        #: events behind the reconciles (see ``yield_to``), ~3 MB of the controller's peak, for
        #: news the status already carries; a failure's Warning is the one an operator looks
        #: for. client-go's broadcaster drops everything past 1,000 queued events alike.
        self.normal_backlog = normal_backlog
        self.on_drop = on_drop
        #: Reconciles are waiting: an event (a record of what happened, timestamped when it
        #: happened) waits for them, at most ``max_defer`` seconds. A cold start of 10k
        #: ExternalSecrets makes 10k "Created" events, and on 2 cores every CPU second the
        #: sender and the API server spend on them comes out of the Secrets and statuses
        #: users wait for (docs/benchmarks.md: with this and the Vault change, the 10k cold
        #: start went from 138.7 s to 123.7 s and the controller's CPU from 99.9 to 84.2 s).
        self.yield_to = yield_to
        self.max_defer = max_defer
        self.component = component
        self.instance = instance
        self.repeat_after = repeat_after
        self.fallback_namespace = fallback_namespace
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize)
        #: object -> ((hash of (reason, message), when last sent), ...), newest first, a few
        #: per object. Tuples of ints, not a dict of message texts: one entry per object for
        #: 10k ExternalSecrets after a cold start was ~0.5 KB each as dicts, ~0.15 KB as this.
        self._last: dict[tuple[str, str | None, str], tuple[tuple[int, float], ...]] = {}
        self._lock = threading.Lock()
        self._recorded = 0
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="event-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=1)
        self._thread.join(timeout)

    def emit(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        """Queue one event. ``message`` must be value-free (callers pass error texts only)."""
        if type_ == "Normal" and self._queue.qsize() >= self.normal_backlog:
            self._drop()
            return
        now = time.monotonic()
        okey = (ref.kind, ref.namespace, ref.name)
        sig = hash((reason, message))
        with self._lock:
            # Only what was sent within repeat_after can suppress an event: older entries go.
            seen = tuple(p for p in self._last.get(okey, ()) if now - p[1] < self.repeat_after)
            if any(s == sig for s, _ in seen):
                return
            # Newest first, at most _PER_OBJECT; the oldest falls off.
            self._last[okey] = ((sig, now), *seen)[:_PER_OBJECT]
            self._recorded += 1
            if self._recorded % _SWEEP_EVERY == 0 or len(self._last) > 50000:
                self._sweep(now)
        # Queued as a tuple, turned into the Event body only when sent: a cold start queues
        # ~10k events faster than one sender posts them, and 10k nested dicts are ~14 MB of
        # the controller's peak (about 4 MB as tuples).
        try:
            self._queue.put_nowait((ref, type_, reason, message[:1024], int(time.time())))
        except queue.Full:
            self._drop()

    def _sweep(self, now: float) -> None:
        """Forget what can no longer suppress anything, into a new dict.

        Why: a long-running controller sends events for every object now and then (rotations,
        drift, outages with changing messages); entries of objects that went quiet would stay
        forever, and a dict never gives back its table when entries are deleted from it.
        """
        kept: dict[tuple[str, str | None, str], tuple[tuple[int, float], ...]] = {}
        for okey, seen in self._last.items():
            fresh = tuple(p for p in seen if now - p[1] < self.repeat_after)
            if fresh:
                kept[okey] = fresh
        self._last = kept

    def _drop(self) -> None:
        self.dropped += 1
        if self.on_drop is not None:
            self.on_drop()

    def _body(self, pending: _Pending) -> tuple[str, dict[str, object]]:
        ref, type_, reason, message, at = pending
        ts = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ns = ref.namespace or self.fallback_namespace
        return ns, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ref.name}.{uuid.uuid4().hex[:16]}", "namespace": ns},
            "involvedObject": {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name,
                               **({"namespace": ref.namespace} if ref.namespace else {}),
                               **({"uid": ref.uid} if ref.uid else {})},
            "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component},
            "reportingComponent": self.component, "reportingInstance": self.instance or self.component,
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
        }

    def forget(self, kind: str, namespace: str | None, name: str) -> None:
        with self._lock:
            self._last.pop((kind, namespace, name), None)

    def _run(self) -> None:
        while True:
            pending = self._queue.get()
            if pending is None:
                return
            if self.yield_to is not None:
                while self.yield_to() and time.time() - pending[4] < self.max_defer:
                    time.sleep(0.2)
            ns, body = self._body(pending)
            try:
                self.api.create(EVENTS, body, ns)
                self.sent += 1
            except KubeError as exc:
                log.debug("event not recorded: %s", exc)
