"""Cron schedules for ``SecretRotation.spec.schedule`` (five fields, UTC), via croniter.

Why five fields only: that is what Kubernetes CronJobs and ESO accept; croniter's optional
seconds and year fields would make a schedule mean something else elsewhere.
"""

from __future__ import annotations

from datetime import datetime

from croniter import croniter  # type: ignore[import-untyped]


def check_cron(expr: str) -> str | None:
    """None when ``expr`` is a valid five-field schedule, else a short reason (no value inside)."""
    if len(expr.split()) != 5:
        return "must have five fields: minute hour day-of-month month day-of-week (UTC)"
    if not croniter.is_valid(expr):
        return f"not a valid cron expression: {expr!r}"
    return None


def next_after(expr: str, when: datetime) -> datetime:
    """The first time strictly after ``when`` that the schedule fires (``when`` is aware, UTC)."""
    nxt: datetime = croniter(expr, when).get_next(datetime)
    return nxt
