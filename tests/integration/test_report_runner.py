"""The report runner on PostgreSQL: read-only, time-limited, capped, atomic, reproducible."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.errors import JobError, TransientError
from engine.reports.sqlparams import to_pyformat
from runners.postgres.connection import connect
from runners.postgres.embedded import embedded_bin_dir
from runners.report.query import ReportRequest, run_report
from tests.conftest import free_port

SETUP = """
create schema shop;
create table shop.orders (id int primary key, total numeric(12,2), placed_at timestamptz);
insert into shop.orders values (1, 10.50, '2026-03-01 10:00+00'), (2, 20.00, '2026-03-01 23:30+00'),
    (3, 5.25, '2026-03-02 08:00+00');
create table shop.audit (note text);
create function sneaky() returns int language sql as
    $$ insert into shop.audit values ('written'); select 1 $$;
"""


@pytest.fixture(params=["psql", "psycopg"])
def exporter(request: pytest.FixtureRequest) -> Path | None:
    """Both ways the CSV is written: by psql's COPY, or streamed through psycopg."""
    return embedded_bin_dir() / "psql" if request.param == "psql" else None


@pytest.fixture
def shop(new_database: Callable[..., str]) -> str:
    dsn = new_database()
    with connect(dsn, autocommit=True) as conn:
        conn.execute(SETUP.encode())
    return dsn


def _request(dsn: str, sql: str, out: Path, psql: Path | None = None,
             **changes: object) -> ReportRequest:
    params = {"period_start": datetime(2026, 3, 1, tzinfo=UTC),
              "period_end": datetime(2026, 3, 2, tzinfo=UTC)}
    base = dict(report_id="daily", dsn=dsn, sql=to_pyformat(sql, set(params)), params=params,
                statement_timeout=timedelta(seconds=30), max_rows=1000, out_dir=out, timezone="UTC",
                psql=psql)
    base.update(changes)
    return ReportRequest(**base)  # type: ignore[arg-type]


def test_rows_manifest_and_reproducibility(shop: str, tmp_path: Path,
                                           exporter: Path | None) -> None:
    sql = ("select o.id, o.total, o.placed_at from shop.orders o where o.placed_at >= "
           ":period_start and o.placed_at < :period_end order by o.id")
    out = tmp_path / "daily" / "2026-03-01"
    result = run_report(_request(shop, sql, out, exporter))
    assert result.rows == 2 and result.columns == ["id", "total", "placed_at"]
    with (out / "daily.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows == [["id", "total", "placed_at"], ["1", "10.50", "2026-03-01 10:00:00+00"],
                    ["2", "20.00", "2026-03-01 23:30:00+00"]]
    manifest = json.loads((out / "manifest.json").read_text())
    digest = hashlib.sha256((out / "daily.csv").read_bytes()).hexdigest()
    assert manifest["files"]["daily.csv"]["sha256"] == digest and manifest["rows"] == 2
    again = run_report(_request(shop, sql, out, exporter))
    assert again.files == result.files  # the same slot gives the same output
    assert sorted(p.name for p in out.parent.iterdir()) == ["2026-03-01"]  # no leftovers


def test_a_write_at_run_time_is_refused_and_writes_nothing(shop: str, tmp_path: Path,
                                                           exporter: Path | None) -> None:
    out = tmp_path / "x"
    with pytest.raises(JobError, match="read-only transaction"):
        run_report(_request(shop, "select sneaky() as n", out, exporter))
    with connect(shop) as conn:
        assert conn.execute("select count(*) from shop.audit").fetchone()[0] == 0
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_statement_timeout(shop: str, tmp_path: Path, exporter: Path | None) -> None:
    with pytest.raises(JobError, match="statement timeout"):
        run_report(_request(shop, "select pg_sleep(2) as s", tmp_path / "x", exporter,
                            statement_timeout=timedelta(milliseconds=200)))
    assert list(tmp_path.iterdir()) == []


