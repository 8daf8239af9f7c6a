"""Report figures against values computed by hand, on tiny datasets built in PostgreSQL."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.ddl import create_all
from engine.jobs import Job, jobs
from engine.sqlparams import to_pyformat
from engine.validate import validate
from runners.database import connect, execute_script
from runners.report import ReportRequest, run_report

BASE = """
insert into ref.currencies values ('EUR', 'Euro', 2);
insert into ref.countries values ('DE', 'Germany', 'EUR');
insert into ref.regions values (1, 'DE', 'North', 'Europe/Berlin'), (2, 'DE', 'South', 'Europe/Berlin');
insert into users.acquisition_channels values (1, 'organic', 'Organic', false), (2, 'social', 'Social', true);
insert into users.accounts (id, email, region_id, channel_id, created_at) values
  (1, 'a@x.example', 1, 1, '2025-12-01'), (2, 'b@x.example', 2, 2, '2026-03-02 10:00+00'),
  (3, 'c@x.example', 1, 2, '2026-03-03 10:00+00');
insert into product.sellers values (1, 'S', 'DE', 's@x.example', 0.1, '2025-01-01');
insert into product.categories values (1, null, 'Top', 'top', true), (2, 1, 'Child', 'child', true);
insert into product.products (id, category_id, seller_id, title, created_at) values
  (1, 2, 1, 'P1', '2025-01-01'), (2, 2, 1, 'P2', '2025-01-01');
insert into product.skus (id, product_id, code, unit_cost) values (1, 1, 'S1', 6.00), (2, 2, 'S2', 10.00);
insert into ref.order_statuses values ('delivered', 'Delivered', true), ('cancelled', 'Cancelled', true);
"""


@pytest.fixture(scope="module")
def project(repo_root: Path):  # type: ignore[no-untyped-def]
    result = validate(repo_root)
    assert result.passed()
    return result.project


@pytest.fixture
def market(project, new_database: Callable[..., str]) -> str:  # type: ignore[no-untyped-def]
    dsn = new_database()
    execute_script(dsn, create_all(s.model for s in project.schemas.values()))
    with connect(dsn, autocommit=True) as conn:
        conn.execute(BASE.encode())
    return dsn


def _run(project, dsn: str, report: str, at: datetime,  # type: ignore[no-untyped-def]
         tmp_path: Path) -> list[dict[str, str]]:
    job: Job = jobs(project)[f"report/{report}"]
    assert job.schedule is not None and job.report is not None and job.sql is not None
    slot = job.schedule.latest_at_or_before(at)
    assert slot is not None
    period = job.period(slot)
    assert period is not None
    params = {**job.report.params, "period_start": period.start, "period_end": period.end,
              "slot_time": slot, "timezone": job.report.timezone}
    done = run_report(ReportRequest(job.name, dsn, to_pyformat(job.sql, set(params)), params,
                                    job.report.limits.statement_timeout,
                                    job.report.limits.max_rows, tmp_path / report))
    with (done.directory / f"{report}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_pnl_monthly(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'delivered', '2026-02-10 12:00+01', 50, 50),
          (2, 2, 2, 'delivered', '2026-02-20 12:00+01', 30, 30),
          (3, 1, 1, 'cancelled', '2026-02-21 12:00+01', 20, 20),
          (4, 1, 1, 'delivered', '2026-03-01 12:00+01', 99, 99);
        insert into orders.order_items (id, order_id, sku_id, quantity, unit_price, discount) values
          (1, 1, 1, 2, 25, 0), (2, 2, 2, 1, 30, 5), (3, 3, 1, 1, 20, 0), (4, 4, 1, 1, 99, 0);
        insert into payments.payments (id, order_id, amount, currency_code, status, created_at) values
          (1, 1, 50, 'EUR', 'captured', '2026-02-10 12:01+01'), (2, 2, 25, 'EUR', 'captured', '2026-02-20 12:01+01');
        insert into ref.return_reasons values (1, 'x', 'X', false);
        insert into orders.returns (id, order_id, account_id, reason_id, requested_at, status)
          values (1, 2, 2, 1, '2026-02-25 10:00+01', 'refunded');
        insert into payments.refunds (payment_id, return_id, amount, refunded_at) values
          (2, 1, 25, '2026-02-26 10:00+01'), (1, null, 4, '2026-03-02 10:00+01');
        insert into inventory.write_offs (sku_id, quantity, cost, reason, written_off_at) values
          (1, 1, 6, 'damaged', '2026-02-15 10:00+01');
        insert into marketing.ad_channels values (1, 'search');
        insert into marketing.campaigns values (1, 'C', 1, '2026-02-01', '2026-03-01', 100);
        insert into marketing.ad_spend values (1, '2026-02-05', 7.5, 10, 1), (1, '2026-03-05', 99, 1, 1);
        insert into logistics.warehouses values (1, 'W', 1, 10);
        insert into logistics.carriers values (1, 'C', 48);
        insert into logistics.shipments (order_id, warehouse_id, carrier_id, region_id, shipped_at, promised_at, shipping_cost)
          values (1, 1, 1, 1, '2026-02-11 10:00+01', '2026-02-13 10:00+01', 4.5);
        insert into payments.fees values (1, 0.95, '2026-02-10 12:05+01');
        """)
    [row] = _run(project, market, "pnl_monthly", datetime(2026, 3, 1, 12, tzinfo=UTC), tmp_path)
    # February, Berlin time: orders 1 and 2 count (3 is cancelled, 4 is March).
    revenue = Decimal("50") + Decimal("25")          # 2 x 25 + (30 - 5)
    cogs = 2 * Decimal("6") + Decimal("10")          # sku 1 twice, sku 2 once
    gross = revenue - Decimal("25") - cogs - Decimal("6")
    contribution = gross - Decimal("7.5") - Decimal("4.5") - Decimal("0.95")
    assert {k: Decimal(v) for k, v in row.items()} == {
        "revenue": revenue, "refunded_returns": Decimal("25"),
        "refunded_cancellations": Decimal("0"), "cost_of_goods": cogs,
        "write_offs": Decimal("6"), "gross_margin": gross, "ad_spend": Decimal("7.5"),
        "logistics_cost": Decimal("4.5"), "payment_fees": Decimal("0.95"),
        "contribution": contribution}


