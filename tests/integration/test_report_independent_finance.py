"""Finance reports recomputed independently, in plain Python, from their YAML descriptions.

pnl_monthly, promo_roi, retention_cohorts, user_growth and returns_cancellations run through
the engine on a database this module fills with a seeded, generated marketplace (a few
thousand rows plus hand-placed edge cases: period edges at 23:30/00:30 local, the DST
changes of 29 March and 25 October 2026, cancelled/pending/invalid-status orders, a campaign
with spend and no orders, codes without a campaign, returns with several and with no items,
NULL shipped_at and return_id, ties in every ordering). Every output column of every row is
compared with what the descriptions' words give over the generated rows; the reports' SQL
is never read. A cross-report test checks that promo_roi's ad_spend adds up to
pnl_monthly's and that user_growth's first-time buyers agree with retention_cohorts' cohort.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from engine.definitions.project import Project
from runners.postgres.connection import connect, with_database
from tests.support.generated import World, money, rnd
from tests.support.reports import declared_rows

BERLIN = ZoneInfo("Europe/Berlin")
PURCHASE = {"paid", "shipped", "delivered", "returned"}
STATUSES = ["paid", "shipped", "delivered", "returned", "delivered", "delivered", "pending",
            "cancelled", "shiped", "Paid"]
CENT = Decimal("0.01")


def local(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A Berlin wall-clock moment as an aware UTC datetime."""
    return datetime(y, m, d, h, mi, tzinfo=BERLIN).astimezone(UTC)


# Months (pnl, promo_roi, retention) and weeks (user_growth, returns), each across a DST change.
MONTHS = {"march": (local(2026, 3, 1), local(2026, 4, 1)),
          "october": (local(2026, 10, 1), local(2026, 11, 1))}
WEEKS = {"march": (local(2026, 3, 23), local(2026, 3, 30)),
         "october": (local(2026, 10, 19), local(2026, 10, 26))}


def _when(r: random.Random) -> datetime:
    """A placement time: a third uniform over the span, the rest around the checked periods."""
    spans = [(local(2025, 3, 1), local(2026, 11, 10)), (local(2026, 2, 20), local(2026, 4, 10)),
             (local(2026, 10, 1), local(2026, 11, 8))]
    lo, hi = spans[r.randrange(3)]
    return lo + timedelta(seconds=r.randrange(int((hi - lo).total_seconds())))


