"""Figures as people read them: declared column formats, the period in words, key figures and
their change against the previous period. Pure: no I/O, the period passed in."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.numbers import (
    NumberPattern,
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
    get_currency_symbol,
)

from engine.definitions.models.report import Column, Currency, Decimals, RollingPeriod
from engine.scheduling.periods import CalendarPeriod, Period, calendar_period, rolling_period

DASH = "\u2013"  # en dash, for ranges
MINUS = "\u2212"  # a real minus sign
DEFAULT_LOCALE = "en"
NUMERIC = {"currency", "decimal", "integer", "percent", "duration"}
# Sums of these are meaningful over rows; a share or a mean is not.
ADDITIVE = {"currency", "integer"}


@dataclass(frozen=True)
class Display:
    """How one output column is shown: its label, its format and whether it is a key figure."""

    name: str
    label: str
    kind: str = "text"  # currency | decimal | integer | percent | date | duration | text
    decimals: int = 2
    currency: str | None = None
    key: bool = False
    compare: str | None = None  # previous_period | year_over_year
    description: str | None = None
    locale: str = DEFAULT_LOCALE  # a CLDR name (en, de_DE, fr_FR): separators and symbols

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC


def display_of(name: str, column: Column | None, locale: str = DEFAULT_LOCALE) -> Display:
    """The Display of an output column, from its declaration (or the raw name when none)."""
    if column is None:
        return Display(name, name, locale=locale)
    fmt = column.format
    kind, decimals, currency = "text", 2, None
    if isinstance(fmt, Currency):
        kind, currency = "currency", fmt.currency
    elif isinstance(fmt, Decimals):
        kind, decimals = "decimal", fmt.decimal
    else:
        kind = fmt
    return Display(name, column.label or name, kind, decimals, currency, column.key,
                   column.compare, column.description, locale)


def displays(names: Sequence[str], declared: Mapping[str, Column],
             locale: str = DEFAULT_LOCALE) -> list[Display]:
    """One Display per output column, in the query's order."""
    return [display_of(n, declared.get(n), locale) for n in names]


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, timedelta):
        return Decimal(str(value.total_seconds() / 3600))
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


# Numbers in a locale ------------------------------------------------------------------
# Babel (CLDR) gives each locale's separators, symbols and patterns; rounding is half-up
# (as people round money), done here before Babel sees the number, and every negative shows a
# real minus sign.

@cache
def _locale(name: str) -> Locale:
    return Locale.parse(name)


def _fixed(pattern: NumberPattern, decimals: int) -> NumberPattern:
    """The locale's own pattern (grouping, sign, symbol place) with exactly `decimals`."""
    fixed = copy.copy(pattern)
    fixed.frac_prec = (decimals, decimals)
    return fixed


def _rounded(number: Decimal, decimals: int) -> Decimal:
    rounded = number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return rounded if rounded != 0 else abs(rounded)  # no "-0.00"


# CLDR's currencySpacing, which Babel does not apply: a symbol made of letters ("CHF") is
# kept apart from the digits by a no-break space.
_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def _signed(text: str) -> str:
    return text.replace("-", MINUS)


def fmt_number(number: Decimal, decimals: int, locale: str = DEFAULT_LOCALE) -> str:
    """An integer or decimal with the locale's separators: '1,234.50', '1.234,50',
    '1\u202f234,50'."""
    pattern = _fixed(_locale(locale).decimal_formats[None], decimals)
    return _signed(format_decimal(_rounded(number, decimals), pattern, locale))


def fmt_percent(share: Decimal, locale: str = DEFAULT_LOCALE, decimals: int = 1) -> str:
    """A 0-1 share as a percent in the locale: '54.6%', '54,6\xa0%'."""
    rounded = _rounded(share * 100, decimals) / 100
    pattern = _fixed(_locale(locale).percent_formats[None], decimals)
    return _signed(format_percent(rounded, pattern, locale))


def fmt_currency(amount: Decimal, code: str, locale: str = DEFAULT_LOCALE,
                 decimals: int | None = None) -> str:
    """Money in the locale: '€316,795.04', '316.795,04\xa0€' (the currency's own decimals
    unless `decimals` is given, as on a chart axis)."""
    digits = get_currency_precision(code) if decimals is None else decimals
    pattern = _locale(locale).currency_formats["standard"]
    text = format_currency(_rounded(amount, digits), code,
                           pattern if decimals is None else _fixed(pattern, digits), locale,
                           currency_digits=decimals is None)
    return _signed(_LETTER_DIGIT.sub("\u00a0", text))


def fmt_value(value: Any, shown: Display) -> str:
    """A cell as text for people, in the column's locale: separators, currency, percent;
    empty for NULL."""
    if value is None:
        return ""
    kind = shown.kind
    if kind == "date" and isinstance(value, date | datetime):
        return f"{value.day} {value:%b %Y}"
    if kind == "duration":
        return duration_words(value)
    number = _decimal(value) if kind in NUMERIC else None
    if number is None:
        return value.isoformat() if isinstance(value, datetime) else str(value)
    if kind == "currency":
        return fmt_currency(number, shown.currency or "", shown.locale)
    if kind == "percent":
        return fmt_percent(number, shown.locale)
    return fmt_number(number, 0 if kind == "integer" else shown.decimals, shown.locale)


