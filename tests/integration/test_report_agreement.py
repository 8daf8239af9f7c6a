"""Reports that share a glossary term agree with each other on the demo data, and with the
term's words applied in Python to the raw rows (not by re-running any report's SQL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from runners.postgres.connection import connect
from tests.support.reports import declared_rows

BERLIN = ZoneInfo("Europe/Berlin")
# The glossary's purchase, in its own words: these statuses exactly.
PURCHASE = {"paid", "shipped", "delivered", "returned"}
# October 2026 (the month before the demo's --until) and the week of 19-25 October, Berlin.
MONTH = (datetime(2026, 10, 1, tzinfo=BERLIN), datetime(2026, 11, 1, tzinfo=BERLIN))
WEEK = (datetime(2026, 10, 19, tzinfo=BERLIN), datetime(2026, 10, 26, tzinfo=BERLIN))
AFTER_MONTH = datetime(2026, 11, 1, 12, tzinfo=UTC)
AFTER_WEEK = datetime(2026, 10, 31, 23, tzinfo=UTC)


@pytest.fixture
def demo(market_template: str, new_database: Callable[..., str]) -> str:
    return new_database(template=market_template)


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with connect(dsn) as conn:
        return list(conn.execute(sql.encode()).fetchall())


def _within(moment: datetime, window: tuple[datetime, datetime]) -> bool:
    return window[0] <= moment < window[1]


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _purchases(dsn: str) -> dict[int, tuple[int, datetime]]:
    """order id -> (account, placed_at) of every purchase."""
    return {oid: (account, placed) for oid, account, status, placed in _rows(
        dsn, "select id, account_id, status, placed_at from orders.orders")
        if status in PURCHASE}


def test_ad_spend_and_revenue_agree_between_pnl_and_promo_roi(  # type: ignore[no-untyped-def]
        project, demo: str, tmp_path: Path) -> None:
    [pnl] = declared_rows(project, demo, "pnl_monthly", AFTER_MONTH, tmp_path)
    promo = declared_rows(project, demo, "promo_roi", AFTER_MONTH, tmp_path)
    spend = sum((amount for day, amount in _rows(demo, "select day, amount from "
                                                  "marketing.ad_spend")
                 if date(2026, 10, 1) <= day < date(2026, 11, 1)), Decimal(0))
    assert spend > 0
    assert Decimal(pnl["ad_spend"]) == sum(Decimal(r["ad_spend"]) for r in promo) == spend

    purchases = {oid for oid, (_, placed) in _purchases(demo).items() if _within(placed, MONTH)}
    revenue = sum((price * quantity - discount for oid, price, quantity, discount in _rows(
        demo, "select order_id, unit_price, quantity, discount from orders.order_items")
        if oid in purchases), Decimal(0))
    assert Decimal(pnl["revenue"]) == revenue > 0

    redeemed = {oid for (oid,) in _rows(demo, "select order_id from marketing.promo_redemptions")}
    assert sum(int(r["promo_orders"]) for r in promo) == len(purchases & redeemed) > 0
    for row in promo:   # every share has the same denominator: the month's purchases
        assert Decimal(row["promo_order_share"]) == _round(
            Decimal(row["promo_orders"]) / len(purchases), 4), row


def test_buyers_and_cohorts_use_the_same_purchases(  # type: ignore[no-untyped-def]
        project, demo: str, tmp_path: Path) -> None:
    first: dict[int, datetime] = {}
    in_week: set[int] = set()
    for account, placed in _purchases(demo).values():
        first[account] = min(first.get(account, placed), placed)
        if _within(placed, WEEK):
            in_week.add(account)
    created = dict(_rows(demo, "select id, created_at from users.accounts"))
    buyers = {a for a in in_week if created[a] < WEEK[1]}

    growth = declared_rows(project, demo, "user_growth", AFTER_WEEK, tmp_path)
    assert sum(int(r["first_time_buyers"]) for r in growth) == sum(
        1 for a in buyers if first[a] >= WEEK[0]) > 0
    assert sum(int(r["returning_buyers"]) for r in growth) == sum(
        1 for a in buyers if first[a] < WEEK[0]) > 0

    cohorts = declared_rows(project, demo, "retention_cohorts", AFTER_MONTH, tmp_path)
    start = datetime(2025, 11, 1, tzinfo=BERLIN)
    expected = Counter(f"{moment.astimezone(BERLIN):%Y-%m}" for moment in first.values()
                       if start <= moment < MONTH[1])
    assert {r["cohort"]: int(r["customers"]) for r in cohorts} == dict(expected)
    # Week 0 is the first purchase itself: everyone in a cohort is active in it.
    assert all(r["active"] == r["customers"] for r in cohorts if r["week"] == "0")
