"""Operations reports checked against a second, independent computation.

Each test builds a fresh database from the declared schema, fills it with rows generated in
Python (a seeded random.Random plus hand-placed edge cases), runs the report through the
engine, and compares every column of every row with figures computed here in plain Python
from the rows inserted, following each report's `description` word by word (never its SQL).
Periods are recomputed here from the report's timezone; each test's period crosses a DST
change (Europe/* change on 2026-03-29 and 2026-10-25).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from runners.postgres.connection import connect
from tests.support.reports import declared_rows

BERLIN = ZoneInfo("Europe/Berlin")
WARSAW = ZoneInfo("Europe/Warsaw")
PURCHASE_STATUSES = {"paid", "shipped", "delivered", "returned"}
# Realistic order statuses, invalid ones included (exact comparison matters).
ORDER_STATUSES = ["delivered"] * 6 + ["paid", "shipped", "returned", "pending", "cancelled",
                                      "shiped", "Paid"]


@pytest.fixture
def db(new_database: Callable[..., str], declared_schema: str) -> str:
    return new_database(declared_schema)


# ---------------------------------------------------------------- helpers


def local(tz: ZoneInfo, y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A local wall-clock time as a UTC instant (Python subtracts two datetimes sharing a
    tzinfo on the wall clock, which would hide DST)."""
    return datetime(y, m, d, h, mi, tzinfo=tz).astimezone(UTC)