def generate(seed: int, skip_days: Iterable[date] = ()) -> World:
    """A deterministic marketplace; orders on `skip_days` (local dates) move 3 days later."""
    r = random.Random(seed)
    skip = set(skip_days)
    w = World()
    w.add("ref.currencies", code="EUR", name="Euro", minor_units=2)
    w.add("ref.countries", code="DE", name="Germany", currency_code="EUR")
    w.add("ref.countries", code="AT", name="Austria", currency_code="EUR")
    for rid, cc, name in [(1, "DE", "North"), (2, "DE", "South"), (3, "AT", "Wien")]:
        w.add("ref.regions", id=rid, country_code=cc, name=name, timezone="Europe/Berlin")
    for cid, code, label in [(1, "organic", "Organic"), (2, "social", "Social"),
                             (3, "search", "Search ads"), (4, "referral", "Referral")]:
        # Referral gets no account: it must not appear in user_growth.
        w.add("users.acquisition_channels", id=cid, code=code, label=label, is_paid=cid > 1)
    for code in ["paid", "shipped", "delivered", "returned", "pending", "cancelled"]:
        w.add("ref.order_statuses", code=code, label=code.title(), is_final=False)
    for rid, code, label in [(1, "size", "wrong size"), (2, "broken", "damaged"),
                             (3, "other", "other"), (4, "late", "arrived late")]:
        w.add("ref.return_reasons", id=rid, code=code, label=label, is_seller_fault=False)
    for rid, code, label in [(1, "mind", "changed mind"), (2, "stock", "out of stock"),
                             (3, "other", "other"), (4, "fraud", "fraud check")]:
        w.add("ref.cancellation_reasons", id=rid, code=code, label=label, initiated_by="customer")
    w.add("product.sellers", id=1, name="S", country_code="DE", contact_email="s@x.example",
          commission_rate=Decimal("0.1"), joined_at=local(2024, 1, 1))
    w.add("product.categories", id=1, parent_id=None, name="Top", slug="top", is_active=True)
    costs = []
    for pid in range(1, 13):
        w.add("product.products", id=pid, category_id=1, brand_id=None, seller_id=1,
              title=f"P{pid}", created_at=local(2024, 1, 1))
    for sid in range(1, 25):
        cost = money(r, 1, 40)
        costs.append(cost)
        # SKU 24 is an orphan (no product): its cost of goods still counts.
        w.add("product.skus", id=sid, product_id=None if sid == 24 else (sid - 1) % 12 + 1,
              code=f"SKU{sid}", unit_cost=cost)
    w.add("logistics.warehouses", id=1, name="W", region_id=1, capacity_units=10)
    w.add("logistics.carriers", id=1, name="C", sla_hours=48)
    # Marketing: campaigns 5, 6 and 8 have spend but no code (no orders), tied on spend; 5 and
    # 8 share a name too. 9 and 10 share a name, have no spend and tie on revenue (hand-placed
    # below): ordered by id, which shows as 9's two orders before 10's one.
    w.add("marketing.ad_channels", id=1, name="search")
    names = {1: "alpha spring", 2: "beta summer", 3: "gamma autumn", 4: "delta winter",
             5: "epsilon idle", 6: "zeta idle", 7: "eta dormant",
             8: "epsilon idle", 9: "theta twin", 10: "theta twin"}
    for cid, name in names.items():
        w.add("marketing.campaigns", id=cid, name=name, channel_id=1,
              starts_at=local(2025, 1, 1), ends_at=local(2027, 1, 1), budget=Decimal(1000))
    day = date(2025, 3, 1)
    while day <= date(2026, 11, 10):
        for cid in (1, 2, 3, 5, 6, 8):
            # Campaign 4 only spends in even months; 7 spends 0 and has no codes.
            if r.random() < 0.6 or cid in (5, 6, 8):
                amount = Decimal("12.34") if cid in (5, 6, 8) else money(r, 0, 90)
                w.add("marketing.ad_spend", campaign_id=cid, day=day, amount=amount,
                      impressions=r.randint(0, 999), clicks=r.randint(0, 99))
        if day.day == 15:
            # Campaign 7: a zero-amount spend row only, so a row with ad_spend 0, no roi.
            w.add("marketing.ad_spend", campaign_id=7, day=day, amount=Decimal(0),
                  impressions=0, clicks=0)
        if day.month % 2 == 0 and r.random() < 0.5:
            w.add("marketing.ad_spend", campaign_id=4, day=day, amount=money(r, 0, 50),
                  impressions=1, clicks=1)
        day += timedelta(days=1)
    # Discounts 1-4 have campaigns 1-4; 5 and 6 have none ("no campaign"); 9, 10 have 9, 10.
    for did in [1, 2, 3, 4, 5, 6, 9, 10]:
        w.add("marketing.discounts", id=did, campaign_id=None if did in (5, 6) else did,
              kind="amount", value=Decimal(5), min_order_total=Decimal(0))
        for k in range(2):
            w.add("marketing.promo_codes", id=did * 10 + k, code=f"CODE{did}{k}", discount_id=did,
                  max_uses=None, valid_from=local(2025, 1, 1), valid_until=local(2027, 1, 1))
    accounts = []
    for aid in range(1, 321):
        created = local(2025, 1, 1) + timedelta(seconds=r.randrange(int(
            (local(2026, 11, 5) - local(2025, 1, 1)).total_seconds())))
        accounts.append(w.add("users.accounts", id=aid, email=f"u{aid}@x.example",
                              region_id=r.randint(1, 3), channel_id=r.randint(1, 3),
                              created_at=created))
    # Hand-placed accounts at the checked weeks' edges (created 23:30 Sunday / 00:30 Monday).
    for aid, created in [(901, local(2026, 3, 29, 23, 30)), (902, local(2026, 3, 30, 0, 30)),
                         (903, local(2026, 10, 25, 23, 30)), (904, local(2026, 10, 26, 0, 30)),
                         (905, local(2026, 3, 23, 0, 0)), (906, local(2026, 10, 18, 23, 59))]:
        accounts.append(w.add("users.accounts", id=aid, email=f"u{aid}@x.example", region_id=2,
                              channel_id=2, created_at=created))
    heavy = [a for a in accounts if a["id"] % 17 == 0]  # frequent buyers and returners
    # Hand-placed orders go to accounts created before any of them (no order precedes its
    # account); the edge-created accounts 901-906 each buy one hour after being created.
    early = sorted(accounts, key=lambda a: a["created_at"])[:40]
    next_item = iter(range(1, 10**7))
    next_ship = iter(range(1, 10**7))
    next_ret = iter(range(1, 10**7))
    next_refund = iter(range(1, 10**7))

    def order(oid: int, account: dict[str, Any], placed: datetime, status: str,
              lines: int, promo: int | None = None, ret_items: int | None = None,
              price: Decimal | None = None) -> None:
        if placed.astimezone(BERLIN).date() in skip:
            placed += timedelta(days=3)
        w.add("orders.orders", id=oid, account_id=account["id"],
              region_id=r.randint(1, 3), status=status, placed_at=placed,
              subtotal=Decimal(0), discount_total=Decimal(0),
              shipping_fee=money(r, 0, 6), total=Decimal(0))
        items = []
        for _ in range(lines):
            item = w.add("orders.order_items", id=next(next_item), order_id=oid,
                         sku_id=r.randint(1, 24), quantity=r.randint(1, 4),
                         unit_price=money(r, 2, 120),
                         discount=money(r, 0, 3) if r.random() < 0.4 else Decimal(0))
            if price is not None:
                item.update(quantity=1, unit_price=price, discount=Decimal(0))
            items.append(item)
        if promo is not None:
            w.add("marketing.promo_redemptions", promo_code_id=promo, order_id=oid,
                  account_id=account["id"], discount_amount=money(r, 1, 15),
                  redeemed_at=placed)
        if status == "pending":
            return
        pid = oid
        w.add("payments.payments", id=pid, order_id=oid, amount=money(r, 5, 300),
              currency_code="EUR", status="captured", created_at=placed)
        w.add("payments.fees", payment_id=pid, amount=money(r, 0, 3),
              charged_at=placed + timedelta(minutes=r.randint(0, 4000)))
        if status in ("shipped", "delivered", "returned"):
            w.add("logistics.shipments", id=next(next_ship), order_id=oid, warehouse_id=1,
                  carrier_id=1, region_id=1,
                  shipped_at=None if r.random() < 0.1 else placed + timedelta(
                      hours=r.randint(1, 100)),
                  promised_at=placed + timedelta(days=3), delivered_at=None,
                  shipping_cost=money(r, 2, 9))
        if status == "cancelled" or (status == "paid" and r.random() < 0.05):
            # "whatever the order's status": some paid orders have a cancellation row too.
            at = placed + timedelta(hours=r.randint(0, 72))
            w.add("orders.cancellations", order_id=oid, reason_id=r.randint(1, 4),
                  cancelled_at=at, refunded_amount=money(r, 0, 80))
            if r.random() < 0.7:
                w.add("payments.refunds", id=next(next_refund), payment_id=pid, return_id=None,
                      amount=money(r, 1, 80), refunded_at=at + timedelta(hours=r.randint(1, 99)))
        returning = status == "returned" or (status == "delivered" and r.random() < 0.15)
        if ret_items is not None or returning:
            count = ret_items if ret_items is not None else r.randint(0, len(items))
            requested = placed + timedelta(hours=r.randint(24, 24 * 20))
            add_return(oid, account, requested, items[:count])

    def add_return(oid: int, account: dict[str, Any], requested: datetime,
                   items: list[dict[str, Any]]) -> None:
        rid = next(next_ret)
        w.add("orders.returns", id=rid, order_id=oid, account_id=account["id"],
              reason_id=r.randint(1, 4), requested_at=requested, received_at=None,
              status=r.choice(["requested", "received", "refunded", "rejected"]))
        for item in items:
            w.add("orders.return_items", return_id=rid, order_item_id=item["id"],
                  quantity=1, refund_amount=money(r, 1, 60), restockable=True)
        if r.random() < 0.8:
            w.add("payments.refunds", id=next(next_refund), payment_id=oid, return_id=rid,
                  amount=money(r, 1, 90),
                  refunded_at=requested + timedelta(hours=r.randint(1, 200)))

    for oid in range(1, 3401):
        account = r.choice(heavy) if r.random() < 0.3 else r.choice(accounts)
        placed = max(_when(r), account["created_at"] + timedelta(minutes=5))
        status = r.choice(STATUSES)
        promo = None
        if r.random() < 0.35:
            promo = r.choice([10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61])
        order(oid, account, placed, status, r.choice([0, 1, 1, 2, 2, 3, 4]), promo)
    # Edge orders at the checked periods' boundaries, each one a purchase with a code.
    edges = [local(2026, 3, 31, 23, 30), local(2026, 4, 1, 0, 30), local(2026, 2, 28, 23, 30),
             local(2026, 3, 29, 23, 30), local(2026, 3, 30, 0, 30), local(2026, 3, 29, 2, 30),
             local(2026, 10, 31, 23, 30), local(2026, 11, 1, 0, 30), local(2026, 10, 25, 2, 30),
             local(2026, 10, 25, 23, 30), local(2026, 10, 26, 0, 30), local(2025, 3, 31, 23, 30),
             local(2025, 4, 1, 0, 30), local(2025, 10, 31, 23, 30), local(2025, 11, 1, 0, 30)]
    for k, at in enumerate(edges):
        acct = early[k]
        if k >= 11:
            # The 12-month cohort windows' edges: these are the accounts' first purchases.
            acct = w.add("users.accounts", id=910 + k, email=f"u{910 + k}@x.example",
                         region_id=1, channel_id=1, created_at=local(2024, 6, 1))
        order(5000 + k, acct, at, "delivered", 2, promo=[10, 50, 30][k % 3], ret_items=2)
        # A cancelled order by the same account just before: never a first purchase.
        order(5100 + k, acct, at - timedelta(days=2), "cancelled", 1)
    for k, acct in enumerate(accounts[-6:]):
        order(5400 + k, acct, acct["created_at"] + timedelta(hours=1), "paid", 1, promo=60)
    # Returns requested exactly at the week edges, and a return with several items.
    for k, at in enumerate([local(2026, 3, 29, 23, 30), local(2026, 3, 30, 0, 30),
                            local(2026, 3, 23, 0, 0), local(2026, 10, 25, 23, 30),
                            local(2026, 10, 26, 0, 30), local(2026, 10, 19, 0, 0)]):
        acct = early[20 + k]
        order(5200 + k, acct, at - timedelta(days=5), "returned", 4, ret_items=0)
        items = [i for i in w.rows["orders.order_items"] if i["order_id"] == 5200 + k]
        add_return(5200 + k, acct, at, items[:3])
    # An account with exactly 3 returns, one at the 180-day boundary of each checked week.
    for k, end in enumerate([WEEKS["march"][1], WEEKS["october"][1]]):
        acct = early[30 + k]
        boundary = datetime.combine((end.astimezone(BERLIN) - timedelta(days=180)).date(),
                                    datetime.min.time(), BERLIN).astimezone(UTC)
        for j, at in enumerate([boundary, end - timedelta(days=3), end - timedelta(hours=30)]):
            order(5300 + 10 * k + j, acct, at - timedelta(days=1), "delivered", 1)
            add_return(5300 + 10 * k + j, acct, at, [])
        # Just outside the window: this account has only 2 returns inside it.
        acct2 = early[35 + k]
        for j, at in enumerate([boundary - timedelta(minutes=1), end - timedelta(days=3),
                                end - timedelta(hours=30)]):
            order(5350 + 10 * k + j, acct2, at - timedelta(days=1), "delivered", 1)
            add_return(5350 + 10 * k + j, acct2, at, [])
    # Repeat buyers around 720 hours across the March DST change, on fresh accounts: A's
    # follow-up is 719.5 h later (wall clock 30 days and 30 min: still a repeat buyer), B's
    # exactly 720 h (inclusive), C's 720 h and 1 s (not one).
    for k, (first, gap) in enumerate([
            (local(2026, 3, 5, 10), timedelta(hours=719, minutes=30)),
            (local(2026, 3, 6, 10), timedelta(hours=720)),
            (local(2026, 3, 7, 10), timedelta(hours=720, seconds=1))]):
        acct = w.add("users.accounts", id=911 + k, email=f"u{911 + k}@x.example", region_id=3,
                     channel_id=3, created_at=local(2024, 6, 1))
        order(5500 + k, acct, first, "delivered", 1, promo=20)
        order(5510 + k, acct, first + gap, "paid", 1)
    for k, (start, _end) in enumerate(MONTHS.values()):
        for j, (promo_id, price) in enumerate([(90, Decimal(10)), (90, Decimal(10)),
                                           (100, Decimal(20))]):
            order(5530 + 3 * k + j, early[j], start + timedelta(days=10 + j), "paid", 1,
                  promo=promo_id, price=price)
    # A return whose own account_id (a repeat returner's) is not its order's account: the
    # case's account is read as orders.returns.account_id.
    stray = early[30]
    order(5520, early[39], WEEKS["march"][1] - timedelta(days=2), "delivered", 1)
    add_return(5520, stray, WEEKS["march"][1] - timedelta(hours=20), [])
    # Write-offs, with edges.
    for _ in range(300):
        w.add("inventory.write_offs", sku_id=r.randint(1, 24), quantity=1,
              cost=money(r, 1, 40), reason="damaged", written_off_at=_when(r))
    for at in [local(2026, 3, 31, 23, 30), local(2026, 4, 1, 0, 30),
               local(2026, 10, 31, 23, 30), local(2026, 11, 1, 0, 30)]:
        w.add("inventory.write_offs", sku_id=1, quantity=1, cost=Decimal("7.77"),
              reason="lost", written_off_at=at)
    return w


