"""Report outputs besides CSV and HTML: a real spreadsheet and a chart.

The XLSX is written while rows stream (xlsxwriter's constant-memory mode): typed cells in the
declared number formats, a bold header of labels, the first row frozen, an autofilter, column
widths from the header and the first rows, and an About sheet. The chart is a PNG drawn
headless. The HTML itself is rendered in the core (engine.reports.mail).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import xlsxwriter

from engine.reports.figures import Display, fmt_value, tick_text, xlsx_number_format

SAMPLE_ROWS = 1000


def sheet_name(title: str) -> str:
    """A worksheet name from a report title: at most 31 characters, none of []:*?/\\."""
    name = re.sub(r"[\[\]:*?/\\]", " ", title).strip()[:31].strip()
    return name or "report"


class XlsxWriter:
    """Streams rows into a workbook: the report's sheet (labels, number formats from the
    declared columns, autofilter) and an About sheet."""

    def __init__(self, path: Path, columns: list[str], sample: Sequence[Sequence[Any]],
                 shown: Sequence[Display] | None = None, title: str = "report",
                 about: Sequence[tuple[str, str]] = ()) -> None:
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True,
                                                    "remove_timezone": True,
                                                    "strings_to_numbers": False})
        self.sheet = self.book.add_worksheet(sheet_name(title))
        self.bold = self.book.add_format({"bold": True, "bottom": 1})
        self.when = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.day = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.shown = list(shown) if shown is not None else [Display(c, c) for c in columns]
        self.formats: list[Any] = []
        for display in self.shown:
            number = xlsx_number_format(display)
            self.formats.append(self.book.add_format({"num_format": number}) if number
                                else None)
        for index, display in enumerate(self.shown):
            longest = max([len(display.label),
                           *(len(fmt_value(row[index], display)) for row in sample)])
            self.sheet.set_column(index, index, min(60, max(8, longest + 2)),
                                  self.formats[index])
        self.sheet.freeze_panes(1, 0)
        for index, display in enumerate(self.shown):
            self.sheet.write_string(0, index, display.label, self.bold)
        self.columns = len(columns)
        self.row = 1
        if about:
            info = self.book.add_worksheet("About")
            info.set_column(0, 0, 18)
            info.set_column(1, 1, 100)
            for n, (key, value) in enumerate(about):
                info.write_string(n, 0, key, self.bold)
                info.write_string(n, 1, value)

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
            self.sheet.write_number(row, col, float(value), self.formats[col])
        elif isinstance(value, timedelta):  # hours, as the duration format reads them
            self.sheet.write_number(row, col, value.total_seconds() / 3600, self.formats[col])
        elif isinstance(value, datetime):
            self.sheet.write_datetime(row, col, value.replace(tzinfo=None), self.when)
        elif isinstance(value, date):
            self.sheet.write_datetime(row, col, datetime.combine(value, datetime.min.time()),
                                      self.day)
        elif value != "":  # an empty text is an empty cell, not ''
            self.sheet.write_string(row, col, _text(value))

    def close(self) -> None:
        if self.columns:
            self.sheet.autofilter(0, 0, max(self.row - 1, 0), self.columns - 1)
        self.book.close()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def chart_png(rows: Sequence[Sequence[Any]], columns: list[str], kind: str, x: str,
              ys: list[str], title: str, shown: Sequence[Display] | None = None,
              total: int | None = None, series: str | None = None) -> bytes:
    """A PNG chart of the first rows (headless matplotlib): labelled axes from the declared
    columns, a percent axis for percent columns, ticks in the columns' locale, one line (or
    bar group member) per value of `series`, and the top N stated in the title."""
    import matplotlib.pyplot as plt

    figure = chart_figure(rows, columns, kind, x, ys, title, shown, total, series)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def chart_figure(rows: Sequence[Sequence[Any]], columns: list[str], kind: str, x: str,
                 ys: list[str], title: str, shown: Sequence[Display] | None = None,
                 total: int | None = None, series: str | None = None) -> Any:
    """The matplotlib Figure chart_png draws (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    by_name = {d.name: d for d in shown or ()}
    xi = columns.index(x)
    lines = _lines(rows, columns, x, ys, series, by_name)
    xs = list(dict.fromkeys(r[xi] for r in rows))
    if xs and all(isinstance(v, int | float | Decimal | date) and not isinstance(v, bool)
                  for v in xs):
        xs.sort()  # a time series or a numbered axis reads left to right
    labels = [_text(v) for v in xs]
    figure, axes = plt.subplots(figsize=(8, 4), dpi=100)
    if len(lines) > 10:  # the default cycle has ten colours: no two lines alike
        axes.set_prop_cycle(color=[plt.get_cmap("tab20")(i % 20) for i in range(len(lines))])
    width = 0.8 / max(len(lines), 1)
    for n, (label, points) in enumerate(lines):
        # A missing point is a gap (a young cohort has no late weeks), not a zero.
        values = [points.get(key, float("nan")) for key in labels]
        positions = list(range(len(values)))
        if kind == "bar":
            axes.bar([p + n * width - 0.4 + width / 2 for p in positions], values, width=width,
                     label=label)
        elif kind == "area":
            axes.fill_between(positions, values, alpha=0.4, label=label)
        else:
            axes.plot(positions, values, marker="o", label=label)
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    first = by_name.get(ys[0])
    if first is not None and first.numeric:
        # Ticks in the report's locale (percent of a 0-1 share, money with its symbol), with
        # the decimals their spacing needs.
        axes.yaxis.set_major_formatter(_locale_ticks(first))
    axes.set_xlabel(by_name[x].label if x in by_name else x)
    if len(ys) == 1:
        axes.set_ylabel(first.label if first is not None else ys[0])
    if total is not None and total > len(rows):
        title = f"{title} (first {len(rows)} of {total:,} rows)"
    axes.set_title(title)
    if len(lines) > 1:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                    ncol=2 if len(lines) > 12 else 1, frameon=False)
    figure.tight_layout()
    return figure


def _locale_ticks(shown: Display) -> Any:
    from matplotlib.ticker import Formatter

    class LocaleTicks(Formatter):
        """Each tick as tick_text writes it, decimals from the spacing of all the ticks."""

        step = 1.0

        def format_ticks(self, values: Sequence[float]) -> list[str]:
            self.step = _step(list(values))
            return [self(v, i) for i, v in enumerate(values)]

        def __call__(self, x: float, pos: int | None = None) -> str:
            return tick_text(x, shown, self.step)

    return LocaleTicks()


def _step(locs: Sequence[float]) -> float:
    gaps = [b - a for a, b in pairwise(locs) if b > a]
    return min(gaps) if gaps else 1.0


def _lines(rows: Sequence[Sequence[Any]], columns: list[str], x: str, ys: list[str],
           series: str | None, by_name: Mapping[str, Display]
           ) -> list[tuple[str, dict[str, float]]]:
    """(legend label, x label -> value) per plotted line: one per y, or per series value."""
    xi = columns.index(x)
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        for y in ys:
            yi = columns.index(y)
            name = (_text(row[columns.index(series)]) if series is not None
                    else by_name[y].label if y in by_name else y)
            value = float(row[yi]) if row[yi] is not None else 0.0
            out.setdefault(name, {})[_text(row[xi])] = value
    return list(out.items())
