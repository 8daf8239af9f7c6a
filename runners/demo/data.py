"""Realistic, deterministic marketplace data, generated server-side with set-based SQL.

The SQL lives in runners/demo/sql/demo_data_*.sql as named steps; each random value is a hash of
(row, stream, seed), so the same seed and anchor date give the same rows on any run.
The anchor (midnight UTC of `until`) is the moment the data describes: every event happens
before it, each after what causes it. Scale 1 is about one million orders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import DatabaseError
from runners.postgres.connection import connect
from runners.service import progress

SQL_DIR = Path(__file__).parent / "sql"
HOUR_WEIGHTS = [0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.0, 1.1, 1.2, 1.3, 1.2, 1.1, 1.1,
                1.2, 1.4, 1.6, 1.8, 1.9, 1.7, 1.2, 0.6]


@dataclass(frozen=True)
class Step:
    name: str
    sql: str


@dataclass
class Generated:
    """What was generated: rows per table and the time taken."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def has_orders(dsn: str) -> bool:
    """Whether the marketplace's orders table exists and holds a row (demo data was made)."""
    with connect(dsn) as conn:
        present = conn.execute(
            "select count(*) from pg_tables where schemaname = 'orders' "
            "and tablename = 'orders'").fetchone()
        if not (present and present[0]):
            return False
        rows = conn.execute("select exists (select 1 from orders.orders)").fetchone()
        return bool(rows and rows[0])


def steps() -> list[Step]:
    """The generation steps in order, from the SQL files."""
    found: list[Step] = []
    for path in sorted(SQL_DIR.glob("demo_data_*.sql")):
        name: str | None = None
        lines: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("-- step: "):
                if name is not None:
                    found.append(Step(name, "\n".join(lines).strip()))
                name, lines = line.removeprefix("-- step: ").strip(), []
            elif name is not None:
                lines.append(line)
        if name is not None:
            found.append(Step(name, "\n".join(lines).strip()))
    return found


def day_weights(start: date, days: int) -> list[float]:
    """Relative order volume per day: growth, weekly rhythm, seasonal peaks and dips."""
    weights = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        weekly = {5: 1.25, 6: 1.3, 0: 1.1}.get(day.weekday(), 1.0)
        if (day.month == 11 and day.day >= 15) or (day.month == 12 and day.day <= 24):
            season = 1.6
        elif day.month == 1:
            season = 0.8
        elif day.month in (7, 8):
            season = 0.85
        else:
            season = 1.0
        weights.append((1 + 0.5 * offset / days) * weekly * season)
    return weights


def _cdf(weights: list[float]) -> list[float]:
    total = sum(weights)
    running, cdf = 0.0, []
    for weight in weights:
        running += weight
        cdf.append(running / total)
    cdf[-1] = 1.0000001  # width_bucket needs every draw in [0, 1) below the last threshold
    return cdf


