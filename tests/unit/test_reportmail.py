"""The report mail's HTML and plain text, rendered from a view (no I/O)."""

from decimal import Decimal
from html.parser import HTMLParser

from engine.reports.figures import Display, Reference, key_figures
from engine.reports.mail import ReportView, render_html, render_text, rows_line

EUR = Display("revenue", "Revenue", "currency", currency="EUR", key=True,
              compare="previous_period")
SHOWN = [Display("region", "Region"), EUR]


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("td", "th"):
            self._open = (tag, dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.cells.append((*self._open, data))
            self._open = None


def _view(total: int, rows: int, attached: bool = True) -> ReportView:
    figures = key_figures(SHOWN, {"revenue": "1500"},
                          {"previous_period": Reference("October 2026", {"revenue": "1000"})})
    return ReportView("Revenue", "November 2026 (Europe/Berlin)", SHOWN,
                      [(f"r{i}", Decimal("1234.5")) for i in range(rows)], total, figures,
                      attached=attached)


def test_html_has_labels_right_aligned_money_and_the_comparison() -> None:
    page = render_html(_view(56, 56))
    parser = _Cells()
    parser.feed(page)
    assert [c[2] for c in parser.cells[:2]] == ["Region", "Revenue"]
    money = [c for c in parser.cells if c[0] == "td" and c[2] == "€1,234.50"]
    assert len(money) == 20 and all(c[1].get("class") == "num" for c in money)
    assert "November 2026 (Europe/Berlin)" in page
    assert "▲ 50.0%" in page and "vs €1,000.00 for October 2026" in page
    assert "20 of 56 rows; all rows attached." in page


def test_rows_line_is_honest() -> None:
    assert rows_line(_view(0, 0)) == "No rows for this period."
    assert rows_line(_view(1, 1)) == "1 row."
    assert rows_line(_view(12, 12)) == "12 rows."
    assert rows_line(_view(56, 56, attached=False)) == "20 of 56 rows."


def test_plain_text_carries_the_summary_and_the_table() -> None:
    text = render_text(_view(2, 2))
    lines = text.splitlines()
    assert lines[:2] == ["Revenue", "November 2026 (Europe/Berlin)"]
    assert "- Revenue €1,500.00 (▲ 50.0% vs €1,000.00 for October 2026)" in lines
    header = next(i for i, line in enumerate(lines) if line.startswith("Region"))
    assert lines[header + 2] == "r0      €1,234.50"
    assert lines[header].endswith("Revenue") and len(lines[header]) == len(lines[header + 2])


def test_a_single_wide_row_reads_as_a_statement() -> None:
    shown = [Display(f"c{i}", f"Line {i}", "currency", currency="EUR") for i in range(6)]
    view = ReportView("P&L", "November 2026 (Europe/Berlin)", shown,
                      [tuple(Decimal(1000 * i) for i in range(6))], 1)
    page = render_html(view)
    assert '<tr><th>Line 5</th><td class="num" style="text-align:right">€5,000.00</td></tr>' \
        in page and "<thead>" not in page
    lines = render_text(view).splitlines()
    assert "Line 0      €0.00" in lines and "Line 5  €5,000.00" in lines
