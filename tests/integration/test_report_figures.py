"""Report figures against values computed by hand, on tiny datasets built in PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.dbschema.ddl import create_all
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect, execute_script
from tests.integration.test_backup_physical_older import PG15, _as_server, _own, _start
from tests.support.reports import declared_rows

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


@pytest.fixture
def market(new_database: Callable[..., str], declared_schema: str) -> str:
    dsn: str = new_database(declared_schema)
    with connect(dsn, autocommit=True) as conn:
        conn.execute(BASE.encode())
    return dsn


def _run(project, dsn: str, report: str, at: datetime,  # type: ignore[no-untyped-def]
         tmp_path: Path) -> list[dict[str, str]]:
    return declared_rows(project, dsn, report, at, tmp_path)


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


def test_security_audit(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into admin.admins values (1, 'a1@m.example', 'A One', true, '2025-01-01'),
          (2, 'a2@m.example', 'A Two', true, '2025-01-01'), (3, 'a3@m.example', 'A Three', false, '2025-01-01');
        insert into admin.audit_log (admin_id, action, entity_type, entity_id, ip_address, occurred_at)
          select 1, 'product.delete', 'product', g, '10.1.1.1', '2026-03-04 02:00+01'::timestamptz + g * interval '1 second'
          from generate_series(1, 25) g;
        insert into admin.audit_log (admin_id, action, entity_type, entity_id, ip_address, occurred_at) values
          (2, 'price.change', 'price', 1, '198.51.100.7', '2026-03-04 14:00+01'),
          (2, 'promo.create', 'promo', 1, '10.1.1.2', '2026-03-04 14:05+01'),
          (2, 'order.status_change', 'order', 1, '10.1.1.2', '2026-03-04 14:06+01'),
          (3, 'product.create', 'product', 9, '10.1.1.3', '2026-03-04 10:00+01');
        insert into admin.admin_logins (admin_id, logged_in_at, ip_address, mfa_used) values
          (2, '2026-03-04 08:00+01', '10.1.1.2', false);
        insert into admin.failed_access_attempts (username, admin_id, ip_address, reason, attempted_at) values
          ('a2@m.example', 2, '10.1.1.2', 'wrong_password', '2026-03-04 07:59+01');
        """)
    rows = _run(project, market, "security_audit", datetime(2026, 3, 5, 12, tzinfo=UTC), tmp_path)
    by = {r["admin_id"]: r for r in rows}
    assert set(by) == {"1", "2", "3"}
    assert (by["1"]["products_deleted"], by["1"]["night_actions"], by["1"]["anomalies"]) == (
        "25", "25", "bulk deletes, night activity")
    two = by["2"]
    assert (two["price_changes"], two["promo_changes"], two["order_status_changes"],
            two["logins"], two["logins_without_mfa"], two["failed_attempts"],
            two["actions_outside_network"], two["anomalies"]) == (
        "1", "1", "1", "1", "1", "1", "1", "unknown network")
    assert by["3"]["anomalies"] == "inactive admin acting"
    assert [r["admin_id"] for r in rows][:2] == ["1", "2"]  # anomalies first


