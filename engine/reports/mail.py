"""The report as people read it, in HTML (mail and archived summary) and plain text: key
figures first, then the first rows with labels and formatted, right-aligned numbers."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.reports.figures import DEFAULT_LOCALE, Display, KeyFigure, fmt_number, fmt_value

SUMMARY_ROWS = 20
TEXT_WIDTH = 28  # the widest a plain-text cell gets before it is cut
# A single row this wide reads better as a list of label and value (a P&L statement).
VERTICAL_FROM = 5


@dataclass(frozen=True)
class ReportView:
    """What a report run shows: no I/O, everything already computed."""

    title: str
    heading: str  # the period in words with its zone
    shown: Sequence[Display]
    rows: Sequence[Sequence[Any]]  # the first rows (at least SUMMARY_ROWS when there are)
    total: int
    figures: Sequence[KeyFigure] = ()
    alerts: Sequence[str] = ()
    chart_src: str | None = None  # "cid:chart" in a mail, a data: URL in a file
    attached: bool = False  # all rows are in the attachments
    note: str = ""  # e.g. where too-large files are archived
    link: str | None = None  # the archived outputs, when reports.public_url is set
    description: str = ""
    locale: str = DEFAULT_LOCALE  # the row counts' separators (cells follow their Display)


def rows_line(view: ReportView) -> str:
    """'No rows for this period.', '1 row.', '12 rows.', '20 of 56 rows; all rows attached.'"""
    if view.total == 0:
        return "No rows for this period."
    shown = min(view.total, SUMMARY_ROWS, len(view.rows))
    total = fmt_number(Decimal(view.total), 0, view.locale)
    if shown == view.total:
        return f"{total} row{'' if view.total == 1 else 's'}."
    tail = "; all rows attached" if view.attached else ""
    return f"{fmt_number(Decimal(shown), 0, view.locale)} of {total} rows{tail}."


_CSS = ("body{font-family:Helvetica,Arial,sans-serif;color:#222;max-width:960px}"
        "h1{font-size:20px;margin:0}.period{color:#555;margin:2px 0 12px}"
        "table{border-collapse:collapse;font-size:13px}"
        "th{background:#f2f2f2;text-align:left}td,th{border:1px solid #ddd;padding:3px 8px}"
        "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
        ".alert{color:#a00}.figures{font-size:15px;margin:8px 0}.figures li{margin:2px 0}"
        ".change{font-weight:bold}img{max-width:100%}")


def _cell(value: Any, shown: Display, tag: str = "td") -> str:
    cls = ' class="num" style="text-align:right"' if shown.numeric else ""
    return f"<{tag}{cls}>{html.escape(fmt_value(value, shown))}</{tag}>"


def _header(shown: Display) -> str:
    cls = ' class="num" style="text-align:right"' if shown.numeric else ""
    hint = f' title="{html.escape(shown.description)}"' if shown.description else ""
    return f"<th{cls}{hint}>{html.escape(shown.label)}</th>"


def _figure(fig: KeyFigure) -> str:
    change = fig.change
    tail = ""
    if change is not None and fig.previous is not None:
        css = "up" if change.startswith("▲") else "down" if change.startswith("▼") else ""
        tail = (f' <span class="change {css}">{html.escape(change)}</span> <span class="prev">'
                f"vs {html.escape(fmt_value(fig.previous, fig.shown))}"
                f"{' for ' + html.escape(fig.previous_words) if fig.previous_words else ''}"
                "</span>")
    return (f'<li data-figure="{html.escape(fig.shown.name)}"><strong>'
            f"{html.escape(fig.shown.label)}</strong> {html.escape(fig.text)}{tail}</li>")


def render_html(view: ReportView) -> str:
    """The HTML page or mail part."""
    title = html.escape(view.title)
    head = "".join(_header(d) for d in view.shown)
    body = "".join("<tr>" + "".join(_cell(v, d) for v, d in zip(row, view.shown, strict=False))
                   + "</tr>" for row in view.rows[:SUMMARY_ROWS])
    alerts = "".join(f'<p class="alert"><strong>Alert:</strong> {html.escape(a)}</p>'
                     for a in view.alerts)
    figures = (f'<ul class="figures">{"".join(_figure(f) for f in view.figures)}</ul>'
               if view.figures else "")
    image = (f'<p><img id="chart" src="{html.escape(view.chart_src)}" '
             f'alt="chart of {title}" width="800"></p>' if view.chart_src else "")
    note = f" {html.escape(view.note)}" if view.note else ""
    link = (f'<p><a href="{html.escape(view.link)}">All outputs of this run</a></p>'
            if view.link else "")
    table = (f'<table id="rows"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
             if view.total else "")
    if _vertical(view):
        pairs = "".join(f"<tr><th>{html.escape(d.label)}</th>{_cell(v, d)}</tr>"
                        for v, d in zip(view.rows[0], view.shown, strict=False))
        table = f'<table id="rows" class="vertical"><tbody>{pairs}</tbody></table>'
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_CSS}</style></head><body><h1>{title}</h1>"
            f'<p class="period">{html.escape(view.heading)}</p>{alerts}{figures}{image}'
            f'<p class="rows">{html.escape(rows_line(view))}{note}</p>{table}{link}'
            "</body></html>")


def _vertical(view: ReportView) -> bool:
    return view.total == 1 and len(view.rows) == 1 and len(view.shown) >= VERTICAL_FROM


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_WIDTH else text[: TEXT_WIDTH - 1] + "…"


def render_text(view: ReportView) -> str:
    """The plain-text part: the same summary and table, aligned in columns."""
    lines = [view.title, view.heading, ""]
    lines += [f"Alert: {a}" for a in view.alerts]
    lines += [f"- {f.sentence()}" for f in view.figures]
    if view.alerts or view.figures:
        lines.append("")
    lines.append(rows_line(view) + (f" {view.note}" if view.note else ""))
    if _vertical(view):
        width = max(len(d.label) for d in view.shown)
        values = [fmt_value(v, d) for v, d in zip(view.rows[0], view.shown, strict=False)]
        right = max(len(v) for v in values)
        lines.append("")
        lines += [f"{d.label.ljust(width)}  {v.rjust(right) if d.numeric else v}".rstrip()
                  for d, v in zip(view.shown, values, strict=False)]
    elif view.total:
        table = [[_clip(d.label) for d in view.shown]]
        table += [[_clip(fmt_value(v, d)) for v, d in zip(row, view.shown, strict=False)]
                  for row in view.rows[:SUMMARY_ROWS]]
        widths = [max(len(r[i]) for r in table) for i in range(len(view.shown))]
        lines.append("")
        for n, cells in enumerate(table):
            lines.append("  ".join(c.rjust(w) if d.numeric else c.ljust(w)
                                   for c, w, d in zip(cells, widths, view.shown, strict=False))
                         .rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
    if view.link:
        lines += ["", f"All outputs: {view.link}"]
    return "\n".join(lines) + "\n"
