"""The demo data generator on a real PostgreSQL 18: every table filled, keys hold, deterministic,
and shaped like a marketplace."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from engine.validation.validate import validate
from runners.demo.data import generate
from runners.postgres.connection import connect, with_database

UNTIL = date(2026, 11, 1)


@pytest.fixture(scope="module")
def declared(repo_root: Path) -> dict[str, object]:
    defs = validate(repo_root)
    assert defs.passed()
    return {name: loaded.model for name, loaded in defs.project.schemas.items()}


@pytest.fixture(scope="module")
def tables(declared: dict[str, object]) -> list[str]:
    return [f"{s}.{t}" for s, model in declared.items() for t in model.tables]  # type: ignore[attr-defined]


@pytest.fixture
def schema_db(new_database: Callable[..., str], declared_schema: str) -> Callable[[], str]:
    """Factory: a new database holding the declared schema and no rows."""
    def make() -> str:
        return new_database(declared_schema)
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


# --- Causality: each invariant of a real marketplace, checked on one generated demo -----------

ANCHOR = datetime.combine(UNTIL, datetime.min.time(), UTC)
# Dates that are plans or validity windows, not events: they may lie after the anchor.
FUTURE_PLANS = {
    "logistics.shipments.promised_at": "true",  # promised when the parcel left
    # Open orders, and orders that arrived ahead of their due date.
    "inventory.replenishment_orders.expected_at": "received_at is null or received_at < expected_at",
    "marketing.promo_codes.valid_until": "true",
    "content.banners.active_until": "true",
    "marketing.campaigns.ends_at": "true",
}


@pytest.fixture(scope="module")
def demo(pg_admin_dsn: str, declared_schema: str, tables: list[str]) -> Iterator[str]:
    """One demo at the default scale, generated up to UNTIL, shared by the invariant tests."""
    name = f"demo_{uuid.uuid4().hex[:8]}"
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name} template {declared_schema}".encode())
    dsn = with_database(pg_admin_dsn, name)
    generate(dsn, tables, scale=0.01, seed=7, until=UNTIL)
    yield dsn
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())


def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with connect(dsn) as conn:
        conn.execute("set timezone = 'UTC'")
        return [tuple(r) for r in conn.execute(sql.replace(":anchor", f"'{ANCHOR.isoformat()}'")
                                                   .encode()).fetchall()]


def _none(dsn: str, sql: str) -> None:
    """The query lists violations; there must be none (the first few are shown)."""
    found = _rows(dsn, f"select * from ({sql}) v limit 5")
    assert found == []


def test_nothing_is_dated_at_or_after_the_anchor(demo: str, declared: dict[str, object]) -> None:
    checked = 0
    for schema, model in declared.items():
        for table_name, table in model.tables.items():  # type: ignore[attr-defined]
            for column_name, column in table.columns.items():
                if column.type not in ("timestamptz", "date", "timestamp"):
                    continue
                key = f"{schema}.{table_name}.{column_name}"
                allowed = FUTURE_PLANS.get(key, "false")
                late = _rows(demo, f"select count(*) from {schema}.{table_name} "
                                   f"where {column_name} >= :anchor and not ({allowed})")[0][0]
                assert (key, late) == (key, 0)
                checked += 1
    assert checked > 80


def test_an_order_is_paid_then_shipped_then_delivered(demo: str) -> None:
    _none(demo, """
        select o.id, o.placed_at, p.created_at, p.captured_at, s.shipped_at, s.delivered_at
        from orders.orders o
        join payments.payments p on p.order_id = o.id
        left join logistics.shipments s on s.order_id = o.id
        where p.created_at <= o.placed_at or p.captured_at <= p.created_at
           or s.shipped_at <= coalesce(p.captured_at, 'infinity') or s.delivered_at <= s.shipped_at""")
    # Every delivered, returned or shipped order has a shipment; no other order has one.
    _none(demo, """
        select o.id, o.status from orders.orders o
        left join logistics.shipments s on s.order_id = o.id
        where (s.id is not null) <> (o.status in ('shipped', 'delivered', 'returned', 'shiped',
                                                  'Delivered ', 'unknown'))
           or (o.status in ('delivered', 'returned') and s.delivered_at is null)""")


def test_the_status_history_is_the_order_timeline(demo: str) -> None:
    _none(demo, """
        select h.order_id, h.path, o.status from (
            select order_id, string_agg(status, '>' order by changed_at) as path,
                   (array_agg(status order by changed_at desc))[1] as last
            from orders.order_status_history group by order_id) h
        join orders.orders o on o.id = h.order_id
        where h.path not in ('pending', 'pending>paid', 'pending>paid>shipped',
                             'pending>paid>shipped>delivered',
                             'pending>paid>shipped>delivered>returned',
                             'pending>cancelled', 'pending>paid>cancelled')
           or (h.last <> o.status and o.status in (select code from ref.order_statuses))""")
    _none(demo, """
        select h.order_id, h.status from orders.order_status_history h
        left join payments.payments p on p.order_id = h.order_id
        left join logistics.shipments s on s.order_id = h.order_id
        left join orders.cancellations c on c.order_id = h.order_id
        left join orders.returns r on r.order_id = h.order_id
        where h.changed_at is distinct from case h.status
            when 'paid' then p.captured_at when 'shipped' then s.shipped_at
            when 'delivered' then s.delivered_at when 'cancelled' then c.cancelled_at
            when 'returned' then r.received_at else h.changed_at end""")


def test_fulfilment_happens_between_payment_and_delivery(demo: str) -> None:
    _none(demo, """
        select t.order_id from logistics.picking_tasks t
        join payments.payments p on p.order_id = t.order_id
        join logistics.shipments s on s.order_id = t.order_id
        where not (p.captured_at < t.started_at and t.started_at < t.completed_at
                   and t.completed_at < s.shipped_at)""")
    _none(demo, """
        select e.shipment_id, e.event from logistics.delivery_events e
        join logistics.shipments s on s.id = e.shipment_id
        where e.occurred_at < s.shipped_at or e.occurred_at > coalesce(s.delivered_at, :anchor)""")
    _none(demo, """
        select i.order_id from orders.invoices i join payments.payments p on p.order_id = i.order_id
        where p.captured_at is null or i.issued_at < p.captured_at""")
    _none(demo, """
        select a.payment_id from payments.payment_attempts a
        join payments.payments p on p.id = a.payment_id
        where a.attempted_at < p.created_at or a.attempted_at > coalesce(p.captured_at, :anchor)
           or (p.status = 'failed' and a.succeeded)""")


def test_a_return_is_requested_then_received_then_refunded(demo: str) -> None:
    assert _rows(demo, "select count(*) from orders.returns")[0][0] > 50
    _none(demo, """
        select r.id, s.delivered_at, r.requested_at, r.received_at, f.refunded_at, r.status
        from orders.returns r
        join logistics.shipments s on s.order_id = r.order_id
        left join payments.refunds f on f.return_id = r.id
        where not (s.delivered_at < r.requested_at and r.requested_at < r.received_at
                   and r.received_at < coalesce(f.refunded_at, 'infinity'))
           and not (r.received_at is null and r.status = 'requested')
           or r.status <> case when f.id is not null then 'refunded'
                               when r.received_at is not null then 'received'
                               else 'requested' end""")


def test_no_refund_exceeds_what_was_paid(demo: str) -> None:
    _none(demo, """
        select p.id, p.amount, p.status, sum(f.amount) from payments.payments p
        join payments.refunds f on f.payment_id = p.id
        group by p.id having p.status <> 'captured' or sum(f.amount) > p.amount""")
    _none(demo, """
        select c.order_id from orders.cancellations c join payments.payments p on p.id = c.order_id
        where c.refunded_amount > case when p.status = 'captured' then p.amount else 0 end""")
    _none(demo, """
        select b.payment_id from payments.chargebacks b join payments.payments p on p.id = b.payment_id
        where b.amount > p.amount or b.opened_at < p.captured_at
           or exists (select 1 from payments.refunds f where f.payment_id = p.id)""")
    _none(demo, """
        select ri.return_id from orders.return_items ri
        join orders.returns r on r.id = ri.return_id
        join orders.order_items oi on oi.id = ri.order_item_id
        where oi.order_id <> r.order_id or ri.quantity > oi.quantity
           or ri.refund_amount > oi.unit_price * oi.quantity - oi.discount""")


def test_a_ticket_is_answered_before_it_is_resolved(demo: str) -> None:
    _none(demo, """
        select t.id, t.created_at, t.first_response_at, t.resolved_at, t.status
        from support.tickets t join orders.orders o on o.id = t.order_id
        where t.created_at <= o.placed_at or t.first_response_at <= t.created_at
           or t.resolved_at <= coalesce(t.first_response_at, 'infinity')
           or (t.status = 'resolved') <> (t.resolved_at is not null)""")
    _none(demo, """
        select m.ticket_id from support.messages m join support.tickets t on t.id = m.ticket_id
        where m.sent_at < t.created_at or m.sent_at > coalesce(t.resolved_at, :anchor)
           or (m.from_agent and m.sent_at < t.first_response_at)""")
    _none(demo, """
        select r.ticket_id from support.ratings r join support.tickets t on t.id = r.ticket_id
        where r.rated_at <= coalesce(t.resolved_at, 'infinity')""")


def test_stock_on_hand_is_the_running_sum_of_movements(demo: str) -> None:
    assert _rows(demo, "select count(distinct kind) from inventory.stock_movements")[0][0] >= 5
    _none(demo, """
        select sku_id, location_id, l.on_hand, m.total from inventory.stock_levels l
        full join (select sku_id, location_id, sum(quantity) as total
                   from inventory.stock_movements group by 1, 2) m using (sku_id, location_id)
        where l.on_hand is distinct from m.total or l.reserved > l.on_hand""")
    # Stock never goes below zero at any moment.
    _none(demo, """
        select * from (select sku_id, location_id, moved_at,
                              sum(quantity) over (partition by sku_id, location_id
                                                  order by moved_at, id) as running
                       from inventory.stock_movements) r
        where r.running < 0""")
    # A cycle count expects what the movements say; a difference is booked as an adjustment.
    _none(demo, """
        select c.id from inventory.cycle_counts c
        where c.expected <> (select coalesce(sum(m.quantity), 0) from inventory.stock_movements m
                             where m.sku_id = c.sku_id and m.location_id = c.location_id
                               and m.moved_at < c.counted_at)
           or (c.counted <> c.expected) <> exists (
                select 1 from inventory.stock_movements m where m.sku_id = c.sku_id
                and m.location_id = c.location_id and m.moved_at = c.counted_at
                and m.kind = 'adjustment' and m.quantity = c.counted - c.expected)""")
    # Receipts are the lines of received purchase orders, at their warehouse, when received.
    _none(demo, """
        select coalesce(a.sku_id, b.sku_id), a.quantity, b.quantity from (
            select m.sku_id, sl.warehouse_id, m.moved_at, sum(m.quantity) as quantity
            from inventory.stock_movements m
            join inventory.storage_locations sl on sl.id = m.location_id
            where m.kind = 'receipt' group by 1, 2, 3) a
        full join (
            select l.sku_id, ro.warehouse_id, ro.received_at, sum(l.quantity) as quantity
            from inventory.replenishment_order_lines l
            join inventory.replenishment_orders ro on ro.id = l.order_id
            where ro.received_at is not null group by 1, 2, 3) b
          on b.sku_id = a.sku_id and b.warehouse_id = a.warehouse_id and b.received_at = a.moved_at
        where a.quantity is distinct from b.quantity""")
    # Stock-outs are exactly the periods a SKU had nothing anywhere.
    _none(demo, """
        select coalesce(a.sku_id, b.sku_id) from (
            select sku_id, moved_at, next_at from (
                select sku_id, moved_at,
                       sum(quantity) over (partition by sku_id order by moved_at, id) as total,
                       lead(moved_at) over (partition by sku_id order by moved_at, id) as next_at
                from inventory.stock_movements) z where total = 0) a
        full join inventory.stockouts b on b.sku_id = a.sku_id and b.started_at = a.moved_at
                                       and b.ended_at is not distinct from a.next_at
        where a.sku_id is null or b.sku_id is null""")
    assert _rows(demo, "select count(*) from inventory.stockouts")[0][0] > 0


def test_nothing_happens_before_its_actor_or_object_exists(demo: str) -> None:
    for sql in (
        """select o.id from orders.orders o join users.accounts a on a.id = o.account_id
           where o.placed_at <= a.created_at""",
        """select s.id from analytics.sessions s join users.accounts a on a.id = s.account_id
           where s.started_at <= a.created_at""",
        """select l.account_id from users.login_history l join users.accounts a on a.id = l.account_id
           where l.logged_in_at <= a.created_at""",
        """select n.account_id from support.nps_responses n join users.accounts a on a.id = n.account_id
           where n.answered_at <= a.created_at""",
        """select w.account_id from users.wishlists w join users.accounts a on a.id = w.account_id
           where w.added_at <= a.created_at""",
        """select e.account_id from marketing.email_sends e join users.accounts a on a.id = e.account_id
           where e.sent_at <= a.created_at or e.opened_at < e.sent_at or e.clicked_at < e.opened_at""",
        """select p.id from payments.payments p join payments.payment_methods m on m.id = p.method_id
           where p.created_at <= m.created_at""",
        """select oi.id from orders.order_items oi join orders.orders o on o.id = oi.order_id
           join product.skus sk on sk.id = oi.sku_id join product.products p on p.id = sk.product_id
           join product.sellers s on s.id = p.seller_id
           where o.placed_at <= p.created_at or p.created_at <= s.joined_at""",
        """select h.sku_id from product.price_history h join product.skus sk on sk.id = h.sku_id
           join product.products p on p.id = sk.product_id where h.changed_at <= p.created_at""",
        """select l.admin_id from admin.audit_log l join admin.admins a on a.id = l.admin_id
           where l.occurred_at <= a.created_at""",
        """select v.id from content.article_views v join content.articles a on a.id = v.article_id
           join analytics.sessions s on s.id = v.session_id
           where v.viewed_at <= a.published_at or v.viewed_at < s.started_at""",
        # A review follows the delivery of an order of that product to the reviewer.
        """select r.id from product.reviews r where not exists (
               select 1 from orders.orders o join logistics.shipments s on s.order_id = o.id
               join orders.order_items oi on oi.order_id = o.id
               join product.skus sk on sk.id = oi.sku_id
               where o.account_id = r.account_id and sk.product_id = r.product_id
                 and s.delivered_at < r.created_at)""",
        # A purchase session contains its order; funnel steps follow each other.
        """select o.id from orders.orders o join analytics.sessions s on s.id = o.session_id
           where o.placed_at < s.started_at or o.placed_at > coalesce(s.ended_at, 'infinity')""",
        """select f.session_id from analytics.funnel_events f
           join analytics.sessions s on s.id = f.session_id
           where f.occurred_at < s.started_at or f.occurred_at > coalesce(s.ended_at, 'infinity')""",
    ):
        _none(demo, sql)


def test_admins_work_like_people_and_the_seeded_anomalies_stand_out(demo: str) -> None:
    local = "at time zone 'Europe/Berlin'"
    # Sign-ins per admin and day vary, and not every admin works every weekday.
    per_day = _rows(demo, f"""
        select count(distinct n), count(distinct d) from (
            select (logged_in_at {local})::date as d, count(*) as n
            from admin.admin_logins group by admin_id, 1) x""")[0]
    assert per_day[0] >= 2
    absent = _rows(demo, f"""
        select count(*) from (select (logged_in_at {local})::date as d, count(distinct admin_id) as n
                              from admin.admin_logins
                              where extract(isodow from logged_in_at {local}) < 6 group by 1) x
        where n < (select count(*) from admin.admins where active)""")[0][0]
    assert absent > 100
    # Every action is taken by an admin who signed in earlier that day.
    _none(demo, f"""
        select l.id from admin.audit_log l where not exists (
            select 1 from admin.admin_logins g where g.admin_id = l.admin_id
            and g.logged_in_at <= l.occurred_at
            and (g.logged_in_at {local})::date = (l.occurred_at {local})::date)""")
    # The night burst: one admin, one night, many sign-ins between midnight and five.
    bursts = _rows(demo, f"""
        select admin_id, (logged_in_at {local})::date from admin.admin_logins
        where extract(hour from logged_in_at {local}) < 5
        group by 1, 2 having count(*) >= 5""")
    assert bursts == [(13, date(2026, 10, 31))]
    # The attack: one outside address, over a hundred failures in an hour, mostly for
    # usernames that are no admin's.
    attacks = _rows(demo, """
        select f.ip_address::text, count(*),
               avg((not exists (select 1 from admin.admins a where a.email = f.username))::int)
        from admin.failed_access_attempts f
        group by 1, date_trunc('hour', f.attempted_at) having count(*) >= 20""")
    assert [(ip, n >= 100, share >= 0.8) for ip, n, share in attacks] == [  # type: ignore[operator]
        ("203.0.113.66/32", True, True)]
    # Otherwise failures are the odd mistyped password from the office, before a sign-in.
    assert _rows(demo, """select count(*) from admin.failed_access_attempts
                          where ip_address << '10.0.0.0/8' and admin_id is not null""")[0][0] > 10


def test_about_three_sessions_in_a_hundred_buy(demo: str) -> None:
    monthly = _rows(demo, """
        select date_trunc('month', s.started_at), count(*),
               avg((exists (select 1 from analytics.funnel_events f where f.session_id = s.id
                            and f.step = 'purchase'))::int)
        from analytics.sessions s group by 1 order by 1""")
    assert len(monthly) >= 12
    assert all(0.02 <= float(rate) <= 0.04 for _, _, rate in monthly), monthly  # type: ignore[arg-type]