def test_funnel_conversion(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    steps = ["visit", "product_view", "add_to_cart", "checkout", "payment", "purchase"]
    reached = {1: 6, 2: 2, 3: 4, 4: 1, 5: 6}   # session -> how many steps it reached
    variant = {1: 1, 2: 1, 3: 2, 4: 2, 5: 2}
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into analytics.experiments values (1, 'checkout', 'd', '2026-01-01', null);
        insert into analytics.experiment_variants values (1, 1, 'control', 0.5), (2, 1, 'one_page', 0.5);
        """)
        for session, count in reached.items():
            conn.execute("insert into analytics.sessions (id, started_at, device) values "
                         "(%s, '2026-03-04 10:00+01', 'desktop')", (session,))
            conn.execute("insert into analytics.experiment_assignments values (%s, 1, %s, "
                         "'2026-03-04 10:00+01')", (session, variant[session]))
            for step in steps[:count]:
                conn.execute("insert into analytics.funnel_events (session_id, step, occurred_at)"
                             " values (%s, %s, '2026-03-04 10:01+01')", (session, step))
        # Outside the period (the day before): must not count.
        conn.execute("insert into analytics.sessions (id, started_at, device) values "
                     "(9, '2026-03-03 10:00+01', 'desktop')")
        conn.execute("insert into analytics.experiment_assignments values (9, 1, 1, "
                     "'2026-03-03 10:00+01')")
    rows = _run(project, market, "funnel_conversion", datetime(2026, 3, 5, 12, tzinfo=UTC),
                tmp_path)
    by = {r["variant"]: r for r in rows}
    assert [by["control"][k] for k in ("visits", "product_views", "carts", "checkouts",
                                       "payments", "purchases")] == ["2", "2", "1", "1", "1", "1"]
    assert [by["one_page"][k] for k in ("visits", "product_views", "carts", "checkouts",
                                        "payments", "purchases")] == ["3", "2", "2", "2", "1", "1"]
    assert by["control"]["conversion"] == "0.5000" and by["one_page"]["conversion"] == "0.3333"
    assert by["one_page"]["payment_rate"] == "0.5000"


def test_returns_cancellations(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into ref.return_reasons values (1, 'size', 'Wrong size', false), (2, 'broken', 'Broken', true);
        insert into ref.cancellation_reasons values (1, 'mind', 'Changed mind', 'customer');
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total)
          select g, case when g <= 4 then 1 else 2 end, 1, 'delivered', '2026-01-01', 10, 10
          from generate_series(1, 6) g;
        insert into orders.order_items (id, order_id, sku_id, quantity, unit_price)
          select g, g, 1, 1, 10 from generate_series(1, 6) g;
        -- account 1: three returns in 180 days (a repeat returner); account 2: one.
        insert into orders.returns (id, order_id, account_id, reason_id, requested_at, status) values
          (1, 1, 1, 1, '2026-02-01 10:00+01', 'refunded'), (2, 2, 1, 1, '2026-02-20 10:00+01', 'refunded'),
          (3, 3, 1, 2, '2026-03-03 10:00+01', 'refunded'), (4, 5, 2, 1, '2026-03-04 10:00+01', 'refunded');
        insert into orders.return_items values (1, 1, 1, 10, true), (2, 2, 1, 10, true),
          (3, 3, 1, 8, false), (4, 5, 1, 10, true);
        insert into orders.cancellations values (6, 1, '2026-03-05 09:00+01', 10);
        """)
    rows = _run(project, market, "returns_cancellations",
                datetime(2026, 3, 9, 12, tzinfo=UTC), tmp_path)
    # The week 2026-03-02..03-09 (Berlin): returns 3 (broken, repeat) and 4 (size, not repeat),
    # and cancellation of order 6 by account 2.
    assert [(r["kind"], r["reason"], r["cases"], r["amount"], r["from_repeat_returners"],
             r["repeat_share"]) for r in rows] == [
        ("cancellation", "Changed mind", "1", "10.00", "0", "0.0000"),
        ("return", "Broken", "1", "8.00", "1", "1.0000"),
        ("return", "Wrong size", "1", "10.00", "0", "0.0000")]


