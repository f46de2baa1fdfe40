"""A de-duplicating work queue with per-key backoff and a delay heap (client-go's semantics).

Why this shape: the controller is level-triggered. An event only says "look at key K
again"; ten events for K before a worker gets to it are one reconcile, and K is never
reconciled by two workers at once (a key re-added while being processed is queued again
when the worker is done). Failures back off per key, exponentially with jitter, so one
broken ExternalSecret neither spins nor delays the others; refresh schedules live in the
same queue's delay heap, so there is one place that decides when a key runs next.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def jittered(delay: float, jitter: float, rng: Callable[[], float] = random.random) -> float:
    """``delay`` spread by +-``jitter`` (a fraction), never negative."""
    if delay <= 0 or jitter <= 0:
        return max(0.0, delay)
    return max(0.0, delay * (1.0 + jitter * (2.0 * rng() - 1.0)))


class Backoff:
    """Per-key exponential backoff: base * 2^(failures-1), capped, with jitter."""

    def __init__(self, base: float = 1.0, cap: float = 300.0, jitter: float = 0.2) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self._failures: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def next_delay(self, key: Hashable, at_least: float = 0.0) -> float:
        with self._lock:
            n = self._failures.get(key, 0) + 1
            self._failures[key] = n
        raw = min(self.cap, self.base * (2 ** min(n - 1, 30)))
        return max(at_least, jittered(raw, self.jitter))

    def failures(self, key: Hashable) -> int:
        with self._lock:
            return self._failures.get(key, 0)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)


class WorkQueue(Generic[K]):
    """Thread-safe queue of keys: ``add`` / ``add_after`` / ``schedule`` in, ``get`` + ``done`` out."""

    def __init__(self, backoff: Backoff | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        #: Served before ``_queue``. Both may hold stale entries (a key moved ahead by
        #: ``add(urgent=True)``, or already handed out): a key is handed out only while dirty
        #: and not processing.
        self._urgent: deque[K] = deque()
        self._ready = 0  # dirty keys not processing: the depth metric
        #: Urgent keys re-added while processing: ``done`` queues them urgent.
        self._urgent_later: set[K] = set()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        #: key -> when it is due; the heap may hold stale entries (lazy deletion).
        self._waiting: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._shutdown = False

    # -- in --------------------------------------------------------------------------------
    def add(self, key: K, *, urgent: bool = False) -> None:
        """Queue ``key`` now (a no-op when it is already queued).

        ``urgent``: ahead of every non-urgent key, even if it is queued already. For work a
        change caused (a provider value moved): under load the ready queue holds a backlog of
        periodic refreshes that would find nothing new, and a rotation must not wait behind it.
        """
        with self._cond:
            if urgent and key in self._processing:
                self._urgent_later.add(key)
            elif urgent and key in self._dirty and not self._shutdown:
                self._urgent.append(key)
                self._cond.notify()
                return
            self._add_locked(key, urgent)

    def _add_locked(self, key: K, urgent: bool = False) -> None:
        if self._shutdown or key in self._dirty:
            return
        self._dirty.add(key)
        self._waiting.pop(key, None)
        if key not in self._processing:
            (self._urgent if urgent else self._queue).append(key)
            self._ready += 1
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds, unless it is already due sooner."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            when = self._clock() + delay
            current = self._waiting.get(key)
            if current is not None and current <= when:
                return
            self._push_locked(key, when)

    def schedule(self, key: K, delay: float) -> None:
        """Set ``key``'s next run to ``delay`` from now, replacing any pending schedule.

        Used for refresh schedules: a reconcile that just ran moves the next refresh out,
        instead of leaving an earlier one in the heap that would run a needless reconcile.
        """
        with self._cond:
            if delay <= 0:
                self._add_locked(key)
                return
            self._push_locked(key, self._clock() + delay)

    def _push_locked(self, key: K, when: float) -> None:
        self._waiting[key] = when
        heapq.heappush(self._heap, (when, next(self._seq), key))
        self._cond.notify()

    def add_rate_limited(self, key: K, at_least: float = 0.0) -> float:
        """Retry ``key`` after its next backoff delay (or ``at_least``, e.g. a Retry-After)."""
        delay = self.backoff.next_delay(key, at_least)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset ``key``'s backoff after a success."""
        self.backoff.forget(key)

    def cancel(self, key: K) -> None:
        """Drop any pending schedule of ``key`` (the object was deleted)."""
        with self._cond:
            self._waiting.pop(key, None)
        self.backoff.forget(key)

    # -- out -------------------------------------------------------------------------------
    def _promote_due_locked(self) -> float | None:
        """Move due keys from the heap to the queue; return seconds until the next one."""
        now = self._clock()
        while self._heap:
            when, _, key = self._heap[0]
            if self._waiting.get(key) != when:
                heapq.heappop(self._heap)  # stale entry
                continue
            if when > now:
                return when - now
            heapq.heappop(self._heap)
            del self._waiting[key]
            if key not in self._dirty:
                self._dirty.add(key)
                if key not in self._processing:
                    self._queue.append(key)
                    self._ready += 1
        return None

    def _pop_locked(self) -> K | None:
        for q in (self._urgent, self._queue):
            while q:
                key = q.popleft()
                if key in self._dirty and key not in self._processing:
                    return key
        return None

    def get(self, timeout: float | None = None) -> K | None:
        """The next key to process (mark it processing), or None on timeout or shutdown."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutdown:
                    return None
                next_due = self._promote_due_locked()
                key = self._pop_locked()
                if key is not None:
                    self._processing.add(key)
                    self._dirty.discard(key)
                    self._ready -= 1
                    return key
                wait = next_due
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        """The worker finished ``key``; if it was re-added meanwhile, queue it again."""
        with self._cond:
            self._processing.discard(key)
            urgent = key in self._urgent_later
            self._urgent_later.discard(key)
            if key in self._dirty:
                (self._urgent if urgent else self._queue).append(key)
                self._ready += 1
                self._cond.notify()

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    # -- introspection (metrics, tests) ----------------------------------------------------
    def __len__(self) -> int:
        """Keys ready to run now (the queue depth metric)."""
        with self._cond:
            return self._ready

    def waiting(self) -> int:
        """Keys scheduled for later (refreshes, retries)."""
        with self._cond:
            return len(self._waiting)

    def due_in(self, key: K) -> float | None:
        with self._cond:
            when = self._waiting.get(key)
            return None if when is None else when - self._clock()

    def processing(self) -> int:
        with self._cond:
            return len(self._processing)

    def active(self, key: K) -> bool:
        """Queued to run now or being processed (not merely scheduled for later)."""
        with self._cond:
            return key in self._dirty or key in self._processing
