"""Run a report's SQL read-only and stream its rows to files, with a manifest written last.

The query runs once, in a READ ONLY transaction with a statement timeout and a dedicated
application_name, as a COPY streamed to the CSV; the typed rows (XLSX, summary, figures,
alerts) are that CSV read back: memory stays flat whatever the row count.
Outputs go to a temporary directory renamed into place, so a crash never leaves a run that
looks complete; running the same slot again replaces its outputs with the same content.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.dbschema.pgnames import literal
from engine.dbschema.roles import session_warning
from engine.definitions.models.base import format_duration
from engine.errors import DatabaseError, JobError, MarketopsError, TransientError
from engine.reports.figures import (
    DEFAULT_LOCALE,
    Display,
    FigureTotals,
    Reference,
    key_figures,
)
from engine.reports.mail import ReportView, render_html
from engine.reports.thresholds import Threshold
from runners.postgres.connection import (
    Cancelled,
    ConnectionFailed,
    PostgresError,
    ReadOnlyRefused,
    Refused,
    bind_literally,
    connect,
    mask_dsn,
    result_types,
    text_loader,
)
from runners.postgres.roles import session_powers
from runners.postgres.tools import Psql
from runners.report.render import SAMPLE_ROWS, XlsxWriter, chart_png
from runners.storage.directories import staged_directory

FETCH_ROWS = 10_000
CHART_ROWS = 20


@dataclass(frozen=True)
class ChartSpec:
    kind: str
    x: str
    y: list[str]
    title: str
    series: str | None = None


@dataclass(frozen=True)
class ReportRequest:
    """A fully resolved report run: no YAML, no environment lookups."""

    report_id: str
    dsn: str
    sql: str  # with %(name)s placeholders
    params: dict[str, Any]
    statement_timeout: timedelta
    max_rows: int
    out_dir: Path  # the run's final directory
    timezone: str  # IANA zone: the session TimeZone, so date casts follow the report's calendar
    formats: tuple[str, ...] = ("csv",)
    title: str = ""
    subtitle: str = ""
    chart: ChartSpec | None = None
    alerts: tuple[Threshold, ...] = ()
    psql: Path | None = None  # when set, the CSV is written by psql's COPY (fastest)
    declared: Mapping[str, Display] = field(default_factory=dict)  # by output column
    references: Mapping[str, Reference] = field(default_factory=dict)  # by compare kind
    about: tuple[tuple[str, str], ...] = ()  # the XLSX About sheet (description, period, ...)
    locale: str = DEFAULT_LOCALE  # how figures read in the HTML and the chart

    def shown(self, columns: list[str]) -> list[Display]:
        return [self.declared.get(c) or Display(c, c, locale=self.locale) for c in columns]


@dataclass(frozen=True)
class ReportResult:
    rows: int
    columns: list[str]
    files: dict[str, dict[str, Any]]
    seconds: float
    directory: Path
    alerts: list[str]
    head: list[tuple[Any, ...]]
    fired: tuple[str, ...] = ()  # the names of the thresholds behind `alerts`
    figures: dict[str, str] = field(default_factory=dict)  # key figures, exact decimal text
    warnings: tuple[str, ...] = ()  # what the session could do beyond reading


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def run_report(request: ReportRequest,
               before_publish: Callable[[], None] | None = None) -> ReportResult:
    """Execute and write the outputs and `manifest.json` (last, atomically); `before_publish`
    may raise to keep the finished outputs from replacing what is in place."""
    began = time.perf_counter()
    with staged_directory(request.out_dir, before_publish or (lambda: None)) as staging:
        streamed = _stream(request, staging)
        crossed = [a for a in request.alerts if streamed.fired(a)]
        fired = [f"{a.name}: {a.message}" for a in crossed]
        if "html" in request.formats:
            _write_html(request, staging, streamed, fired)
        files = {path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path),
                             "format": path.suffix.lstrip(".")}
                 for path in sorted(staging.iterdir())}
        seconds = time.perf_counter() - began
        manifest = {
            "report": request.report_id, "rows": streamed.rows, "columns": streamed.columns,
            "files": files, "alerts": fired, "duration_seconds": round(seconds, 3),
            "thresholds_crossed": [a.name for a in crossed],
            "sql_sha256": hashlib.sha256(request.sql.encode()).hexdigest(),
            "parameters": {k: _cell(v) for k, v in request.params.items()},
            "figures": streamed.figures(),
            "compared": {kind: {"period": ref.words, "figures": dict(ref.figures)
                                if ref.figures is not None else None}
                         for kind, ref in request.references.items()},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return ReportResult(streamed.rows, streamed.columns, files, seconds, request.out_dir, fired,
                        streamed.head, tuple(a.name for a in crossed), streamed.figures(),
                        tuple(streamed.warnings))


def _write_html(request: ReportRequest, staging: Path, streamed: _Streamed,
                fired: list[str]) -> None:
    src = None
    shown = request.shown(streamed.columns)
    if request.chart is not None and streamed.head:
        # A split chart shows every row it has (a line per cohort needs all the weeks).
        rows = streamed.head if request.chart.series else streamed.head[:CHART_ROWS]
        chart = chart_png(rows, streamed.columns, request.chart.kind, request.chart.x,
                          request.chart.y, request.chart.title, shown, streamed.rows,
                          request.chart.series)
        (staging / f"{request.report_id}.png").write_bytes(chart)
        src = "data:image/png;base64," + base64.b64encode(chart).decode()
    figures = key_figures(shown, streamed.figures(), request.references)
    view = ReportView(request.title or request.report_id, request.subtitle, shown,
                      streamed.head, streamed.rows, figures, fired, src,
                      locale=request.locale)
    (staging / f"{request.report_id}.html").write_text(render_html(view), encoding="utf-8")


@dataclass
class _Streamed:
    rows: int
    columns: list[str]
    head: list[tuple[Any, ...]]
    any_crossed: dict[str, bool]
    all_crossed: dict[str, bool]
    totals: FigureTotals | None = None
    warnings: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, str]:
        return self.totals.figures() if self.totals is not None else {}

    def fired(self, alert: Threshold) -> bool:
        if alert.when == "all_rows":
            return self.rows > 0 and self.all_crossed.get(alert.name, False)
        return self.any_crossed.get(alert.name, False)


def _stream(request: ReportRequest, staging: Path) -> _Streamed:
    timeout_ms = int(request.statement_timeout.total_seconds() * 1000)
    state = _Streamed(0, [], [], {a.name: False for a in request.alerts},
                      {a.name: True for a in request.alerts})
    try:
        with connect(request.dsn, application=f"marketops report/{request.report_id}") as conn:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                conn.execute(f"set local statement_timeout = {timeout_ms}".encode())
                conn.execute("select set_config('TimeZone', %s, true)", [request.timezone])
                warning = session_warning(session_powers(conn))
                state.warnings = [warning] if warning else []
                # The SQL is evaluated once, by the COPY that writes the CSV; the typed pass
                # (XLSX, summary, alerts) reads that CSV back with the result's column types,
                # so a volatile or side-effecting query cannot give two different answers or
                # act twice.
                if request.psql is not None:
                    _psql_csv(request, staging, conn, state, timeout_ms)
                else:
                    _copy_csv(request, staging, conn, state)
                keys = any(d.key for d in request.declared.values())
                if "xlsx" in request.formats or "html" in request.formats or request.alerts \
                        or keys:
                    types = result_types(conn, request.sql, request.params)
                    _typed_rows(request, staging, _csv_batches(conn, staging / (
                        f"{request.report_id}.csv"), types), state)
    except (DatabaseError, PostgresError) as exc:
        raise query_failure(request, exc) from None
    return state


def query_failure(request: ReportRequest, exc: DatabaseError | PostgresError
                  ) -> MarketopsError:
    """A report query's failure as the error a run records: a refused write, a timeout or a
    bad query ends the run; an unreachable or lost connection is tried again."""
    name = f"report/{request.report_id}"
    if isinstance(exc, ReadOnlyRefused):
        return JobError(f"{name} tried to write and was refused by the read-only "
                        f"transaction: {exc.diag.message_primary}")
    if isinstance(exc, Refused):
        return JobError(f"{name} was refused: {exc.diag.message_primary} (reports connect as "
                        "roles.reports: run marketops roles apply after changing what "
                        "reports read)")
    if isinstance(exc, Cancelled):
        return JobError(f"{name} exceeded its statement timeout "
                        f"({format_duration(request.statement_timeout)}): "
                        f"{exc.diag.message_primary}")
    if isinstance(exc, DatabaseError):  # could not connect
        return TransientError(f"{name}: {exc}")
    if isinstance(exc, ConnectionFailed):
        return TransientError(f"{name}: connection to {mask_dsn(request.dsn)} lost: {exc}")
    return JobError(f"{name} failed: {exc.diag.message_primary or exc}")


class _Records:
    """The lines csv.reader consumes, kept until taken: each record's raw text."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.seen: list[str] = []

    def __iter__(self) -> _Records:
        return self

    def __next__(self) -> str:
        line: str = next(self.handle)
        self.seen.append(line)
        return line

    def take(self) -> str:
        text = "".join(self.seen)
        self.seen = []
        return text.removesuffix("\n").removesuffix("\r")


