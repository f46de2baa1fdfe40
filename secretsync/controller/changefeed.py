"""Event-driven refresh: change notices become targeted reads of exactly the keys named.

Polling makes users choose between cost and latency; a notice removes the choice. Every
source (a provider's pulled feed, a webhook the controller serves) ends here as
``submit(store, names)``. The hub then:

* **coalesces**: notices for one store arriving within ``coalesce`` seconds become one read
  of the union of their names (a rotation touches a secret several times: PutSecretValue,
  UpdateSecretVersionStage, RotationSucceeded);
* **rate-limits** per store (a token bucket): a flood of notices cannot turn into a flood of
  provider calls; what waits keeps coalescing, nothing is dropped;
* **dispatches** to the store's cache, which reads only the named keys that ExternalSecrets
  use and re-queues exactly the ExternalSecrets whose data moved (the same path the listing
  cycle uses). A notice for a key nobody uses costs nothing.

Notices only accelerate: the polling cycle still runs at each ExternalSecret's interval, so
a lost, late or refused notice delays a change to the next cycle, never loses it. A notice
carries names only; nothing here logs a name set larger than a count, and no value exists
at this layer at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from secretsync.core.changes import ChangeFeed, ChangeNotice
from secretsync.core.errors import ProviderError
from secretsync.core.ratelimit import TokenBucket

from .settings import EventSettings

log = logging.getLogger(__name__)

#: (kind, namespace or "", name): the same id the store manager uses.
StoreId = tuple[str, str, str]
#: (store, names, monotonic time the first of the merged notices arrived)
Dispatch = Callable[[StoreId, frozenset[str], float], None]


@dataclass
class _Pending:
    names: set[str] = field(default_factory=set)
    first: float = 0.0
    received: list[float] = field(default_factory=list)


class EventMetrics:
    """Callbacks the hub reports through (the controller wires Prometheus counters in)."""

    def received(self, source: str, n: int) -> None: ...
    def coalesced(self, n: int) -> None: ...
    def acted(self, latency: float) -> None: ...
    def feed_error(self, source: str) -> None: ...
    def secret_updated(self, latency: float) -> None: ...


class PrometheusEventMetrics(EventMetrics):
    """The hub's counters on the controller's registry (labels are bounded: source only)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._received = Counter("secretsync_change_notices_received", "Change notices received, by source.",
                                 ["source"], registry=registry)
        self._coalesced = Counter("secretsync_change_notices_coalesced",
                                  "Change notices merged into a read already pending.", registry=registry)
        self._acted = Histogram("secretsync_change_notice_latency_seconds",
                                "Time from a notice's arrival to the targeted read of its keys.", registry=registry,
                                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
        self._to_secret = Histogram("secretsync_change_notice_to_secret_seconds",
                                    "Time from a notice's arrival to the Secret written with the changed value.",
                                    registry=registry, buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
        self._errors = Counter("secretsync_change_feed_errors", "Failed pulls of a provider change feed.",
                               ["source"], registry=registry)

    def received(self, source: str, n: int) -> None:
        self._received.labels(source).inc(n)

    def coalesced(self, n: int) -> None:
        self._coalesced.inc(n)

    def acted(self, latency: float) -> None:
        self._acted.observe(latency)

    def feed_error(self, source: str) -> None:
        self._errors.labels(source).inc()

    def secret_updated(self, latency: float) -> None:
        self._to_secret.observe(latency)


class ChangeHub:
    """Coalescing, rate-limited dispatch of notices; one thread per pulled feed."""

    def __init__(self, settings: EventSettings, dispatch: Dispatch, *, metrics: EventMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._dispatch = dispatch
        self.metrics = metrics or EventMetrics()
        self._clock = clock
        self._cv = threading.Condition()
        self._pending: dict[StoreId, _Pending] = {}
        self._buckets: dict[StoreId, TokenBucket] = {}
        self._feeds: dict[tuple[StoreId, str], tuple[ChangeFeed, threading.Event, threading.Thread]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- intake ---------------------------------------------------------------------------
    def submit(self, sid: StoreId, notice: ChangeNotice) -> None:
        """Queue a notice's names for ``sid`` (any thread)."""
        if not notice.names:
            return
        self.metrics.received(notice.source, 1)
        now = self._clock()
        with self._cv:
            p = self._pending.get(sid)
            if p is None:
                p = self._pending[sid] = _Pending(first=now)
            else:
                self.metrics.coalesced(1)
            p.names |= notice.names
            p.received.append(now)
            self._cv.notify()

    # -- dispatch -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="change-hub", daemon=True)
            self._thread.start()

    def _bucket(self, sid: StoreId) -> TokenBucket:
        b = self._buckets.get(sid)
        if b is None:
            b = self._buckets[sid] = TokenBucket(self.settings.rate, self.settings.burst)
        return b

    def due(self) -> list[tuple[StoreId, _Pending]]:
        """Take the stores whose window has passed and whose bucket has a token."""
        now = self._clock()
        out: list[tuple[StoreId, _Pending]] = []
        with self._cv:
            for sid, p in list(self._pending.items()):
                if now - p.first < self.settings.coalesce:
                    continue
                if self._bucket(sid).try_acquire() > 0:
                    continue
                out.append((sid, self._pending.pop(sid)))
        return out

    def _next_wait(self) -> float:
        with self._cv:
            if not self._pending:
                return 1.0
            now = self._clock()
            soonest = min(p.first for p in self._pending.values()) + self.settings.coalesce - now
        return max(0.01, min(1.0, soonest if soonest > 0 else 1.0 / max(self.settings.rate, 1.0)))

    def run_once(self) -> int:
        """Dispatch what is due; returns how many stores were read (tests drive this directly)."""
        batch = self.due()
        for sid, p in batch:
            try:
                self._dispatch(sid, frozenset(p.names), p.first)
            except ProviderError as exc:
                # The store is failing: the next polling cycle reports and retries it.
                log.info("change notice for %s/%s/%s: targeted read failed (%s); the next cycle retries",
                         *sid, type(exc).__name__)
            except Exception:
                log.exception("change notice for %s/%s/%s: dispatch failed", *sid)
            now = self._clock()
            for t in p.received:
                self.metrics.acted(now - t)
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cv:
                if not self._pending:
                    self._cv.wait(1.0)
            if self._stop.is_set():
                return
            if not self.run_once():
                self._stop.wait(self._next_wait())

    # -- pulled feeds ---------------------------------------------------------------------
    def ensure_feed(self, sid: StoreId, subscription: str, opener: Callable[[], ChangeFeed], source: str) -> None:
        """Run a poller for (store, subscription) unless one runs; stop the store's other feeds."""
        with self._cv:
            for key in [k for k in self._feeds if k[0] == sid and k[1] != subscription]:
                self._stop_feed(key)
            if (sid, subscription) in self._feeds:
                return
            stop = threading.Event()
            holder: list[ChangeFeed] = []
            t = threading.Thread(target=self._poll, args=(sid, opener, holder, stop, source),
                                 name=f"feed-{sid[2]}", daemon=True)
            self._feeds[(sid, subscription)] = (_LazyFeed(holder), stop, t)
        t.start()

    def drop_feeds(self, sid: StoreId) -> None:
        with self._cv:
            for key in [k for k in self._feeds if k[0] == sid]:
                self._stop_feed(key)

    def feeds(self) -> list[tuple[StoreId, str]]:
        with self._cv:
            return list(self._feeds)

    def _stop_feed(self, key: tuple[StoreId, str]) -> None:
        _, stop, _ = self._feeds.pop(key)
        stop.set()

    def _poll(self, sid: StoreId, opener: Callable[[], ChangeFeed], holder: list[ChangeFeed],
              stop: threading.Event, source: str) -> None:
        delay = self.settings.retry
        feed: ChangeFeed | None = None
        failing = False
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    if feed is None:
                        feed = opener()
                        holder.append(feed)
                    notices = feed.poll(self.settings.poll_wait)
                except ProviderError as exc:
                    self.metrics.feed_error(source)
                    if not failing:
                        log.warning("change feed of %s/%s/%s cannot be read (%s: %s); polling still runs, "
                                    "retrying with backoff", *sid, type(exc).__name__, exc)
                    failing = True
                    if feed is not None:
                        feed.close()
                        feed = None
                    stop.wait(delay)
                    delay = min(self.settings.retry_max, delay * 2)
                    continue
                if failing:
                    log.info("change feed of %s/%s/%s is readable again", *sid)
                failing = False
                delay = self.settings.retry
                if stop.is_set():
                    return
                for n in notices:
                    self.submit(sid, n)
        finally:
            if feed is not None:
                feed.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cv:
            for key in list(self._feeds):
                self._stop_feed(key)
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)


class _LazyFeed:
    """Placeholder for a feed opened by its own thread (closing is that thread's job)."""

    def __init__(self, holder: list[ChangeFeed]) -> None:
        self._holder = holder

    def poll(self, timeout: float) -> list[ChangeNotice]:
        return []

    def close(self) -> None:
        return None