def tick_text(value: float, shown: Display, step: float) -> str:
    """A chart axis tick in the column's locale, with the decimals the ticks' spacing needs:
    '50%', '12.5%', '€300,000', '300.000\xa0€'."""
    scale = 100 if shown.kind == "percent" else 1
    decimals = next((d for d in range(7) if _whole(step * scale * 10 ** d)), 6)
    number = Decimal(repr(float(value)))
    if shown.kind == "percent":
        return fmt_percent(number, shown.locale, decimals)
    if shown.kind == "currency":
        return fmt_currency(number, shown.currency or "", shown.locale, decimals)
    return fmt_number(number, decimals, shown.locale)


def _whole(x: float) -> bool:
    return abs(x - round(x)) < 1e-6 * max(1.0, abs(x))


def duration_words(value: Any) -> str:
    """An interval (or a number of hours) as '2 d 3 h', '4 h 05 min', '12 min'."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        number = _decimal(value)
        if number is None:
            return str(value)
        seconds = float(number) * 3600
    sign = MINUS if seconds < 0 else ""
    minutes = round(abs(seconds) / 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {mins:02d} min"
    return f"{sign}{mins} min"


def xlsx_number_format(shown: Display) -> str | None:
    """The spreadsheet number format of a column (None: General)."""
    if shown.kind == "currency":
        # Excel shows its own separators; the symbol and its side come from the locale.
        code = shown.currency or ""
        digits = get_currency_precision(code)
        body = "#,##0" + ("." + "0" * digits if digits else "")
        pattern = _locale(shown.locale).currency_formats["standard"]
        symbol = get_currency_symbol(code, shown.locale)
        before = "¤" in pattern.prefix[0]
        gap = " " if symbol[-1 if before else 0].isalpha() or "\u00a0" in pattern.pattern \
            else ""
        quoted = f'"{symbol}{gap}"' if before else f'"{gap}{symbol}"'
        positive = f"{quoted}{body}" if before else f"{body}{quoted}"
        return f"{positive};-{positive}"
    if shown.kind == "percent":
        return "0.0%"
    if shown.kind == "integer":
        return "#,##0"
    if shown.kind == "decimal":
        return "#,##0" + ("." + "0" * shown.decimals if shown.decimals else "")
    if shown.kind == "duration":
        return '#,##0.0 "h"'
    if shown.kind == "date":
        return "yyyy-mm-dd"
    return None


# The period in words --------------------------------------------------------------------

PeriodKind = CalendarPeriod | timedelta


def period_kind(spec: CalendarPeriod | RollingPeriod) -> PeriodKind:
    return spec.rolling if isinstance(spec, RollingPeriod) else spec


def _day(d: date) -> str:
    return f"{d.day} {d:%b %Y}"


def _span(first: date, last: date) -> str:
    if first == last:
        return _day(first)
    if first.year != last.year:
        return f"{_day(first)} {DASH} {_day(last)}"
    if first.month != last.month:
        return f"{first.day} {first:%b} {DASH} {_day(last)}"
    return f"{first.day}{DASH}{_day(last)}"


def _length(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def period_words(kind: PeriodKind, period: Period) -> str:
    """'November 2026', 'Week 48, 23-29 Nov 2026' (an en dash), 'Q3 2026', 'Tue 1 Dec 2026', '2026',
    '28 days to 1 Dec 2026' (the period's own timezone; ends are exclusive, so the last
    day named is the day before the end)."""
    start = period.start.date()
    last = (period.end - timedelta(days=1)).date()
    if isinstance(kind, timedelta):
        end = period.end
        at = "" if end.hour == end.minute == 0 else f" {end:%H:%M}"
        return f"{_length(kind)} to {_day(end.date())}{at}"
    if kind is CalendarPeriod.PREVIOUS_DAY:
        return f"{start:%a} {_day(start)}"
    if kind is CalendarPeriod.PREVIOUS_WEEK:
        return f"Week {start.isocalendar().week}, {_span(start, last)}"
    if kind is CalendarPeriod.PREVIOUS_MONTH:
        return f"{start:%B %Y}"
    if kind is CalendarPeriod.PREVIOUS_QUARTER:
        return f"Q{(start.month - 1) // 3 + 1} {start.year}"
    return f"{start.year}"


def period_heading(kind: PeriodKind, period: Period, timezone: str) -> str:
    """The period in words with its zone named, for titles: 'November 2026 (Europe/Berlin)'."""
    return f"{period_words(kind, period)} ({timezone})"


def file_name(title: str, words: str, suffix: str) -> str:
    """The name an attachment is shown under: 'Monthly P&L - November 2026.xlsx' (no
    characters that a desktop's file system refuses)."""
    stem = re.sub(r'[\\/*?"<>|]', "-", f"{title} - {words}").replace(":", ".")
    return f"{stem.strip()}{suffix}"


def previous_period(kind: PeriodKind, period: Period, timezone: str) -> Period:
    """The period just before `period`, of the same kind."""
    tz = ZoneInfo(timezone)
    if isinstance(kind, timedelta):
        return rolling_period(kind, period.start, tz)
    return calendar_period(kind, period.start, tz)


def _a_year_back(moment: datetime, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    day = local.date()
    day = day.replace(year=day.year - 1, day=min(day.day, 28) if (day.month, day.day) == (2, 29)
                      else day.day)
    return datetime.combine(day, local.time()).replace(tzinfo=tz)


def year_before(kind: PeriodKind, period: Period, timezone: str) -> Period:
    """The same period a year earlier: the same month, quarter, date or window; for a week
    the one 52 weeks earlier (the same ISO week number, Monday to Sunday, in most years)."""
    tz = ZoneInfo(timezone)
    if kind is CalendarPeriod.PREVIOUS_WEEK:
        start = period.start.date() - timedelta(weeks=52)
        return Period(datetime.combine(start, datetime.min.time()).replace(tzinfo=tz),
                      datetime.combine(start + timedelta(days=7),
                                       datetime.min.time()).replace(tzinfo=tz))
    return Period(_a_year_back(period.start, tz), _a_year_back(period.end, tz))


REFERENCES = {"previous_period": previous_period, "year_over_year": year_before}


def reference_period(compare: str, kind: PeriodKind, period: Period, timezone: str) -> Period:
    """The period a key figure is compared with."""
    return REFERENCES[compare](kind, period, timezone)


@dataclass(frozen=True)
class Reference:
    """The figures of a period compared with: its words, and its figures when known."""

    words: str
    figures: Mapping[str, str] | None


# Key figures and their change ------------------------------------------------------------


@dataclass
class FigureTotals:
    """Key figures accumulated while rows stream: sums of additive columns, the value of the
    others (meaningful for a one-row result only)."""

    columns: list[str]
    shown: list[Display]
    rows: int = 0
    sums: dict[str, Decimal] = field(default_factory=dict)
    first: dict[str, Any] = field(default_factory=dict)

    def add(self, batch: Iterable[Sequence[Any]]) -> None:
        keys = [(i, d) for i, d in enumerate(self.shown) if d.key]
        for row in batch:
            if self.rows == 0:
                self.first = {d.name: row[i] for i, d in keys}
            self.rows += 1
            for i, d in keys:
                number = _decimal(row[i])
                if number is not None and d.kind in ADDITIVE:
                    self.sums[d.name] = self.sums.get(d.name, Decimal(0)) + number

    def figures(self) -> dict[str, str]:
        """Each key figure that has a meaning for these rows, as exact decimal text."""
        out: dict[str, str] = {}
        for d in self.shown:
            if not d.key:
                continue
            if d.kind in ADDITIVE:
                out[d.name] = str(self.sums.get(d.name, Decimal(0)))
            elif self.rows == 1 and self.first.get(d.name) is not None:
                value = _decimal(self.first[d.name])
                out[d.name] = str(value) if value is not None else str(self.first[d.name])
        return out


@dataclass(frozen=True)
class KeyFigure:
    shown: Display
    value: str
    previous: str | None = None  # None: not compared, or no previous figure
    previous_words: str | None = None

    @property
    def text(self) -> str:
        return fmt_value(self.value, self.shown)

    @property
    def change(self) -> str | None:
        """'▲ 4.2%' (or percentage points for percent figures); None when not comparable."""
        if self.previous is None:
            return None
        now, before = _decimal(self.value), _decimal(self.previous)
        if now is None or before is None:
            return None
        locale = self.shown.locale
        if self.shown.kind == "percent":
            delta = (now - before) * 100
            amount = f"{fmt_number(abs(delta), 1, locale)} pp"
        elif before == 0:
            delta = now - before
            amount = "new" if now != 0 else fmt_percent(Decimal(0), locale)
        else:
            delta = (now - before) / abs(before)
            amount = fmt_percent(abs(delta), locale)
        if delta == 0:
            return "= no change"
        return f"{'▲' if delta > 0 else '▼'} {amount}"

    def sentence(self) -> str:
        """'Revenue €316,795.04 (▲ 4.2% vs €304,012.00 for October 2026)'."""
        text = f"{self.shown.label} {self.text}"
        change = self.change
        if change is not None and self.previous is not None:
            text += (f" ({change} vs {fmt_value(self.previous, self.shown)}"
                     f"{' for ' + self.previous_words if self.previous_words else ''})")
        return text


def key_figures(shown: Sequence[Display], figures: Mapping[str, str],
                references: Mapping[str, Reference] | None = None) -> list[KeyFigure]:
    """The key figures of a run, each compared with its reference period's (by compare kind:
    previous_period, year_over_year) when declared and known."""
    out = []
    for d in shown:
        if d.key and d.name in figures:
            reference = (references or {}).get(d.compare or "")
            before = (reference.figures or {}).get(d.name) if reference is not None else None
            out.append(KeyFigure(d, figures[d.name], before,
                                 reference.words if reference and before is not None
                                 else None))
    return out
