"""Benchmark: the typed pass of a report (XLSX, summary, alerts) read back from the CSV the
one execution wrote, against fetching the same rows by running the query again through a
server-side cursor (what the typed pass did before the SQL was evaluated once), in the same run.

Run by hand:  python bench/typed_pass.py [--rows 300000]
Goal: reading back costs no more than 1.5x a second execution's fetch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runners.demo.mailbox import free_port  # noqa: E402
from runners.postgres.embedded import EmbeddedServer  # noqa: E402
from runners.report.query import _csv_batches  # noqa: E402

QUERY = ("select g as id, (g * 1.25)::numeric(12,2) as amount, "
         "timestamptz '2026-01-01' + g * interval '1 minute' as placed_at, "
         "case when g % 7 = 0 then null else 'label ' || g end as label "
         "from generate_series(1, {rows}) g")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    rows = parser.parse_args().rows
    sql = QUERY.format(rows=rows)
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedServer(Path(scratch) / "pg", free_port())
        server.start()
        try:
            with psycopg.connect(server.dsn("postgres")) as conn:
                csv_path = Path(scratch) / "out.csv"
                with csv_path.open("wb") as out, conn.cursor() as cursor, \
                        cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                    for chunk in copy:
                        out.write(chunk)
                types = [conn.execute(f"select pg_typeof({c})::oid from ({sql} limit 1) q"
                                      ).fetchone()[0]  # type: ignore[index]
                         for c in ("id", "amount", "placed_at", "label")]
                began = time.perf_counter()
                with conn.cursor(name="again") as cursor:
                    cursor.itersize = 10_000
                    cursor.execute(sql.encode())
                    fetched = 0
                    while batch := cursor.fetchmany(10_000):
                        fetched += len(batch)
                again = time.perf_counter() - began
                began = time.perf_counter()
                read = sum(len(b) for b in _csv_batches(conn, csv_path, types))
                back = time.perf_counter() - began
        finally:
            server.stop()
    assert fetched == read == rows
    print(f"{rows:,} rows: executing again and fetching {again:.2f}s; reading the CSV back "
          f"{back:.2f}s; ratio {back / again:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
