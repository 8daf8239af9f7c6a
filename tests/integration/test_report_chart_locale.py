"""Chart axis ticks in the report's locale, read back from the drawn matplotlib figure."""

from __future__ import annotations

from decimal import Decimal

from engine.reports.figures import Display
from runners.report.render import chart_figure

NBSP = "\u00a0"


def _ticks(shown: list[Display], rows: list[tuple[object, ...]]) -> list[str]:
    import matplotlib.pyplot as plt

    figure = chart_figure(rows, [d.name for d in shown], "bar", shown[0].name,
                          [shown[1].name], "Chart", shown)
    try:
        figure.canvas.draw()
        return [t.get_text() for t in figure.axes[0].get_yticklabels()]
    finally:
        plt.close(figure)


def test_money_ticks_in_de_DE_name_the_euro_after_the_number() -> None:
    shown = [Display("region", "Region", locale="de_DE"),
             Display("revenue", "Revenue", "currency", currency="EUR", locale="de_DE")]
    ticks = _ticks(shown, [("North", Decimal("250000")), ("South", Decimal("1200000"))])
    assert f"0{NBSP}€" in ticks and f"1.000.000{NBSP}€" in ticks, ticks
    assert all("," not in t for t in ticks), ticks


def test_share_ticks_in_fr_FR_are_percent_with_a_comma() -> None:
    shown = [Display("carrier", "Carrier", locale="fr_FR"),
             Display("late", "Late", "percent", locale="fr_FR")]
    ticks = _ticks(shown, [("A", Decimal("0.0125")), ("B", Decimal("0.0375"))])
    assert f"0,0{NBSP}%" in ticks and f"2,5{NBSP}%" in ticks, ticks


def test_share_ticks_in_en_are_unchanged() -> None:
    shown = [Display("carrier", "Carrier"), Display("late", "Late", "percent")]
    ticks = _ticks(shown, [("A", Decimal("0.2")), ("B", Decimal("0.8"))])
    assert "0%" in ticks and "80%" in ticks, ticks