_QUOTED = re.compile(r'"(?:[^"]|"")*"')


def _quoted(record: str) -> list[bool]:
    """Which fields of a CSV record are quoted (PostgreSQL quotes an empty string, never a
    NULL: that is how the two differ)."""
    flags: list[bool] = []
    pos, end = 0, len(record)
    while True:
        if pos < end and record[pos] == '"':
            match = _QUOTED.match(record, pos)
            flags.append(True)
            pos = match.end() if match else end
        else:
            comma = record.find(",", pos)
            flags.append(False)
            pos = end if comma < 0 else comma
        if pos >= end:
            return flags
        pos += 1


def _holds_empty_strings(path: Path) -> bool:
    """Whether the CSV may hold a quoted empty string (or a doubled quote): only then must
    a record's raw text be looked at to tell '' from NULL."""
    tail = b""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            if b'""' in tail + block[:1] or b'""' in block:
                return True
            tail = block[-1:]
    return False


def _csv_batches(conn: Any, path: Path, types: list[int]) -> Iterator[list[tuple[Any, ...]]]:
    """The CSV's rows as typed values (PostgreSQL's text input, as for a query's rows)."""
    load = text_loader(conn, types)
    exact = _holds_empty_strings(path)
    with path.open(newline="", encoding="utf-8") as handle:
        records = _Records(handle) if exact else None
        reader = csv.reader(records if records is not None else handle)
        next(reader, None)
        if records is not None:
            records.take()
        batch: list[tuple[Any, ...]] = []
        for values in reader:
            if not values:
                values = [""] * len(types)  # one column, NULL: an empty line
            if records is None:  # no quoted empty string anywhere: every empty field is NULL
                batch.append(load([v.encode() if v else None for v in values]))
            else:
                raw = records.take()
                if "" not in values:
                    batch.append(load([v.encode() for v in values]))
                else:
                    batch.append(load([None if v == "" and not q else v.encode()
                                       for v, q in zip(values, _quoted(raw), strict=False)]))
            if len(batch) >= FETCH_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch


