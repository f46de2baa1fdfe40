"""Settings as small grouped dataclasses, passed explicitly (as kopf does), never globals.

Why grouped: a store client needs timeouts, a rate limit and somewhere to count calls;
the controller adds its own groups on top. Each group has safe defaults so that
``ClientSettings()`` works in a test or a one-shot CLI call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .calls import CallRecorder
from .ratelimit import TokenBucket


@dataclass(frozen=True, slots=True)
class TimeoutSettings:
    """Bounded timeouts so a dead endpoint fails fast as Unavailable instead of hanging."""

    connect: float = 5.0
    read: float = 15.0
    #: Retries an SDK may do on its own before we see the error (kept small: we retry above).
    sdk_retries: int = 2
    #: Ceiling on one provider call from start to last byte, SDK retries included (None:
    #: ``connect + 2 * read``). Read timeouts are per socket read, so a server that drips
    #: its answer a byte at a time (slow loris) never trips them; this does.
    total: float | None = None

    @property
    def call_deadline(self) -> float:
        """Seconds one call may take in all (see ``total``)."""
        return self.total if self.total is not None else self.connect + 2 * self.read


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Client-side token bucket per store. ``rate=None`` turns it off."""

    rate: float | None = None
    burst: int = 20

    def bucket(self) -> TokenBucket | None:
        return TokenBucket(self.rate, self.burst) if self.rate else None


@dataclass(frozen=True, slots=True)
class ClientSettings:
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    #: Where every provider API call is counted (by provider, operation, outcome).
    calls: CallRecorder = field(default_factory=CallRecorder)
