"""What the backup tests compare between a source and a restored database."""

from __future__ import annotations

from runners.postgres.connection import connect, query

_TABLES = ("select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = "
           "c.relnamespace where c.relkind in ('r', 'p') and n.nspname not in "
           "('pg_catalog', 'information_schema', 'pg_toast') and (%s::text[] is null or "
           "n.nspname = any(%s)) order by 1, 2")


def table_fingerprints(dsn: str, schemas: list[str] | None = None) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content checksum of every table."""
    out: dict[str, tuple[int, str]] = {}
    with connect(dsn) as conn:
        for schema, table in query(conn, _TABLES, (schemas, schemas)):
            row = query(conn, f'select count(*), coalesce(md5(string_agg(md5(t::text), \'\' '
                              f'order by md5(t::text))), \'\') from "{schema}"."{table}" t')[0]
            out[f"{schema}.{table}"] = (int(row[0]), str(row[1]))
    return out