def insert(dsn: str, world: World) -> None:
    """Insert the world's rows in foreign-key order."""
    order = ["ref.currencies", "ref.countries", "ref.regions", "users.acquisition_channels",
             "ref.order_statuses", "ref.return_reasons", "ref.cancellation_reasons",
             "product.sellers", "product.categories", "product.products", "product.skus",
             "logistics.warehouses", "logistics.carriers", "marketing.ad_channels",
             "marketing.campaigns", "marketing.ad_spend", "marketing.discounts",
             "marketing.promo_codes", "users.accounts", "orders.orders", "orders.order_items",
             "marketing.promo_redemptions", "payments.payments", "payments.fees",
             "logistics.shipments", "orders.cancellations", "orders.returns",
             "orders.return_items", "payments.refunds", "inventory.write_offs"]
    assert set(order) >= set(world.rows), set(world.rows) - set(order)
    with connect(dsn) as conn:
        with conn.transaction(), conn.cursor() as cur:
            for table in order:
                rows = world.rows.get(table, [])
                if not rows:
                    continue
                cols = list(rows[0])
                text = (f"insert into {table} ({', '.join(cols)}) overriding system value "
                        f"values ({', '.join(['%s'] * len(cols))})")
                cur.executemany(text.encode(), [tuple(row[c] for c in cols) for row in rows])


