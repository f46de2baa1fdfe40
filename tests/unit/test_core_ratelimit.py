"""The client-side token bucket keeps callers under a provider's quota; calls are counted."""

from __future__ import annotations

import time

import pytest

from secretsync.core.calls import CallRecorder
from secretsync.core.errors import Throttled
from secretsync.core.ratelimit import TokenBucket
from secretsync.core.registry import open_store
from secretsync.core.settings import ClientSettings, RateLimitSettings
from secretsync.core.values import SecretValue


def test_burst_passes_at_once_then_the_rate_applies() -> None:
    bucket = TokenBucket(rate=20, burst=5)
    start = time.monotonic()
    for _ in range(5):
        assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() > 0.0
    for _ in range(4):
        bucket.acquire()
    assert time.monotonic() - start >= 0.15


def test_acquire_gives_up_at_its_timeout() -> None:
    bucket = TokenBucket(rate=0.5, burst=1)
    assert bucket.acquire()
    assert bucket.acquire(timeout=0.05) is False


def test_invalid_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def test_store_calls_are_rate_limited_and_counted() -> None:
    settings = ClientSettings(rate_limit=RateLimitSettings(rate=10, burst=1))
    client = open_store("memory://ratelimit", settings)
    start = time.monotonic()
    for i in range(4):
        client.put(f"k{i}", SecretValue("v"))
    assert settings.calls.total("memory", "put") == 4
    assert time.monotonic() - start >= 0.25


def test_recorder_counts_outcomes_by_error_reason() -> None:
    rec = CallRecorder()
    seen: list[tuple[str, str, str]] = []
    rec.add_listener(lambda p, o, r: seen.append((p, o, r)))
    with rec.call("aws", "GetSecretValue"):
        pass
    with pytest.raises(Throttled), rec.call("aws", "GetSecretValue"):
        raise Throttled("slow", retry_after=1)
    assert rec.snapshot() == {("aws", "GetSecretValue", "OK"): 1, ("aws", "GetSecretValue", "Throttled"): 1}
    assert seen[-1] == ("aws", "GetSecretValue", "Throttled")
    assert rec.total("aws") == 2


def test_recorder_applies_the_limiter_before_the_call() -> None:
    rec = CallRecorder()
    bucket = TokenBucket(rate=10, burst=1)
    start = time.monotonic()
    for _ in range(3):
        with rec.call("gcp", "AccessSecretVersion", bucket):
            pass
    assert time.monotonic() - start >= 0.15
