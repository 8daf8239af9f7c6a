"""The demo data generator on a real PostgreSQL 18: every table filled, keys hold, deterministic,
and shaped like a marketplace."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from engine.ddl import create_all
from engine.validate import validate
from runners.database import connect, execute_script
from runners.demodata import generate

UNTIL = date(2026, 11, 1)


@pytest.fixture(scope="module")
def declared(repo_root: Path) -> dict[str, object]:
    result = validate(repo_root)
    assert result.passed()
    return {name: loaded.model for name, loaded in result.project.schemas.items()}


@pytest.fixture(scope="module")
def tables(declared: dict[str, object]) -> list[str]:
    return [f"{s}.{t}" for s, model in declared.items() for t in model.tables]  # type: ignore[attr-defined]


@pytest.fixture
def schema_db(new_database: Callable[..., str], declared: dict[str, object]) -> Callable[[], str]:
    def make() -> str:
        dsn = new_database()
        execute_script(dsn, create_all(declared.values()))  # type: ignore[arg-type]
        return dsn
    return make


def _checksums(dsn: str, tables: list[str]) -> dict[str, str]:
    with connect(dsn) as conn:
        return {t: conn.execute(f"select md5(coalesce(string_agg(x::text, '|' order by x::text), ''))"
                                f" from {t} x".encode()).fetchone()[0] for t in tables}


def test_every_table_gets_rows_and_foreign_keys_hold(schema_db: Callable[[], str],
                                                     tables: list[str],
                                                     declared: dict[str, object]) -> None:
    dsn = schema_db()
    generated = generate(dsn, tables, scale=0.002, seed=1, until=UNTIL)
    empty = [t for t, n in generated.rows.items() if n == 0]
    assert empty == []
    assert set(generated.rows) == set(tables)
    with connect(dsn) as conn:
        for schema, model in declared.items():
            for name, table in model.tables.items():  # type: ignore[attr-defined]
                for fk in table.foreign_keys:
                    join = " and ".join(f"p.{r} = c.{c}" for c, r in
                                        zip(fk.columns, fk.references.columns, strict=True))
                    present = " and ".join(f"c.{c} is not null" for c in fk.columns)
                    orphans = conn.execute(
                        f"select count(*) from {schema}.{name} c where {present} and not exists "
                        f"(select 1 from {fk.references.table} p where {join})".encode()
                    ).fetchone()[0]
                    assert orphans == 0, (schema, name, fk)
        # Identity sequences continue after the generated ids.
        conn.execute("insert into ref.currencies values ('CHF', 'Swiss franc', 2)")
        new_id = conn.execute("insert into orders.order_notes (order_id, author, body, created_at)"
                              " values (1, 'test', 'x', now()) returning id").fetchone()[0]
        assert new_id == generated.rows["orders.order_notes"] + 1


def test_same_seed_same_data_other_seed_other_data(schema_db: Callable[[], str],
                                                   tables: list[str]) -> None:
    first, second, third = schema_db(), schema_db(), schema_db()
    generate(first, tables, scale=0.001, seed=7, until=UNTIL)
    generate(second, tables, scale=0.001, seed=7, until=UNTIL)
    generate(third, tables, scale=0.001, seed=8, until=UNTIL)
    a, b, c = (_checksums(d, tables) for d in (first, second, third))
    assert a == b
    assert a["orders.orders"] != c["orders.orders"]
    assert a["ref.countries"] == c["ref.countries"]  # fixed reference data


def test_the_data_has_the_shape_of_a_marketplace(schema_db: Callable[[], str],
                                                 tables: list[str]) -> None:
    dsn = schema_db()
    generate(dsn, tables, scale=0.005, seed=3, until=UNTIL)

    def one(sql: str) -> float:
        with connect(dsn) as conn:
            return float(conn.execute(sql.encode()).fetchone()[0])

    # Weekly rhythm: more orders per Saturday/Sunday than per Tuesday-Thursday.
    weekend = one("select count(*) / 2.0 from orders.orders where extract(isodow from placed_at) in (6, 7)")
    midweek = one("select count(*) / 3.0 from orders.orders where extract(isodow from placed_at) in (2, 3, 4)")
    assert weekend > 1.1 * midweek
    # Seasonal peak: December before Christmas beats February.
    assert one("select count(*) from orders.orders where placed_at::date between "
               "'2025-12-01' and '2025-12-20'") > 1.3 * one(
        "select count(*) from orders.orders where placed_at::date between '2026-02-01' and '2026-02-20'")
    # Funnel: every step reached by fewer sessions than the one before.
    steps = ["visit", "product_view", "add_to_cart", "checkout", "payment", "purchase"]
    counts = [one(f"select count(*) from analytics.funnel_events where step = '{s}'") for s in steps]
    assert counts == sorted(counts, reverse=True) and counts[-1] < 0.3 * counts[0]
    # A/B: the one-page checkout converts better.
    conversion = {v: one(f"""select avg((f.step is not null)::int) from analytics.experiment_assignments a
                     left join analytics.funnel_events f on f.session_id = a.session_id and f.step = 'purchase'
                     where a.experiment_id = 1 and a.variant_id = {v}""") for v in (1, 2)}
    assert conversion[2] > conversion[1]
    # Late deliveries concentrate at BudgetShip.
    late = {c: one(f"select avg((delivered_at > promised_at)::int) from logistics.shipments "
                   f"where carrier_id = {c} and delivered_at is not null") for c in (1, 3)}
    assert late[3] > 2 * late[1]
    # Searches: a share of zero results, but not most.
    assert 0.03 < one("select avg((results_count = 0)::int) from analytics.searches") < 0.15
    # Promo usage and discount depth.
    assert 0.1 < one("select avg((discount_total > 0)::int) from orders.orders") < 0.35
    # Dirty catalog records for the data-quality report.
    assert one("select count(*) from product.products p where not exists "
               "(select 1 from product.images i where i.product_id = p.id)") > 0
    assert one("select count(*) from product.skus where product_id is null") > 0
    assert one("select count(*) from orders.orders o where not exists "
               "(select 1 from ref.order_statuses s where s.code = o.status)") > 0
    # Support SLA breaches exist, and are a minority.
    breach = one("""select avg((t.first_response_at > t.created_at
                               + p.first_response_minutes * interval '1 minute')::int)
                    from support.tickets t join support.sla_policies p on p.id = t.sla_policy_id""")
    assert 0.02 < breach < 0.5
    # Security stories: a bulk delete at night, and brute force from outside.
    assert one("select count(*) from admin.audit_log where admin_id = 13 and action = 'product.delete'"
               " and extract(hour from occurred_at) < 5") >= 40
    assert one("select count(*) from admin.failed_access_attempts where ip_address << '203.0.113.0/24'") >= 150
    # Article reads lead to product clicks, some followed by a purchase of the same account.
    assert one("""select count(*) from content.article_clicks c
                  join content.article_views v on v.id = c.article_view_id
                  join analytics.sessions s on s.id = v.session_id
                  join orders.orders o on o.account_id = s.account_id
                   and o.placed_at between c.clicked_at and c.clicked_at + interval '30 days'""") > 0
