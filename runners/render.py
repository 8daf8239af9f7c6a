"""Report outputs besides CSV: a real spreadsheet, an HTML summary and a chart.

The XLSX is written while rows stream (xlsxwriter's constant-memory mode): typed cells, a bold
header, the first row frozen, column widths from the header and the first rows. The HTML
summary shows the first rows and, when the report declares a chart, a PNG drawn headless.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter

SAMPLE_ROWS = 1000
SUMMARY_ROWS = 20


class XlsxWriter:
    """Streams rows into a workbook with one sheet."""

    def __init__(self, path: Path, columns: list[str], sample: Sequence[Sequence[Any]]) -> None:
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True,
                                                    "remove_timezone": True,
                                                    "strings_to_numbers": False})
        self.sheet = self.book.add_worksheet("report")
        self.bold = self.book.add_format({"bold": True, "bottom": 1})
        self.when = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.day = self.book.add_format({"num_format": "yyyy-mm-dd"})
        for index, name in enumerate(columns):
            longest = max([len(name), *(len(_text(row[index])) for row in sample)])
            self.sheet.set_column(index, index, min(60, max(8, longest + 2)))
        self.sheet.freeze_panes(1, 0)
        for index, name in enumerate(columns):
            self.sheet.write_string(0, index, name, self.bold)
        self.row = 1

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for values in rows:
            for index, value in enumerate(values):
                self._cell(self.row, index, value)
            self.row += 1

    def _cell(self, row: int, col: int, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            self.sheet.write_boolean(row, col, value)
        elif isinstance(value, int | float | Decimal):
            self.sheet.write_number(row, col, float(value))
        elif isinstance(value, datetime):
            self.sheet.write_datetime(row, col, value.replace(tzinfo=None), self.when)
        elif isinstance(value, date):
            self.sheet.write_datetime(row, col, datetime.combine(value, datetime.min.time()),
                                      self.day)
        else:
            self.sheet.write_string(row, col, _text(value))

    def close(self) -> None:
        self.book.close()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def chart_png(rows: Sequence[Sequence[Any]], columns: list[str], kind: str, x: str,
              ys: list[str], title: str) -> bytes:
    """A PNG chart of the first rows (headless matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xi = columns.index(x)
    labels = [_text(r[xi]) for r in rows]
    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    width = 0.8 / max(len(ys), 1)
    for n, y in enumerate(ys):
        yi = columns.index(y)
        values = [float(r[yi]) if r[yi] is not None else 0.0 for r in rows]
        positions = list(range(len(values)))
        if kind == "bar":
            axes.bar([p + n * width for p in positions], values, width=width, label=y)
        elif kind == "area":
            axes.fill_between(positions, values, alpha=0.4, label=y)
        else:
            axes.plot(positions, values, marker="o", label=y)
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def summary_html(title: str, subtitle: str, columns: list[str],
                 rows: Sequence[Sequence[Any]], total: int, chart: bytes | None,
                 chart_src: str | None = None, alerts: Sequence[str] = ()) -> str:
    """The HTML summary: alerts, the chart, the first rows."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>" for v in row)
                   + "</tr>" for row in rows[:SUMMARY_ROWS])
    image = ""
    if chart is not None:
        src = chart_src or "data:image/png;base64," + base64.b64encode(chart).decode()
        image = f'<p><img src="{src}" alt="chart of {html.escape(title)}"></p>'
    warning = "".join(f'<p class="alert"><strong>Alert:</strong> {html.escape(a)}</p>'
                      for a in alerts)
    more = f"<p>First {min(total, SUMMARY_ROWS)} of {total:,} rows.</p>" if total else \
        "<p>No rows for this period.</p>"
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}.alert{color:#a00}</style></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>{warning}"
            f"{image}{more}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            "</table></body></html>")
