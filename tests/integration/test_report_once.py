"""A report's SQL is evaluated once per run: the typed pass (XLSX, summary, alerts) reads
back what the CSV's one execution wrote, values and NULLs alike."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from runners.postgres.embedded import embedded_bin_dir
from runners.report.query import ReportRequest, run_report

SQL = """select g as n, random() as r, clock_timestamp() as at,
       case g %% 4 when 0 then null when 1 then '' when 2 then 'a,"b"' || chr(10) || 'c'
            else 'plain' end as note,
       case when g %% 3 = 0 then null else g * 1.5 end as half
from generate_series(1, %(count)s) g order by g"""


@pytest.fixture(params=["psql", "psycopg"])
def exporter(request: pytest.FixtureRequest) -> Path | None:
    return embedded_bin_dir() / "psql" if request.param == "psql" else None


def test_the_csv_and_the_typed_rows_come_from_one_execution(
        new_database: Callable[..., str], tmp_path: Path, exporter: Path | None) -> None:
    out = tmp_path / "once"
    done = run_report(ReportRequest("once", new_database(), SQL, {"count": 40},
                                    timedelta(seconds=30), 1000, out, "UTC", ("csv", "html"),
                                    psql=exporter))
    with (out / "once.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    assert done.rows == len(rows) == 40 and len(done.head) >= 20
    for typed, text in zip(done.head, rows, strict=False):
        n, r, at, note, half = typed
        assert str(n) == text[0] and r == float(text[1])  # random() ran once
        assert at == datetime.fromisoformat(text[2] + ":00")
        assert note == (None if n % 4 == 0 else text[3])
        assert note != "" or n % 4 == 1
        assert half == (None if n % 3 == 0 else Decimal(text[4]))
    assert [t[3] for t in done.head[:4]] == ["", 'a,"b"\nc', "plain", None]


def test_nulls_without_any_empty_string(new_database: Callable[..., str], tmp_path: Path,
                                        exporter: Path | None) -> None:
    sql = ("select g as n, case when g %% 2 = 0 then null else 'x' || g end as note "
           "from generate_series(1, %(count)s) g order by g")
    done = run_report(ReportRequest("nulls", new_database(), sql, {"count": 6},
                                    timedelta(seconds=30), 100, tmp_path / "n", "UTC",
                                    ("csv", "html"), psql=exporter))
    assert done.head == [(1, "x1"), (2, None), (3, "x3"), (4, None), (5, "x5"), (6, None)]
