"""Benchmark: the demo data generator's rows per second, against PostgreSQL's own COPY FROM of
the very same rows into the same tables (same keys and indexes) as the baseline.

Run by hand:  python bench/demo_data.py [--scale 1] [--seed 42]
Starts its own embedded PostgreSQL 18 under a temporary directory.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from datetime import date
from graphlib import TopologicalSorter
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.dbschema.ddl import create_all  # noqa: E402
from engine.validation.validate import validate  # noqa: E402
from runners.demo.data import generate  # noqa: E402
from runners.demo.mailbox import free_port  # noqa: E402
from runners.postgres.connection import execute_script  # noqa: E402
from runners.postgres.embedded import EmbeddedServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    defs = validate(ROOT)
    schemas = {n: s.model for n, s in defs.project.schemas.items()}
    order = TopologicalSorter({
        f"{s}.{t}": {fk.references.table for fk in table.foreign_keys
                     if fk.references.table != f"{s}.{t}"}
        for s, model in schemas.items() for t, table in model.tables.items()}).static_order()
    tables = list(order)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "pg", free_port())
        server.start()
        try:
            with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
                conn.execute("create database generated")
                conn.execute("create database copied")
            generated_dsn, copied_dsn = server.dsn("generated"), server.dsn("copied")
            for dsn in (generated_dsn, copied_dsn):
                execute_script(dsn, create_all(schemas.values()))

            print(f"scale {args.scale}: generating ...", flush=True)
            gen = generate(generated_dsn, tables, scale=args.scale, seed=args.seed,
                           until=date(2026, 11, 1))
            rows = gen.total_rows

            dumps: dict[str, bytes] = {}
            with psycopg.connect(generated_dsn) as source:
                for table in tables:
                    buffer = io.BytesIO()
                    with source.cursor().copy(f"copy {table} to stdout") as copy:
                        for chunk in copy:
                            buffer.write(chunk)
                    dumps[table] = buffer.getvalue()
            began = time.perf_counter()
            with psycopg.connect(copied_dsn) as target:
                for table in tables:
                    with target.cursor().copy(f"copy {table} from stdin") as copy:
                        copy.write(dumps[table])
                target.commit()
            copy_seconds = time.perf_counter() - began
        finally:
            server.stop()
    megabytes = sum(len(d) for d in dumps.values()) / 1e6
    print(f"rows: {rows:,} in {len(tables)} tables ({megabytes:,.0f} MB as COPY text)")
    print(f"generator (set-based SQL, one transaction): {gen.seconds:8.1f} s  "
          f"{rows / gen.seconds:12,.0f} rows/s")
    print(f"baseline COPY FROM of the same rows:        {copy_seconds:8.1f} s  "
          f"{rows / copy_seconds:12,.0f} rows/s")
    print(f"ratio generator / COPY (rows per second):   {copy_seconds / gen.seconds:8.2f}x")
    slowest = sorted(gen.steps.items(), key=lambda kv: -kv[1])[:5]
    print("slowest steps: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in slowest))


if __name__ == "__main__":
    main()
