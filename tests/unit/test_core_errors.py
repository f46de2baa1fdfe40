"""The error tree: retryable vs permanent, and only NotFound may drive a deletion."""

from __future__ import annotations

import pytest

from secretsync.core import errors as e


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (e.NotFound, False),
        (e.PermissionDenied, False),
        (e.AuthenticationFailed, False),
        (e.InvalidConfig, False),
        (e.Conflict, False),
        (e.Throttled, True),
        (e.Unavailable, True),
    ],
)
def test_each_error_declares_whether_it_is_retryable(cls: type[e.ProviderError], retryable: bool) -> None:
    exc = cls("boom", provider="aws", operation="GetSecretValue", key="app/db")
    assert exc.retryable is retryable
    assert isinstance(exc, e.TemporaryError if retryable else e.PermanentError)
    assert isinstance(exc, e.SecretSyncError)


def test_only_not_found_is_definitely_absent() -> None:
    assert e.is_definitely_absent(e.NotFound())
    for cls in (e.PermissionDenied, e.AuthenticationFailed, e.Throttled, e.Unavailable, e.InvalidConfig, e.Conflict):
        assert not e.is_definitely_absent(cls())
    assert not e.is_definitely_absent(TimeoutError())


def test_message_names_provider_operation_and_key() -> None:
    exc = e.PermissionDenied("access denied", provider="aws", operation="GetSecretValue", key="app/db")
    assert str(exc) == "aws/GetSecretValue: access denied (key 'app/db')"


def test_throttled_carries_retry_after_as_delay() -> None:
    exc = e.Throttled("slow down", retry_after=2.5, provider="azure")
    assert exc.retry_after == 2.5 and exc.delay == 2.5


def test_exit_codes_are_distinct_per_family() -> None:
    assert e.NotFound.exit_code == 3
    assert e.PermissionDenied.exit_code == e.AuthenticationFailed.exit_code == 4
    assert e.Unavailable.exit_code == e.Throttled.exit_code == 5
    assert e.InvalidConfig.exit_code == 6
    assert e.Conflict.exit_code == 7


def test_retry_after_parses_seconds_and_http_dates() -> None:
    import email.utils
    import time

    assert e.parse_retry_after("2.5") == 2.5
    assert e.parse_retry_after(None) is None
    assert e.parse_retry_after("soon") is None
    assert e.parse_retry_after("-3") == 0.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    delay = e.parse_retry_after(later)
    assert delay is not None and 25 <= delay <= 31
