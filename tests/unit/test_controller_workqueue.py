"""The controller's work queue: de-duplication, one worker per key, delays, backoff with jitter."""

from __future__ import annotations

import threading

from secretsync.controller.workqueue import Backoff, WorkQueue, jittered


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_added_many_times_is_processed_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(10):
        q.add("a")
    q.add("b")
    assert [q.get(0), q.get(0), q.get(0)] == ["a", "b", None]


def test_a_key_readded_while_processing_runs_again_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(0) == "a"
    q.add("a")
    assert q.get(0) is None  # not handed to a second worker while the first holds it
    q.done("a")
    assert q.get(0) == "a"


def test_add_after_keeps_the_earliest_and_schedule_replaces() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 5)
    q.add_after("a", 20)
    assert q.due_in("a") == 5
    q.schedule("a", 30)
    assert q.due_in("a") == 30
    clock.now = 29
    assert q.get(0) is None
    clock.now = 30
    assert q.get(0) == "a"


def test_stale_heap_entries_do_not_fire() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("a", 1)
    q.schedule("a", 100)
    clock.now = 2
    assert q.get(0) is None
    assert q.waiting() == 1


def test_backoff_grows_exponentially_is_capped_and_forgotten() -> None:
    b = Backoff(base=1, cap=8, jitter=0)
    assert [b.next_delay("k") for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    b.forget("k")
    assert b.next_delay("k") == 1
    assert b.next_delay("other") == 1


def test_backoff_honours_a_server_retry_after() -> None:
    assert Backoff(base=1, jitter=0).next_delay("k", at_least=30) == 30


def test_jitter_spreads_within_bounds() -> None:
    values = {round(jittered(100, 0.1), 3) for _ in range(200)}
    assert all(90 <= v <= 110 for v in values)
    assert len(values) > 50


def test_get_blocks_until_a_delayed_key_is_due() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", 0.05)
    assert q.get(1.0) == "a"


def test_shutdown_wakes_waiting_workers() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    q.shutdown()
    t.join(2)
    assert got == [None]


def test_urgent_work_jumps_a_backlog_of_refreshes_once_and_keeps_its_place_while_processing() -> None:
    q: WorkQueue[str] = WorkQueue()
    for k in ("r1", "r2", "changed", "r3"):
        q.add(k)
    q.add("changed", urgent=True)  # already queued: moved ahead, still run once
    q.add("new", urgent=True)
    assert len(q) == 5
    assert [q.get(0), q.get(0)] == ["changed", "new"]
    assert q.get(0) == "r1"
    q.add("r1", urgent=True)  # changed again while a worker holds it: runs next after done
    q.done("r1")
    assert [q.get(0), q.get(0), q.get(0), q.get(0)] == ["r1", "r2", "r3", None]
    assert len(q) == 0