def sizes(scale: float) -> dict[str, int]:
    """Row targets for a scale (1.0 = about one million orders)."""
    def n(base: float, floor: int) -> int:
        return max(floor, round(base * scale))

    products = n(20_000, 300)
    skus = products * 5 // 2
    return {
        "n_orders": n(1_000_000, 300), "n_accounts": n(200_000, 150),
        "n_products": products, "n_skus": skus, "n_orphans": max(5, skus // 100),
        "n_sellers": max(20, round(300 * math.sqrt(scale))),
        # About 3% of sessions buy: a quarter of the orders come from a recorded session.
        "n_browse_sessions": n(7_500_000, 9_000),
        "n_write_offs": n(10_000, 100), "n_tickets": n(80_000, 2_000),
        "n_articles": max(30, round(600 * math.sqrt(scale))),
        # Forty admins work every day whatever the size of the shop.
        "n_article_views": n(300_000, 200), "n_audit": n(50_000, 15_000),
    }


def generate(dsn: str, tables: Iterable[str], *, scale: float, seed: int,
             until: date | None = None) -> Generated:
    """Replace the rows of `tables` (schema.table) with generated data, in one transaction."""
    if scale <= 0 or scale > 100:
        raise DatabaseError(f"scale must be in (0, 100], got {scale}")
    anchor = datetime.combine(until or datetime.now(UTC).date(), datetime.min.time(), UTC)
    start = anchor - timedelta(days=365)
    params = {**sizes(scale), "seed": seed, "scale": scale, "anchor": anchor,
              "start_ts": start, "acc_start": anchor - timedelta(days=730), "days": 365,
              "day_cdf": _cdf(day_weights(start.date(), 365)), "hour_cdf": _cdf(HOUR_WEIGHTS)}
    result = Generated()
    began = time.perf_counter()
    names = sorted(tables)
    plan = steps()
    with progress.step(f"demo data (scale {scale:g})", total=len(plan), unit="steps") as shown:
        _fill(dsn, names, params, plan, result)
        shown.summary = f"{result.total_rows:,} rows in {len(result.rows)} tables"
    result.seconds = time.perf_counter() - began
    return result


def _fill(dsn: str, names: list[str], params: dict[str, Any], plan: list[Step],
          result: Generated) -> None:
    with connect(dsn) as conn:
        with conn.transaction():
            conn.execute("set local statement_timeout = 0")
            if _is_superuser(conn):
                # Foreign keys hold by construction (the tests check every one); checking them
                # row by row would take most of the time.
                conn.execute("set local session_replication_role = replica")
            conn.execute(f"truncate {', '.join(names)} restart identity cascade".encode())
            conn.execute(f"""
                create function pg_temp.r(i bigint, s int) returns float8
                language sql immutable parallel safe as
                $$ select (hashint8extended(i, s::bigint * 1000003 + {int(params["seed"])})
                           & 2147483647)::float8 / 2147483648.0 $$""".encode())
            # Explicit types: psycopg sends small Python ints as smallint, which overflows sums.
            columns = ", ".join(f"%({k})s::{_sql_type(v)} as {k}" for k, v in params.items())
            conn.execute(f"create temp table cfg on commit drop as select {columns}", params)
            for step in plan:
                step_began = time.perf_counter()
                try:
                    conn.execute(step.sql.encode())
                except Exception as exc:
                    message = getattr(getattr(exc, "diag", None), "message_primary", None)
                    raise DatabaseError(f"demo data step '{step.name}' failed: "
                                        f"{message or exc}") from None
                # Fresh tables have no statistics; later steps join them by index.
                analyzed = _analyze_target(step.name, names)
                if analyzed:
                    conn.execute(f"analyze {analyzed}".encode())
                result.steps[step.name] = time.perf_counter() - step_began
                progress.advance(1, "steps")
            _reset_identities(conn, names)
        conn.commit()
        for name in names:
            row = conn.execute(f"select count(*) from {name}".encode()).fetchone()
            result.rows[name] = int(row[0]) if row else 0


def _is_superuser(conn: object) -> bool:
    row = conn.execute(  # type: ignore[attr-defined]
        "select rolsuper from pg_roles where rolname = current_user").fetchone()
    return bool(row and row[0])


def _analyze_target(step: str, tables: list[str]) -> str | None:
    if step.startswith("tmp."):
        return "tmp_" + step.removeprefix("tmp.")
    name = step.split(" ")[0]
    return name if name in tables else None


def _sql_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "bigint"
    if isinstance(value, float):
        return "float8"
    if isinstance(value, list):
        return "float8[]"
    return "timestamptz"


def _reset_identities(conn: object, tables: list[str]) -> None:
    """After explicit ids, move each identity sequence past the largest one."""
    execute = conn.execute  # type: ignore[attr-defined]
    rows = execute("""
        select n.nspname, c.relname, a.attname
        from pg_attribute a join pg_class c on c.oid = a.attrelid
        join pg_namespace n on n.oid = c.relnamespace
        where a.attidentity <> '' and n.nspname || '.' || c.relname = any(%s)""",
                   (tables,)).fetchall()
    for schema, table, column in rows:
        sql = (f"select setval(pg_get_serial_sequence('{schema}.{table}', '{column}'), "
               f"coalesce((select max({column}) from {schema}.{table}), 0) + 1, false)")
        execute(sql.encode())
