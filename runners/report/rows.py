"""A report's rows for one slot, read in memory to compare two versions (`marketops diff --run`)."""

from __future__ import annotations

from typing import Any

from engine.errors import DatabaseError, JobError, TransientError
from runners.postgres.connection import (
    Cancelled,
    ConnectionFailed,
    PostgresError,
    connect,
    mask_dsn,
)
from runners.report.query import ReportRequest


def fetch_rows(request: ReportRequest) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(columns, rows) of the report's SQL for its parameters, in a READ ONLY transaction
    with its statement timeout and TimeZone; more than max_rows rows is an error."""
    timeout_ms = int(request.statement_timeout.total_seconds() * 1000)
    try:
        with connect(request.dsn, application=f"marketops diff report/{request.report_id}"
                     ) as conn, conn.transaction():
            conn.execute("set transaction isolation level repeatable read, read only")
            conn.execute(f"set local statement_timeout = {timeout_ms}".encode())
            conn.execute("select set_config('TimeZone', %s, true)", [request.timezone])
            with conn.cursor() as cursor:
                cursor.execute(request.sql.encode(), request.params)
                columns = [c.name for c in cursor.description or []]
                rows = cursor.fetchmany(request.max_rows + 1)
    except Cancelled as exc:
        raise JobError(f"report/{request.report_id} exceeded its statement timeout "
                       f"({request.statement_timeout}): {exc.diag.message_primary}") from None
    except DatabaseError as exc:
        raise TransientError(f"report/{request.report_id}: {exc}") from None
    except ConnectionFailed as exc:
        raise TransientError(f"report/{request.report_id}: connection to "
                             f"{mask_dsn(request.dsn)} lost: {exc}") from None
    except PostgresError as exc:
        raise JobError(f"report/{request.report_id} failed: "
                       f"{exc.diag.message_primary or exc}") from None
    if len(rows) > request.max_rows:
        raise JobError(f"report/{request.report_id} returns more than its max_rows "
                       f"({request.max_rows})")
    return columns, [tuple(r) for r in rows]