def test_retention_cohorts(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'delivered', '2026-01-05 10:00+01', 10, 10),
          (2, 2, 1, 'delivered', '2026-01-20 10:00+01', 10, 10),
          (3, 1, 1, 'delivered', '2026-01-13 10:00+01', 10, 10),   -- account 1, week 1
          (4, 2, 1, 'cancelled', '2026-01-28 10:00+01', 10, 10),   -- cancelled: not activity
          (5, 3, 1, 'delivered', '2026-02-02 10:00+01', 10, 10);
        """)
    rows = _run(project, market, "retention_cohorts", datetime(2026, 3, 1, 12, tzinfo=UTC), tmp_path)
    assert [(r["cohort"], r["customers"], r["week"], r["active"], r["retention"]) for r in rows] == [
        ("2026-01", "2", "0", "2", "1.0000"), ("2026-01", "2", "1", "1", "0.5000"),
        ("2026-02", "1", "0", "1", "1.0000")]


def test_promo_roi(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into marketing.ad_channels values (1, 'search');
        insert into marketing.campaigns values (1, 'Spring', 1, '2026-02-01', '2026-03-01', 1000);
        insert into marketing.discounts values (1, 1, 'percent', 10, 0);
        insert into marketing.promo_codes values (1, 'SPRING', 1, null, '2026-01-01', '2026-12-31');
        insert into marketing.ad_spend values (1, '2026-02-10', 20, 100, 10);
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, discount_total, total) values
          (1, 1, 1, 'delivered', '2026-02-10 10:00+01', 100, 10, 90),
          (2, 2, 1, 'delivered', '2026-02-11 10:00+01', 50, 5, 45),
          (3, 1, 1, 'delivered', '2026-02-20 10:00+01', 30, 0, 30),    -- account 1 buys again
          (4, 3, 1, 'delivered', '2026-02-21 10:00+01', 30, 0, 30);
        insert into orders.order_items (id, order_id, sku_id, quantity, unit_price, discount) values
          (1, 1, 1, 1, 100, 10), (2, 2, 2, 1, 50, 5), (3, 3, 1, 1, 30, 0), (4, 4, 2, 1, 30, 0);
        insert into marketing.promo_redemptions (promo_code_id, order_id, account_id, discount_amount, redeemed_at) values
          (1, 1, 1, 10, '2026-02-10 10:00+01'), (1, 2, 2, 5, '2026-02-11 10:00+01');
        """)
    [row] = _run(project, market, "promo_roi", datetime(2026, 3, 2, 12, tzinfo=UTC), tmp_path)
    # 2 of 4 purchases; net revenue 90 + 45; basket 67.50; discount 15 (already out of the
    # net revenue); return on ad spend (135 - 20) / 20.
    assert row == {"campaign": "Spring", "promo_orders": "2", "promo_order_share": "0.5000",
                   "revenue": "135.00", "avg_basket": "67.50", "discount_given": "15.00",
                   "repeat_buyers_30d": "1", "ad_spend": "20.00", "roi": "5.750"}


def test_problem_products(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into product.suppliers values (1, 'Acme', 'DE', 5);
        insert into product.product_suppliers values (1, 1, 6, true), (2, 1, 10, true);
        insert into ref.return_reasons values (1, 'x', 'X', true);
        insert into support.topics values (1, 'quality', 'Quality');
        insert into support.sla_policies values (1, 'normal', 60, 600);
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'returned', '2026-03-01', 10, 10), (2, 2, 1, 'delivered', '2026-03-01', 10, 10);
        insert into orders.order_items (id, order_id, sku_id, quantity, unit_price) values (1, 1, 1, 1, 10), (2, 2, 2, 1, 10);
        insert into orders.returns values (1, 1, 1, 1, '2026-03-04 10:00+01', null, 'refunded');
        insert into orders.return_items values (1, 1, 1, 10, true);
        insert into support.tickets (topic_id, sla_policy_id, product_id, channel, status, created_at)
          values (1, 1, 2, 'email', 'open', '2026-03-04 10:00+01');
        insert into product.reviews (product_id, account_id, rating, created_at) values
          (1, 1, 1, '2026-03-04 10:00+01'), (1, 2, 5, '2026-03-04 10:00+01');
        """)
    rows = _run(project, market, "problem_products", datetime(2026, 3, 9, 12, tzinfo=UTC), tmp_path)
    # P1: 1 return (3) + 1 bad review (2) = 5; P2: 1 complaint (2) = 2.
    assert [(r["product_id"], r["supplier"], r["returns"], r["complaints"], r["bad_reviews"],
             r["score"]) for r in rows] == [("1", "Acme", "1", "0", "1", "5"),
                                            ("2", "Acme", "0", "1", "0", "2")]


def test_content_marketing(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into content.authors values (1, 'Ann', 'ann@m.example');
        insert into content.topics values (1, 'Guides');
        insert into content.articles values (1, 1, 'How to', 'how-to', '2026-01-01', 500);
        insert into content.article_topics values (1, 1);
        insert into analytics.sessions (id, account_id, started_at, device) values
          (1, 1, '2026-02-10 10:00+01', 'app'), (2, 2, '2026-02-11 10:00+01', 'app');
        insert into content.article_views values (1, 1, 1, '2026-02-10 10:01+01', 100),
          (2, 1, 2, '2026-02-11 10:01+01', 50);
        insert into content.article_clicks (article_view_id, product_id, clicked_at) values (1, 1, '2026-02-10 10:02+01');
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'delivered', '2026-02-12 10:00+01', 80, 80),    -- within 7 days of the click
          (2, 1, 1, 'delivered', '2026-02-25 10:00+01', 99, 99);    -- too late to count
        insert into orders.order_items (order_id, sku_id, quantity, unit_price) values (1, 1, 1, 80),
          (2, 1, 1, 99);
        """)
    [row] = _run(project, market, "content_marketing", datetime(2026, 3, 2, 12, tzinfo=UTC),
                 tmp_path)
    assert row == {"topic": "Guides", "author": "Ann", "articles": "1", "views": "2",
                   "avg_seconds_on_page": "75.0", "clicks_to_catalog": "1",
                   "click_through": "0.5000", "influenced_orders": "1",
                   "influenced_revenue": "80.00"}


