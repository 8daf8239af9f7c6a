"""Figures in a declared locale: separators, currency symbol and its side, percent, the sign;
the mail's summary, comparison and row counts in that locale; the setting validated offline."""

from decimal import Decimal
from pathlib import Path

import pytest

from engine.app.reporting import report_locale
from engine.reports.figures import (
    Display,
    Reference,
    fmt_currency,
    fmt_number,
    fmt_percent,
    fmt_value,
    key_figures,
    tick_text,
    xlsx_number_format,
)
from engine.reports.mail import ReportView, render_html, render_text, rows_line
from engine.scheduling.jobs import jobs
from tests.helpers import REVENUE, SETTINGS, by_rule, check, line_of, where

NBSP = "\u00a0"  # no-break space: between a number and € or % in de and fr
NNBSP = "\u202f"  # narrow no-break space: fr's thousands separator
MINUS = "\u2212"


def _eur(locale: str) -> Display:
    return Display("revenue", "Revenue", "currency", currency="EUR", key=True,
                   compare="previous_period", locale=locale)


@pytest.mark.parametrize(("locale", "money", "negative", "zero"), [
    ("en", "€316,795.04", f"{MINUS}€1,234.50", "€0.00"),
    ("en_GB", "€316,795.04", f"{MINUS}€1,234.50", "€0.00"),
    ("de_DE", f"316.795,04{NBSP}€", f"{MINUS}1.234,50{NBSP}€", f"0,00{NBSP}€"),
    ("fr_FR", f"316{NNBSP}795,04{NBSP}€", f"{MINUS}1{NNBSP}234,50{NBSP}€", f"0,00{NBSP}€"),
])
def test_money_follows_the_locale(locale: str, money: str, negative: str, zero: str) -> None:
    shown = _eur(locale)
    assert fmt_value(Decimal("316795.04"), shown) == money
    assert fmt_value(Decimal("-1234.5"), shown) == negative
    assert fmt_value(0, shown) == zero
    # Rounds to zero: no "-0,00".
    assert fmt_value(Decimal("-0.004"), shown) == zero
    assert fmt_value(None, shown) == ""


@pytest.mark.parametrize(("locale", "share", "negative", "zero"), [
    ("en", "54.6%", f"{MINUS}12.3%", "0.0%"),
    ("de_DE", f"54,6{NBSP}%", f"{MINUS}12,3{NBSP}%", f"0,0{NBSP}%"),
    ("fr_FR", f"54,6{NBSP}%", f"{MINUS}12,3{NBSP}%", f"0,0{NBSP}%"),
])
def test_percent_follows_the_locale(locale: str, share: str, negative: str, zero: str) -> None:
    shown = Display("late", "Late", "percent", locale=locale)
    assert fmt_value(Decimal("0.546"), shown) == share
    assert fmt_value(Decimal("-0.1234"), shown) == negative
    assert fmt_value(Decimal(0), shown) == zero
    assert fmt_value(None, shown) == ""


@pytest.mark.parametrize(("locale", "integer", "decimal", "negative"), [
    ("en", "1,234,567", "1,234.35", f"{MINUS}5"),
    ("de_DE", "1.234.567", "1.234,35", f"{MINUS}5"),
    ("fr_FR", f"1{NNBSP}234{NNBSP}567", f"1{NNBSP}234,35", f"{MINUS}5"),
])
def test_plain_numbers_follow_the_locale(locale: str, integer: str, decimal: str,
                                         negative: str) -> None:
    assert fmt_value(1234567, Display("n", "n", "integer", locale=locale)) == integer
    # Half up, as people round (2.345 -> 2.35, not the banker's 2.34).
    assert fmt_value(Decimal("1234.345"), Display("d", "d", "decimal", decimals=2,
                                                  locale=locale)) == decimal
    assert fmt_value(-5, Display("n", "n", "integer", locale=locale)) == negative
    assert fmt_value(0, Display("n", "n", "integer", locale=locale)) == "0"


def test_the_formatting_functions_directly() -> None:
    assert fmt_number(Decimal("2.345"), 2, "de_DE") == "2,35"
    assert fmt_percent(Decimal("0.125"), "fr_FR", 0) == f"13{NBSP}%"
    assert fmt_currency(Decimal("12.5"), "CHF", "de_DE") == f"12,50{NBSP}CHF"
    # A symbol of letters stands apart from the digits (CLDR currency spacing).
    assert fmt_currency(Decimal("12.5"), "CHF", "en") == f"CHF{NBSP}12.50"
    assert fmt_currency(Decimal("1000"), "JPY", "en") == "¥1,000"  # yen have no decimals
    assert fmt_currency(Decimal("300000"), "EUR", "de_DE", 0) == f"300.000{NBSP}€"


def test_the_comparison_line_reads_in_the_locale() -> None:
    share = Display("late", "Late share", "percent", key=True, compare="previous_period",
                    locale="de_DE")
    ref = {"previous_period": Reference("October 2026", {"revenue": "100000",
                                                         "late": "0.10"})}
    revenue, late = key_figures([_eur("de_DE"), share], {"revenue": "104200.5", "late": "0.12"},
                                ref)
    assert revenue.change == f"▲ 4,2{NBSP}%"
    assert revenue.sentence() == (f"Revenue 104.200,50{NBSP}€ (▲ 4,2{NBSP}% vs "
                                  f"100.000,00{NBSP}€ for October 2026)")
    assert late.change == "▲ 2,0 pp"
    [fell] = key_figures([_eur("fr_FR")], {"revenue": "-50"},
                         {"previous_period": Reference("October 2026", {"revenue": "1000"})})
    assert fell.change == f"▼ 105,0{NBSP}%" and fell.text == f"{MINUS}50,00{NBSP}€"