# ---- the descriptions' rules, in Python over the generated rows ----

@dataclass
class Purchase:
    order_id: int
    account_id: int
    placed_at: datetime
    net: Decimal
    cogs: Decimal
    promo_code_id: int | None
    promo_discount: Decimal | None
    campaign_id: int | None


def purchases(w: World) -> list[Purchase]:
    cost = {s["id"]: s["unit_cost"] for s in w.rows["product.skus"]}
    net: dict[int, Decimal] = defaultdict(Decimal)
    cogs: dict[int, Decimal] = defaultdict(Decimal)
    for i in w.rows["orders.order_items"]:
        net[i["order_id"]] += i["unit_price"] * i["quantity"] - i["discount"]
        cogs[i["order_id"]] += cost[i["sku_id"]] * i["quantity"]
    redemption = {p["order_id"]: p for p in w.rows["marketing.promo_redemptions"]}
    discount_of = {c["id"]: c["discount_id"] for c in w.rows["marketing.promo_codes"]}
    campaign_of = {d["id"]: d["campaign_id"] for d in w.rows["marketing.discounts"]}
    found = []
    for o in w.rows["orders.orders"]:
        if o["status"] not in PURCHASE:
            continue
        red = redemption.get(o["id"])
        found.append(Purchase(
            o["id"], o["account_id"], o["placed_at"], net[o["id"]], cogs[o["id"]],
            red["promo_code_id"] if red else None, red["discount_amount"] if red else None,
            campaign_of[discount_of[red["promo_code_id"]]] if red else None))
    return found