def test_inventory_movements(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into logistics.warehouses values (1, 'Berlin', 1, 1000);
        insert into product.suppliers values (1, 'Acme', 'DE', 5);
        insert into inventory.storage_locations values (1, 1, 'A1', 100), (2, 1, 'A2', 100);
        insert into inventory.stock_levels values (1, 1, 30, 0, now()), (2, 2, 20, 0, now());
        insert into inventory.stock_movements (sku_id, location_id, kind, quantity, moved_at) values
          (1, 1, 'receipt', 40, '2026-03-03 10:00+01'), (1, 1, 'sale', -6, '2026-03-04 10:00+01'),
          (1, 1, 'sale', -1, '2026-03-05 10:00+01'), (2, 2, 'receipt', 5, '2026-02-01 10:00+01');
        insert into inventory.replenishment_orders values
          (1, 1, 1, true, '2026-03-03 10:00+01', '2026-03-05 10:00+01', '2026-03-06 10:00+01'),
          (2, 1, 1, false, '2026-03-04 10:00+01', '2026-03-10 10:00+01', null);
        """)
    [row] = _run(project, market, "inventory_movements", datetime(2026, 3, 9, 12, tzinfo=UTC),
                 tmp_path)
    # Week of 2026-03-02 (Warsaw): in 40, out 7; SKU 1 sold 7 >= 5 (fast); SKU 2 unsold (slow).
    assert row == {"warehouse": "Berlin", "units_in": "40", "units_out": "7", "movements": "3",
                   "auto_replenishments": "1", "manual_replenishments": "1",
                   "late_receipts": "1", "fast_movers": "1", "slow_movers": "1",
                   "storage_utilisation": "0.2500"}


def test_assortment(project, market: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into product.categories values (3, null, 'Empty', 'empty', true), (4, 3, 'Leaf', 'leaf', true);
        insert into product.products (id, category_id, seller_id, title, created_at) values (3, 4, 1, 'P3', '2025-01-01');
        insert into product.skus (id, product_id, code, unit_cost) values (3, 3, 'S3', 1);
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'delivered', '2026-05-10 10:00+02', 60, 60);
        insert into orders.order_items (id, order_id, sku_id, quantity, unit_price, discount) values
          (1, 1, 1, 2, 25, 0), (2, 1, 2, 1, 10, 0);
        -- SKU 1 out of stock for 10 days of the quarter (April to June, 91 days).
        insert into inventory.stockouts (sku_id, started_at, ended_at) values
          (1, '2026-06-01 00:00+02', '2026-06-11 00:00+02');
        insert into analytics.sessions (id, started_at, device) values (1, '2026-05-01', 'app');
        insert into analytics.product_views (session_id, product_id, viewed_at) values
          (1, 1, '2026-05-01 10:00+02'), (1, 2, '2026-05-01 10:01+02'), (1, 1, '2026-05-02 10:00+02'),
          (1, 1, '2026-05-03 10:00+02');
        """)
    rows = _run(project, market, "assortment", datetime(2026, 7, 3, 12, tzinfo=UTC), tmp_path)
    by = {r["category"]: r for r in rows}
    top = by["Top"]
    assert (top["revenue"], top["units"], top["orders"], top["skus"], top["out_of_stock_share"],
            top["avg_days_in_stock"], top["product_views"], top["view_to_purchase"],
            top["verdict"]) == ("60.00", "3", "1", "2", "0.5000", "86.0", "4", "0.2500", "leader")
    empty = by["Empty"]
    assert (empty["revenue"], empty["skus"], empty["product_views"]) == ("0", "1", "0")


