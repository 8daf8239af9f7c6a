"""Periods bound from a slot: the same slot gives the same period, today or in a year."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.scheduling.periods import CalendarPeriod, calendar_period, rolling_period

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("kind", "slot", "start", "end"), [
    (CalendarPeriod.PREVIOUS_DAY, "2026-03-30T06:00+02:00", "2026-03-29T00:00+01:00",
     "2026-03-30T00:00+02:00"),
    (CalendarPeriod.PREVIOUS_WEEK, "2026-03-04T07:00+01:00", "2026-02-23T00:00+01:00",
     "2026-03-02T00:00+01:00"),
    (CalendarPeriod.PREVIOUS_MONTH, "2026-03-01T06:00+01:00", "2026-02-01T00:00+01:00",
     "2026-03-01T00:00+01:00"),
    (CalendarPeriod.PREVIOUS_MONTH, "2026-01-01T06:00+01:00", "2025-12-01T00:00+01:00",
     "2026-01-01T00:00+01:00"),
    (CalendarPeriod.PREVIOUS_QUARTER, "2026-05-02T06:00+02:00", "2026-01-01T00:00+01:00",
     "2026-04-01T00:00+02:00"),
    (CalendarPeriod.PREVIOUS_YEAR, "2026-01-02T06:00+01:00", "2025-01-01T00:00+01:00",
     "2026-01-01T00:00+01:00"),
])
def test_calendar_periods(kind: CalendarPeriod, slot: str, start: str, end: str) -> None:
    period = calendar_period(kind, datetime.fromisoformat(slot), BERLIN)
    assert period.start == datetime.fromisoformat(start)
    assert period.end == datetime.fromisoformat(end)


def test_period_depends_on_the_report_timezone() -> None:
    slot = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # already March 1st in Berlin
    berlin = calendar_period(CalendarPeriod.PREVIOUS_MONTH, slot, BERLIN)
    new_york = calendar_period(CalendarPeriod.PREVIOUS_MONTH, slot, ZoneInfo("America/New_York"))
    assert berlin.start.month == 2 and new_york.start.month == 1


def test_rolling_period_ends_at_the_slot() -> None:
    slot = datetime(2026, 3, 29, 12, tzinfo=UTC)
    period = rolling_period(timedelta(days=7), slot, BERLIN)
    assert period.end == slot and period.end - period.start == timedelta(days=7)
