"""Count every provider API call by provider, operation and outcome.

Why in the core: the controller's metrics, the benchmarks ("API calls per refresh cycle")
and the rate limiter all need the same count of *backend* calls (one ListSecrets page is
one call), so adapters wrap each SDK call in :meth:`CallRecorder.call`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .errors import ProviderError
from .ratelimit import TokenBucket

Listener = Callable[[str, str, str], None]


class CallRecorder:
    """Thread-safe counter of (provider, operation, outcome); listeners feed metrics."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def record(self, provider: str, operation: str, outcome: str) -> None:
        with self._lock:
            self._counts[(provider, operation, outcome)] += 1
        for listener in self._listeners:
            listener(provider, operation, outcome)

    @contextmanager
    def call(self, provider: str, operation: str, limiter: TokenBucket | None = None) -> Iterator[None]:
        """Wrap one backend call: wait for the rate limiter, then count the outcome.

        The outcome is ``OK`` or the mapped error's reason, so adapters map SDK errors
        to the contract *inside* the block.
        """
        if limiter is not None:
            limiter.acquire()
        try:
            yield
        except ProviderError as exc:
            self.record(provider, operation, exc.reason)
            raise
        except BaseException:
            self.record(provider, operation, "Error")
            raise
        else:
            self.record(provider, operation, "OK")

    def snapshot(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            return dict(self._counts)

    def total(self, provider: str | None = None, operation: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (p, op, _), n in self._counts.items()
                if (provider is None or p == provider) and (operation is None or op == operation)
            )

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
