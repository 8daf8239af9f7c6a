"""The period a report covers, computed from its slot in the report's own timezone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class CalendarPeriod(StrEnum):
    """A whole calendar unit before the one holding the slot (weeks start on Monday, ISO 8601)."""

    PREVIOUS_DAY = "previous_day"
    PREVIOUS_WEEK = "previous_week"
    PREVIOUS_MONTH = "previous_month"
    PREVIOUS_QUARTER = "previous_quarter"
    PREVIOUS_YEAR = "previous_year"


# Shortest and longest real length of each unit (DST days are 23 and 25 hours).
CALENDAR_LENGTHS: dict[CalendarPeriod, tuple[timedelta, timedelta]] = {
    CalendarPeriod.PREVIOUS_DAY: (timedelta(hours=23), timedelta(hours=25)),
    CalendarPeriod.PREVIOUS_WEEK: (timedelta(days=7, hours=-1), timedelta(days=7, hours=1)),
    CalendarPeriod.PREVIOUS_MONTH: (timedelta(days=28, hours=-1), timedelta(days=31, hours=1)),
    CalendarPeriod.PREVIOUS_QUARTER: (timedelta(days=90, hours=-1), timedelta(days=92, hours=1)),
    CalendarPeriod.PREVIOUS_YEAR: (timedelta(days=365, hours=-1), timedelta(days=366, hours=1)),
}

PARAMETERS = ("period_start", "period_end", "slot_time", "timezone")


@dataclass(frozen=True)
class Period:
    """[start, end) in the report's timezone."""

    start: datetime
    end: datetime


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time()).replace(tzinfo=tz)


def _month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 1)


def calendar_period(kind: CalendarPeriod, slot: datetime, tz: ZoneInfo) -> Period:
    """The whole unit before the one that holds `slot` (in `tz`)."""
    today = slot.astimezone(tz).date()
    if kind is CalendarPeriod.PREVIOUS_DAY:
        start, end = today - timedelta(days=1), today
    elif kind is CalendarPeriod.PREVIOUS_WEEK:
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    elif kind is CalendarPeriod.PREVIOUS_MONTH:
        end = today.replace(day=1)
        start = _month_start(end.year, end.month - 1)
    elif kind is CalendarPeriod.PREVIOUS_QUARTER:
        end = _month_start(today.year, (today.month - 1) // 3 * 3 + 1)
        start = _month_start(end.year, end.month - 3)
    else:
        end = date(today.year, 1, 1)
        start = date(today.year - 1, 1, 1)
    return Period(_midnight(start, tz), _midnight(end, tz))


def rolling_period(length: timedelta, slot: datetime, tz: ZoneInfo) -> Period:
    """The `length` of time ending at the slot."""
    end = slot.astimezone(tz)
    return Period((end - length).astimezone(tz), end)
