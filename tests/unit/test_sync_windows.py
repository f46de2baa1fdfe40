"""ExternalSecret spec.syncWindows (ESO's): when a periodic refresh may change a Secret.

The controller's behaviour (refreshes held back, syncs and repairs not) is driven from the
outside in tests/integration/test_controller_correctness.py; here is the calendar arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from secretsync.api.cron import check_window_schedule, sync_blocked_until
from secretsync.api.models import InvalidSpec, parse_external_secret

WED_1030 = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)
OFFICE = [("0 9 * * 1-5", 8 * 3600.0)]  # weekdays 09:00-17:00 UTC


def test_an_allow_window_permits_a_refresh_only_while_it_is_open() -> None:
    assert sync_blocked_until("allow", OFFICE, WED_1030) is None
    assert sync_blocked_until("allow", OFFICE, WED_1030.replace(hour=17)) == WED_1030.replace(
        day=3, hour=9, minute=0)  # the window is [09:00, 17:00): closed at 17:00 sharp
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    assert sync_blocked_until("allow", OFFICE, friday_evening) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_deny_window_blocks_a_refresh_until_it_closes() -> None:
    assert sync_blocked_until("deny", OFFICE, WED_1030) == WED_1030.replace(hour=17, minute=0)
    assert sync_blocked_until("deny", OFFICE, WED_1030.replace(hour=8, minute=59)) is None


def test_overlapping_deny_windows_chain_into_one() -> None:
    windows = [("0 9 * * *", 2 * 3600.0), ("0 10 * * *", 3 * 3600.0)]  # 09-11 and 10-13
    assert sync_blocked_until("deny", windows, WED_1030.replace(hour=9, minute=30)) == WED_1030.replace(
        hour=13, minute=0)


def test_a_deny_window_that_never_closes_is_looked_at_again_later_at_a_bounded_cost() -> None:
    import time

    t0 = time.perf_counter()
    chained = sync_blocked_until("deny", [("* * * * *", 120.0)] * 16, WED_1030)  # open every minute
    year = sync_blocked_until("deny", [("* * * * *", 365 * 86400.0)] * 16, WED_1030)
    assert chained is not None and chained >= WED_1030 + timedelta(minutes=2)
    assert year is not None and year >= WED_1030 + timedelta(days=365)
    assert time.perf_counter() - t0 < 2.0  # a few dozen cron steps, not a year of minutes


def test_the_wait_before_looking_again_is_between_a_second_and_an_hour() -> None:
    from secretsync.api.models import SyncWindow, SyncWindows

    deny_year = SyncWindows("deny", (SyncWindow("* * * * *", 365 * 86400.0),))
    assert deny_year.wait_seconds(WED_1030) == 3600.0
    office = SyncWindows("deny", (SyncWindow("0 9 * * 1-5", 8 * 3600.0),))
    assert office.wait_seconds(WED_1030.replace(hour=16, minute=59, second=59, microsecond=500000)) == 1.0
    assert office.wait_seconds(WED_1030.replace(hour=18)) is None


@pytest.mark.parametrize(("shorthand", "opens"), [
    ("@daily", datetime(2026, 12, 3, 0, 0, tzinfo=UTC)),
    ("@midnight", datetime(2026, 12, 3, 0, 0, tzinfo=UTC)),
    ("@hourly", datetime(2026, 12, 2, 11, 0, tzinfo=UTC)),
    ("@weekly", datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),
    ("@monthly", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ("@yearly", datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
])
def test_named_schedules_open_when_their_cron_equivalents_do(shorthand: str, opens: datetime) -> None:
    assert sync_blocked_until("allow", [(shorthand, 60.0)], WED_1030) == opens


def test_every_counts_from_the_epoch_so_every_replica_agrees() -> None:
    windows = [("@every 1h", 600.0)]  # the first ten minutes of every hour
    assert sync_blocked_until("allow", windows, WED_1030.replace(minute=5)) is None
    assert sync_blocked_until("allow", windows, WED_1030) == WED_1030.replace(hour=11, minute=0)
    assert sync_blocked_until("deny", windows, WED_1030.replace(minute=5)) == WED_1030.replace(minute=10)


@pytest.mark.parametrize(("expr", "fragment"), [
    ("0 9 * * 1-5", None), ("@daily", None), ("@every 90m", None),
    ("@every 0s", "@every needs"), ("@every soon", "@every needs"), ("@fortnightly", "unknown shorthand"),
    ("61 * * * *", "not a valid cron"), ("* * * *", "five fields"), ("0 0 * * * 2027", "five fields"),
    ("0 0 31 2 *", "never fires"), ("0 0 29 2 *", None),
    ("@every 8784h", None), ("@every 100000000h", "at most 8784h"),
])
def test_schedules_are_checked(expr: str, fragment: str | None) -> None:
    err = check_window_schedule(expr)
    assert (err is None) if fragment is None else (err is not None and fragment in err), err


def _es(windows: object) -> dict[str, object]:
    return {"apiVersion": "secretsync.io/v1alpha1", "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "team"},
            "spec": {"secretStoreRef": {"name": "s"}, "data": [{"secretKey": "k", "remoteRef": {"key": "x"}}],
                     "syncWindows": windows}}


def test_a_sync_window_parses_with_its_duration_in_seconds() -> None:
    es = parse_external_secret(_es({"kind": "deny", "windows": [{"schedule": "@daily", "duration": "1h30m"}]}))
    assert es.spec.sync_windows is not None
    assert es.spec.sync_windows.kind == "deny"
    assert es.spec.sync_windows.windows[0].duration == 5400.0


def test_every_bad_field_of_a_sync_window_is_named() -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_external_secret(_es({"kind": "sometimes", "windows": [
            {"schedule": "99 * * * *", "duration": "0"}, {"duration": "1h"}]}))
    text = str(err.value)
    for field in ("spec.syncWindows.kind", "spec.syncWindows.windows[0].schedule",
                  "spec.syncWindows.windows[0].duration", "spec.syncWindows.windows[1].schedule"):
        assert field in text, text
    with pytest.raises(InvalidSpec, match=r"spec\.syncWindows\.windows: must list at least one window"):
        parse_external_secret(_es({"kind": "allow"}))
    with pytest.raises(InvalidSpec, match=r"spec\.syncWindows\.windows\[0\]\.duration: must be at most 8784h"):
        parse_external_secret(_es({"kind": "deny", "windows": [{"schedule": "@daily", "duration": "100000000h"}]}))
    with pytest.raises(InvalidSpec, match=r"spec\.syncWindows\.windows: at most 16 windows \(got 17\)"):
        parse_external_secret(_es({"kind": "allow", "windows": [{"schedule": "@daily", "duration": "1h"}] * 17}))