# --- Defects of issue 13, each pinned by hand-built rows --------------------------------

PROMO_FEBRUARY = b"""
insert into marketing.ad_channels values (1, 'search');
insert into marketing.campaigns values (1, 'Spring', 1, '2026-02-01', '2026-03-01', 1000),
  (2, 'Silent', 1, '2026-02-01', '2026-03-01', 500);
insert into marketing.discounts values (1, 1, 'percent', 10, 0), (2, null, 'amount', 5, 0);
insert into marketing.promo_codes values (1, 'SPRING', 1, null, '2026-01-01', '2026-12-31'),
  (2, 'WELCOME', 2, null, '2026-01-01', '2026-12-31');
-- Spring spends 20 in February; Silent 30 in February (and more outside it) but sells nothing.
insert into marketing.ad_spend values (1, '2026-02-10', 20, 100, 10), (2, '2026-02-15', 30, 100, 5),
  (2, '2026-01-31', 50, 100, 5), (2, '2026-03-01', 99, 100, 5);
insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, discount_total,
                           shipping_fee, total) values
  (1, 1, 1, 'delivered', '2026-02-10 10:00+01', 100, 10, 4.99, 94.99),  -- SPRING
  (2, 2, 1, 'delivered', '2026-02-11 10:00+01', 50, 5, 4.99, 49.99),    -- WELCOME, no campaign
  (3, 2, 1, 'delivered', '2026-02-20 10:00+01', 30, 0, 0, 30),          -- account 2 again
  (4, 3, 1, 'cancelled', '2026-02-12 10:00+01', 100, 10, 0, 90),        -- SPRING, cancelled
  (5, 1, 1, 'delivered', '2026-02-21 10:00+01', 20, 0, 4.99, 24.99);    -- account 1 again
insert into orders.order_items (id, order_id, sku_id, quantity, unit_price, discount) values
  (1, 1, 1, 2, 50, 10), (2, 2, 2, 1, 50, 5), (3, 3, 1, 1, 30, 0), (4, 4, 1, 1, 100, 10),
  (5, 5, 1, 1, 20, 0);
insert into marketing.promo_redemptions (promo_code_id, order_id, account_id, discount_amount, redeemed_at) values
  (1, 1, 1, 10, '2026-02-10 10:00+01'), (2, 2, 2, 5, '2026-02-11 10:00+01'),
  (1, 4, 3, 10, '2026-02-12 10:00+01');
"""


