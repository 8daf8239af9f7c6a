"""Run a report's SQL read-only and stream its rows to files, with a manifest written last.

The query runs in a READ ONLY transaction with a statement timeout and a dedicated
application_name, through a server-side cursor: memory stays flat whatever the row count.
Outputs go to a temporary directory renamed into place, so a crash never leaves a run that
looks complete; running the same slot again replaces its outputs with the same content.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from engine.errors import DatabaseError, JobError, TransientError
from runners.database import connect, mask_dsn

FETCH_ROWS = 10_000


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


@dataclass(frozen=True)
class ReportResult:
    rows: int
    columns: list[str]
    files: dict[str, dict[str, Any]]
    seconds: float
    directory: Path


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


def run_report(request: ReportRequest) -> ReportResult:
    """Execute and write `<out_dir>/<id>.csv` and `manifest.json` (last, atomically)."""
    began = time.perf_counter()
    staging = request.out_dir.with_name(f".{request.out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    csv_path = staging / f"{request.report_id}.csv"
    try:
        rows, columns = _query_to_csv(request, csv_path)
        files = {csv_path.name: {"bytes": csv_path.stat().st_size,
                                 "sha256": _sha256(csv_path), "format": "csv"}}
        seconds = time.perf_counter() - began
        manifest = {
            "report": request.report_id, "rows": rows, "columns": columns, "files": files,
            "duration_seconds": round(seconds, 3),
            "sql_sha256": hashlib.sha256(request.sql.encode()).hexdigest(),
            "parameters": {k: _cell(v) for k, v in request.params.items()},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        _replace(staging, request.out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ReportResult(rows, columns, files, seconds, request.out_dir)


def _replace(staging: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(final)


def _query_to_csv(request: ReportRequest, path: Path) -> tuple[int, list[str]]:
    timeout_ms = int(request.statement_timeout.total_seconds() * 1000)
    rows = 0
    try:
        with connect(request.dsn, application=f"marketops report/{request.report_id}") as conn:
            with conn.transaction():
                conn.execute("set transaction read only")
                conn.execute(f"set local statement_timeout = {timeout_ms}".encode())
                with conn.cursor(name="marketops_report") as cursor:
                    cursor.itersize = FETCH_ROWS
                    cursor.execute(request.sql, request.params)
                    columns = [c.name for c in cursor.description or []]
                    with path.open("w", newline="", encoding="utf-8") as handle:
                        writer = csv.writer(handle)
                        writer.writerow(columns)
                        while batch := cursor.fetchmany(FETCH_ROWS):
                            rows += len(batch)
                            if rows > request.max_rows:
                                raise JobError(f"report/{request.report_id} returned more "
                                               f"than {request.max_rows:,} rows "
                                               "(limits.max_rows)")
                            writer.writerows([_cell(v) for v in row] for row in batch)
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise JobError(f"report/{request.report_id} tried to write and was refused by the "
                       f"read-only transaction: {exc.diag.message_primary}") from None
    except psycopg.errors.QueryCanceled as exc:
        raise JobError(f"report/{request.report_id} exceeded its statement timeout "
                       f"({request.statement_timeout}): {exc.diag.message_primary}") from None
    except DatabaseError as exc:  # could not connect
        raise TransientError(f"report/{request.report_id}: {exc}") from None
    except psycopg.OperationalError as exc:
        raise TransientError(f"report/{request.report_id}: connection to "
                             f"{mask_dsn(request.dsn)} lost: {exc}") from None
    except psycopg.Error as exc:
        raise JobError(f"report/{request.report_id} failed: "
                       f"{exc.diag.message_primary or exc}") from None
    return rows, columns
