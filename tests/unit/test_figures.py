"""Figures for people: formats, the period in words, key figures and their change."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from engine.definitions.models.report import Column
from engine.reports.figures import (
    Display,
    FigureTotals,
    Reference,
    display_of,
    file_name,
    fmt_value,
    key_figures,
    period_heading,
    period_words,
    previous_period,
    xlsx_number_format,
    year_before,
)
from engine.scheduling.periods import CalendarPeriod, calendar_period, rolling_period

BERLIN = ZoneInfo("Europe/Berlin")
EUR = Display("revenue", "Revenue", "currency", currency="EUR", key=True,
              compare="previous_period")
SHARE = Display("late_share", "Late share", "percent", key=True, compare="previous_period")


@pytest.mark.parametrize(("value", "shown", "text"), [
    (Decimal("316795.04"), EUR, "€316,795.04"),
    (Decimal("-1234.5"), EUR, "\u2212€1,234.50"),
    # CLDR en puts a letter symbol first, apart from the digits (no-break space).
    (Decimal("12.5"), Display("x", "x", "currency", currency="CHF"), "CHF\u00a012.50"),
    (Decimal("0.1234"), SHARE, "12.3%"),
    (1234567, Display("n", "n", "integer"), "1,234,567"),
    (Decimal("2.345"), Display("d", "d", "decimal", decimals=2), "2.35"),
    (date(2026, 12, 1), Display("d", "d", "date"), "1 Dec 2026"),
    (timedelta(hours=4, minutes=5), Display("d", "d", "duration"), "4 h 05 min"),
    (Decimal("50.5"), Display("d", "d", "duration"), "2 d 2 h"),
    (None, EUR, ""),
    ("DHL", Display("c", "Carrier"), "DHL"),
])
def test_values_are_formatted_for_people(value: object, shown: Display, text: str) -> None:
    assert fmt_value(value, shown) == text


def test_declared_column_becomes_a_display() -> None:
    shown = display_of("revenue", Column.model_validate(
        {"label": "Revenue", "format": {"currency": "EUR"}, "key": True,
         "compare": "previous_period"}))
    assert (shown.label, shown.kind, shown.currency, shown.key, shown.compare) == (
        "Revenue", "currency", "EUR", True, "previous_period")
    assert display_of("x", Column.model_validate({"format": {"decimal": 1}})).decimals == 1
    assert display_of("x", None) == Display("x", "x")
    with pytest.raises(ValueError, match="add key: true"):
        Column.model_validate({"compare": "previous_period"})


def test_xlsx_number_formats() -> None:
    assert xlsx_number_format(EUR) == '"€"#,##0.00;-"€"#,##0.00'
    assert xlsx_number_format(SHARE) == "0.0%"
    assert xlsx_number_format(Display("n", "n", "integer")) == "#,##0"
    assert xlsx_number_format(Display("n", "n", "decimal", decimals=3)) == "#,##0.000"
    assert xlsx_number_format(Display("n", "n")) is None


def _slot(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(BERLIN)


@pytest.mark.parametrize(("kind", "slot", "words"), [
    (CalendarPeriod.PREVIOUS_MONTH, "2026-12-01T06:00+01:00", "November 2026"),
    (CalendarPeriod.PREVIOUS_WEEK, "2026-11-30T07:00+01:00", "Week 48, 23\u201329 Nov 2026"),
    (CalendarPeriod.PREVIOUS_WEEK, "2026-12-07T07:00+01:00",
     "Week 49, 30 Nov \u2013 6 Dec 2026"),
    (CalendarPeriod.PREVIOUS_WEEK, "2027-01-04T07:00+01:00",
     "Week 53, 28 Dec 2026 \u2013 3 Jan 2027"),
    (CalendarPeriod.PREVIOUS_QUARTER, "2026-10-01T06:00+02:00", "Q3 2026"),
    (CalendarPeriod.PREVIOUS_DAY, "2026-12-02T06:00+01:00", "Tue 1 Dec 2026"),
    (CalendarPeriod.PREVIOUS_YEAR, "2026-01-02T06:00+01:00", "2025"),
])
def test_calendar_periods_in_words(kind: CalendarPeriod, slot: str, words: str) -> None:
    assert period_words(kind, calendar_period(kind, _slot(slot), BERLIN)) == words


def test_rolling_periods_and_headings_name_the_zone() -> None:
    midnight = rolling_period(timedelta(days=28), _slot("2026-12-01T00:00+01:00"), BERLIN)
    assert period_words(timedelta(days=28), midnight) == "28 days to 1 Dec 2026"
    morning = rolling_period(timedelta(hours=36), _slot("2026-12-01T06:30+01:00"), BERLIN)
    assert period_words(timedelta(hours=36), morning) == "36 hours to 1 Dec 2026 06:30"
    month = calendar_period(CalendarPeriod.PREVIOUS_MONTH, _slot("2026-12-01T06:00+01:00"),
                            BERLIN)
    assert period_heading(CalendarPeriod.PREVIOUS_MONTH, month, "Europe/Berlin") == \
        "November 2026 (Europe/Berlin)"


def test_previous_period_is_the_unit_before() -> None:
    month = calendar_period(CalendarPeriod.PREVIOUS_MONTH, _slot("2026-03-01T06:00+01:00"),
                            BERLIN)
    before = previous_period(CalendarPeriod.PREVIOUS_MONTH, month, "Europe/Berlin")
    assert (before.start.date(), before.end.date()) == (date(2026, 1, 1), date(2026, 2, 1))
    window = rolling_period(timedelta(days=7), datetime(2026, 3, 29, 12, tzinfo=UTC), BERLIN)
    earlier = previous_period(timedelta(days=7), window, "Europe/Berlin")
    assert earlier.end == window.start and earlier.end - earlier.start == timedelta(days=7)


def test_totals_sum_additive_figures_and_keep_shares_of_one_row() -> None:
    shown = [Display("carrier", "Carrier"), EUR, SHARE]
    many = FigureTotals(["carrier", "revenue", "late_share"], shown)
    many.add([("a", Decimal("10.10"), Decimal("0.5")), ("b", Decimal("5"), Decimal("0.1"))])
    many.add([("c", None, None)])
    assert many.figures() == {"revenue": "15.10"}
    one = FigureTotals(["carrier", "revenue", "late_share"], shown)
    one.add([("a", Decimal("10.10"), Decimal("0.25"))])
    assert one.figures() == {"revenue": "10.10", "late_share": "0.25"}


def _before(figures: dict[str, str]) -> dict[str, Reference]:
    return {"previous_period": Reference("October 2026", figures)}


def test_change_against_the_previous_period() -> None:
    [revenue, share] = key_figures([EUR, SHARE], {"revenue": "110", "late_share": "0.12"},
                                   _before({"revenue": "100", "late_share": "0.10"}))
    assert revenue.change == "▲ 10.0%"
    assert revenue.sentence() == "Revenue €110.00 (▲ 10.0% vs €100.00 for October 2026)"
    assert share.change == "▲ 2.0 pp"
    [down] = key_figures([EUR], {"revenue": "90"}, _before({"revenue": "120"}))
    assert down.change == "▼ 25.0%"
    [fresh] = key_figures([EUR], {"revenue": "90"}, _before({"revenue": "0"}))
    assert fresh.change == "▲ new"
    [alone] = key_figures([EUR], {"revenue": "90"}, None)
    assert alone.change is None and alone.sentence() == "Revenue €90.00"


def test_an_unchanged_figure_says_so() -> None:
    [same] = key_figures([EUR], {"revenue": "75"},
                          {"previous_period": Reference("Tue 1 Dec 2026", {"revenue": "75.00"})})
    assert same.change == "= no change"
    assert same.sentence() == "Revenue €75.00 (= no change vs €75.00 for Tue 1 Dec 2026)"


def test_attachment_names_carry_the_period() -> None:
    assert file_name("Monthly P&L", "November 2026", ".xlsx") == \
        "Monthly P&L - November 2026.xlsx"
    assert file_name("In/out", "36 hours to 1 Dec 2026 06:30", ".csv") == \
        "In-out - 36 hours to 1 Dec 2026 06.30.csv"


@pytest.mark.parametrize(("kind", "slot", "first", "end"), [
    (CalendarPeriod.PREVIOUS_MONTH, "2026-12-01T06:00+01:00", date(2025, 11, 1),
     date(2025, 12, 1)),
    (CalendarPeriod.PREVIOUS_WEEK, "2026-11-30T07:00+01:00", date(2025, 11, 24),
     date(2025, 12, 1)),
    (CalendarPeriod.PREVIOUS_DAY, "2024-03-01T06:00+01:00", date(2023, 2, 28),
     date(2023, 3, 1)),
    (CalendarPeriod.PREVIOUS_QUARTER, "2026-10-01T06:00+02:00", date(2025, 7, 1),
     date(2025, 10, 1)),
])
def test_year_over_year_is_the_same_period_a_year_earlier(kind: CalendarPeriod, slot: str,
                                                          first: date, end: date) -> None:
    period = calendar_period(kind, _slot(slot), BERLIN)
    before = year_before(kind, period, "Europe/Berlin")
    assert (before.start.date(), before.end.date()) == (first, end)
    assert before.start == datetime.combine(first, time()).replace(tzinfo=BERLIN)
    if kind is CalendarPeriod.PREVIOUS_WEEK:
        assert before.start.isocalendar().week == period.start.isocalendar().week


def test_each_figure_is_compared_with_its_own_reference() -> None:
    yoy = Display("orders", "Orders", "integer", key=True, compare="year_over_year")
    plain = Display("units", "Units", "integer", key=True)
    figures = key_figures([EUR, yoy, plain], {"revenue": "110", "orders": "30", "units": "5"},
                          {"previous_period": Reference("October 2026", {"revenue": "100"}),
                           "year_over_year": Reference("November 2025", {"orders": "20",
                                                                          "units": "1"})})
    assert [f.sentence() for f in figures] == [
        "Revenue €110.00 (▲ 10.0% vs €100.00 for October 2026)",
        "Orders 30 (▲ 50.0% vs 20 for November 2025)", "Units 5"]