def _copy_csv(request: ReportRequest, staging: Path, conn: Any, state: _Streamed) -> None:
    """The CSV, formatted by the server (COPY ... TO STDOUT) and streamed to the file: as fast
    as psql's \\copy, in constant memory."""
    # libpq hands COPY data over one row per chunk (the header first): counting chunks
    # enforces the row cap while streaming, without looking inside them.
    limit = request.max_rows + 1
    chunks = 0
    with conn.cursor() as cursor, \
            (staging / f"{request.report_id}.csv").open("wb", buffering=1 << 20) as out:
        statement = f"COPY ({request.sql}) TO STDOUT WITH (FORMAT csv, HEADER)"
        with cursor.copy(statement, request.params) as copy:
            write = out.write
            for chunk in copy:
                write(chunk)
                chunks += 1
                if chunks > limit:
                    raise JobError(f"report/{request.report_id} returned more than "
                                   f"{request.max_rows:,} rows (limits.max_rows)")
        state.rows = max(cursor.rowcount, 0)
    if state.rows > request.max_rows:
        raise JobError(f"report/{request.report_id} returned more than {request.max_rows:,} "
                       "rows (limits.max_rows)")
    with (staging / f"{request.report_id}.csv").open(newline="", encoding="utf-8") as handle:
        state.columns = next(csv.reader(handle), [])


