"""Cron schedules in a job's own IANA timezone, with Vixie cron's semantics across DST.

croniter parses the expression and finds the matching days; this module turns a day's wall-clock
times into real instants. croniter alone fires a daily 02:30 job twice on a fall-back day and
shifts it on a spring-forward day; Vixie cron (and cronie) instead:
- run a fixed-time job whose time falls in the skipped hour once, right after the jump;
- run a fixed-time job whose time falls in the repeated hour once, at its first occurrence;
- run a job whose minute or hour field starts with '*' at every real occurrence (so an hourly
  job runs 23 or 25 times on a transition day).
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterError

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_PROBE_START = datetime(2026, 1, 1)


def normalize_cron(expr: str) -> str:
    """Expand @daily-style macros; collapse whitespace."""
    text = " ".join(expr.split())
    return _MACROS.get(text.lower(), text)


def check_cron(expr: str) -> str | None:
    """None if `expr` is a usable cron expression, else what is wrong with it."""
    if not isinstance(expr, str) or not expr.strip():
        return "empty cron expression"
    text = normalize_cron(expr)
    if text.startswith("@"):
        return f"unsupported cron macro '{expr}' (use @hourly, @daily, @weekly, @monthly, @yearly)"
    fields = text.split()
    if len(fields) not in (5, 6):
        return (f"cron '{expr}' has {len(fields)} fields; expected 5 (minute hour day month "
                "weekday) or 6 (the same, then seconds)")
    try:
        croniter.expand(text)
        croniter(text, _PROBE_START).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        return f"invalid cron '{expr}': {exc}"
    return None


def _expand_field(values: list[int | str], full: range) -> list[int]:
    if "*" in values:
        return list(full)
    return sorted(int(v) for v in values)


@dataclass(frozen=True)
class Schedule:
    """A cron expression evaluated in an IANA timezone; all instants are aware UTC datetimes."""

    cron: str
    timezone: str
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    times: tuple[time, ...] = field(init=False, repr=False, compare=False)
    day_expr: str = field(init=False, repr=False, compare=False)
    wildcard: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problem = check_cron(self.cron)
        if problem:
            raise ValueError(problem)
        text = normalize_cron(self.cron)
        fields = text.split()
        expanded, _ = croniter.expand(text)
        minutes = _expand_field(expanded[0], range(60))
        hours = _expand_field(expanded[1], range(24))
        seconds = _expand_field(expanded[5], range(60)) if len(fields) == 6 else [0]
        times = tuple(time(h, m, s) for h in hours for m in minutes for s in seconds)
        object.__setattr__(self, "tz", ZoneInfo(self.timezone))
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "day_expr", f"0 0 {fields[2]} {fields[3]} {fields[4]}")
        object.__setattr__(self, "wildcard", fields[0].startswith("*") or
                           fields[1].startswith("*"))

    # -- days and instants -------------------------------------------------------------------
    def _days(self, first: date) -> Iterator[date]:
        """Every local date from `first` on whose day fields match."""
        if self.day_expr == "0 0 * * *":
            day = first
            while True:
                yield day
                day += timedelta(days=1)
        it = croniter(self.day_expr, datetime.combine(first, time()) - timedelta(seconds=1))
        while True:
            try:
                yield it.get_next(datetime).date()
            except CroniterError:
                return

    def instants(self, wall: datetime) -> list[datetime]:
        """The real instants (UTC) at which a slot for local wall time `wall` fires."""
        early = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        late = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        if early == late:
            return [early]
        if early.astimezone(self.tz).replace(tzinfo=None) == wall:
            # Repeated hour: fold=0 is the first occurrence.
            return [early, late] if self.wildcard else [early]
        # Skipped hour: wildcard jobs follow the new clock; fixed jobs run right after the jump.
        return [] if self.wildcard else [self._transition(late, early)]

    def _transition(self, before: datetime, after: datetime) -> datetime:
        lo, hi = min(before, after), max(before, after)
        target = hi.astimezone(self.tz).utcoffset()
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.tz).utcoffset() == target:
                hi = mid
            else:
                lo = mid
        return hi.replace(microsecond=0)

    def _day_instants(self, day: date) -> list[datetime]:
        found: set[datetime] = set()
        for t in self.times:
            found.update(self.instants(datetime.combine(day, t)))
        return sorted(found)

    # -- iteration -----------------------------------------------------------------------------
    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Every slot strictly after `after`, in order, forever (or until the cron ends).

        Lazy: days without an offset change yield their slots one by one from the first one
        after `after`, so an every-second schedule costs nothing up front. A local day's
        slots all fall within that day's real span, so days can be chained in order.
        """
        after = after.astimezone(UTC)
        first_day = after.astimezone(self.tz).date() - timedelta(days=1)
        for day in self._days(first_day):
            offset = _steady_offset(self.timezone, day)
            if offset is None:
                yield from (i for i in self._day_instants(day) if i > after)
                continue
            # Slots of this day are local times minus a fixed offset: compare in local time.
            threshold = (after + offset).replace(tzinfo=None)
            if threshold.date() > day:
                continue
            begin = 0 if threshold.date() < day else bisect_right(self.times, threshold.time())
            for moment in self.times[begin:]:
                yield (datetime.combine(day, moment) - offset).replace(tzinfo=UTC)

    def next_after(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after`."""
        return next(self.iter_after(after), None)

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last slot at or before `moment` (searching back up to ten years)."""
        for window in (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2),
                       timedelta(days=40), timedelta(days=400), timedelta(days=3700)):
            slots = self.between(moment - window, moment)
            if slots:
                return slots[-1]
        return None

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """Every slot in (start, end]."""
        result = []
        for instant in self.iter_after(start):
            if instant > end:
                break
            result.append(instant)
        return result

    def gap_range(self, start: datetime, end: datetime) -> tuple[timedelta, timedelta] | None:
        """Smallest and largest time between consecutive slots in [start, end]; None if < 2 slots.

        Days without a UTC-offset change are handled from their first and last slot only, so a
        year of an every-minute schedule costs milliseconds.
        """
        if self.day_expr == "0 0 * * *" and len(self.times) <= 48 and \
                end - start > timedelta(days=7):
            return self._every_day_gap_range(start.astimezone(UTC), end.astimezone(UTC))
        return self._day_by_day_gap_range(start, end)

    def _day_by_day_gap_range(self, start: datetime, end: datetime
                              ) -> tuple[timedelta, timedelta] | None:
        naive = [datetime.combine(date.min, b) - datetime.combine(date.min, a)
                 for a, b in zip(self.times, self.times[1:], strict=False)]
        naive_inner = (min(naive), max(naive)) if naive else None
        low: timedelta | None = None
        high: timedelta | None = None
        previous: datetime | None = None
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        for day in self._days(start.astimezone(self.tz).date()):
            if datetime.combine(day, time()).replace(tzinfo=self.tz) > end + timedelta(days=1):
                break
            offset = _steady_offset(self.timezone, day)
            if offset is not None:
                day_slots = [(datetime.combine(day, t) - offset).replace(tzinfo=UTC)
                             for t in (self.times[0], self.times[-1])]
                inner = list(naive_inner) if naive_inner else []
            else:
                day_slots = self._day_instants(day)
                inner = [b - a for a, b in itertools.pairwise(day_slots)]
            kept = [i for i in day_slots if start <= i <= end]
            if len(kept) < len(day_slots):
                # A day cut by the range: measure it slot by slot.
                kept = [i for i in self._day_instants(day) if start <= i <= end]
                inner = [b - a for a, b in itertools.pairwise(kept)]
            if not kept:
                continue
            gaps = inner + ([kept[0] - previous] if previous is not None else [])
            for gap in gaps:
                low = gap if low is None or gap < low else low
                high = gap if high is None or gap > high else high
            previous = kept[-1]
        if low is None or high is None:
            return None
        return low, high

    def _every_day_gap_range(self, start: datetime, end: datetime
                             ) -> tuple[timedelta, timedelta]:
        """gap_range for schedules that fire every day: all days without an offset change look
        alike, so only the days around transitions (and the range's ends) are computed."""
        first_day = start.astimezone(self.tz).date()
        last_day = end.astimezone(self.tz).date()
        span = (datetime.combine(date.min, self.times[-1])
                - datetime.combine(date.min, self.times[0]))
        gaps = [timedelta(days=1) - span]
        gaps.extend(datetime.combine(date.min, b) - datetime.combine(date.min, a)
                    for a, b in itertools.pairwise(self.times))
        special: set[date] = {first_day, first_day + timedelta(days=1),
                              last_day - timedelta(days=1), last_day}
        day = first_day
        while day <= last_day:
            if _steady_offset(self.timezone, day) is None:
                special.update(day + timedelta(days=k) for k in (-1, 0, 1))
            day += timedelta(days=1)
        for window_start in sorted(special):
            window = [i for d in (window_start, window_start + timedelta(days=1))
                      for i in self._day_instants(d) if start <= i <= end]
            gaps.extend(b - a for a, b in itertools.pairwise(sorted(window)))
        return min(gaps), max(gaps)



@lru_cache(maxsize=65536)
def _steady_offset(timezone: str, day: date) -> timedelta | None:
    """The UTC offset of a local day that has no offset change, else None."""
    tz = ZoneInfo(timezone)
    begin = datetime.combine(day, time()).replace(tzinfo=tz)
    finish = datetime.combine(day + timedelta(days=1), time()).replace(tzinfo=tz)
    offset = begin.utcoffset()
    if offset != finish.utcoffset() or \
            finish.astimezone(UTC) - begin.astimezone(UTC) != timedelta(days=1):
        return None
    return offset
