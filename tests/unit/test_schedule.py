"""Schedules in IANA zones with Vixie cron's DST semantics (croniter alone gets these wrong)."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.scheduling.schedule import Schedule, check_cron


def _local(schedule: Schedule, start: str, end: str) -> list[str]:
    slots = schedule.between(datetime.fromisoformat(start), datetime.fromisoformat(end))
    return [s.astimezone(schedule.tz).isoformat() for s in slots]


# (zone, spring-forward day, fall-back day, a fixed time in the skipped/repeated hour,
#  the local time right after the jump)
ZONES = [
    ("Europe/Berlin", "2026-03-29", "2026-10-25", "02:30", "03:00:00+02:00"),
    ("America/New_York", "2026-03-08", "2026-11-01", "02:30", "03:00:00-04:00"),
    ("Australia/Sydney", "2026-10-04", "2026-04-05", "02:30", "03:00:00+11:00"),
]


@pytest.mark.parametrize(("zone", "spring", "_fall", "at", "after_jump"), ZONES)
def test_fixed_job_in_skipped_hour_runs_once_right_after_the_jump(
        zone: str, spring: str, _fall: str, at: str, after_jump: str) -> None:
    hour, minute = at.split(":")
    schedule = Schedule(f"{int(minute)} {int(hour)} * * *", zone)
    day = datetime.fromisoformat(spring).replace(tzinfo=schedule.tz)
    runs = _local(schedule, (day - timedelta(hours=1)).isoformat(),
                  (day + timedelta(hours=23)).isoformat())
    assert runs == [f"{spring}T{after_jump}"]


@pytest.mark.parametrize(("zone", "_spring", "fall", "at", "_after"), ZONES)
def test_fixed_job_in_repeated_hour_runs_once(zone: str, _spring: str, fall: str, at: str,
                                              _after: str) -> None:
    # In the southern hemisphere the repeated hour is 02:00-03:00 too; Berlin/NY repeat
    # 02:00 and 01:00 respectively.
    hour = {"Europe/Berlin": 2, "America/New_York": 1, "Australia/Sydney": 2}[zone]
    schedule = Schedule(f"30 {hour} * * *", zone)
    day = datetime.fromisoformat(fall).replace(tzinfo=schedule.tz)
    runs = _local(schedule, (day - timedelta(hours=1)).isoformat(),
                  (day + timedelta(hours=23)).isoformat())
    assert len(runs) == 1
    assert runs[0].startswith(f"{fall}T{hour:02d}:30:00")
    # The first occurrence: still on summer time.
    first = datetime.fromisoformat(runs[0])
    assert first.utcoffset() == max(
        datetime.fromisoformat(f"{fall}T00:00").replace(tzinfo=schedule.tz).utcoffset(),
        datetime.fromisoformat(f"{fall}T12:00").replace(tzinfo=schedule.tz).utcoffset())


@pytest.mark.parametrize(("zone", "spring", "fall"), [(z, s, f) for z, s, f, _, _ in ZONES])
def test_wildcard_hour_runs_every_real_hour(zone: str, spring: str, fall: str) -> None:
    schedule = Schedule("15 * * * *", zone)
    for day, expected in ((spring, 23), (fall, 25)):
        start = datetime.fromisoformat(day).replace(tzinfo=schedule.tz)
        end = datetime.fromisoformat(day).replace(tzinfo=schedule.tz) + timedelta(days=1)
        start_utc, end_utc = start.astimezone(UTC), (end.replace(tzinfo=None)).replace(
            tzinfo=schedule.tz).astimezone(UTC)
        slots = schedule.between(start_utc, end_utc)
        assert len(slots) == expected, (zone, day)
        gaps = {b - a for a, b in itertools.pairwise(slots)}
        assert gaps == {timedelta(hours=1)}


def test_croniter_alone_would_fire_twice_on_fall_back() -> None:
    # The reason this module exists: a daily 02:30 Berlin job, counted by real instants.
    schedule = Schedule("30 2 * * *", "Europe/Berlin")
    slots = schedule.between(datetime(2026, 10, 24, 12, tzinfo=UTC),
                             datetime(2026, 10, 26, 12, tzinfo=UTC))
    assert len(slots) == 2  # the 25th and the 26th, once each


def test_slots_are_ordered_unique_and_after_the_start() -> None:
    schedule = Schedule("*/20 * * * *", "Europe/Berlin")
    start = datetime(2026, 10, 24, 22, 10, tzinfo=UTC)
    slots = schedule.between(start, start + timedelta(days=2))
    assert slots == sorted(set(slots)) and slots[0] > start
    assert schedule.next_after(start) == slots[0]


def test_seconds_field_is_accepted() -> None:
    schedule = Schedule("* * * * * */15", "UTC")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert schedule.between(start, start + timedelta(minutes=1))[:3] == [
        start + timedelta(seconds=15), start + timedelta(seconds=30),
        start + timedelta(seconds=45)]


def test_day_fields_and_macros() -> None:
    monthly = Schedule("@monthly", "UTC")
    start = datetime(2026, 1, 15, tzinfo=UTC)
    assert [s.day for s in monthly.between(start, start + timedelta(days=80))] == [1, 1, 1]
    second_friday = Schedule("0 9 * * 5#2", "UTC")
    assert second_friday.next_after(start) == datetime(2026, 2, 13, 9, tzinfo=UTC)
    last_day = Schedule("0 9 L * *", "UTC")
    assert last_day.next_after(start) == datetime(2026, 1, 31, 9, tzinfo=UTC)


def test_gap_range_over_a_year() -> None:
    year = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert Schedule("0 2 * * *", "Europe/Berlin").gap_range(*year) == (
        timedelta(hours=23), timedelta(hours=25))
    assert Schedule("0 2 * * *", "UTC").gap_range(*year) == (timedelta(days=1),) * 2
    assert Schedule("*/5 * * * *", "Europe/Berlin").gap_range(*year) == (
        timedelta(minutes=5), timedelta(minutes=5))
    assert Schedule("0 6 1 * *", "UTC").gap_range(*year) == (
        timedelta(days=28), timedelta(days=31))


@pytest.mark.parametrize(("expr", "needle"), [
    ("0 6 * *", "has 4 fields"), ("61 * * * *", "invalid cron"), ("0 25 * * *", "invalid"),
    ("@reboot", "unsupported"), ("", "empty"), ("0 0 30 2 *", "invalid"),
])
def test_bad_cron(expr: str, needle: str) -> None:
    problem = check_cron(expr)
    assert problem is not None and needle in problem


@settings(max_examples=60, deadline=None)
@given(hours=st.sets(st.integers(0, 23), min_size=1, max_size=6),
       minutes=st.sets(st.integers(0, 59), min_size=1, max_size=3),
       zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney",
                             "Asia/Kolkata", "UTC", "America/Santiago"]),
       wildcard_hour=st.booleans())
def test_every_day_shortcut_matches_the_day_by_day_computation(
        hours: set[int], minutes: set[int], zone: str, wildcard_hour: bool) -> None:
    hour_field = "*" if wildcard_hour else ",".join(map(str, sorted(hours)))
    schedule = Schedule(f"{','.join(map(str, sorted(minutes)))} {hour_field} * * *", zone)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    assert schedule.gap_range(start, end) == schedule._day_by_day_gap_range(start, end)


def test_latest_at_or_before() -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert Schedule("0 6 1 * *", "UTC").latest_at_or_before(at) == datetime(2026, 3, 1, 6,
                                                                             tzinfo=UTC)
    assert Schedule("* * * * * */2", "UTC").latest_at_or_before(at) == at
    assert Schedule("0 0 29 2 *", "UTC").latest_at_or_before(at) == datetime(2024, 2, 29,
                                                                              tzinfo=UTC)


@settings(max_examples=60, deadline=None)
@given(hours=st.sets(st.integers(0, 23), min_size=1, max_size=5),
       minutes=st.sets(st.integers(0, 59), min_size=1, max_size=3),
       zone=st.sampled_from(["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe",
                             "America/New_York", "Asia/Tehran"]),
       wildcard_hour=st.booleans(), month=st.integers(1, 12))
def test_lazy_iteration_matches_whole_days(hours: set[int], minutes: set[int], zone: str,
                                           wildcard_hour: bool, month: int) -> None:
    hour_field = "*" if wildcard_hour else ",".join(map(str, sorted(hours)))
    schedule = Schedule(f"{','.join(map(str, sorted(minutes)))} {hour_field} * * *", zone)
    start = datetime(2026, month, 1, 7, 13, tzinfo=UTC)
    end = start + timedelta(days=40)
    expected = sorted({i for d in range(-1, 42)
                       for i in schedule._day_instants((start + timedelta(days=d)).date())
                       if start < i <= end})
    assert schedule.between(start, end) == expected