def test_row_cap(shop: str, tmp_path: Path, exporter: Path | None) -> None:
    with pytest.raises(JobError, match="more than 2 rows"):
        run_report(_request(shop, "select g from generate_series(1, 50000) g", tmp_path / "x",
                            exporter,
                            max_rows=2))
    assert list(tmp_path.iterdir()) == []


def test_unreachable_database_is_transient(tmp_path: Path, exporter: Path | None) -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{free_port()}/x"
    with pytest.raises(TransientError, match="cannot connect"):
        run_report(_request(dsn, "select 1 as a", tmp_path / "x", exporter))


def test_failed_rerun_keeps_the_previous_complete_output(shop: str, tmp_path: Path,
                                                         exporter: Path | None) -> None:
    out = tmp_path / "daily"
    run_report(_request(shop, "select 1 as a", out, exporter))
    before = (out / "manifest.json").read_text()
    with pytest.raises(JobError):
        run_report(_request(shop, "select 1/0 as a", out, exporter))
    assert (out / "manifest.json").read_text() == before


def test_csv_records_with_quoted_newlines(shop: str, tmp_path: Path,
                                          exporter: Path | None) -> None:
    sql = "select e'two\\nlines' as a, 'x\"y' as b union all select 'plain', 'z'"
    result = run_report(_request(shop, sql, tmp_path / "q", exporter))
    assert result.rows == 2


CALENDAR_SQL = """
select (:period_start)::date as day,
       count(*) filter (where at::date = (:period_start)::date) as events_that_day,
       count(*) filter (where at >= :period_start and at < :period_end) as events_in_period,
       min(extract(hour from at)) filter (where at::date = (:period_start)::date) as first_hour,
       count(distinct date_trunc('day', at)) as local_days
from shop.events
"""


@pytest.mark.parametrize("server_zone", ["UTC", "America/Los_Angeles"])
def test_report_sql_follows_the_reports_calendar_not_the_servers(
        new_database: Callable[..., str], tmp_path: Path, exporter: Path | None,
        server_zone: str) -> None:
    """A Europe/Berlin daily report for Sunday 25 October 2026 (25 hours: DST ends at 03:00):
    date casts, truncation and extraction follow Berlin whatever the server's TimeZone."""
    from zoneinfo import ZoneInfo

    from engine.scheduling.periods import CalendarPeriod, calendar_period

    dsn = new_database()
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"alter database {conn.info.dbname} set timezone = '{server_zone}'".encode())
        conn.execute(b"""
            create schema shop;
            create table shop.events (at timestamptz not null);
            insert into shop.events values
              ('2026-10-24 23:50+02'),   -- Saturday, Berlin
              ('2026-10-25 00:30+02'),   -- Sunday 00:30 Berlin = Saturday 22:30 UTC
              ('2026-10-25 02:30+02'),   -- the first 02:30 of the repeated hour
              ('2026-10-25 02:30+01'),   -- the second one
              ('2026-10-25 23:30+01'),   -- Sunday 23:30 Berlin = Sunday 22:30 UTC
              ('2026-10-26 00:10+01');   -- Monday, Berlin
        """)
    berlin = ZoneInfo("Europe/Berlin")
    period = calendar_period(CalendarPeriod.PREVIOUS_DAY,
                             datetime(2026, 10, 26, 6, tzinfo=berlin), berlin)
    params = {"period_start": period.start, "period_end": period.end}
    request = ReportRequest("calendar", dsn, to_pyformat(CALENDAR_SQL, set(params)), params,
                            timedelta(seconds=30), 100, tmp_path / "calendar", "Europe/Berlin",
                            psql=exporter)
    with (run_report(request).directory / "calendar.csv").open(newline="") as handle:
        [row] = list(csv.DictReader(handle))
    assert row == {"day": "2026-10-25", "events_that_day": "4", "events_in_period": "4",
                   "first_hour": "0", "local_days": "3"}
