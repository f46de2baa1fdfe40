"""The event recorder under a burst: what an operator looks for is never the one dropped."""

from __future__ import annotations

import time
from typing import Any

from secretsync.controller.events import EventRecorder, ObjectRef


class _Api:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, res: object, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        self.created.append(body)
        return body


def _ref(i: int) -> ObjectRef:
    return ObjectRef("external-secrets.io/v1", "ExternalSecret", "team-a", f"es-{i}", None)


def test_a_burst_of_normal_events_is_cut_at_the_backlog_and_counted() -> None:
    """A cold start of 10k objects queues 10k "Created" events: held, they cost ~3 MB of peak."""
    drops: list[int] = []
    rec = EventRecorder(_Api(), normal_backlog=5, on_drop=lambda: drops.append(1))  # type: ignore[arg-type]
    for i in range(20):
        rec.emit(_ref(i), "Normal", "Created", f"Secret team-a/es-{i} created with 1 key(s)")
    assert rec._queue.qsize() == 5
    assert rec.dropped == len(drops) == 15


def test_warnings_still_queue_past_the_normal_backlog() -> None:
    rec = EventRecorder(_Api(), normal_backlog=2)  # type: ignore[arg-type]
    for i in range(5):
        rec.emit(_ref(i), "Normal", "Created", "created")
    for i in range(5):
        rec.emit(_ref(i), "Warning", "ProviderError", "store unreachable")
    assert rec._queue.qsize() == 7 and rec.dropped == 3


def test_a_dropped_normal_event_is_sent_when_it_happens_again_after_the_burst() -> None:
    """A drop is not remembered as "sent": the repeat filter would otherwise hide it for 10 minutes."""
    api = _Api()
    rec = EventRecorder(api, normal_backlog=1)  # type: ignore[arg-type]
    rec.emit(_ref(0), "Normal", "Created", "created")
    rec.emit(_ref(1), "Normal", "Updated", "updated")  # dropped: one is waiting
    rec._queue.get_nowait()
    rec.emit(_ref(1), "Normal", "Updated", "updated")
    assert rec._queue.qsize() == 1 and rec.dropped == 1


def test_what_can_no_longer_suppress_an_event_is_forgotten() -> None:
    """A long-running controller must not keep an entry for every object it ever reported on."""
    rec = EventRecorder(_Api(), repeat_after=600.0)  # type: ignore[arg-type]
    for i in range(100):
        rec.emit(_ref(i), "Warning", "ProviderError", f"outage {i}")
    assert len(rec._last) == 100
    rec._sweep(time.monotonic() + 601)
    assert rec._last == {}


def test_a_repeat_within_the_window_is_suppressed_and_after_it_is_sent_again() -> None:
    rec = EventRecorder(_Api(), repeat_after=0.2)  # type: ignore[arg-type]
    rec.emit(_ref(0), "Warning", "ProviderError", "down")
    rec.emit(_ref(0), "Warning", "ProviderError", "down")
    assert rec._queue.qsize() == 1
    time.sleep(0.25)
    rec.emit(_ref(0), "Warning", "ProviderError", "down")
    assert rec._queue.qsize() == 2 and len(rec._last[("ExternalSecret", "team-a", "es-0")]) == 1