def first_purchases(w: World) -> dict[int, datetime]:
    first: dict[int, datetime] = {}
    for p in purchases(w):
        if p.account_id not in first or p.placed_at < first[p.account_id]:
            first[p.account_id] = p.placed_at
    return first


def spend_by_campaign(w: World, start: datetime, end: datetime) -> dict[int, Decimal]:
    lo, hi = start.astimezone(BERLIN).date(), end.astimezone(BERLIN).date()
    spend: dict[int, Decimal] = {}
    for s in w.rows["marketing.ad_spend"]:
        if lo <= s["day"] < hi:
            spend[s["campaign_id"]] = spend.get(s["campaign_id"], Decimal(0)) + s["amount"]
    return spend


def expect_pnl(w: World, start: datetime, end: datetime) -> list[dict[str, Any]]:
    def inside(t: datetime | None) -> bool:
        return t is not None and start <= t < end
    month = [p for p in purchases(w) if inside(p.placed_at)]
    revenue = sum((p.net for p in month), Decimal(0))
    cogs = sum((p.cogs for p in month), Decimal(0))
    refunds = [f for f in w.rows["payments.refunds"] if inside(f["refunded_at"])]
    ret = sum((f["amount"] for f in refunds if f["return_id"] is not None), Decimal(0))
    canc = sum((f["amount"] for f in refunds if f["return_id"] is None), Decimal(0))
    write_offs = sum((x["cost"] for x in w.rows["inventory.write_offs"]
                      if inside(x["written_off_at"])), Decimal(0))
    gross = revenue - ret - cogs - write_offs
    ad = sum(spend_by_campaign(w, start, end).values(), Decimal(0))
    logistics = sum((s["shipping_cost"] for s in w.rows["logistics.shipments"]
                     if inside(s["shipped_at"])), Decimal(0))
    fees = sum((f["amount"] for f in w.rows["payments.fees"] if inside(f["charged_at"])),
               Decimal(0))
    values = {"revenue": revenue, "refunded_returns": ret, "refunded_cancellations": canc,
              "cost_of_goods": cogs, "write_offs": write_offs, "gross_margin": gross,
              "ad_spend": ad, "logistics_cost": logistics, "payment_fees": fees,
              "contribution": gross - ad - logistics - fees}
    return [{k: rnd(v, 2) for k, v in values.items()}]


