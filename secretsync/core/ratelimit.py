"""A client-side token bucket, so no caller of a store exceeds the provider's quota.

Why client-side: providers answer over-quota calls with throttling errors that cost a
round trip and, on AWS, count against the account. Waiting locally is cheaper and keeps
the controller's 10k ExternalSecrets from tripping quotas shared with other tools.
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """Thread-safe token bucket: ``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def try_acquire(self, tokens: float = 1.0) -> float:
        """Take tokens if available and return 0, else return the seconds to wait."""
        with self._lock:
            now = time.monotonic()
            self._refill(now)
            if self._tokens >= tokens:
                self._tokens -= tokens
                return 0.0
            return (tokens - self._tokens) / self.rate

    def acquire(self, tokens: float = 1.0, timeout: float | None = None) -> bool:
        """Block until tokens are available (or ``timeout`` passes; then return False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = self.try_acquire(tokens)
            if wait == 0.0:
                return True
            if deadline is not None and time.monotonic() + wait > deadline:
                return False
            time.sleep(wait)