def test_mail_summary_table_and_counts_in_the_locale() -> None:
    shown = [Display("region", "Region", locale="de_DE"), _eur("de_DE")]
    figures = key_figures(shown, {"revenue": "316795.04"},
                          {"previous_period": Reference("October 2026", {"revenue": "300000"})})
    view = ReportView("Revenue", "November 2026 (Europe/Berlin)", shown,
                      [(f"r{i}", Decimal("1234.5")) for i in range(20)], 1234, figures,
                      attached=True, locale="de_DE")
    assert rows_line(view) == "20 of 1.234 rows; all rows attached."
    page = render_html(view)
    assert f'<td class="num" style="text-align:right">1.234,50{NBSP}€</td>' in page
    assert f"316.795,04{NBSP}€" in page and f"▲ 5,6{NBSP}%" in page
    text = render_text(view)
    assert (f"- Revenue 316.795,04{NBSP}€ (▲ 5,6{NBSP}% vs 300.000,00{NBSP}€ for "
            "October 2026)") in text.splitlines()
    assert f"r0      1.234,50{NBSP}€" in text.splitlines()


@pytest.mark.parametrize(("locale", "code", "number_format"), [
    ("en", "EUR", '"€"#,##0.00;-"€"#,##0.00'),
    ("en_GB", "USD", '"US$"#,##0.00;-"US$"#,##0.00'),
    ("de_DE", "EUR", '#,##0.00" €";-#,##0.00" €"'),
    ("fr_FR", "EUR", '#,##0.00" €";-#,##0.00" €"'),
    ("en", "CHF", '"CHF "#,##0.00;-"CHF "#,##0.00'),
    ("en", "JPY", '"¥"#,##0;-"¥"#,##0'),
])
def test_xlsx_currency_formats_name_the_symbol(locale: str, code: str,
                                               number_format: str) -> None:
    shown = Display("m", "m", "currency", currency=code, locale=locale)
    assert xlsx_number_format(shown) == number_format
    # Excel localises separators itself: the other formats do not depend on the locale.
    assert xlsx_number_format(Display("p", "p", "percent", locale=locale)) == "0.0%"


def test_chart_ticks_in_the_locale() -> None:
    assert [tick_text(v, _eur("de_DE"), 50000.0) for v in (0.0, 250000.0, -50000.0)] == [
        f"0{NBSP}€", f"250.000{NBSP}€", f"{MINUS}50.000{NBSP}€"]
    share = Display("s", "s", "percent", locale="fr_FR")
    assert [tick_text(v, share, 0.2) for v in (0.0, 0.6000000000000001)] == [
        f"0{NBSP}%", f"60{NBSP}%"]
    assert tick_text(0.525, Display("s", "s", "percent"), 0.025) == "52.5%"
    assert tick_text(1500.0, Display("n", "n", "integer", locale="de_DE"), 500.0) == "1.500"


def test_a_report_locale_overrides_the_settings_default(tmp_path: Path) -> None:
    settings = SETTINGS.replace("reports:\n", "reports:\n  locale: de-DE\n")
    result = check(tmp_path / "a", {"marketops.yaml": settings})
    assert result.passed(), [str(f) for f in result.errors]
    [job] = [j for j in jobs(result.project).values() if j.kind == "report"]
    assert report_locale(result, job) == "de_DE"
    report = REVENUE.replace("period: previous_day\n", "period: previous_day\nlocale: fr-FR\n")
    result = check(tmp_path / "b", {"marketops.yaml": settings,
                                    "definitions/reports/revenue.yaml": report})
    [job] = [j for j in jobs(result.project).values() if j.kind == "report"]
    assert report_locale(result, job) == "fr_FR"  # BCP 47 spelling accepted, kept canonical
    result = check(tmp_path / "c")
    [job] = [j for j in jobs(result.project).values() if j.kind == "report"]
    assert report_locale(result, job) == "en"


def test_an_unknown_locale_in_settings_is_one_finding_at_its_line(tmp_path: Path) -> None:
    settings = SETTINGS.replace("reports:\n", "reports:\n  locale: de_DX\n")
    result = check(tmp_path, {"marketops.yaml": settings})
    # The rest of the settings still load: nothing else is reported.
    assert [f.message for f in result.errors] == [f.message for f in by_rule(result, "settings")]
    [finding] = result.errors
    assert where(finding) == f"marketops.yaml:{line_of(settings, 'locale: de_DX')}"
    assert "unknown locale 'de_DX'; did you mean 'de_DE'?" in finding.message
    assert "CLDR locale name such as en, en_GB, de_DE or fr_FR" in finding.message


def test_an_unknown_locale_in_a_report_is_one_finding_at_its_line(tmp_path: Path) -> None:
    report = REVENUE.replace("period: previous_day\n", "period: previous_day\nlocale: klingon\n")
    result = check(tmp_path, {"definitions/reports/revenue.yaml": report})
    findings = by_rule(result, "model")
    assert len(findings) == 1 and len(result.errors) == 1
    assert where(findings[0]) == (f"definitions/reports/revenue.yaml:"
                                  f"{line_of(report, 'locale: klingon')}")
    assert "unknown locale 'klingon'" in findings[0].message