def expect_promo_roi(w: World, start: datetime, end: datetime) -> list[dict[str, Any]]:
    every = purchases(w)
    month = [p for p in every if start <= p.placed_at < end]
    by_account: dict[int, list[datetime]] = defaultdict(list)
    for p in every:
        by_account[p.account_id].append(p.placed_at)

    def repeats(p: Purchase) -> bool:
        return any(p.placed_at < t <= p.placed_at + timedelta(hours=720)
                   for t in by_account[p.account_id])
    spend = spend_by_campaign(w, start, end)
    names = {c["id"]: c["name"] for c in w.rows["marketing.campaigns"]}
    groups: dict[int | None, list[Purchase]] = defaultdict(list)
    for p in month:
        if p.promo_code_id is not None:
            groups[p.campaign_id].append(p)
    keys: set[int | None] = set(groups) | set(spend)
    rows: list[dict[str, Any]] = []
    for key in keys:
        ps = groups.get(key, [])
        revenue = sum((p.net for p in ps), Decimal(0))
        ad = spend.get(key, Decimal(0)) if key is not None else Decimal(0)
        rows.append({
            "id": key,
            "campaign": names[key] if key is not None else "no campaign",
            "promo_orders": Decimal(len(ps)),
            "promo_order_share": rnd(Decimal(len(ps)) / len(month), 4) if month else "",
            "revenue": rnd(revenue, 2),
            "avg_basket": rnd(revenue / len(ps), 2) if ps else "",
            "discount_given": rnd(sum((p.promo_discount or Decimal(0) for p in ps),
                                      Decimal(0)), 2),
            "repeat_buyers_30d": Decimal(len({p.account_id for p in ps if repeats(p)})),
            "ad_spend": rnd(ad, 2),
            "roi": rnd((revenue - ad) / ad, 3) if ad != 0 else ""})
    rows.sort(key=lambda x: (-Decimal(x["revenue"]), -Decimal(x["ad_spend"]), x["campaign"],
                             x["id"] or 0))
    for row in rows:
        del row["id"]
    return rows