def test_support_sla(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into support.topics values (1, 'delivery', 'Delivery');
        insert into support.sla_policies values (1, 'normal', 60, 600);
        insert into support.tickets (id, topic_id, sla_policy_id, channel, status, created_at,
                                     first_response_at, resolved_at) values
          (1, 1, 1, 'email', 'resolved', '2026-03-04 10:00+01', '2026-03-04 10:30+01', '2026-03-04 12:00+01'),
          (2, 1, 1, 'chat', 'resolved', '2026-03-04 11:00+01', '2026-03-04 13:00+01', '2026-03-05 11:00+01');
        insert into support.ratings values (1, 5, null, '2026-03-04 13:00+01'), (2, 2, null, '2026-03-05 12:00+01');
        insert into support.nps_responses (account_id, score, answered_at) values
          (1, 10, '2026-03-04 09:00+01'), (2, 9, '2026-03-04 09:00+01'), (3, 3, '2026-03-04 09:00+01');
        """)
    [row] = _run(project, market, "support_sla", datetime(2026, 3, 5, 12, tzinfo=UTC), tmp_path)
    assert row == {"topic": "Delivery", "tickets": "2", "avg_first_response_minutes": "75.0",
                   "first_response_within_sla": "0.5000", "closed_within_sla": "0.5000",
                   "avg_rating": "3.50", "ratings": "2", "nps": "33.3"}


def test_logistics_sla(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into logistics.warehouses values (1, 'W', 1, 10);
        insert into logistics.carriers values (1, 'Fast', 24), (2, 'Slow', 48);
        insert into logistics.delay_reasons values (1, 'weather', 'Weather'), (2, 'capacity', 'Capacity');
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total)
          select g, 1, 1, 'delivered', '2026-03-01', 10, 10 from generate_series(1, 4) g;
        -- Week 2026-03-02..09 (Berlin). Fast: 2 on time. Slow: 1 late (weather), 1 on time.
        insert into logistics.shipments (id, order_id, warehouse_id, carrier_id, region_id, shipped_at, promised_at, delivered_at, shipping_cost) values
          (1, 1, 1, 1, 1, '2026-03-03 08:00+01', '2026-03-04 08:00+01', '2026-03-03 20:00+01', 3),
          (2, 2, 1, 1, 1, '2026-03-03 08:00+01', '2026-03-04 08:00+01', '2026-03-04 08:00+01', 3),
          (3, 3, 1, 2, 1, '2026-03-03 08:00+01', '2026-03-05 08:00+01', '2026-03-06 08:00+01', 3),
          (4, 4, 1, 2, 1, '2026-03-03 08:00+01', '2026-03-05 08:00+01', '2026-03-04 08:00+01', 3);
        insert into logistics.shipment_delays values (3, 1, 24, '2026-03-05 08:00+01');
        insert into logistics.picking_tasks (order_id, warehouse_id, started_at, completed_at, items_picked) values
          (1, 1, '2026-03-03 06:00+01', '2026-03-03 07:00+01', 1), (2, 1, '2026-03-03 06:00+01', '2026-03-03 09:00+01', 1),
          (3, 1, '2026-03-03 06:00+01', '2026-03-03 08:00+01', 1), (4, 1, '2026-03-03 06:00+01', '2026-03-03 08:00+01', 1);
        """)
    rows = _run(project, market, "logistics_sla", datetime(2026, 3, 9, 12, tzinfo=UTC), tmp_path)
    assert [(r["carrier"], r["deliveries"], r["avg_picking_hours"], r["avg_delivery_hours"],
             r["late_deliveries"], r["late_share"], r["top_delay_reason"]) for r in rows] == [
        ("Slow", "2", "2.00", "48.00", "1", "0.5000", "Weather"),  # (72 h + 24 h) / 2
        ("Fast", "2", "2.00", "18.00", "0", "0.0000", "")]


