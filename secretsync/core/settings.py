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
