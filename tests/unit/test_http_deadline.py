"""The whole-call deadline that bounds urllib3-based SDK calls (slow-loris answers, retries)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

pytest.importorskip("urllib3")

from secretsync_providers import http_deadline
from secretsync_providers.http_deadline import CallScope, DeadlineExceeded, call_deadline, with_deadline
from urllib3 import HTTPConnectionPool


def test_a_connection_asked_for_after_the_deadline_is_refused() -> None:
    scope = CallScope(0.0)
    with pytest.raises(DeadlineExceeded):
        scope.register(object())
    assert scope.expired


def test_expiry_shuts_down_the_sockets_the_call_uses() -> None:
    left, right = socket.socketpair()

    class Conn:
        sock = left

    scope = CallScope(60)
    scope.register(Conn())
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(left.recv(10)))
    reader.start()
    time.sleep(0.05)
    scope.expire()
    reader.join(2)
    assert not reader.is_alive() and got == [b""]  # the blocked read returned at once
    left.close()
    right.close()


def test_the_watchdog_expires_a_scope_at_its_deadline_and_a_finished_scope_never() -> None:
    with call_deadline(0.1) as scope:
        time.sleep(0.3)
        assert scope.expired
    with call_deadline(0.1) as done:
        pass
    time.sleep(0.2)
    assert not done.expired


def test_nested_deadlines_share_the_outer_one() -> None:
    with call_deadline(5) as outer, call_deadline(0.01) as inner:
        assert inner is outer
    assert getattr(http_deadline._local, "scope", None) is None


def test_deadline_pools_are_cached_subclasses_that_keep_the_sdk_pool_behaviour() -> None:
    cls = with_deadline(HTTPConnectionPool)
    assert issubclass(cls, HTTPConnectionPool)
    assert with_deadline(HTTPConnectionPool) is cls and with_deadline(cls) is cls


def test_finished_calls_do_not_stay_queued_until_their_deadline() -> None:
    """Thousands of quick calls within one deadline hold no dead scopes (memory at a cold start)."""
    for _ in range(2000):
        with call_deadline(300):
            pass
    with http_deadline._WATCHDOG._cond:
        queued = len(http_deadline._WATCHDOG._heap)
    assert queued < 200
    with call_deadline(0.1) as live:  # a call still running is still expired at its deadline
        time.sleep(0.3)
        assert live.expired
