"""Cron schedules for ``SecretRotation.spec.schedule`` and ExternalSecret sync windows (UTC), via croniter.

Why five fields only: that is what Kubernetes CronJobs and ESO accept; croniter's optional
seconds and year fields would make a schedule mean something else elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]


def check_cron(expr: str) -> str | None:
    """None when ``expr`` is a valid five-field schedule, else a short reason (no value inside)."""
    if len(expr.split()) != 5:
        return "must have five fields: minute hour day-of-month month day-of-week (UTC)"
    if not croniter.is_valid(expr):
        return f"not a valid cron expression: {expr!r}"
    try:
        next_after(expr, datetime.now(UTC))
    except CroniterBadDateError:
        return f"never fires: {expr!r}"
    return None


def next_after(expr: str, when: datetime) -> datetime:
    """The first time strictly after ``when`` that the schedule fires (``when`` is aware, UTC)."""
    nxt: datetime = croniter(expr, when).get_next(datetime)
    return nxt


# -- sync windows (ExternalSecret spec.syncWindows, as ESO's) ---------------------------------------
#: ESO's named schedules, as the five-field schedules they stand for.
SHORTHANDS: Final = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
#: How many chained windows a "when may it sync" answer follows before it settles for "look
#: again then" (deny windows whose durations overlap the next firing chain into one): bounds
#: what one tenant's windows cost a reconcile.
_MAX_CHAIN = 8
#: The longest window, and the longest ``@every``: a year. Longer ones mean nothing a yearly
#: schedule cannot say, and the calendar arithmetic stays far from datetime's limits.
MAX_WINDOW_SECONDS: Final = 366 * 86400.0


def _every(expr: str) -> float | None:
    """The interval of ``@every <duration>`` in seconds; None for any other schedule."""
    if not expr.startswith("@every "):
        return None
    from .models import parse_duration

    return parse_duration(expr[len("@every "):].strip())


def check_window_schedule(expr: str) -> str | None:
    """None when ``expr`` is a schedule a sync window accepts (five fields, a named shorthand
    such as @daily, or ``@every <duration>``), else a short reason."""
    expr = expr.strip()
    if expr.startswith("@every"):
        try:
            every = _every(expr)
        except ValueError:
            every = None
        if every is None or every < 1:
            return "@every needs a duration of at least 1s (@every 1h)"
        return None if every <= MAX_WINDOW_SECONDS else "@every is at most 8784h (a year)"
    if expr.startswith("@"):
        return None if expr in SHORTHANDS else f"unknown shorthand {expr!r} (use {', '.join(sorted(SHORTHANDS))})"
    return check_cron(expr)


def _window(expr: str, duration: float, at: datetime) -> tuple[bool, datetime, datetime]:
    """(is the window open at ``at``, when the window open at ``at`` closes (or ``at``), the next start
    after ``at``). ``@every D`` fires at whole multiples of D since the Unix epoch, so every replica
    and restart agrees on when its windows are."""
    expr = expr.strip()
    every = _every(expr)
    if every is not None:
        ts = at.timestamp()
        start = ts - (ts % every)
        is_open = ts - start < duration
        tz = at.tzinfo
        return (is_open, datetime.fromtimestamp(start + duration, tz) if is_open else at,
                datetime.fromtimestamp(start + every, tz))
    cron = SHORTHANDS.get(expr, expr)
    first = next_after(cron, at - timedelta(seconds=duration))
    is_open = first <= at
    if not is_open:
        return False, at, first
    # The latest start not after ``at`` (five-field schedules fire on whole minutes): the open
    # window that closes last.
    latest: datetime = croniter(cron, at + timedelta(seconds=1)).get_prev(datetime)
    return True, max(first, latest) + timedelta(seconds=duration), next_after(cron, at)


def sync_blocked_until(kind: str, windows: Sequence[tuple[str, float]], now: datetime) -> datetime | None:
    """None when a periodic sync may run at ``now``; else the earliest time it may.

    ``allow``: only while at least one window is open. ``deny``: never while any window is open
    (windows that chain into one another are followed, up to a bound, then looked at again)."""
    if not windows:
        return None
    states = [_window(expr, duration, now) for expr, duration in windows]
    if kind == "allow":
        if any(is_open for is_open, _, _ in states):
            return None
        return min(nxt for _, _, nxt in states)
    if not any(is_open for is_open, _, _ in states):
        return None
    at = max(end for is_open, end, _ in states if is_open)
    for _ in range(_MAX_CHAIN):
        open_ends = [end for is_open, end, _ in (_window(e, d, at) for e, d in windows) if is_open]
        if not open_ends:
            break
        at = max(open_ends)
    return at
