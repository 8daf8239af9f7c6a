"""A report's rows for one slot, read in memory to compare two versions (`marketops diff --run`)."""

from __future__ import annotations

from typing import Any

from engine.errors import DatabaseError, JobError
from runners.postgres.connection import PostgresError, connect
from runners.report.query import ReportRequest, query_failure


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
    except (DatabaseError, PostgresError) as exc:
        raise query_failure(request, exc) from None
    if len(rows) > request.max_rows:
        raise JobError(f"report/{request.report_id} returns more than its max_rows "
                       f"({request.max_rows})")
    return columns, [tuple(r) for r in rows]