def expect_retention(w: World, start: datetime, end: datetime) -> list[dict[str, Any]]:
    local_end = end.astimezone(BERLIN)
    cohort_start = local_end.replace(year=local_end.year - 1).astimezone(UTC)
    first = {a: t for a, t in first_purchases(w).items() if cohort_start <= t < end}
    cohort = {a: t.astimezone(BERLIN).strftime("%Y-%m") for a, t in first.items()}
    size: dict[str, int] = defaultdict(int)
    for c in cohort.values():
        size[c] += 1
    active: dict[tuple[str, int], set[int]] = defaultdict(set)
    for p in purchases(w):
        if p.account_id in first and p.placed_at < end:
            week = (p.placed_at - first[p.account_id]) // timedelta(hours=168)
            if 0 <= week <= 12:
                active[(cohort[p.account_id], week)].add(p.account_id)
    return [{"cohort": c, "customers": Decimal(size[c]), "week": Decimal(wk),
             "active": Decimal(len(accts)),
             "retention": rnd(Decimal(len(accts)) / size[c], 4)}
            for (c, wk), accts in sorted(active.items())]


def expect_user_growth(w: World, start: datetime, end: datetime) -> list[dict[str, Any]]:
    region = {x["id"]: x["name"] for x in w.rows["ref.regions"]}
    channel = {x["id"]: x["label"] for x in w.rows["users.acquisition_channels"]}
    first = first_purchases(w)
    active = {p.account_id for p in purchases(w) if start <= p.placed_at < end}
    stats: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for a in w.rows["users.accounts"]:
        if a["created_at"] >= end:
            continue
        s = stats[(region[a["region_id"]], channel[a["channel_id"]])]
        s[0] += start <= a["created_at"]
        if a["id"] in active:
            s[1] += start <= first[a["id"]] < end
            s[2] += first[a["id"]] < start
        s[3] += 1
    rows: list[dict[str, Any]] = [{"region": k[0], "channel": k[1], "new_accounts": Decimal(v[0]),
             "first_time_buyers": Decimal(v[1]), "returning_buyers": Decimal(v[2]),
             "accounts_total": Decimal(v[3])} for k, v in stats.items()]
    rows.sort(key=lambda x: (-Decimal(x["new_accounts"]), x["region"], x["channel"]))
    return rows


def expect_returns(w: World, start: datetime, end: datetime) -> list[dict[str, Any]]:
    boundary = datetime.combine((end.astimezone(BERLIN) - timedelta(days=180)).date(),
                                datetime.min.time(), BERLIN).astimezone(UTC)
    count: dict[int, int] = defaultdict(int)
    for x in w.rows["orders.returns"]:
        if boundary <= x["requested_at"] < end:
            count[x["account_id"]] += 1
    repeat = {a for a, n in count.items() if n >= 3}
    rr = {x["id"]: x["label"] for x in w.rows["ref.return_reasons"]}
    cr = {x["id"]: x["label"] for x in w.rows["ref.cancellation_reasons"]}
    owner = {o["id"]: o["account_id"] for o in w.rows["orders.orders"]}
    refund: dict[int, Decimal] = defaultdict(Decimal)
    for i in w.rows["orders.return_items"]:
        refund[i["return_id"]] += i["refund_amount"]
    acc: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0), 0])
    for x in w.rows["orders.returns"]:
        if start <= x["requested_at"] < end:
            s = acc[("return", rr[x["reason_id"]])]
            s[0] += 1
            s[1] += refund[x["id"]]
            s[2] += x["account_id"] in repeat
    for c in w.rows["orders.cancellations"]:
        if start <= c["cancelled_at"] < end:
            s = acc[("cancellation", cr[c["reason_id"]])]
            s[0] += 1
            s[1] += c["refunded_amount"]
            s[2] += owner[c["order_id"]] in repeat
    rows: list[dict[str, Any]] = [
        {"kind": k[0], "reason": k[1], "cases": Decimal(v[0]), "amount": rnd(v[1], 2),
         "from_repeat_returners": Decimal(v[2]), "repeat_share": rnd(Decimal(v[2]) / v[0], 4)}
        for k, v in acc.items()]
    rows.sort(key=lambda x: (x["kind"], -Decimal(x["cases"]), x["reason"]))
    return rows


# ---- running the reports ----

