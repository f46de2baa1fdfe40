"""A deadline for one whole provider call over urllib3 (botocore, requests/hvac, azure-core).

Why: every SDK here sets a *per socket read* timeout. A server (or a proxy) that accepts
the connection and then drips its answer a byte at a time never trips it, so a call could
take minutes or forever, and one stalled store would wedge a controller worker. gRPC (GCP)
has a real per-call deadline; these HTTP stacks have none.

How: an adapter runs each call inside :func:`call_deadline`. The connection pools of its
HTTP client are swapped for subclasses (:func:`install_on_pool_manager`) that register every
connection the call checks out with the call's scope. When the deadline passes, a single
watchdog thread shuts those sockets down: the blocked read returns at once, the SDK raises
its usual connection error, and the adapter maps it to Unavailable ("no complete answer
within N s"). Connections asked for after the deadline (the SDK's own retries) fail at once
with :class:`DeadlineExceeded`, so retries cannot stretch the call either.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from secretsync.core.errors import TemporaryError


class DeadlineExceeded(TemporaryError, TimeoutError):
    """Raised into the HTTP stack when a call asks for a connection after its deadline."""


class CallScope:
    """One call's deadline and the connections it has used."""

    __slots__ = ("_conns", "_done", "_lock", "deadline", "expired", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._conns: list[Any] = []
        self._lock = threading.Lock()

    def register(self, conn: Any) -> None:
        with self._lock:
            if self.expired or time.monotonic() >= self.deadline:
                self.expired = True
                raise DeadlineExceeded(f"call deadline of {self.seconds:g}s exceeded")
            self._conns.append(conn)

    @property
    def done(self) -> bool:
        return self._done

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            conns = list(self._conns)
        for conn in conns:
            sock = getattr(conn, "sock", None)
            if sock is None:
                continue
            # The plain-socket shutdown (not SSLSocket's, which also drops its SSL object
            # under a reader in another thread): the blocked read sees EOF at once.
            with contextlib.suppress(OSError, TypeError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            self._conns.clear()
        _WATCHDOG.finished()


class _Watchdog:
    """One daemon thread that expires scopes whose deadline has passed."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, CallScope]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        #: Finished scopes still in the heap (they leave it at their deadline otherwise).
        self._finished = 0

    def finished(self) -> None:
        """A scope ended before its deadline: drop ended scopes once they are most of the heap.

        Why: a finished call's scope would stay queued until its deadline passed, so a cold
        start reading thousands of keys within one deadline (30 s) held thousands of dead
        scopes (their lock, list and tuple) at the controller's memory peak.
        """
        with self._cond:
            self._finished += 1
            if self._finished > 64 and self._finished * 2 > len(self._heap):
                self._heap = [e for e in self._heap if not e[2].done]
                heapq.heapify(self._heap)
                self._finished = 0

    def add(self, scope: CallScope) -> None:
        with self._cond:
            heapq.heappush(self._heap, (scope.deadline, next(self._seq), scope))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="secretsync-call-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, scope = self._heap[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                if scope.done:
                    self._finished = max(0, self._finished - 1)
                    continue
            scope.expire()


_WATCHDOG = _Watchdog()
_local = threading.local()


@contextmanager
def call_deadline(seconds: float) -> Iterator[CallScope]:
    """Bound everything the HTTP stack does in this thread inside the block to ``seconds``.

    Nested blocks (a token refresh inside a call) share the outer deadline.
    """
    outer: CallScope | None = getattr(_local, "scope", None)
    if outer is not None:
        yield outer
        return
    scope = CallScope(seconds)
    _local.scope = scope
    _WATCHDOG.add(scope)
    try:
        yield scope
    finally:
        scope.finish()
        _local.scope = None


class _DeadlinePoolMixin:
    """Registers every connection a call checks out with the calling thread's scope."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        scope: CallScope | None = getattr(_local, "scope", None)
        if scope is not None:
            try:
                scope.register(conn)
            except DeadlineExceeded:
                self._put_conn(conn)  # type: ignore[attr-defined]
                raise
        return conn


@functools.cache
def with_deadline(pool_cls: type) -> type:
    """A subclass of a urllib3 connection pool class whose connections obey the call deadline."""
    if issubclass(pool_cls, _DeadlinePoolMixin):
        return pool_cls
    return type(f"Deadline{pool_cls.__name__}", (_DeadlinePoolMixin, pool_cls), {})


def install_on_pool_manager(manager: Any) -> None:
    """Make a urllib3 PoolManager create deadline-aware pools (before it has made any).

    Changes the mapping in place: botocore shares one dict between its pool manager and
    its proxy managers.
    """
    classes = getattr(manager, "pool_classes_by_scheme", None)
    if isinstance(classes, dict):
        for scheme, cls in list(classes.items()):
            classes[scheme] = with_deadline(cls)


def deadline_http_adapter(**kwargs: Any) -> Any:
    """A ``requests`` HTTPAdapter whose pools obey :func:`call_deadline` (requests imported lazily)."""
    return _adapter_class()(**kwargs)


@functools.cache
def _adapter_class() -> type:
    import requests.adapters

    class DeadlineHTTPAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            install_on_pool_manager(self.poolmanager)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            install_on_pool_manager(manager)
            return manager

    return DeadlineHTTPAdapter