def _promo_february(project, market: str, tmp_path: Path  # type: ignore[no-untyped-def]
                    ) -> dict[str, dict[str, str]]:
    with connect(market, autocommit=True) as conn:
        conn.execute(PROMO_FEBRUARY)
    rows = _run(project, market, "promo_roi", datetime(2026, 3, 2, 12, tzinfo=UTC), tmp_path)
    return {r["campaign"]: r for r in rows}


def test_promo_roi_counts_repeat_buyers_of_orders_without_a_campaign(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    # Account 2 redeemed WELCOME (no campaign) on 11 Feb and bought again on 20 Feb.
    assert _promo_february(project, market, tmp_path)["no campaign"]["repeat_buyers_30d"] == "1"


def test_promo_roi_lists_campaigns_with_spend_but_no_orders(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    rows = _promo_february(project, market, tmp_path)
    assert {k: rows["Silent"][k] for k in ("promo_orders", "revenue", "avg_basket",
                                             "ad_spend", "roi")} == {
        "promo_orders": "0", "revenue": "0.00", "avg_basket": "", "ad_spend": "30.00",
        "roi": "-1.000"}                      # (0 - 30) / 30
    # Every campaign's spend is there: 20 + 30, February's only.
    assert sum(Decimal(r["ad_spend"]) for r in rows.values()) == Decimal("50")


def test_promo_roi_revenue_is_net_revenue_of_purchases(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    spring = _promo_february(project, market, tmp_path)["Spring"]
    # Order 1 only: 2 x 50 - 10 = 90, without its 4.99 shipping; order 4 is cancelled.
    # Purchases in February: orders 1, 2, 3 and 5.
    assert {k: spring[k] for k in ("promo_orders", "promo_order_share", "revenue",
                                   "avg_basket", "discount_given", "repeat_buyers_30d")} == {
        "promo_orders": "1", "promo_order_share": "0.2500", "revenue": "90.00",
        "avg_basket": "90.00", "discount_given": "10.00", "repeat_buyers_30d": "1"}


def test_promo_roi_is_return_on_ad_spend_for_every_row(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    rows = _promo_february(project, market, tmp_path)
    assert rows["Spring"]["roi"] == "3.500"           # (90 - 20) / 20
    # No campaign, no ad spend: no return on ad spend to state (not revenue over discount).
    assert (rows["no campaign"]["ad_spend"], rows["no campaign"]["roi"]) == ("0.00", "")
    assert list(rows) == ["Spring", "no campaign", "Silent"]   # by revenue


def test_inventory_storage_utilisation_counts_each_location_once(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into logistics.warehouses values (1, 'Berlin', 1, 1000);
        insert into inventory.storage_locations values (1, 1, 'A1', 100), (2, 1, 'A2', 100);
        -- Two SKUs share location A1.
        insert into inventory.stock_levels values (1, 1, 30, 0, now()), (2, 1, 10, 0, now()),
          (1, 2, 20, 0, now());
        """)
    [row] = _run(project, market, "inventory_movements", datetime(2026, 3, 9, 12, tzinfo=UTC),
                 tmp_path)
    assert row["storage_utilisation"] == "0.3000"     # 60 on hand / (100 + 100)


def test_inventory_late_receipts_are_the_weeks_due_or_received(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into logistics.warehouses values (1, 'Berlin', 1, 1000);
        insert into product.suppliers values (1, 'Acme', 'DE', 5);
        insert into inventory.storage_locations values (1, 1, 'A1', 100);
        -- The week is 2026-03-02 .. 03-09, Warsaw time.
        insert into inventory.replenishment_orders values
          (1, 1, 1, true, '2026-02-20 10:00+01', '2026-03-03 10:00+01', '2026-03-05 10:00+01'),  -- late, due and received in the week
          (2, 1, 1, true, '2026-02-25 10:00+01', '2026-02-27 10:00+01', '2026-03-04 10:00+01'),  -- late, received in the week
          (3, 1, 1, false, '2026-03-03 10:00+01', '2026-03-04 10:00+01', '2026-03-04 09:00+01'), -- on time
          (4, 1, 1, false, '2026-02-20 10:00+01', '2026-03-06 10:00+01', null),                  -- due in the week, overdue
          (5, 1, 1, true, '2026-03-04 10:00+01', '2026-03-20 10:00+01', null),                   -- not due yet
          (6, 1, 1, true, '2026-02-01 10:00+01', '2026-02-10 10:00+01', '2026-03-20 10:00+01'),  -- neither due nor received in it
          (7, 1, 1, false, '2026-03-05 10:00+01', '2026-03-06 10:00+01', '2026-03-06 12:00+01'); -- late, created in the week too
        """)
    [row] = _run(project, market, "inventory_movements", datetime(2026, 3, 9, 12, tzinfo=UTC),
                 tmp_path)
    assert (row["late_receipts"], row["auto_replenishments"], row["manual_replenishments"]) == (
        "4", "1", "2")                                # late: 1, 2, 4, 7; created: 3, 5, 7


def test_content_average_seconds_on_page_is_over_views(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into content.authors values (1, 'Ann', 'ann@m.example');
        insert into content.topics values (1, 'Guides');
        insert into content.articles values (1, 1, 'Long read', 'long', '2026-01-01', 500),
          (2, 1, 'Short', 'short', '2026-01-01', 100);
        insert into content.article_topics values (1, 1), (2, 1);
        insert into analytics.sessions (id, started_at, device) values (1, '2026-02-10 10:00+01', 'app');
        insert into content.article_views (article_id, session_id, viewed_at, seconds_on_page) values
          (1, 1, '2026-02-10 10:01+01', 100), (2, 1, '2026-02-10 10:05+01', 10),
          (2, 1, '2026-02-11 10:05+01', 20), (2, 1, '2026-02-12 10:05+01', 30);
        """)
    [row] = _run(project, market, "content_marketing", datetime(2026, 3, 2, 12, tzinfo=UTC),
                 tmp_path)
    # (100 + 10 + 20 + 30) / 4 views; not the mean of the articles' means (100 and 20).
    assert (row["views"], row["avg_seconds_on_page"]) == ("4", "40.0")


def test_security_audit_shows_failed_sign_ins_for_unknown_usernames(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into admin.admins values (1, 'a1@m.example', 'A One', true, '2025-01-01');
        insert into admin.admin_logins (admin_id, logged_in_at, ip_address, mfa_used) values
          (1, '2026-03-04 08:00+01', '10.1.1.1', true);
        insert into admin.failed_access_attempts (username, admin_id, ip_address, reason, attempted_at) values
          ('a1@m.example', 1, '10.1.1.1', 'wrong_password', '2026-03-04 07:59+01');
        insert into admin.failed_access_attempts (username, admin_id, ip_address, reason, attempted_at)
          select 'guess' || g || '@m.example', null, '203.0.113.9', 'unknown_user',
                 '2026-03-04 03:00+01'::timestamptz + g * interval '1 minute'
          from generate_series(1, 12) g;
        """)
    rows = _run(project, market, "security_audit", datetime(2026, 3, 5, 12, tzinfo=UTC), tmp_path)
    assert [(r["admin_id"], r["failed_attempts"], r["anomalies"]) for r in rows] == [
        ("", "12", "failed sign-ins"), ("1", "1", "")]


def test_user_growth_cancelled_orders_make_no_buyer(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'cancelled', '2026-01-05 10:00+01', 10, 10),  -- account 1's first order, cancelled
          (2, 1, 1, 'delivered', '2026-03-04 10:00+01', 10, 10),  -- so its first purchase is this week
          (3, 2, 2, 'cancelled', '2026-03-05 10:00+01', 10, 10),  -- account 2 only cancels
          (4, 3, 1, 'pending', '2026-03-06 10:00+01', 10, 10);    -- account 3 has not paid
        """)
    rows = _run(project, market, "user_growth", datetime(2026, 3, 9, 12, tzinfo=UTC), tmp_path)
    got = {(r["region"], r["channel"]): (r["first_time_buyers"], r["returning_buyers"])
           for r in rows}
    assert got == {("North", "Organic"): ("1", "0"), ("South", "Social"): ("0", "0"),
                   ("North", "Social"): ("0", "0")}


def test_pnl_monthly_follows_the_berlin_calendar(  # type: ignore[no-untyped-def]
        project, market: str, tmp_path: Path) -> None:
    with connect(market, autocommit=True) as conn:
        conn.execute(b"""
        insert into marketing.ad_channels values (1, 'search');
        insert into marketing.campaigns values (1, 'C', 1, '2026-10-01', '2026-12-31', 1000);
        insert into marketing.ad_spend values (1, '2026-10-31', 50, 1, 1), (1, '2026-11-01', 7, 1, 1),
          (1, '2026-11-30', 3, 1, 1), (1, '2026-12-01', 100, 1, 1);
        insert into orders.orders (id, account_id, region_id, status, placed_at, subtotal, total) values
          (1, 1, 1, 'delivered', '2026-11-01 00:30+01', 10, 10),   -- 31 Oct 23:30 UTC: November
          (2, 1, 1, 'delivered', '2026-11-30 23:30+01', 20, 20),   -- November's last half hour
          (3, 1, 1, 'delivered', '2026-12-01 00:30+01', 40, 40);   -- December
        insert into orders.order_items (order_id, sku_id, quantity, unit_price) values
          (1, 1, 1, 10), (2, 1, 1, 20), (3, 1, 1, 40);
        """)
    [row] = _run(project, market, "pnl_monthly", datetime(2026, 12, 1, 12, tzinfo=UTC), tmp_path)
    assert (row["revenue"], row["ad_spend"]) == ("30.00", "10.00")   # 1 and 30 November



@pytest.fixture(scope="module")
def linguistic_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's PostgreSQL 15 (built with ICU, unlike the embedded 18): its default
    collation is ICU 'en', which sorts a < b < B."""
    assert (PG15 / "initdb").exists(), "apt-get install postgresql-15 (.ci/run does)"
    data = tmp_path_factory.mktemp("pg15icu") / "data"
    data.mkdir()
    _own(data)
    done = _as_server(str(PG15 / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
                      "--locale-provider=icu", "--icu-locale=en")
    assert done.returncode == 0, done.stderr
    dsn = _start(data, free_port())
    try:
        yield dsn
    finally:
        _as_server(str(PG15 / "pg_ctl"), "stop", "-m", "fast", "-D", str(data))


def test_text_ties_break_in_byte_order_on_a_linguistic_server(  # type: ignore[no-untyped-def]
        project, linguistic_server: str, tmp_path: Path) -> None:
    """On a server whose collation sorts a < b < B, the report's ties still break in byte
    order (B < a < b), as its description says."""
    dsn = linguistic_server
    execute_script(dsn, create_all(s.model for s in project.schemas.values()))
    with connect(dsn, autocommit=True) as conn:
        conn.execute(BASE.encode())
        conn.execute(b"""
        insert into support.topics values (1, 'b', 'b'), (2, 'B', 'B'), (3, 'a', 'a');
        insert into support.sla_policies values (1, 'normal', 60, 600);
        insert into support.tickets (id, topic_id, sla_policy_id, channel, status,
                                     created_at, first_response_at, resolved_at)
          select g, g, 1, 'email', 'open', '2026-03-04 10:00+01', null, null
          from generate_series(1, 3) g;
        """)
        linguistic = conn.execute(
            b"select array_agg(l order by l) from unnest(array['b', 'B', 'a']) l").fetchone()
    assert linguistic == (["a", "b", "B"],)
    rows = _run(project, dsn, "support_sla", datetime(2026, 3, 5, 12, tzinfo=UTC), tmp_path)
    assert [r["topic"] for r in rows] == ["B", "a", "b"]