def parsed(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """CSV cells as Decimal where they are numbers, else the text ('' for NULL)."""
    def cell(v: str) -> Any:
        try:
            return Decimal(v)
        except InvalidOperation:
            return v
    return [{k: cell(v) for k, v in row.items()} for row in rows]


@pytest.fixture(scope="module")
def world() -> World:
    return generate(20261202)


@pytest.fixture(scope="module")
def filled(world: World, pg_admin_dsn: str, declared_schema: str) -> Iterator[str]:
    """One database holding the module's world for every case: reports only read (their
    runner's transaction is read only), so no case sees another's traces."""
    name = f"finance_{uuid.uuid4().hex[:8]}"
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name} template {declared_schema}".encode())
    dsn = with_database(pg_admin_dsn, name)
    insert(dsn, world)
    yield dsn
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())


def _slot_after(end: datetime) -> datetime:
    """A moment after every report's slot that closes the period ending at `end`."""
    return end + timedelta(hours=12)


EXPECT = {"pnl_monthly": (expect_pnl, MONTHS), "promo_roi": (expect_promo_roi, MONTHS),
          "retention_cohorts": (expect_retention, MONTHS),
          "user_growth": (expect_user_growth, WEEKS),
          "returns_cancellations": (expect_returns, WEEKS)}


@pytest.mark.parametrize("period", ["march", "october"])
@pytest.mark.parametrize("report", list(EXPECT))
def test_report_matches_description(project: Project, world: World, filled: str,
                                    tmp_path: Path, report: str, period: str) -> None:
    expect, periods = EXPECT[report]
    start, end = periods[period]
    want = expect(world, start, end)
    got = parsed(declared_rows(project, filled, report, _slot_after(end), tmp_path))
    assert want, "the generated data must give the report rows to compare"
    assert got == want


def test_generated_data_covers_the_edge_cases(world: World) -> None:
    """The data really holds what the edge cases need (else the figures prove little)."""
    start, end = MONTHS["march"]
    promo = expect_promo_roi(world, start, end)
    assert any(r["promo_orders"] == 0 and r["ad_spend"] > 0 for r in promo)
    assert any(r["campaign"] == "no campaign" for r in promo)
    assert any(r["campaign"] == "eta dormant" and r["roi"] == "" for r in promo)
    ws, we = WEEKS["march"]
    rows = expect_returns(world, ws, we)
    assert {r["kind"] for r in rows} == {"return", "cancellation"}
    assert any(0 < r["from_repeat_returners"] for r in rows)
    growth = expect_user_growth(world, ws, we)
    assert sum(r["first_time_buyers"] for r in growth) > 0
    assert sum(r["returning_buyers"] for r in growth) > 0


def test_cross_report_consistency(project: Project, new_database: Callable[..., str],
                                  declared_schema: str, tmp_path: Path) -> None:
    """promo_roi's ad_spend adds up to pnl_monthly's; user_growth's first-time buyers of the
    four whole weeks of March 2026 (2-29 March, the DST change included) are retention's
    March cohort, in data where no order is placed on 1, 30 or 31 March."""
    world = generate(7, skip_days=[date(2026, 3, 1), date(2026, 3, 30), date(2026, 3, 31)])
    dsn = new_database(declared_schema)
    insert(dsn, world)
    end = MONTHS["march"][1]
    at = _slot_after(end)
    [pnl] = parsed(declared_rows(project, dsn, "pnl_monthly", at, tmp_path))
    promo = parsed(declared_rows(project, dsn, "promo_roi", at, tmp_path))
    assert sum(r["ad_spend"] for r in promo) == pnl["ad_spend"] > 0
    cohorts = parsed(declared_rows(project, dsn, "retention_cohorts", at, tmp_path))
    march = {r["customers"] for r in cohorts if r["cohort"] == "2026-03"}
    week0 = [r["active"] for r in cohorts if r["cohort"] == "2026-03" and r["week"] == 0]
    first_time = Decimal(0)
    for k in range(4):
        monday_after = local(2026, 3, 9 + 7 * k)
        rows = parsed(declared_rows(project, dsn, "user_growth", _slot_after(monday_after),
                                    tmp_path / f"w{k}"))
        first_time += sum(r["first_time_buyers"] for r in rows)
    assert march == {first_time} and first_time > 0
    # Week 0 holds the first purchase itself: every cohort account is active in it.
    assert week0 == [first_time]