def _psql_csv(request: ReportRequest, staging: Path, conn: Any, state: _Streamed,
              timeout_ms: int) -> None:
    """The CSV written by psql in C at full speed, reading the very snapshot of our read-only
    transaction (exported to it), so it agrees with the typed pass."""
    assert request.psql is not None
    snapshot = conn.execute("select pg_export_snapshot()").fetchone()[0]
    query = bind_literally(conn, request.sql, request.params)
    target = staging / f"{request.report_id}.csv"
    script = (
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
        f"SET TRANSACTION SNAPSHOT '{snapshot}';\n"
        f"SET LOCAL statement_timeout = {timeout_ms};\n"
        f"SET LOCAL TimeZone = {literal(request.timezone)};\n"
        f"\\o {literal(str(target))}\n"
        f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER);\n"
        "\\o\n"
        "COMMIT;\n")
    done = Psql(request.psql).script(
        request.dsn, f"marketops report/{request.report_id}").run(input=script)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        errors = [line.split("ERROR:", 1)[1].strip() for line in lines if "ERROR:" in line]
        message = errors[0] if errors else (lines[-1] if lines else "psql failed")
        if "read-only transaction" in message:
            raise JobError(f"report/{request.report_id} tried to write and was refused by the "
                           f"read-only transaction: {message}")
        if "statement timeout" in message:
            raise JobError(f"report/{request.report_id} exceeded its statement timeout "
                           f"({format_duration(request.statement_timeout)}): {message}")
        if "could not connect" in message or "connection" in message:
            raise TransientError(f"report/{request.report_id}: {message}")
        raise JobError(f"report/{request.report_id} failed: {message}")
    state.rows = max(_csv_records(target) - 1, 0)
    if state.rows > request.max_rows:
        raise JobError(f"report/{request.report_id} returned more than {request.max_rows:,} "
                       "rows (limits.max_rows)")
    with target.open(newline="", encoding="utf-8") as handle:
        state.columns = next(csv.reader(handle), [])



def _csv_records(path: Path) -> int:
    """Records in a CSV file: newlines outside quoted fields (a quote inside a field is
    doubled, so the parity of the quotes seen tells whether a newline is inside one)."""
    records, inside = 0, False
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            if not inside and b'"' not in block:
                records += block.count(b"\n")
                continue
            parts = block.split(b"\n")
            for part in parts[:-1]:
                inside ^= part.count(b'"') % 2 == 1
                records += not inside
            inside ^= parts[-1].count(b'"') % 2 == 1
    return records


def _typed_rows(request: ReportRequest, staging: Path,
                batches: Iterator[list[tuple[Any, ...]]], state: _Streamed) -> None:
    """Typed rows for the XLSX, the summary and the alerts."""
    checks = [(a, state.columns.index(a.column)) for a in request.alerts
              if a.column in state.columns]
    xlsx: XlsxWriter | None = None
    pending: list[tuple[Any, ...]] = []
    state.totals = FigureTotals(state.columns, request.shown(state.columns))
    for batch in batches:
        state.totals.add(batch)
        if len(state.head) < SAMPLE_ROWS:
            state.head.extend(batch[: SAMPLE_ROWS - len(state.head)])
        for alert, index in checks:
            crossed = [alert.crossed(row[index]) for row in batch]
            state.any_crossed[alert.name] |= any(crossed)
            state.all_crossed[alert.name] &= all(crossed)
        if "xlsx" in request.formats:
            if xlsx is None:
                pending.extend(batch)
                if len(pending) >= SAMPLE_ROWS:
                    xlsx = _open_xlsx(request, staging, state.columns, pending)
                    pending = []
            else:
                xlsx.write(batch)
    if "xlsx" in request.formats:
        if xlsx is None:
            xlsx = _open_xlsx(request, staging, state.columns, pending)
        xlsx.close()


def _open_xlsx(request: ReportRequest, staging: Path, columns: list[str],
               rows: list[tuple[Any, ...]]) -> XlsxWriter:
    workbook = XlsxWriter(staging / f"{request.report_id}.xlsx", columns, rows,
                          request.shown(columns), request.title or request.report_id,
                          request.about)
    workbook.write(rows)
    return workbook