def test_user_growth(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'delivered', '2026-01-05 10:00+01', 10, 10),   -- account 1's first order, long ago
          (2, 1, 1, 'delivered', '2026-03-04 10:00+01', 10, 10),   -- account 1 returns in the week
          (3, 2, 2, 'delivered', '2026-03-05 10:00+01', 10, 10);   -- account 2's first order
        """)
    rows = _run(project, market, "user_growth", datetime(2026, 3, 9, 12, tzinfo=UTC), tmp_path)
    got = {(r["region"], r["channel"]): (r["new_accounts"], r["first_time_buyers"],
                                         r["returning_buyers"], r["accounts_total"]) for r in rows}
    # Accounts 2 and 3 signed up in the week (Berlin); 1 long before.
    assert got == {("North", "Organic"): ("0", "0", "1", "1"),
                   ("South", "Social"): ("1", "1", "0", "1"),
                   ("North", "Social"): ("1", "0", "0", "1")}


def test_search_quality(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into analytics.sessions (id, started_at, device) select g, '2026-03-03 10:00+01', 'app' from generate_series(1, 4) g;
        insert into analytics.searches (id, session_id, query, results_count, searched_at) values
          (1, 1, 'Lego', 10, '2026-03-03 10:00+01'), (2, 2, 'lego', 5, '2026-03-03 10:00+01'),
          (3, 3, 'lego', 0, '2026-03-03 10:00+01'), (4, 4, 'iphnoe', 0, '2026-03-03 10:00+01');
        insert into analytics.search_results values (1, 1, 1, true), (1, 2, 2, false), (2, 1, 1, false);
        insert into analytics.funnel_events (session_id, step, occurred_at) values (1, 'purchase', '2026-03-03 10:05+01');
        """)
    rows = _run(project, market, "search_quality", datetime(2026, 3, 9, 12, tzinfo=UTC), tmp_path)
    assert [tuple(r.values()) for r in rows] == [
        ("lego", "3", "0.3333", "0.3333", "0.3333", "0.7500"),
        ("iphnoe", "1", "1.0000", "0.0000", "0.0000", "0.2500")]


def test_data_quality(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into product.images (product_id, url) values (1, 'u');
        insert into product.skus (id, product_id, code, unit_cost) values (3, null, 'ORPHAN', 1);
        insert into product.categories values (3, 1, 'Child', 'child-2', true);
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'shiped', '2026-03-04 10:00+01', 10, 10);
        insert into product.attributes values (1, 'colour', true);
        insert into product.product_attribute_values values (1, 1, 'red');
        """)
    rows = _run(project, market, "data_quality", datetime(2026, 3, 5, 12, tzinfo=UTC), tmp_path)
    failing = {r["check_name"]: (r["failing"], r["examples"]) for r in rows}
    assert failing["products without images"] == ("1", "2")
    assert failing["SKUs not linked to a product"] == ("1", "ORPHAN")
    assert failing["duplicate category names under one parent"] == ("1", "Child")
    assert failing["orders with a status not in ref.order_statuses"] == ("1", "1=shiped")
    assert failing["products missing a required attribute"] == ("1", "2")
    assert failing["products without category, brand or description"] == ("2", "1, 2")
    assert failing["orders placed in the period without an address"] == ("1", "1")
    assert failing["products with an invalid status"] == ("0", "")