def between(rng: random.Random, lo: datetime, hi: datetime) -> datetime:
    """A random instant in [lo, hi), whole minutes (UTC)."""
    minutes = int((hi - lo).total_seconds() // 60)
    return (lo + timedelta(minutes=rng.randrange(minutes))).astimezone(UTC)


def hours(delta: timedelta) -> Fraction:
    return Fraction(int(delta.total_seconds()), 3600)


def days(delta: timedelta) -> Fraction:
    return Fraction(int(delta.total_seconds()), 86400)


def rnd(value: Fraction, places: int) -> Decimal:
    """Round half away from zero to `places` decimals, exactly."""
    scaled = abs(value) * 10**places
    whole = int(scaled)
    if scaled - whole >= Fraction(1, 2):
        whole += 1
    return (Decimal(-whole if value < 0 else whole)).scaleb(-places)


def mean(values: Sequence[Fraction]) -> Fraction | None:
    return sum(values, Fraction(0)) / len(values) if values else None


def num(text: str) -> Decimal | None:
    return None if text == "" else Decimal(text)


def insert(conn: psycopg.Connection[Any], table: str, columns: str,
           rows: Iterable[Sequence[Any]]) -> None:
    rows = list(rows)
    if not rows:
        return
    marks = ", ".join(["%s"] * len(rows[0]))
    with conn.cursor() as cur:
        cur.executemany(f"insert into {table} ({columns}) values ({marks})".encode(), rows)


def base(conn: psycopg.Connection[Any], accounts: int = 30) -> None:
    """Reference rows every test needs: currencies, countries, regions, accounts, sellers."""
    insert(conn, "ref.currencies", "code, name, minor_units", [("EUR", "Euro", 2),
                                                               ("PLN", "Zloty", 2)])
    insert(conn, "ref.countries", "code, name, currency_code", [("DE", "Germany", "EUR"),
                                                                ("PL", "Poland", "PLN")])
    insert(conn, "ref.regions", "id, country_code, name, timezone",
           [(1, "DE", "North", "Europe/Berlin"), (2, "DE", "South", "Europe/Berlin"),
            (3, "DE", "East", "Europe/Berlin"), (4, "PL", "Mazovia", "Europe/Warsaw")])
    insert(conn, "users.acquisition_channels", "id, code, label, is_paid",
           [(1, "organic", "Organic", False)])
    insert(conn, "users.accounts", "id, email, region_id, channel_id, created_at",
           [(i, f"u{i}@x.example", 1 + i % 3, 1, "2025-01-01T00:00Z")
            for i in range(1, accounts + 1)])
    insert(conn, "product.sellers", "id, name, country_code, contact_email, joined_at",
           [(1, "Seller", "DE", "s@x.example", "2025-01-01T00:00Z")])


def orders(conn: psycopg.Connection[Any], rows: Iterable[tuple[int, str, datetime]],
           addresses: dict[int, int | None] | None = None) -> None:
    """Orders (id, status, placed_at); account and region derived from the id."""
    addresses = addresses or {}
    insert(conn, "orders.orders",
           "id, account_id, region_id, status, placed_at, subtotal, total, address_id",
           [(i, 1 + i % 30, 1 + i % 3, status, at, 0, 0, addresses.get(i))
            for i, status, at in rows])


def run(project, dsn: str, report: str, at: datetime,  # type: ignore[no-untyped-def]
        tmp_path: Path) -> list[dict[str, str]]:
    return declared_rows(project, dsn, report, at, tmp_path)


# ---------------------------------------------------------------- logistics_sla


def test_logistics_sla(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The week 2026-03-23..03-30 in Berlin, across the spring DST change (a 167-hour week)."""
    rng = random.Random(11)
    start, end = local(BERLIN, 2026, 3, 23), local(BERLIN, 2026, 3, 30)
    carriers = {1: "Alpha", 2: "Bravo", 3: "Charlie", 4: "Delta"}
    regions = {1: "North", 2: "South", 3: "East"}
    reasons = {1: "Weather", 2: "Customs hold", 3: "Address problem", 4: "Sorting backlog"}
    order_rows = [(i, rng.choice(ORDER_STATUSES), between(rng, local(BERLIN, 2026, 3, 10),
                                                            local(BERLIN, 2026, 3, 28)))
                  for i in range(1, 421)]
    # shipment: id, order, warehouse, carrier, region, shipped, promised, delivered
    shipments: list[tuple[int, int, int, int, int, datetime | None, datetime, datetime | None]]
    shipments = []
    for order in range(1, 401):
        for _ in range(2 if rng.random() < 0.2 else 1):
            delivered = (between(rng, local(BERLIN, 2026, 3, 20), local(BERLIN, 2026, 4, 2))
                         if rng.random() < 0.9 else None)
            anchor = delivered or between(rng, local(BERLIN, 2026, 3, 20),
                                          local(BERLIN, 2026, 4, 2))
            shipped = (anchor - timedelta(minutes=rng.randrange(120, 6000))
                       if rng.random() < 0.9 else None)
            promised = (anchor if rng.random() < 0.06
                        else anchor + timedelta(minutes=rng.randrange(-2880, 2880)))
            shipments.append((len(shipments) + 1, order, rng.choice([1, 2]),
                              rng.choice([1, 2, 3]), rng.choice([1, 2, 3]), shipped, promised,
                              delivered))
    nxt = len(shipments) + 1

    def ship(order: int, carrier: int, region: int, shipped: datetime | None,
             promised: datetime, delivered: datetime | None) -> int:
        nonlocal nxt
        shipments.append((nxt, order, 1, carrier, region, shipped, promised, delivered))
        nxt += 1
        return nxt - 1

    # Edges: 23:30 on the last Sunday (in), 00:30 on the next Monday (out), 00:30 on the first
    # Monday (in), 23:30 the Sunday before (out); a shipment crossing the DST jump.
    ship(401, 1, 1, local(BERLIN, 2026, 3, 28, 12), local(BERLIN, 2026, 3, 29, 12),
         local(BERLIN, 2026, 3, 29, 23, 30))
    ship(402, 1, 1, local(BERLIN, 2026, 3, 28, 12), local(BERLIN, 2026, 3, 29, 12),
         local(BERLIN, 2026, 3, 30, 0, 30))
    ship(403, 2, 2, local(BERLIN, 2026, 3, 21, 12), local(BERLIN, 2026, 3, 24, 12),
         local(BERLIN, 2026, 3, 23, 0, 30))
    ship(404, 2, 2, local(BERLIN, 2026, 3, 21, 12), local(BERLIN, 2026, 3, 21, 12),
         local(BERLIN, 2026, 3, 22, 23, 30))
    # Delta: only hand-placed rows. East: one delivery without shipped_at, no picking, no
    # delay. North: two deliveries, delay reasons tied one each (alphabetically first wins),
    # one delivered exactly at its promise (on time).
    ship(405, 4, 3, None, local(BERLIN, 2026, 3, 25, 8), local(BERLIN, 2026, 3, 25, 9))
    tie_a = ship(406, 4, 1, local(BERLIN, 2026, 3, 24, 8), local(BERLIN, 2026, 3, 26, 8),
                 local(BERLIN, 2026, 3, 26, 8))
    tie_b = ship(407, 4, 1, local(BERLIN, 2026, 3, 24, 8), local(BERLIN, 2026, 3, 26, 8),
                 local(BERLIN, 2026, 3, 27, 8))
    # A delay on an undelivered shipment of the same row does not count.
    undelivered = ship(408, 4, 1, local(BERLIN, 2026, 3, 24, 8), local(BERLIN, 2026, 3, 26, 8),
                       None)
    delays = {s[0]: rng.choice(list(reasons)) for s in shipments[:800] if rng.random() < 0.3}
    delays |= {tie_a: 1, tie_b: 2, undelivered: 4}
    # picking: order, warehouse, started, completed
    picking: list[tuple[int, int, datetime, datetime | None]] = []
    for order in [*range(1, 401), 401, 402, 403, 406, 407]:
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            started = between(rng, local(BERLIN, 2026, 3, 15), local(BERLIN, 2026, 3, 29))
            done = (started + timedelta(minutes=rng.randrange(5, 900))
                    if rng.random() < 0.75 else None)
            picking.append((order, rng.choice([1, 2]), started, done))
    # The picking of order 401 crosses the jump: 01:30 CET to 03:30 CEST is one hour.
    picking.append((401, 1, local(BERLIN, 2026, 3, 29, 1, 30), local(BERLIN, 2026, 3, 29, 3, 30)))

    with connect(db, autocommit=True) as conn:
        base(conn)
        orders(conn, order_rows + [(i, "delivered", local(BERLIN, 2026, 3, 20))
                                   for i in range(421, 425)])
        insert(conn, "logistics.warehouses", "id, name, region_id, capacity_units",
               [(1, "W1", 1, 100), (2, "W2", 2, 100)])
        insert(conn, "logistics.carriers", "id, name, sla_hours",
               [(i, n, 48) for i, n in carriers.items()])
        insert(conn, "logistics.delay_reasons", "id, code, label",
               [(i, f"r{i}", n) for i, n in reasons.items()])
        insert(conn, "logistics.shipments", "id, order_id, warehouse_id, carrier_id, region_id, "
               "shipped_at, promised_at, delivered_at, shipping_cost",
               [(*s, 4.5) for s in shipments])
        insert(conn, "logistics.shipment_delays",
               "shipment_id, reason_id, delay_hours, reported_at",
               [(s, r, 5, "2026-03-25T00:00Z") for s, r in delays.items()])
        insert(conn, "logistics.picking_tasks",
               "order_id, warehouse_id, started_at, completed_at, items_picked",
               [(*p, 1) for p in picking])

    order_pick: dict[int, list[Fraction]] = defaultdict(list)
    for order, _, started, done in picking:
        if done is not None:
            order_pick[order].append(hours(done - started))
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for s in shipments:
        if s[7] is not None and start <= s[7] < end:
            groups[(carriers[s[3]], regions[s[4]])].append(s)
    expected = []
    for (carrier, region), rows in groups.items():
        picks = [p for s in rows if (p := mean(order_pick.get(s[1], []))) is not None]
        trips = [hours(s[7] - s[5]) for s in rows if s[5] is not None]
        late = sum(1 for s in rows if s[7] > s[6])
        labels = Counter(reasons[delays[s[0]]] for s in rows if s[0] in delays)
        top = min(labels, key=lambda label: (-labels[label], label)) if labels else ""
        avg_pick, avg_trip = mean(picks), mean(trips)
        expected.append({
            "carrier": carrier, "region": region, "deliveries": Decimal(len(rows)),
            "avg_picking_hours": None if avg_pick is None else rnd(avg_pick, 2),
            "avg_delivery_hours": None if avg_trip is None else rnd(avg_trip, 2),
            "late_deliveries": Decimal(late),
            "late_share": rnd(Fraction(late, len(rows)), 4), "top_delay_reason": top})
    expected.sort(key=lambda r: (-r["late_share"], -r["deliveries"], r["carrier"], r["region"]))
    assert ("Delta", "East") in groups and ("Delta", "North") in groups

    got = run(project, db, "logistics_sla", datetime(2026, 3, 30, 12, tzinfo=UTC), tmp_path)
    text = {"carrier", "region", "top_delay_reason"}
    actual = [{k: (v if k in text else num(v)) for k, v in row.items()} for row in got]
    assert actual == expected


# ---------------------------------------------------------------- inventory_movements


def test_inventory_movements(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The week 2026-10-19..10-26 in Warsaw, across the autumn DST change (a 169-hour week)."""
    rng = random.Random(23)
    start, end = local(WARSAW, 2026, 10, 19), local(WARSAW, 2026, 10, 26)
    # Poznan has no storage location (no row); Lodz's only location has capacity 0. The
    # warehouses' own capacity_units are not the storage capacity.
    warehouses = {1: "Gdansk", 2: "Krakow", 3: "Lodz", 4: "Poznan"}
    locations = {10: (1, 40), 11: (1, 60), 12: (1, 25), 20: (2, 80), 21: (2, 30), 30: (3, 0)}
    skus = list(range(1, 41))
    levels = {(sku, loc): rng.choice([0, 0, *range(1, 30)])
              for sku in skus for loc in locations if rng.random() < 0.35}
    kinds = ["sale"] * 5 + ["receipt", "return", "adjustment", "write_off"]
    moves: list[tuple[int, int, str, int, datetime]] = []
    for _ in range(900):
        kind = rng.choice(kinds)
        qty = {"sale": -rng.randrange(1, 4), "receipt": rng.randrange(1, 30),
               "return": 1, "write_off": -rng.randrange(1, 3),
               "adjustment": rng.choice([-2, -1, 1, 3])}[kind]
        moves.append((rng.choice(skus), rng.choice(list(locations)), kind, qty,
                      between(rng, local(WARSAW, 2026, 10, 12), local(WARSAW, 2026, 11, 2))))
    moves += [
        # SKU 41 sells exactly 5 at Krakow in the week, over two locations (a fast mover),
        # the last unit at 23:30 on the last Sunday (after the clocks went back).
        (41, 20, "sale", -3, local(WARSAW, 2026, 10, 20, 10)),
        (41, 21, "sale", -1, local(WARSAW, 2026, 10, 19, 0, 30)),
        (41, 21, "sale", -1, local(WARSAW, 2026, 10, 25, 23, 30)),
        # SKU 42 sells 4 in the week at Krakow (not fast), more just outside it.
        (42, 20, "sale", -4, local(WARSAW, 2026, 10, 21, 10)),
        (42, 20, "sale", -9, local(WARSAW, 2026, 10, 26, 0, 30)),
        (42, 20, "sale", -9, local(WARSAW, 2026, 10, 18, 23, 30)),
        # A zero adjustment: a movement, neither in nor out.
        (43, 30, "adjustment", 0, local(WARSAW, 2026, 10, 22, 10)),
    ]
    levels |= {(41, 20): 7, (42, 21): 3, (43, 30): 2, (44, 12): 0}
    repl: list[tuple[int, int, bool, datetime, datetime, datetime | None]] = []
    for i in range(1, 151):
        created = between(rng, local(WARSAW, 2026, 10, 1), local(WARSAW, 2026, 11, 2))
        expected_at = created + timedelta(hours=rng.randrange(24, 300))
        r = rng.random()
        received = (None if r < 0.2 else expected_at if r < 0.3
                    else expected_at + timedelta(hours=rng.randrange(-72, 72)))
        repl.append((i, rng.choice([1, 2, 3, 4]), rng.random() < 0.5, created, expected_at,
                     received))
    repl += [  # due in the week and not received; received late in the week, due before
        (151, 3, True, local(WARSAW, 2026, 10, 1), local(WARSAW, 2026, 10, 25, 23, 30), None),
        (152, 3, False, local(WARSAW, 2026, 10, 1), local(WARSAW, 2026, 10, 10),
         local(WARSAW, 2026, 10, 19, 0, 30)),
        (153, 3, False, local(WARSAW, 2026, 10, 25, 23, 30), local(WARSAW, 2026, 10, 28), None),
    ]

    with connect(db, autocommit=True) as conn:
        base(conn)
        insert(conn, "product.products", "id, seller_id, title", [(1, 1, "P")])
        insert(conn, "product.skus", "id, product_id, code, unit_cost",
               [(s, 1, f"S{s}", 1) for s in range(1, 45)])
        insert(conn, "product.suppliers", "id, name, country_code", [(1, "Sup", "PL")])
        insert(conn, "logistics.warehouses", "id, name, region_id, capacity_units",
               [(i, n, 4, 999) for i, n in warehouses.items()])
        insert(conn, "inventory.storage_locations", "id, warehouse_id, code, capacity_units",
               [(i, w, f"L{i}", c) for i, (w, c) in locations.items()])
        insert(conn, "inventory.stock_levels", "sku_id, location_id, on_hand, updated_at",
               [(s, loc, q, "2026-10-01T00:00Z") for (s, loc), q in levels.items()])
        insert(conn, "inventory.stock_movements", "sku_id, location_id, kind, quantity, moved_at",
               moves)
        insert(conn, "inventory.replenishment_orders",
               "id, supplier_id, warehouse_id, is_automatic, created_at, expected_at, received_at",
               [(i, 1, *rest) for i, *rest in repl])

    fast_units = 5
    expected = []
    for wid, name in sorted(warehouses.items(), key=lambda item: item[1]):
        locs = {loc for loc, (w, _) in locations.items() if w == wid}
        if not locs:
            continue
        week = [m for m in moves if m[1] in locs and start <= m[4] < end]
        sold: Counter[int] = Counter()
        for m in week:
            if m[2] == "sale":
                sold[m[0]] -= m[3]
        mine = [r for r in repl if r[1] == wid]
        late = [r for r in mine
                if (start <= r[4] < end or (r[5] is not None and start <= r[5] < end))
                and (r[5] is None or r[5] > r[4])]
        stocked = {s for (s, loc), q in levels.items() if loc in locs and q > 0}
        capacity = sum(locations[loc][1] for loc in locs)
        on_hand = sum(q for (_, loc), q in levels.items() if loc in locs)
        expected.append({
            "warehouse": name,
            "units_in": Decimal(sum(m[3] for m in week if m[3] > 0)),
            "units_out": Decimal(-sum(m[3] for m in week if m[3] < 0)),
            "movements": Decimal(len(week)),
            "auto_replenishments": Decimal(sum(1 for r in mine if r[2] and start <= r[3] < end)),
            "manual_replenishments": Decimal(sum(1 for r in mine
                                                 if not r[2] and start <= r[3] < end)),
            "late_receipts": Decimal(len(late)),
            "fast_movers": Decimal(sum(1 for units in sold.values() if units >= fast_units)),
            "slow_movers": Decimal(len(stocked - set(sold))),
            "storage_utilisation": (None if capacity == 0
                                    else rnd(Fraction(on_hand, capacity), 4))})
    assert [r["warehouse"] for r in expected] == ["Gdansk", "Krakow", "Lodz"]

    got = run(project, db, "inventory_movements", datetime(2026, 10, 26, 12, tzinfo=UTC),
              tmp_path)
    actual = [{k: (v if k == "warehouse" else num(v)) for k, v in row.items()} for row in got]
    assert actual == expected


# ---------------------------------------------------------------- assortment

CATEGORIES = {  # id: (parent, name); 5 has no SKU (no row), 6 has SKUs and no sales
    1: (None, "Electronics"), 11: (1, "Phones"), 111: (11, "Cases"), 1111: (111, "Leather"),
    12: (1, "Laptops"), 2: (None, "Fashion"), 21: (2, "Shoes"), 22: (2, "Bags"),
    3: (None, "Garden"), 31: (3, "Tools"), 4: (None, "Toys"), 5: (None, "Books"),
    6: (None, "Music"), 7: (None, "Sports")}


def top_of(category: int) -> int:
    while (parent := CATEGORIES[category][0]) is not None:
        category = parent
    return category


def expected_assortment(start: datetime, end: datetime, products: dict[int, int | None],
                        skus: dict[int, int | None], order_rows: list[tuple[int, str, datetime]],
                        lines: list[tuple[int, int, int, int, Decimal, Decimal]],
                        stockouts: list[tuple[int, datetime, datetime | None]],
                        views: list[tuple[int, datetime]]) -> list[dict[str, Any]]:
    """The description's figures over the inserted rows."""
    def tree(sku: int) -> int | None:
        product = skus[sku]
        category = None if product is None else products[product]
        return None if category is None else top_of(category)

    placed = {i: at for i, status, at in order_rows
              if status in PURCHASE_STATUSES and start <= at < end}
    tops = sorted({t for s in skus if (t := tree(s)) is not None})
    length = days(end - start)
    rows = []
    for top in tops:
        tree_skus = {s for s in skus if tree(s) == top}
        mine = [ln for ln in lines if ln[1] in placed and ln[2] in tree_skus]
        revenue = sum((ln[4] * ln[3] - ln[5] for ln in mine), Decimal(0))
        out_skus: set[int] = set()
        overlap = Fraction(0)
        for sku, began, ended in stockouts:
            if sku in tree_skus and began < end and (ended is None or ended > start):
                out_skus.add(sku)
                overlap += days(min(end, ended or end) - max(start, began))
        n_orders = len({ln[1] for ln in mine})
        n_views = sum(1 for p, at in views if products.get(p) is not None
                      and top_of(products[p]) == top and start <= at < end)  # type: ignore[arg-type]
        rows.append({
            "category": CATEGORIES[top][1], "revenue": revenue,
            "units": Decimal(sum(ln[3] for ln in mine)), "orders": Decimal(n_orders),
            "skus": Decimal(len(tree_skus)),
            "out_of_stock_share": rnd(Fraction(len(out_skus), len(tree_skus)), 4),
            "avg_days_in_stock": rnd(length - overlap / len(tree_skus), 1),
            "product_views": Decimal(n_views),
            "view_to_purchase": rnd(Fraction(n_orders, n_views), 4) if n_views else None})
    average = sum((r["revenue"] for r in rows), Decimal(0)) / len(rows)
    for r in rows:
        rank = 1 + sum(1 for other in rows if other["revenue"] > r["revenue"])
        r["verdict"] = ("leader" if rank <= 3
                        else "dead zone" if r["revenue"] < Decimal("0.2") * average else "")
    rows.sort(key=lambda r: (-r["revenue"], r["category"]))
    return rows


def load_assortment(db: str, products: dict[int, int | None], skus: dict[int, int | None],
                    order_rows: list[tuple[int, str, datetime]],
                    lines: list[tuple[int, int, int, int, Decimal, Decimal]],
                    stockouts: list[tuple[int, datetime, datetime | None]],
                    views: list[tuple[int, datetime]]) -> None:
    with connect(db, autocommit=True) as conn:
        base(conn)
        insert(conn, "product.categories", "id, parent_id, name, slug",
               [(i, p, n, n.lower()) for i, (p, n) in sorted(CATEGORIES.items(),
                                                             key=lambda c: len(str(c[0])))])
        insert(conn, "product.products", "id, category_id, seller_id, title, status",
               [(p, c, 1, f"P{p}", "active" if p % 4 else "archived")
                for p, c in products.items()])
        insert(conn, "product.skus", "id, product_id, code, unit_cost",
               [(s, p, f"S{s}", 1) for s, p in skus.items()])
        orders(conn, order_rows)
        insert(conn, "orders.order_items", "id, order_id, sku_id, quantity, unit_price, discount",
               lines)
        insert(conn, "inventory.stockouts", "sku_id, started_at, ended_at", stockouts)
        insert(conn, "analytics.sessions", "id, started_at, device",
               [(1, "2025-12-01T00:00Z", "desktop")])
        insert(conn, "analytics.product_views", "id, session_id, product_id, viewed_at",
               [(i, 1, p, at) for i, (p, at) in enumerate(views, 1)])


def assortment_actual(got: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{k: (v if k in ("category", "verdict") else num(v)) for k, v in row.items()}
            for row in got]


def test_assortment(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Q1 2026 in Berlin: 90 local days, 89 23/24 elapsed days (the spring DST change)."""
    rng = random.Random(37)
    start, end = local(BERLIN, 2026, 1, 1), local(BERLIN, 2026, 4, 1)
    leafy = [c for c in CATEGORIES if c != 5]
    products: dict[int, int | None] = {p: (None if p % 13 == 0 else rng.choice(leafy))
                                       for p in range(1, 71)}
    products[71] = 5  # a product in Books without SKUs
    skus: dict[int, int | None] = {}
    for p in range(1, 71):
        for _ in range(rng.choice([1, 1, 2, 3])):
            skus[len(skus) + 1] = p
    for _ in range(4):  # orphan SKUs: sold, but in no row
        skus[len(skus) + 1] = None
    music = {s for s, p in skus.items() if p is not None and products[p] == 6}
    sellable = [s for s in skus if s not in music]
    order_rows = [(i, rng.choice(ORDER_STATUSES),
                   between(rng, local(BERLIN, 2025, 12, 20), local(BERLIN, 2026, 4, 10)))
                  for i in range(1, 701)]
    order_rows += [(701, "paid", local(BERLIN, 2026, 3, 31, 23, 30)),
                   (702, "paid", local(BERLIN, 2026, 4, 1, 0, 30)),
                   (703, "delivered", local(BERLIN, 2026, 1, 1, 0, 30)),
                   (704, "delivered", local(BERLIN, 2025, 12, 31, 23, 30))]
    lines: list[tuple[int, int, int, int, Decimal, Decimal]] = []
    for order, _, _ in order_rows:
        for _ in range(rng.choice([0, 1, 1, 2, 3, 4])):
            price = Decimal(rng.randrange(500, 20000)) / 100
            discount = Decimal(rng.choice([0, 0, 0, rng.randrange(1, 400)])) / 100
            lines.append((len(lines) + 1, order, rng.choice(sellable), rng.randrange(1, 4),
                          price, discount))
    stockouts: list[tuple[int, datetime, datetime | None]] = []
    for _ in range(90):
        began = between(rng, local(BERLIN, 2025, 11, 1), local(BERLIN, 2026, 4, 15))
        ended = (None if rng.random() < 0.2
                 else began + timedelta(minutes=rng.randrange(60, 40 * 1440)))
        stockouts.append((rng.choice(list(skus)), began, ended))
    first_sku = next(iter(skus))
    stockouts += [(first_sku, local(BERLIN, 2025, 12, 1), start),   # ends as Q1 starts: no
                  (first_sku, end, None)]                           # starts as Q1 ends: no
    viewable = [p for p in range(1, 71) if products[p] not in (4, 6)]  # Toys, Music: no views
    views = [(rng.choice(viewable), between(rng, local(BERLIN, 2025, 12, 20),
                                            local(BERLIN, 2026, 4, 10))) for _ in range(1500)]
    views += [(viewable[0], local(BERLIN, 2026, 3, 31, 23, 30)),
              (viewable[0], local(BERLIN, 2026, 4, 1, 0, 30))]
    load_assortment(db, products, skus, order_rows, lines, stockouts, views)

    expected = expected_assortment(start, end, products, skus, order_rows, lines, stockouts,
                                   views)
    assert {r["category"] for r in expected} == {"Electronics", "Fashion", "Garden", "Toys",
                                                 "Music", "Sports"}
    got = run(project, db, "assortment", datetime(2026, 4, 2, 12, tzinfo=UTC), tmp_path)
    assert assortment_actual(got) == expected


def test_assortment_rank_ties(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Revenue 100, 90, 80, 80, 10, 0: four leaders (rank 3 shared), two dead zones."""
    start, end = local(BERLIN, 2026, 1, 1), local(BERLIN, 2026, 4, 1)
    revenue = {1: 100, 2: 90, 3: 80, 4: 80, 6: 10, 7: 0}
    products: dict[int, int | None] = {c: c for c in revenue}
    skus: dict[int, int | None] = {c: c for c in revenue}
    order_rows = [(c, "paid", local(BERLIN, 2026, 2, 1)) for c in revenue]
    lines = [(c, c, c, 1, Decimal(r), Decimal(0)) for c, r in revenue.items()]
    load_assortment(db, products, skus, order_rows, lines, [], [])
    expected = expected_assortment(start, end, products, skus, order_rows, lines, [], [])
    assert [r["verdict"] for r in expected] == ["leader"] * 4 + ["dead zone"] * 2
    got = run(project, db, "assortment", datetime(2026, 4, 2, 12, tzinfo=UTC), tmp_path)
    assert assortment_actual(got) == expected


# ---------------------------------------------------------------- problem_products


def test_problem_products(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The week 2026-10-19..10-26 in Berlin (autumn DST change); more than `top` rows."""
    rng = random.Random(41)
    start, end = local(BERLIN, 2026, 10, 19), local(BERLIN, 2026, 10, 26)
    lo, hi = local(BERLIN, 2026, 10, 15), local(BERLIN, 2026, 10, 30)
    product_ids = range(1, 131)
    skus: dict[int, int] = {}
    for p in product_ids:
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            skus[len(skus) + 1] = p
    suppliers = {1: "Acme", 2: "Borealis", 3: "Cobalt", 4: "Dunmore"}
    links: dict[tuple[int, int], bool] = {}  # (sku, supplier) -> is_primary
    for s in skus:
        for sup in rng.sample(list(suppliers), rng.choice([0, 1, 1, 2])):
            links[(s, sup)] = rng.random() < 0.6
    order_rows = [(i, rng.choice(ORDER_STATUSES), between(rng, local(BERLIN, 2026, 10, 1), hi))
                  for i in range(1, 401)]
    lines: list[tuple[int, int, int]] = []  # id, order, sku
    for order in range(1, 401):
        for s in rng.sample(list(skus), rng.choice([1, 1, 2, 3])):
            lines.append((len(lines) + 1, order, s))
    by_order: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for ln in lines:
        by_order[ln[1]].append(ln)
    returns = []  # id, order, requested
    return_items = []  # return, order_item
    for r in range(1, 121):
        order = rng.randrange(1, 401)
        at = between(rng, lo, hi)
        returns.append((r, order, at))
        for ln in rng.sample(by_order[order], rng.randrange(1, len(by_order[order]) + 1)):
            return_items.append((r, ln[0]))
    # A return at 23:30 on the last Sunday (after the clocks went back: in), one at 00:30
    # the next Monday (out); both of an order with several lines, all returned.
    multi = next(o for o, ls in by_order.items() if len(ls) >= 2)
    for r, at in ((121, local(BERLIN, 2026, 10, 25, 23, 30)),
                  (122, local(BERLIN, 2026, 10, 26, 0, 30))):
        returns.append((r, multi, at))
        return_items += [(r, ln[0]) for ln in by_order[multi]]
    tickets = [(t, rng.choice([*product_ids, None]), between(rng, lo, hi))
               for t in range(1, 201)]
    reviews = [(rng.choice(list(product_ids)), rng.randrange(1, 6), between(rng, lo, hi))
               for _ in range(300)]
    shipments = []  # id, order, promised, delivered
    for sid in range(1, 401):
        order = rng.randrange(1, 401)
        delivered = between(rng, lo, hi) if rng.random() < 0.85 else None
        anchor = delivered or between(rng, lo, hi)
        promised = anchor + timedelta(minutes=rng.choice([0, rng.randrange(-3000, 3000)]))
        shipments.append((sid, order, promised, delivered))

    with connect(db, autocommit=True) as conn:
        base(conn)
        insert(conn, "product.products", "id, seller_id, title",
               [(p, 1, f"Product {p}") for p in product_ids])
        insert(conn, "product.skus", "id, product_id, code, unit_cost",
               [(s, p, f"S{s}", 1) for s, p in skus.items()])
        insert(conn, "product.suppliers", "id, name, country_code",
               [(i, n, "DE") for i, n in suppliers.items()])
        insert(conn, "product.product_suppliers", "sku_id, supplier_id, unit_cost, is_primary",
               [(s, sup, 1, primary) for (s, sup), primary in links.items()])
        orders(conn, order_rows)
        insert(conn, "orders.order_items", "id, order_id, sku_id, quantity, unit_price",
               [(*ln, 1, 10) for ln in lines])
        insert(conn, "ref.return_reasons", "id, code, label", [(1, "x", "X")])
        insert(conn, "orders.returns", "id, order_id, account_id, reason_id, requested_at, status",
               [(r, o, 1 + o % 30, 1, at, "requested") for r, o, at in returns])
        insert(conn, "orders.return_items", "return_id, order_item_id, quantity, refund_amount",
               [(*ri, 1, 10) for ri in return_items])
        insert(conn, "support.topics", "id, code, label", [(1, "product", "Product")])
        insert(conn, "support.sla_policies",
               "id, priority, first_response_minutes, resolution_minutes", [(1, "normal", 60, 600)])
        insert(conn, "support.tickets",
               "id, product_id, topic_id, sla_policy_id, channel, status, created_at",
               [(t, p, 1, 1, "email", "open", at) for t, p, at in tickets])
        insert(conn, "product.reviews", "product_id, account_id, rating, created_at",
               [(p, 1, rating, at) for p, rating, at in reviews])
        insert(conn, "logistics.warehouses", "id, name, region_id, capacity_units",
               [(1, "W", 1, 1)])
        insert(conn, "logistics.carriers", "id, name, sla_hours", [(1, "C", 48)])
        insert(conn, "logistics.shipments", "id, order_id, warehouse_id, carrier_id, region_id, "
               "promised_at, delivered_at, shipping_cost",
               [(sid, o, 1, 1, 1, pr, dl, 1) for sid, o, pr, dl in shipments])

    def in_week(at: datetime | None) -> bool:
        return at is not None and start <= at < end

    line_sku = {ln[0]: ln[2] for ln in lines}
    order_products = {o: {skus[ln[2]] for ln in ls} for o, ls in by_order.items()}
    week_returns = {r for r, _, at in returns if in_week(at)}
    return_products: dict[int, set[int]] = defaultdict(set)
    for r, item in return_items:
        if r in week_returns:
            return_products[skus[line_sku[item]]].add(r)
    late: dict[int, set[int]] = defaultdict(set)
    for sid, o, promised, delivered in shipments:
        if delivered is not None and in_week(delivered) and delivered > promised:
            for p in order_products.get(o, set()):
                late[p].add(sid)
    expected = []
    for p in product_ids:
        n_returns = len(return_products[p])
        complaints = sum(1 for _, tp, at in tickets if tp == p and in_week(at))
        bad = sum(1 for rp, rating, at in reviews if rp == p and rating <= 2 and in_week(at))
        score = 3 * n_returns + 2 * complaints + 2 * bad + len(late[p])
        supplier = ""
        for s in sorted(s for s, sp in skus.items() if sp == p):
            primary = sorted(sup for (ls, sup), is_p in links.items() if ls == s and is_p)
            if primary:
                supplier = suppliers[primary[0]]
                break
        if score > 0:
            expected.append({"product_id": str(p), "title": f"Product {p}", "supplier": supplier,
                             "returns": str(n_returns), "complaints": str(complaints),
                             "bad_reviews": str(bad), "late_deliveries": str(len(late[p])),
                             "score": str(score)})
    expected.sort(key=lambda r: (-int(r["score"]), int(r["product_id"])))
    assert len(expected) > 50 and expected[49]["score"] == expected[50]["score"]
    assert any(r["supplier"] == "" for r in expected[:50])

    got = run(project, db, "problem_products", datetime(2026, 10, 26, 12, tzinfo=UTC), tmp_path)
    assert got == expected[:50]


# ---------------------------------------------------------------- data_quality


def test_data_quality(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The day 2026-03-29 in Berlin: 23 hours (the spring DST change)."""
    rng = random.Random(53)
    start, end = local(BERLIN, 2026, 3, 29), local(BERLIN, 2026, 3, 30)
    names = ["Audio", "Books", "Cameras", "Decor", "Games", "Kitchen", "Lamps", "Office"]
    categories: dict[int, tuple[int | None, str, str, bool]] = {}  # id: parent, name, slug, active
    for i in range(1, 41):
        parent = rng.choice([None, *range(1, i)]) if i > 1 else None
        name = rng.choice(names) + ("" if rng.random() < 0.3 else f" {i}")
        categories[i] = (parent, name, "" if rng.random() < 0.1 else f"c{i}", rng.random() < 0.8)
    categories |= {41: (None, "Sale", "sale", True), 42: (None, "Sale", "sale2", True),
                   43: (41, "Sale", "s", True), 44: (2, "Zinc", "z1", True),
                   45: (2, "Zinc", "z2", True), 46: (2, "Zinc", "", True),
                   # "Sale" also twice under 41: two failing pairs with the same name.
                   47: (41, "Sale", "s2", False), 48: (41, "Sale", "s3", True)}
    statuses = ["active"] * 8 + ["archived", "draft", "Active", "deleted", "active "]
    products: dict[int, tuple[int | None, int | None, str | None, str]] = {}
    for p in range(1, 161):
        products[p] = (rng.choice([None, *categories]) if rng.random() < 0.1
                       else rng.choice(list(categories)),
                       None if rng.random() < 0.1 else 1,
                       rng.choice([None, "", "Nice."]) if rng.random() < 0.2 else "Text.",
                       rng.choice(statuses))
    images = [p for p in products if rng.random() < 0.6]
    attributes = {1: True, 2: True, 3: False}
    values = [(p, a) for p in products for a in attributes if rng.random() < 0.85]
    skus = {s: (None if rng.random() < 0.1 else rng.choice(list(products))) for s in range(1, 121)}
    valid = ["paid", "shipped", "delivered", "returned", "pending", "cancelled"]
    order_rows = [(i, rng.choice(valid * 4 + ["shiped", "Paid", "paid ", "lost"]),
                   between(rng, local(BERLIN, 2026, 3, 28), local(BERLIN, 2026, 3, 31)))
                  for i in range(1, 301)]
    order_rows += [(301, "paid", local(BERLIN, 2026, 3, 29, 23, 30)),
                   (302, "paid", local(BERLIN, 2026, 3, 30, 0, 30)),
                   (303, "paid", local(BERLIN, 2026, 3, 29, 0, 30)),
                   (304, "paid", local(BERLIN, 2026, 3, 28, 23, 30))]
    addresses: dict[int, int | None] = {i: (None if rng.random() < 0.3 else 1)
                                        for i, _, _ in order_rows}
    addresses |= {301: None, 302: None, 303: None, 304: None}

    with connect(db, autocommit=True) as conn:
        base(conn)
        insert(conn, "users.addresses", "id, account_id, region_id, line1, city, postal_code",
               [(1, 1, 1, "Street 1", "Berlin", "10115")])
        insert(conn, "product.brands", "id, name", [(1, "Brand")])
        insert(conn, "product.categories", "id, parent_id, name, slug, is_active",
               [(i, *c) for i, c in categories.items()])
        insert(conn, "product.products",
               "id, category_id, brand_id, description, status, seller_id, title",
               [(p, *v, 1, f"P{p}") for p, v in products.items()])
        insert(conn, "product.images", "product_id, url", [(p, f"u{p}") for p in images])
        insert(conn, "product.attributes", "id, name, is_required",
               [(a, f"a{a}", r) for a, r in attributes.items()])
        insert(conn, "product.product_attribute_values", "product_id, attribute_id, value",
               [(*v, "x") for v in values])
        insert(conn, "product.skus", "id, product_id, code, unit_cost",
               [(s, p, f"SKU-{s:04d}", 1) for s, p in skus.items()])
        insert(conn, "ref.order_statuses", "code, label", [(c, c.title()) for c in valid])
        orders(conn, order_rows, addresses)

    def check(keys: list[str]) -> dict[str, str]:
        return {"failing": str(len(keys)), "examples": ", ".join(keys)[:200]}

    pairs = Counter((parent, name) for parent, name, _, _ in categories.values())
    inactive = {i for i, c in categories.items() if not c[3]}
    by_id = sorted(products)
    with_values = set(values)
    # (parent_id, name) pairs are the failing records; examples: their names, ascending.
    dup_names = sorted(name for (_, name), n in pairs.items() if n > 1)
    results = {
        "duplicate category names under one parent": check(dup_names),
        "categories with an empty slug": check([str(i) for i in sorted(categories)
                                                if categories[i][2] == ""]),
        "active products in inactive categories": check(
            [str(p) for p in by_id if products[p][3] == "active" and products[p][0] in inactive]),
        "products without images": check([str(p) for p in by_id if p not in images]),
        "products without category, brand or description": check(
            [str(p) for p in by_id if None in products[p][:3]]),
        "products missing a required attribute": check(
            [str(p) for p in by_id
             if any(req and (p, a) not in with_values for a, req in attributes.items())]),
        "SKUs not linked to a product": check([f"SKU-{s:04d}" for s in sorted(skus)
                                               if skus[s] is None]),
        "products with an invalid status": check(
            [f"{p}={products[p][3]}" for p in by_id
             if products[p][3] not in ("active", "archived", "draft")]),
        "orders with a status not in ref.order_statuses": check(
            [f"{i}={status}" for i, status, _ in sorted(order_rows) if status not in valid]),
        "orders placed in the period without an address": check(
            [str(i) for i, _, at in sorted(order_rows)
             if addresses[i] is None and start <= at < end]),
    }
    expected = [{"check_name": name, **r} for name, r in results.items()]
    expected.sort(key=lambda r: (-int(r["failing"]), r["check_name"]))
    assert dup_names.count("Sale") == 2 and "Zinc" in dup_names
    assert any(len(r["examples"]) == 200 for r in expected)

    got = run(project, db, "data_quality", datetime(2026, 3, 30, 12, tzinfo=UTC), tmp_path)
    assert got == expected


CHECKS = ["duplicate category names under one parent", "categories with an empty slug",
          "active products in inactive categories", "products without images",
          "products without category, brand or description",
          "products missing a required attribute", "SKUs not linked to a product",
          "products with an invalid status", "orders with a status not in ref.order_statuses",
          "orders placed in the period without an address"]


def clean_rows(project, dsn: str, tmp_path: Path) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    with connect(dsn, autocommit=True) as conn:
        base(conn)
    return run(project, dsn, "data_quality", datetime(2026, 3, 30, 12, tzinfo=UTC), tmp_path)


def test_data_quality_clean(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Nothing fails: ten rows, 0 and no examples each, ordered by check_name alone (the
    test database's collation is C: 'SKUs ...' sorts first)."""
    assert clean_rows(project, db, tmp_path) == [
        {"check_name": name, "failing": "0", "examples": ""} for name in sorted(CHECKS)]



# ---------------------------------------------------------------- rounding at exact halves


def test_logistics_sla_rounds_half_away(project, db: str,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    """1 late of 32 is 0.03125 -> 0.0313; means of 1.005 h and 2.005 h -> 1.01 and 2.01
    (half away from zero, not to even, and not a float just below the half)."""
    day = local(BERLIN, 2026, 3, 25, 10)
    rows = [(i, 1, day - timedelta(hours=1), day + timedelta(minutes=-1 if i == 1 else 1), day)
            for i in range(1, 33)]
    rows += [(33, 2, day - timedelta(hours=1), day, day),
             (34, 2, day - timedelta(hours=1, seconds=36), day, day)]
    with connect(db, autocommit=True) as conn:
        base(conn)
        orders(conn, [(i, "delivered", local(BERLIN, 2026, 3, 20)) for i in range(1, 35)])
        insert(conn, "logistics.warehouses", "id, name, region_id, capacity_units",
               [(1, "W", 1, 1)])
        insert(conn, "logistics.carriers", "id, name, sla_hours", [(1, "Alpha", 1),
                                                                   (2, "Bravo", 1)])
        insert(conn, "logistics.shipments", "id, order_id, warehouse_id, carrier_id, region_id, "
               "shipped_at, promised_at, delivered_at, shipping_cost",
               [(i, i, 1, c, 1, shipped, promised, delivered, 1)
                for i, c, shipped, promised, delivered in rows])
        insert(conn, "logistics.picking_tasks",
               "order_id, warehouse_id, started_at, completed_at, items_picked",
               [(33, 1, day, day + timedelta(hours=2), 1),
                (34, 1, day, day + timedelta(hours=2, seconds=36), 1)])
    got = run(project, db, "logistics_sla", datetime(2026, 3, 30, 12, tzinfo=UTC), tmp_path)
    assert [(r["carrier"], num(r["late_share"]), num(r["avg_delivery_hours"]),
             num(r["avg_picking_hours"])) for r in got] == [
        ("Alpha", Decimal("0.0313"), Decimal("1.00"), None),
        ("Bravo", Decimal("0.0000"), Decimal("1.01"), Decimal("2.01"))]


def test_inventory_movements_rounds_half_away(project, db: str,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    """1 unit on hand in 32 units of capacity is 0.03125 -> 0.0313; a warehouse without
    movements shows 0 in every count."""
    with connect(db, autocommit=True) as conn:
        base(conn)
        insert(conn, "product.products", "id, seller_id, title", [(1, 1, "P")])
        insert(conn, "product.skus", "id, product_id, code, unit_cost", [(1, 1, "S1", 1)])
        insert(conn, "logistics.warehouses", "id, name, region_id, capacity_units",
               [(1, "Gdansk", 4, 5)])
        insert(conn, "inventory.storage_locations", "id, warehouse_id, code, capacity_units",
               [(1, 1, "A", 16), (2, 1, "B", 16)])
        insert(conn, "inventory.stock_levels", "sku_id, location_id, on_hand, updated_at",
               [(1, 1, 1, "2026-10-01T00:00Z"), (1, 2, 0, "2026-10-01T00:00Z")])
    [row] = run(project, db, "inventory_movements", datetime(2026, 10, 26, 12, tzinfo=UTC),
                tmp_path)
    assert {k: (v if k == "warehouse" else num(v)) for k, v in row.items()} == {
        "warehouse": "Gdansk", "units_in": 0, "units_out": 0, "movements": 0,
        "auto_replenishments": 0, "manual_replenishments": 0, "late_receipts": 0,
        "fast_movers": 0, "slow_movers": 1, "storage_utilisation": Decimal("0.0313")}


def test_assortment_rounds_half_away(project, db: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """32 SKUs, one out of stock for 83 h 12 min: share 0.03125 -> 0.0313 and
    89 23/24 - (83.2 / 24) / 32 = 89.85 days in stock -> 89.9 (half to even would be 89.8)."""
    products: dict[int, int | None] = {p: 1 for p in range(1, 33)}
    skus: dict[int, int | None] = {s: s for s in range(1, 33)}
    began = local(BERLIN, 2026, 2, 10)
    load_assortment(db, products, skus, [], [], [(7, began, began + timedelta(hours=83,
                                                                              minutes=12))], [])
    [row] = run(project, db, "assortment", datetime(2026, 4, 2, 12, tzinfo=UTC), tmp_path)
    assert assortment_actual([row]) == [{
        "category": "Electronics", "revenue": 0, "units": 0, "orders": 0, "skus": 32,
        "out_of_stock_share": Decimal("0.0313"), "avg_days_in_stock": Decimal("89.9"),
        "product_views": 0, "view_to_purchase": None, "verdict": "leader"}]


def test_logistics_sla_exact_half_of_repeating_hours(project, db: str,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    """Trips of 1 h 20 min, 1 h 20 min and 20 min 54 s: each a repeating decimal in hours,
    their mean exactly 1.005 h -> 1.01 (as for the picking of the same three orders)."""
    day = local(BERLIN, 2026, 3, 25, 10)
    trips = [timedelta(minutes=80), timedelta(minutes=80), timedelta(seconds=1254)]
    with connect(db, autocommit=True) as conn:
        base(conn)
        orders(conn, [(i, "delivered", local(BERLIN, 2026, 3, 20)) for i in range(1, 4)])
        insert(conn, "logistics.warehouses", "id, name, region_id, capacity_units",
               [(1, "W", 1, 1)])
        insert(conn, "logistics.carriers", "id, name, sla_hours", [(1, "Alpha", 1)])
        insert(conn, "logistics.shipments", "id, order_id, warehouse_id, carrier_id, region_id, "
               "shipped_at, promised_at, delivered_at, shipping_cost",
               [(i, i, 1, 1, 1, day - trip, day, day, 1) for i, trip in enumerate(trips, 1)])
        insert(conn, "logistics.picking_tasks",
               "order_id, warehouse_id, started_at, completed_at, items_picked",
               [(i, 1, day - trip, day, 1) for i, trip in enumerate(trips, 1)])
    assert rnd(mean([hours(t) for t in trips]), 2) == Decimal("1.01")  # type: ignore[arg-type]
    [row] = run(project, db, "logistics_sla", datetime(2026, 3, 30, 12, tzinfo=UTC), tmp_path)
    assert (num(row["avg_delivery_hours"]), num(row["avg_picking_hours"])) == (
        Decimal("1.01"), Decimal("1.01"))
