"""Key figures and their comparisons in report mails, checked against an independent computation.

For every report that declares `compare:` on a key figure, a test fills a fresh database
(cloned from one holding the declared schema) with rows generated here (a seeded random.Random plus
hand-placed rows at the edges of the compared periods), runs the report through the CLI
(`marketops run`, invoked in this process) for the previous period and then for the current
one, receives the real
MIME message on a loopback SMTP server (aiosmtpd) and reads its plain-text summary line.
Each key figure (the total over the report's rows, per the `key` column description), its
previous value and the printed change in % with its arrow are compared with figures
computed here in plain Python over the inserted rows, from the YAML descriptions' words
(the report SQL and the engine's figure code are never read). Periods are recomputed here
from the report's timezone, and each report's compared pair includes a period crossing a
DST change (29 March or 25 October 2026). Also checked: a previous period with nothing (0),
a current period with nothing, and a run with no archived previous period (the engine then
runs the report for that period itself).
"""

from __future__ import annotations

import os
import random
import shutil
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from engine.app.cli import cli
from engine.definitions.project import Project
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect
from tests.mailbox import http_sink, smtp_server
from tests.support.generated import World, money, rnd

BERLIN = ZoneInfo("Europe/Berlin")
PARIS = ZoneInfo("Europe/Paris")
WARSAW = ZoneInfo("Europe/Warsaw")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
PURCHASE = {"paid", "shipped", "delivered", "returned"}
STATUSES = ["paid", "shipped", "delivered", "delivered", "returned", "pending", "cancelled",
            "shiped", "Paid"]
EUR = Decimal("0.01")


def local(tz: ZoneInfo, y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A wall-clock moment in `tz` as an aware UTC datetime (so arithmetic is elapsed time)."""
    return datetime(y, m, d, h, mi, tzinfo=tz).astimezone(UTC)


def between(r: random.Random, lo: datetime, hi: datetime) -> datetime:
    return lo + timedelta(seconds=r.randrange(int((hi - lo).total_seconds())))


# ------------------------------------------------------------------ rows and the database

def _table_order(project: Project) -> list[str]:
    """Every declared table, each after the tables its foreign keys reference."""
    deps: dict[str, set[str]] = {}
    for sname, loaded in project.schemas.items():
        for tname, table in loaded.model.tables.items():
            deps[f"{sname}.{tname}"] = {fk.references.table for fk in table.foreign_keys}
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in sorted(deps.get(name, ())):
            if dep != name:
                visit(dep)
        done.append(name)
    for name in sorted(deps):
        visit(name)
    return done


def fill(project: Project, dsn: str, world: World) -> None:
    """Insert the world's rows into `dsn`, a copy of the declared schema's database."""
    order = _table_order(project)
    assert set(world.rows) <= set(order), set(world.rows) - set(order)
    declared = {f"{sname}.{tname}": set(table.columns)
                for sname, loaded in project.schemas.items()
                for tname, table in loaded.model.tables.items()}
    with connect(dsn) as conn, conn.transaction(), conn.cursor() as cur:
        for table in order:
            rows = world.of(table)
            if not rows:
                continue
            # Keys that are not columns (an order's "items") are the generator's helpers.
            cols = sorted({c for row in rows for c in row} & declared[table])
            text = (f"insert into {table} ({', '.join(cols)}) overriding system value "
                    f"values ({', '.join(['%s'] * len(cols))})")
            cur.executemany(text.encode(), [tuple(row.get(c) for c in cols) for row in rows])


# ------------------------------------------------------------------ the engine, as a user runs it

@dataclass
class Delivered:
    """What one `marketops run` printed and mailed."""

    stdout: str
    mails: list[Message]


def project_root(repo_root: Path, root: Path, smtp_port: int) -> Path:
    """This repository's schema and definitions under `root`, with settings pointing at the
    test's database, SMTP server, webhook sink and archive directory."""
    root.mkdir(parents=True)
    for part in ("schema", "definitions"):
        shutil.copytree(repo_root / part, root / part)
    settings = (repo_root / "marketops.yaml").read_text(encoding="utf-8")
    for old, new in [("dsn: embedded ", 'dsn: "${TEST_PRIMARY_DSN}" '),
                     ("host: localhost", "host: 127.0.0.1"),
                     ("port: 2525", f"port: {smtp_port}"),
                     ("file://./var/reports", f"file://{root}/var/reports")]:
        assert old in settings, old
        settings = settings.replace(old, new)
    (root / "marketops.yaml").write_text(settings, encoding="utf-8")
    return root


class Engine:
    """Runs reports through the CLI against one database, collecting the mails sent."""

    def __init__(self, root: Path, dsn: str, mails: list[tuple[list[str], Message]],
                 hook_port: int) -> None:
        self.root, self.dsn, self.mails, self.hook_port = root, dsn, mails, hook_port

    def run(self, report: str, at: datetime) -> Delivered:
        """`marketops run` as the console script runs it (the same click command, arguments
        and environment), but in this process: a new interpreter per run spent most of this
        module's time importing and starting up."""
        before = len(self.mails)
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MARKETOPS_")}
        env |= {"TEST_PRIMARY_DSN": self.dsn,
                "DATA_ALERTS_WEBHOOK_URL": f"http://127.0.0.1:{self.hook_port}/hook"}
        done = CliRunner().invoke(cli, ["--root", str(self.root), "run", f"report/{report}",
                                        "--at", at.isoformat()], env=env, prog_name="marketops")
        crash = "".join(traceback.format_exception(*done.exc_info)) if (
            done.exc_info and not isinstance(done.exception, SystemExit)) else ""
        assert done.exit_code == 0, done.output + crash
        return Delivered(done.stdout, [m for _, m in self.mails[before:]])

    def archived(self, report: str) -> list[str]:
        folder = self.root / "var" / "reports" / report
        return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def mail_servers() -> Iterator[tuple[int, list[tuple[list[str], Message]], int]]:
    """One SMTP server and one webhook sink for every run of the module: the SMTP port, the
    mails received and the webhook port (a run reads only the mails received during it)."""
    smtp_port, hook_port = free_port(), free_port()
    with smtp_server(smtp_port) as mails, http_sink(hook_port):
        yield smtp_port, mails, hook_port


@pytest.fixture
def engine(project: Project, repo_root: Path, new_database: Callable[..., str],
           declared_schema: str, mail_servers: tuple[int, list[tuple[list[str], Message]], int],
           tmp_path: Path) -> Callable[[World], Engine]:
    """Factory: an engine over a fresh database holding the given world."""
    smtp_port, mails, hook_port = mail_servers
    made = iter(range(100))

    def make(world: World) -> Engine:
        dsn = new_database(declared_schema)
        fill(project, dsn, world)
        root = project_root(repo_root, tmp_path / f"project{next(made)}", smtp_port)
        return Engine(root, dsn, mails, hook_port)
    return make


def plain_text(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_text(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    part = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


# ------------------------------------------------------------------ the marketplace's fixed rows

def base(w: World, r: random.Random, accounts: int = 60) -> None:
    """Reference data, a catalogue, accounts, a warehouse and carriers."""
    w.add("ref.currencies", code="EUR", name="Euro", minor_units=2)
    w.add("ref.countries", code="DE", name="Germany", currency_code="EUR")
    for rid, name in [(1, "North"), (2, "South"), (3, "East")]:
        w.add("ref.regions", id=rid, country_code="DE", name=name, timezone="Europe/Berlin")
    for cid, code in [(1, "organic"), (2, "social")]:
        w.add("users.acquisition_channels", id=cid, code=code, label=code.title(),
              is_paid=cid == 2)
    for code in ["paid", "shipped", "delivered", "returned", "pending", "cancelled"]:
        w.add("ref.order_statuses", code=code, label=code.title(), is_final=False)
    for rid, code in [(1, "size"), (2, "broken")]:
        w.add("ref.return_reasons", id=rid, code=code, label=f"reason {code}",
              is_seller_fault=False)
    for rid, code in [(1, "mind"), (2, "stock")]:
        w.add("ref.cancellation_reasons", id=rid, code=code, label=f"cancel {code}",
              initiated_by="customer")
    w.add("product.sellers", id=1, name="Seller", country_code="DE",
          contact_email="s@x.example", commission_rate=Decimal("0.1"),
          joined_at=local(BERLIN, 2024, 1, 1))
    w.add("product.categories", id=1, parent_id=None, name="Top", slug="top", is_active=True)
    for pid in range(1, 9):
        w.add("product.products", id=pid, category_id=1, brand_id=None, seller_id=1,
              title=f"Product {pid}", description="d", status="active",
              created_at=local(BERLIN, 2024, 1, 1))
    for sid in range(1, 17):
        w.add("product.skus", id=sid, product_id=(sid - 1) % 8 + 1, code=f"SKU{sid}",
              unit_cost=money(r, 1, 30))
    for aid in range(1, accounts + 1):
        w.add("users.accounts", id=aid, email=f"u{aid}@x.example", region_id=r.randint(1, 3),
              channel_id=r.randint(1, 2), status="active",
              created_at=local(BERLIN, 2024, 6, 1))
    w.add("logistics.warehouses", id=1, name="Main", region_id=1, capacity_units=1000)
    for cid, name in [(1, "Parcelo"), (2, "Swift")]:
        w.add("logistics.carriers", id=cid, name=name, sla_hours=48)


class Orders:
    """Orders with their lines, payment and fee, numbered in one sequence."""

    def __init__(self, w: World, r: random.Random) -> None:
        self.w, self.r = w, r
        self.ids = iter(range(1, 10**6))
        self.item_ids = iter(range(1, 10**7))

    def add(self, placed: datetime, status: str, lines: int = 2,
            account: int | None = None) -> dict[str, Any]:
        r, oid = self.r, next(self.ids)
        order = self.w.add("orders.orders", id=oid, account_id=account or r.randint(1, 60),
                           region_id=r.randint(1, 3), status=status, placed_at=placed,
                           subtotal=Decimal(0), discount_total=Decimal(0),
                           shipping_fee=money(r, 0, 5), total=Decimal(0))
        order["items"] = []
        for _ in range(lines):
            order["items"].append(self.w.add(
                "orders.order_items", id=next(self.item_ids), order_id=oid,
                sku_id=r.randint(1, 16), quantity=r.randint(1, 3),
                unit_price=money(r, 3, 90),
                discount=money(r, 0, 4) if r.random() < 0.4 else Decimal(0)))
        self.w.add("payments.payments", id=oid, order_id=oid, amount=money(r, 5, 200),
                   currency_code="EUR", status="captured", created_at=placed)
        return order



def month(tz: ZoneInfo, y: int, m: int) -> tuple[datetime, datetime]:
    """A local calendar month as [start, end) instants."""
    return local(tz, y, m, 1), local(tz, y + m // 12, m % 12 + 1, 1)


def week(tz: ZoneInfo, monday: date) -> tuple[datetime, datetime]:
    """The local Monday-to-Monday week starting on `monday`."""
    end = monday + timedelta(days=7)
    return (local(tz, monday.year, monday.month, monday.day),
            local(tz, end.year, end.month, end.day))


def inside(t: datetime | None, period: tuple[datetime, datetime]) -> bool:
    return t is not None and period[0] <= t < period[1]


# ------------------------------------------------------------------ pnl_monthly

def pnl_world(seed: int) -> World:
    """Orders over October and November 2026 (Berlin; October has the DST change), nothing
    before October, refunds and fees spilling into December, heavy ad spend in October (a
    negative contribution), and orders at 23:30 / 00:30 local around each month edge."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    orders = Orders(w, r)
    w.add("marketing.ad_channels", id=1, name="search")
    w.add("marketing.campaigns", id=1, name="Autumn", channel_id=1,
          starts_at=local(BERLIN, 2026, 1, 1), ends_at=local(BERLIN, 2027, 6, 1),
          budget=Decimal(10**6))
    oct_, nov = month(BERLIN, 2026, 10), month(BERLIN, 2026, 11)
    edges = [local(BERLIN, 2026, 10, 1, 0, 30), local(BERLIN, 2026, 10, 25, 2, 30),
             local(BERLIN, 2026, 10, 31, 23, 30), local(BERLIN, 2026, 11, 1, 0, 30),
             local(BERLIN, 2026, 11, 30, 23, 30)]
    times = [between(r, oct_[0], nov[1]) for _ in range(400)] + edges
    refunds = iter(range(1, 10**6))
    for k, placed in enumerate(times):
        status = "delivered" if placed in edges else r.choice(STATUSES)
        order = orders.add(placed, status, lines=r.choice([0, 1, 2, 3]))
        oid = order["id"]
        w.add("payments.fees", payment_id=oid, amount=money(r, 0, 3),
              charged_at=placed + timedelta(hours=r.randint(0, 120)))
        if status in ("shipped", "delivered", "returned"):
            w.add("logistics.shipments", id=oid, order_id=oid, warehouse_id=1,
                  carrier_id=1, region_id=1,
                  shipped_at=None if k % 9 == 0 else placed + timedelta(hours=r.randint(1, 90)),
                  promised_at=placed + timedelta(days=3), delivered_at=None,
                  shipping_cost=money(r, 2, 9))
        if status == "returned":
            w.add("orders.returns", id=oid, order_id=oid, account_id=order["account_id"],
                  reason_id=1, requested_at=placed + timedelta(days=4), received_at=None,
                  status="refunded")
            w.add("payments.refunds", id=next(refunds), payment_id=oid, return_id=oid,
                  amount=money(r, 5, 80), refunded_at=placed + timedelta(days=r.randint(5, 12)))
        if status == "cancelled":
            w.add("payments.refunds", id=next(refunds), payment_id=oid, return_id=None,
                  amount=money(r, 5, 80), refunded_at=placed + timedelta(hours=r.randint(1, 200)))
    for _ in range(60):
        w.add("inventory.write_offs", sku_id=r.randint(1, 16), quantity=1, cost=money(r, 1, 40),
              reason="damaged", written_off_at=between(r, oct_[0], nov[1]))
    day = date(2026, 10, 1)
    while day <= date(2026, 11, 30):
        # October spends far more than it earns: its contribution is negative.
        w.add("marketing.ad_spend", campaign_id=1, day=day,
              amount=money(r, 900, 1400) if day.month == 10 else money(r, 10, 60),
              impressions=1, clicks=1)
        day += timedelta(days=1)
    return w


def pnl_figures(w: World, period: tuple[datetime, datetime]) -> dict[str, Decimal]:
    """The P&L's key figures for one month, from the description's words."""
    cost = {s["id"]: s["unit_cost"] for s in w.of("product.skus")}
    bought = {o["id"] for o in w.of("orders.orders")
              if o["status"] in PURCHASE and inside(o["placed_at"], period)}
    revenue = sum((i["unit_price"] * i["quantity"] - i["discount"]
                   for i in w.of("orders.order_items") if i["order_id"] in bought), Decimal(0))
    cogs = sum((cost[i["sku_id"]] * i["quantity"] for i in w.of("orders.order_items")
                if i["order_id"] in bought), Decimal(0))
    returns = sum((f["amount"] for f in w.of("payments.refunds")
                   if f["return_id"] is not None and inside(f["refunded_at"], period)),
                  Decimal(0))
    write_offs = sum((x["cost"] for x in w.of("inventory.write_offs")
                      if inside(x["written_off_at"], period)), Decimal(0))
    first, last = period[0].astimezone(BERLIN).date(), period[1].astimezone(BERLIN).date()
    ads = sum((s["amount"] for s in w.of("marketing.ad_spend") if first <= s["day"] < last),
              Decimal(0))
    logistics = sum((s["shipping_cost"] for s in w.of("logistics.shipments")
                     if inside(s["shipped_at"], period)), Decimal(0))
    fees = sum((f["amount"] for f in w.of("payments.fees") if inside(f["charged_at"], period)),
               Decimal(0))
    gross = revenue - returns - cogs - write_offs
    return {"revenue": rnd(revenue, 2), "gross_margin": rnd(gross, 2),
            "contribution": rnd(gross - ads - logistics - fees, 2)}



# ------------------------------------------------------------------ periods, words, the summary

Period = tuple[datetime, datetime]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def quarter(tz: ZoneInfo, y: int, q: int) -> Period:
    end_y, end_m = (y + 1, 1) if q == 4 else (y, 3 * q + 1)
    return local(tz, y, 3 * q - 2, 1), local(tz, end_y, end_m, 1)


def day(tz: ZoneInfo, d: date) -> Period:
    after = d + timedelta(days=1)
    return local(tz, d.year, d.month, d.day), local(tz, after.year, after.month, after.day)


@dataclass(frozen=True)
class Cadence:
    """A report's period kind, in its timezone: the previous period and one a year before
    are calendar periods (local midnights), never the period shifted by elapsed time."""

    kind: str  # month, week, day, quarter
    tz: ZoneInfo

    def dates(self, period: Period) -> tuple[date, date]:
        return period[0].astimezone(self.tz).date(), period[1].astimezone(self.tz).date()

    def make(self, first: date) -> Period:
        if self.kind == "month":
            return month(self.tz, first.year, first.month)
        if self.kind == "quarter":
            return quarter(self.tz, first.year, (first.month - 1) // 3 + 1)
        if self.kind == "week":
            return week(self.tz, first)
        return day(self.tz, first)

    def previous(self, period: Period) -> Period:
        first, _ = self.dates(period)
        if self.kind == "month":
            return self.make((first - timedelta(days=1)).replace(day=1))
        if self.kind == "quarter":
            back = first.replace(day=1) - timedelta(days=80)
            return self.make(back.replace(month=(back.month - 1) // 3 * 3 + 1, day=1))
        return self.make(first - timedelta(days=7 if self.kind == "week" else 1))

    def year_before(self, period: Period) -> Period:
        first, _ = self.dates(period)
        return self.make(first.replace(year=first.year - 1))

    def words(self, period: Period) -> str:
        """The period as the mail names it (month and quarter wording from the engine's
        documentation; week and day wording from issue 18's examples)."""
        first, end = self.dates(period)
        last = end - timedelta(days=1)
        if self.kind == "month":
            return f"{MONTHS[first.month - 1]} {first.year}"
        if self.kind == "quarter":
            return f"Q{(first.month - 1) // 3 + 1} {first.year}"
        if self.kind == "week":
            span = (f"{first.day}{DASH}{last.day} {last:%b %Y}" if first.month == last.month
                    else f"{first.day} {first:%b} {DASH} {last.day} {last:%b %Y}"
                    if first.year == last.year
                    else f"{first:%-d %b %Y} {DASH} {last:%-d %b %Y}")
            return f"Week {first.isocalendar().week}, {span}"
        return f"{first:%a} {first.day} {first:%b %Y}"


DASH, MINUS = "\u2013", "\u2212"  # the en dash of a span, the minus sign of a figure
CADENCES = {"previous_month": "month", "previous_week": "week", "previous_day": "day",
            "previous_quarter": "quarter"}


def shown(value: Decimal, fmt: Any) -> str:
    """A figure as the mail shows it (the issue's "locale's separators": 1,234.50 EUR as
    €1,234.50, negatives with a minus sign)."""
    sign = MINUS if value < 0 else ""
    if str(fmt) == "integer":
        return f"{sign}{abs(value):,.0f}"
    assert getattr(fmt, "currency", None) == "EUR", fmt
    return f"{sign}€{abs(value):,.2f}"


def change(current: Decimal, previous: Decimal) -> str:
    """The change against `previous`: the arrow says which way the figure moved, the % is
    of the previous value's size (so a negative previous value still reads the right way),
    rounded half away from zero to 1 decimal. A previous 0 has no % ("new"); nothing
    before and nothing now is no change."""
    if current == previous:
        return "= no change"
    if previous == 0:
        return f"{'▲' if current > 0 else '▼'} new"
    pct = rnd((current - previous) * 100 / abs(previous), 1)
    return f"{'▲' if current > previous else '▼'} {abs(pct)}%"


def summary(text: str) -> dict[str, str]:
    """The summary lines of a mail's plain-text part, by label ("- Label ..." lines)."""
    lines: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("- "):
            lines[line[2:]] = line
    return lines


@dataclass
class Case:
    """One report's comparison check: its world and its key figures in plain Python."""

    report: str
    world: World
    figures: Callable[[World, Period], dict[str, Decimal]]
    runs: list[Period]           # current periods, run in this order (each archives)
    fresh: list[Period]          # current periods run on a second engine without an archive
    slot_delay: timedelta = timedelta(hours=12)


def expected_lines(project: Project, case: Case, current: Period) -> list[str]:
    model = project.reports[case.report].model
    cadence = Cadence(CADENCES[str(model.period)], ZoneInfo(model.timezone))
    now = case.figures(case.world, current)
    lines = []
    for name, column in model.columns.items():
        if not column.key:
            continue
        label = column.label or name
        value = shown(now[name], column.format)
        if column.compare is None:
            lines.append(f"- {label} {value}")
            continue
        other = (cadence.previous(current) if column.compare == "previous_period"
                 else cadence.year_before(current))
        before = case.figures(case.world, other)[name]
        lines.append(f"- {label} {value} ({change(now[name], before)} vs "
                     f"{shown(before, column.format)} for {cadence.words(other)})")
    return lines


def check(project: Project, engine: Callable[[World], Engine], case: Case) -> None:
    """Run the case's periods through the engine; every key figure line must be ours."""
    model = project.reports[case.report].model
    cadence = Cadence(CADENCES[str(model.period)], ZoneInfo(model.timezone))
    problems: list[str] = []
    for runs, archive in [(case.runs, True), (case.fresh, False)]:
        e = engine(case.world)
        for period in runs:
            got = e.run(case.report, period[1] + case.slot_delay)
            assert got.mails, got.stdout
            text = plain_text(got.mails[0])
            page = html_text(got.mails[0])
            lines = summary(text)
            for want in expected_lines(project, case, period):
                if " vs " in want:  # the HTML part carries the same change and previous value
                    arrow, previous = want[want.rindex(" (") + 2:-1].split(" vs ")
                    if arrow not in page or f"vs {previous}" not in page:
                        problems.append(f"{cadence.words(period)}: HTML lacks {want!r}")
                label_value = want.split(" (")[0]
                if want not in lines.values():
                    near = [v for v in lines.values() if v.startswith(label_value[:12])]
                    source = "archived" if archive else "computed"
                    problems.append(f"{cadence.words(period)} ({source} previous): "
                                    f"want {want!r}, mail has {near}")
        if not archive:  # the previous period was computed, not run and archived
            assert e.archived(case.report) == sorted(
                "_".join(f"{d:%Y-%m-%d}" for d in cadence.dates(p)) for p in runs)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the tests

def test_pnl_monthly(project: Project, engine: Callable[[World], Engine]) -> None:
    """October 2026 against an empty September (▲ new), November against the archived
    October (DST month, negative contribution), December (nothing sold) against November;
    then November on an engine without archives (October computed by the engine)."""
    c = Cadence("month", BERLIN)
    oct_, nov, dec = month(BERLIN, 2026, 10), month(BERLIN, 2026, 11), month(BERLIN, 2026, 12)
    case = Case("pnl_monthly", pnl_world(18), pnl_figures, [oct_, nov, dec], [nov])
    assert c.previous(nov) == oct_
    assert pnl_figures(case.world, c.previous(oct_))["revenue"] == 0
    assert pnl_figures(case.world, oct_)["contribution"] < 0 < pnl_figures(case.world, nov)[
        "contribution"]
    check(project, engine, case)


# ------------------------------------------------------------------ logistics_sla

WEEKS_OCT = [week(BERLIN, date(2026, 10, d)) for d in (5, 12, 19, 26)] + [
    week(BERLIN, date(2026, 11, 2))]


def edges_of_weeks(tz: ZoneInfo, mondays: list[date]) -> list[datetime]:
    """23:30 on each Sunday before a Monday and 00:30 on the Monday; 02:30 on 25 October
    in both folds (the hour that happens twice)."""
    found = []
    for monday in mondays:
        sunday = monday - timedelta(days=1)
        found += [local(tz, sunday.year, sunday.month, sunday.day, 23, 30),
                  local(tz, monday.year, monday.month, monday.day, 0, 30)]
    found += [datetime(2026, 10, 25, 2, 30, tzinfo=tz, fold=f).astimezone(UTC) for f in (0, 1)]
    return found


def logistics_world(seed: int) -> World:
    """Shipments delivered over three weeks of October 2026 (12 Oct - 1 Nov, Berlin), late
    and on time (one exactly at its promise), some not delivered, two carriers x three
    regions; deliveries at the weeks' edges."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    orders = Orders(w, r)
    lo, hi = WEEKS_OCT[1][0], WEEKS_OCT[3][1]
    times = [between(r, lo, hi) for _ in range(500)]
    times += edges_of_weeks(BERLIN, [date(2026, 10, 19), date(2026, 10, 26)])
    times += [lo + timedelta(minutes=30), hi - timedelta(minutes=30)]
    for k, delivered in enumerate(times):
        order = orders.add(delivered - timedelta(days=3), "delivered", lines=1)
        promised = delivered + timedelta(hours=r.choice([-30, -5, -1, 2, 10, 40]))
        if k % 50 == 0:
            promised = delivered  # on time: delivered exactly at the promise
        w.add("logistics.shipments", id=order["id"], order_id=order["id"], warehouse_id=1,
              carrier_id=r.randint(1, 2), region_id=r.randint(1, 3),
              shipped_at=delivered - timedelta(hours=r.randint(5, 60)), promised_at=promised,
              delivered_at=None if k % 23 == 0 else delivered,
              shipping_cost=money(r, 2, 9))
    return w


def logistics_figures(w: World, period: Period) -> dict[str, Decimal]:
    delivered = [s for s in w.of("logistics.shipments") if inside(s["delivered_at"], period)]
    return {"deliveries": Decimal(len(delivered)),
            "late_deliveries": Decimal(sum(s["delivered_at"] > s["promised_at"]
                                           for s in delivered))}


def test_logistics_sla(project: Project, engine: Callable[[World], Engine]) -> None:
    """Week 5-11 Oct (nothing delivered) against an empty week (no change), 12-18 Oct
    against an empty week (new), 19-25 Oct (25 October's DST change)
    against the archived 12-18, 26 Oct - 1 Nov against the archived DST week, and 2-8 Nov
    (nothing delivered) against 26 Oct - 1 Nov; then 26 Oct - 1 Nov with the DST week
    computed by the engine."""
    w = logistics_world(18)
    assert logistics_figures(w, WEEKS_OCT[0])["deliveries"] == 0
    assert logistics_figures(w, WEEKS_OCT[4])["deliveries"] == 0
    check(project, engine, Case("logistics_sla", w, logistics_figures, WEEKS_OCT,
                                [WEEKS_OCT[3]]))


# ------------------------------------------------------------------ daily reports

DAYS_OCT = [day(BERLIN, date(2026, 10, d)) for d in range(22, 28)]
# Items per day, 23-26 October (Berlin); 25 October (the DST day, 25 hours) has 81 against
# 24 October's 80: +1.25%, which rounds half away from zero to 1.3%.
PER_DAY = {23: 57, 24: 80, 25: 81, 26: 70}


def daily_times(r: random.Random, tz: ZoneInfo) -> list[datetime]:
    """PER_DAY moments per local day, each day's with 00:30 and 23:30 (and on 25 October
    02:30 in both folds) among them."""
    found: list[datetime] = []
    for d, count in PER_DAY.items():
        lo, hi = day(tz, date(2026, 10, d))
        chosen = [local(tz, 2026, 10, d, 0, 30), local(tz, 2026, 10, d, 23, 30)]
        if d == 25:
            chosen += [datetime(2026, 10, 25, 2, 30, tzinfo=tz, fold=f).astimezone(UTC)
                       for f in (0, 1)]
        chosen += [between(r, lo, hi) for _ in range(count - len(chosen))]
        found += chosen
    return found


def support_world(seed: int) -> World:
    r = random.Random(seed)
    w = World()
    base(w, r)
    for tid, code in [(1, "delivery"), (2, "payment"), (3, "returns")]:
        w.add("support.topics", id=tid, code=code, label=code.title())
    w.add("support.sla_policies", id=1, priority="normal", first_response_minutes=60,
          resolution_minutes=1440)
    for created in daily_times(r, BERLIN):
        answered = None if r.random() < 0.2 else created + timedelta(minutes=r.randint(1, 200))
        w.add("support.tickets", account_id=r.randint(1, 60), order_id=None, product_id=None,
              topic_id=r.randint(1, 3), sla_policy_id=1, agent_id=None, channel="email",
              status="open", created_at=created, first_response_at=answered,
              resolved_at=None)
    return w


def support_figures(w: World, period: Period) -> dict[str, Decimal]:
    return {"tickets": Decimal(sum(inside(t["created_at"], period)
                                   for t in w.of("support.tickets")))}


def test_support_sla(project: Project, engine: Callable[[World], Engine]) -> None:
    """23 October against an empty 22nd (new), each day against the archived day before
    (25 October, the 25-hour day: +1.25% shown as 1.3%), 27 October (no tickets) against
    the 26th; then 26 and 25 October with the previous day computed by the engine."""
    w = support_world(18)
    assert [support_figures(w, d)["tickets"] for d in DAYS_OCT] == [0, 57, 80, 81, 70, 0]
    check(project, engine, Case("support_sla", w, support_figures, DAYS_OCT[1:],
                                [DAYS_OCT[4], DAYS_OCT[3]]))


def security_world(seed: int) -> World:
    """Audit actions, sign-ins (some without MFA) and failed attempts (known admins and
    unknown usernames) over 23-26 October 2026 (Berlin)."""
    r = random.Random(seed)
    w = World()
    for aid in range(1, 5):
        w.add("admin.admins", id=aid, email=f"a{aid}@x.example", full_name=f"Admin {aid}",
              active=aid != 4, created_at=local(BERLIN, 2024, 1, 1))
    actions = ["product.create", "product.delete", "price.change", "order.status_change",
               "promo.create", "user.view"]
    for at in daily_times(r, BERLIN):
        w.add("admin.audit_log", admin_id=r.randint(1, 4), action=r.choice(actions),
              entity_type="product", entity_id=r.randint(1, 99), details=None,
              ip_address=r.choice([None, "10.1.2.3", "203.0.113.9"]), occurred_at=at)
    for at in daily_times(r, BERLIN)[::3]:
        w.add("admin.admin_logins", admin_id=r.randint(1, 4), logged_in_at=at,
              ip_address="10.0.0.1", mfa_used=r.random() < 0.7)
    for at in daily_times(r, BERLIN)[::2]:
        known = r.random() < 0.4
        w.add("admin.failed_access_attempts", username=f"user{r.randint(1, 9)}",
              admin_id=r.randint(1, 4) if known else None, ip_address="203.0.113.66",
              reason="bad password", attempted_at=at)
    return w


def security_figures(w: World, period: Period) -> dict[str, Decimal]:
    return {"actions": Decimal(sum(inside(a["occurred_at"], period)
                                   for a in w.of("admin.audit_log"))),
            "logins_without_mfa": Decimal(sum(inside(x["logged_in_at"], period)
                                              and not x["mfa_used"]
                                              for x in w.of("admin.admin_logins"))),
            "failed_attempts": Decimal(sum(inside(x["attempted_at"], period)
                                           for x in w.of("admin.failed_access_attempts")))}


def test_security_audit(project: Project, engine: Callable[[World], Engine]) -> None:
    w = security_world(18)
    check(project, engine, Case("security_audit", w, security_figures, DAYS_OCT[1:],
                                [DAYS_OCT[4]]))


def quality_world(seed: int) -> World:
    """A catalogue with some of the ten data-quality problems, and orders (some without an
    address, some with a status ref.order_statuses does not know) over 23-26 October."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    w.add("product.brands", id=1, name="Brand", country_code="DE")
    w.add("product.categories", id=2, parent_id=1, name="Sub", slug="", is_active=False)
    w.add("product.attributes", id=1, name="colour", is_required=True)
    for p in w.of("product.products"):
        if p["id"] % 2:
            p["brand_id"] = 1
            w.add("product.images", product_id=p["id"], url=f"https://img/{p['id']}",
                  position=0)
        if p["id"] % 3 == 0:
            p["category_id"] = 2
        if p["id"] % 4 != 0:
            w.add("product.product_attribute_values", product_id=p["id"], attribute_id=1,
                  value="red")
    for a in w.of("users.accounts")[:10]:
        w.add("users.addresses", id=a["id"], account_id=a["id"], region_id=1, line1="x",
              city="y", postal_code="1", is_default=True)
    orders = Orders(w, r)
    for at in daily_times(r, BERLIN):
        account = r.randint(1, 60)
        order = orders.add(at, r.choice(STATUSES), lines=1, account=account)
        order["address_id"] = account if account <= 10 and r.random() < 0.8 else None
    return w


def quality_figures(w: World, period: Period) -> dict[str, Decimal]:
    """The sum over the ten checks' failing counts (the key figure's total over the rows)."""
    cats = {c["id"]: c for c in w.of("product.categories")}
    products = w.of("product.products")
    pairs: dict[tuple[Any, str], int] = defaultdict(int)
    for c in cats.values():
        pairs[(c["parent_id"], c["name"])] += 1
    imaged = {i["product_id"] for i in w.of("product.images")}
    required = [a["id"] for a in w.of("product.attributes") if a["is_required"]]
    valued = {(v["product_id"], v["attribute_id"])
              for v in w.of("product.product_attribute_values")}
    known = {s["code"] for s in w.of("ref.order_statuses")}
    counts = [
        sum(n > 1 for n in pairs.values()),
        sum(c["slug"] == "" for c in cats.values()),
        sum(p["status"] == "active" and p["category_id"] is not None
            and not cats[p["category_id"]]["is_active"] for p in products),
        sum(p["id"] not in imaged for p in products),
        sum(p["category_id"] is None or p["brand_id"] is None or p["description"] is None
            for p in products),
        sum(any((p["id"], a) not in valued for a in required) for p in products),
        sum(s["product_id"] is None for s in w.of("product.skus")),
        sum(p["status"] not in ("active", "archived", "draft") for p in products),
        sum(o["status"] not in known for o in w.of("orders.orders")),
        sum(o.get("address_id") is None and inside(o["placed_at"], period)
            for o in w.of("orders.orders"))]
    return {"failing": Decimal(sum(counts))}


def test_data_quality(project: Project, engine: Callable[[World], Engine]) -> None:
    w = quality_world(18)
    check(project, engine, Case("data_quality", w, quality_figures, DAYS_OCT[1:],
                                [DAYS_OCT[4]]))


# ------------------------------------------------------------------ weekly reports

def weeks_oct(tz: ZoneInfo) -> list[Period]:
    """The weeks of 5, 12, 19 (25 October's DST change) and 26 October 2026 in `tz`."""
    return [week(tz, date(2026, 10, d)) for d in (5, 12, 19, 26)]


def weekly_times(r: random.Random, tz: ZoneInfo, count: int) -> list[datetime]:
    """`count` moments over 12 Oct - 1 Nov 2026 (local) plus the weeks' edge moments."""
    lo, hi = weeks_oct(tz)[1][0], weeks_oct(tz)[3][1]
    return [between(r, lo, hi) for _ in range(count)] + edges_of_weeks(
        tz, [date(2026, 10, 19), date(2026, 10, 26)]) + [lo + timedelta(minutes=30),
                                                          hi - timedelta(minutes=30)]


def weekly_case(report: str, w: World, figures: Callable[[World, Period], dict[str, Decimal]],
                tz: ZoneInfo) -> Case:
    """12-18 Oct against an empty week, 19-25 Oct (DST) and 26 Oct - 1 Nov against the
    archived week before; 26 Oct - 1 Nov again with the DST week computed by the engine."""
    weeks = weeks_oct(tz)
    return Case(report, w, figures, weeks[1:], [weeks[3]])


def returns_world(seed: int) -> World:
    r = random.Random(seed)
    w = World()
    base(w, r)
    orders = Orders(w, r)
    for k, at in enumerate(weekly_times(r, BERLIN, 300)):
        if k % 3 == 0:
            order = orders.add(at - timedelta(hours=5), "cancelled", lines=1)
            w.add("orders.cancellations", order_id=order["id"], reason_id=r.randint(1, 2),
                  cancelled_at=at, refunded_amount=money(r, 0, 60))
            continue
        order = orders.add(at - timedelta(days=6), "returned", lines=r.randint(0, 3))
        w.add("orders.returns", id=order["id"], order_id=order["id"],
              account_id=order["account_id"], reason_id=r.randint(1, 2), requested_at=at,
              received_at=None, status=r.choice(["requested", "received", "refunded"]))
        for item in order["items"]:  # several items, or none (adds 0)
            w.add("orders.return_items", return_id=order["id"], order_item_id=item["id"],
                  quantity=1, refund_amount=money(r, 1, 50), restockable=True)
    return w


def returns_figures(w: World, period: Period) -> dict[str, Decimal]:
    returns = {x["id"] for x in w.of("orders.returns") if inside(x["requested_at"], period)}
    cancels = [c for c in w.of("orders.cancellations") if inside(c["cancelled_at"], period)]
    amount = sum((i["refund_amount"] for i in w.of("orders.return_items")
                  if i["return_id"] in returns), Decimal(0))
    amount += sum((c["refunded_amount"] for c in cancels), Decimal(0))
    return {"cases": Decimal(len(returns) + len(cancels)), "amount": rnd(amount, 2)}


def test_returns_cancellations(project: Project, engine: Callable[[World], Engine]) -> None:
    check(project, engine, weekly_case("returns_cancellations", returns_world(18),
                                       returns_figures, BERLIN))


def growth_world(seed: int) -> World:
    """Accounts created over the weeks (and long before), with purchases, cancelled and
    pending orders and invalid statuses; some accounts' first purchase in a checked week."""
    r = random.Random(seed)
    w = World()
    base(w, r, accounts=40)  # created mid-2024: returning buyers when they buy
    orders = Orders(w, r)
    for aid, created in enumerate(weekly_times(r, BERLIN, 150), start=41):
        w.add("users.accounts", id=aid, email=f"u{aid}@x.example", region_id=r.randint(1, 3),
              channel_id=r.randint(1, 2), status="active", created_at=created)
        for _ in range(r.randint(0, 3)):
            placed = created + timedelta(hours=r.randint(1, 400))
            orders.add(placed, r.choice(STATUSES), lines=1, account=aid)
    for aid in range(1, 41):
        for _ in range(r.randint(0, 3)):
            orders.add(between(r, weeks_oct(BERLIN)[1][0], weeks_oct(BERLIN)[3][1]),
                       r.choice(STATUSES), lines=1, account=aid)
    return w


def growth_figures(w: World, period: Period) -> dict[str, Decimal]:
    first: dict[int, datetime] = {}
    active: set[int] = set()
    for o in w.of("orders.orders"):
        if o["status"] in PURCHASE:
            a = o["account_id"]
            first[a] = min(first.get(a, o["placed_at"]), o["placed_at"])
            if inside(o["placed_at"], period):
                active.add(a)
    created = {a["id"]: a["created_at"] for a in w.of("users.accounts")
               if a["created_at"] < period[1]}
    return {"new_accounts": Decimal(sum(period[0] <= t for t in created.values())),
            "first_time_buyers": Decimal(sum(a in created and inside(first[a], period)
                                             for a in active)),
            "returning_buyers": Decimal(sum(a in created and first[a] < period[0]
                                            for a in active)),
            "accounts_total": Decimal(len(created))}


def test_user_growth(project: Project, engine: Callable[[World], Engine]) -> None:
    check(project, engine, weekly_case("user_growth", growth_world(18), growth_figures,
                                       BERLIN))


def inventory_world(seed: int) -> World:
    """Stock movements in and out at two warehouses' locations over the weeks (Warsaw)."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    w.add("logistics.warehouses", id=2, name="East", region_id=3, capacity_units=500)
    w.add("logistics.warehouses", id=3, name="Empty", region_id=2, capacity_units=10)
    for lid in range(1, 5):
        w.add("inventory.storage_locations", id=lid, warehouse_id=(lid - 1) % 2 + 1,
              code=f"L{lid}", capacity_units=100)
    for at in weekly_times(r, WARSAW, 500):
        kind = r.choice(["sale", "sale", "receipt", "adjustment", "return"])
        qty = -r.randint(1, 6) if kind == "sale" else r.choice([-2, 1, 3, 10])
        w.add("inventory.stock_movements", sku_id=r.randint(1, 16), location_id=r.randint(1, 4),
              kind=kind, quantity=qty, moved_at=at)
    return w


def inventory_figures(w: World, period: Period) -> dict[str, Decimal]:
    moved = [m["quantity"] for m in w.of("inventory.stock_movements")
             if inside(m["moved_at"], period)]
    return {"units_in": Decimal(sum(q for q in moved if q > 0)),
            "units_out": Decimal(-sum(q for q in moved if q < 0))}


def test_inventory_movements(project: Project, engine: Callable[[World], Engine]) -> None:
    check(project, engine, weekly_case("inventory_movements", inventory_world(18),
                                       inventory_figures, WARSAW))


def search_world(seed: int) -> World:
    """More than 100 distinct queries a week (mixed case: one query lower-cased), so the
    report's top 100 leaves some out (Amsterdam)."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    w.add("analytics.sessions", id=1, account_id=None, started_at=local(AMSTERDAM, 2026, 10, 1),
          ended_at=None, device="web", channel_id=None, ip_address=None)
    words = [f"query {k}" for k in range(160)]
    for at in weekly_times(r, AMSTERDAM, 3000):
        # A skewed choice: low-numbered queries are frequent, the tail is rare.
        text = words[min(int(r.expovariate(1 / 40)), 159)]
        w.add("analytics.searches", session_id=1,
              query=text.upper() if r.random() < 0.2 else text,
              results_count=r.randint(0, 30), searched_at=at)
    return w


def search_figures(w: World, period: Period) -> dict[str, Decimal]:
    """Searches summed over the report's rows: the top 100 queries (the key figure is the
    total over the rows shown, per the `key` column description)."""
    per: dict[str, int] = defaultdict(int)
    for s in w.of("analytics.searches"):
        if inside(s["searched_at"], period):
            per[s["query"].lower()] += 1
    top = sorted(per.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:100]
    return {"searches": Decimal(sum(n for _, n in top))}


def test_search_quality(project: Project, engine: Callable[[World], Engine]) -> None:
    w = search_world(18)
    per_week = {len({s["query"].lower() for s in w.of("analytics.searches")
                     if inside(s["searched_at"], p)}) for p in weeks_oct(AMSTERDAM)[1:]}
    assert min(per_week) > 100
    check(project, engine, weekly_case("search_quality", w, search_figures, AMSTERDAM))


def problem_world(seed: int) -> World:
    """Returns (some with several items of one product), complaints and bad reviews of 70
    products over the weeks, so the report's top 50 leaves some products out."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    for pid in range(9, 71):
        w.add("product.products", id=pid, category_id=1, brand_id=None, seller_id=1,
              title=f"Product {pid}", description="d", status="active",
              created_at=local(BERLIN, 2024, 1, 1))
        w.add("product.skus", id=pid + 100, product_id=pid, code=f"SKU{pid + 100}",
              unit_cost=Decimal(5))
    skus = {s["id"]: s["product_id"] for s in w.of("product.skus")}
    orders = Orders(w, r)
    for k, at in enumerate(weekly_times(r, BERLIN, 450)):
        if k % 3 == 0:
            order = orders.add(at - timedelta(days=5), "returned", lines=0)
            sku = r.choice(list(skus))
            for _ in range(r.randint(1, 3)):  # several items of one product: counts once
                item = w.add("orders.order_items", id=next(orders.item_ids),
                             order_id=order["id"], sku_id=sku, quantity=1,
                             unit_price=Decimal(10), discount=Decimal(0))
                order["items"].append(item)
            w.add("orders.returns", id=order["id"], order_id=order["id"],
                  account_id=order["account_id"], reason_id=1, requested_at=at,
                  received_at=None, status="requested")
            for item in order["items"]:
                w.add("orders.return_items", return_id=order["id"], order_item_id=item["id"],
                      quantity=1, refund_amount=Decimal(10), restockable=True)
        elif k % 3 == 1:
            w.add("support.tickets", account_id=None, order_id=None,
                  product_id=r.randint(1, 70), topic_id=1, sla_policy_id=1, agent_id=None,
                  channel="email", status="open", created_at=at, first_response_at=None,
                  resolved_at=None)
        else:
            w.add("product.reviews", product_id=r.randint(1, 70), account_id=r.randint(1, 60),
                  rating=r.randint(1, 5), body=None, created_at=at)
    w.add("support.topics", id=1, code="product", label="Product")
    w.add("support.sla_policies", id=1, priority="normal", first_response_minutes=60,
          resolution_minutes=1440)
    return w


def problem_figures(w: World, period: Period) -> dict[str, Decimal]:
    """Returns and complaints summed over the report's rows: the top 50 products by score
    (3 x returns + 2 x complaints + 2 x bad reviews; no shipments, so no late deliveries)."""
    product_of_item = {}
    skus = {s["id"]: s["product_id"] for s in w.of("product.skus")}
    for i in w.of("orders.order_items"):
        product_of_item[i["id"]] = skus[i["sku_id"]]
    in_week = {x["id"] for x in w.of("orders.returns") if inside(x["requested_at"], period)}
    returns: dict[int, set[int]] = defaultdict(set)
    for i in w.of("orders.return_items"):
        if i["return_id"] in in_week:
            returns[product_of_item[i["order_item_id"]]].add(i["return_id"])
    complaints: dict[int, int] = defaultdict(int)
    for t in w.of("support.tickets"):
        if inside(t["created_at"], period):
            complaints[t["product_id"]] += 1
    bad: dict[int, int] = defaultdict(int)
    for v in w.of("product.reviews"):
        if inside(v["created_at"], period) and v["rating"] <= 2:
            bad[v["product_id"]] += 1
    scored = []
    for p in w.of("product.products"):
        pid = p["id"]
        score = 3 * len(returns[pid]) + 2 * complaints[pid] + 2 * bad[pid]
        if score > 0:
            scored.append((-score, pid))
    top = [pid for _, pid in sorted(scored)[:50]]
    return {"returns": Decimal(sum(len(returns[p]) for p in top)),
            "complaints": Decimal(sum(complaints[p] for p in top))}


def test_problem_products(project: Project, engine: Callable[[World], Engine]) -> None:
    check(project, engine, weekly_case("problem_products", problem_world(18),
                                       problem_figures, BERLIN))


# ------------------------------------------------------------ funnel, content, promo, assortment

def funnel_world(seed: int) -> World:
    """Sessions over 23-26 October (Berlin) assigned to two checkout variants (some not
    assigned, some in another experiment), with funnel steps reached."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    for eid in (1, 2):
        w.add("analytics.experiments", id=eid, key=f"exp{eid}", description="x",
              started_at=local(BERLIN, 2026, 1, 1), ended_at=None)
    for vid, eid, name in [(1, 1, "control"), (2, 1, "one-page"), (3, 2, "other")]:
        w.add("analytics.experiment_variants", id=vid, experiment_id=eid, name=name,
              traffic_share=Decimal("0.5"))
    steps = ["visit", "product_view", "add_to_cart", "checkout", "payment", "purchase"]
    for sid, at in enumerate(daily_times(r, BERLIN), start=1):
        w.add("analytics.sessions", id=sid, account_id=None, started_at=at, ended_at=None,
              device="web", channel_id=None, ip_address=None)
        if sid % 7:
            variant = r.choice([1, 2, 3])
            w.add("analytics.experiment_assignments", session_id=sid,
                  experiment_id=1 if variant < 3 else 2, variant_id=variant, assigned_at=at)
        for step in steps[:r.randint(1, 6)]:
            w.add("analytics.funnel_events", session_id=sid, step=step,
                  occurred_at=at + timedelta(days=2))  # the event's own time does not matter
    return w


def funnel_figures(w: World, period: Period) -> dict[str, Decimal]:
    assigned = {a["session_id"] for a in w.of("analytics.experiment_assignments")
                if a["experiment_id"] == 1}
    visits = {s["id"] for s in w.of("analytics.sessions")
              if s["id"] in assigned and inside(s["started_at"], period)}
    bought = {e["session_id"] for e in w.of("analytics.funnel_events")
              if e["step"] == "purchase"}
    return {"visits": Decimal(len(visits)), "purchases": Decimal(len(visits & bought))}


def test_funnel_conversion(project: Project, engine: Callable[[World], Engine]) -> None:
    check(project, engine, Case("funnel_conversion", funnel_world(18), funnel_figures,
                                DAYS_OCT[1:], [DAYS_OCT[4]]))


def content_world(seed: int) -> World:
    """Article views over October and November 2026 (Paris), articles with two topics, one
    and none, clicks to the catalogue and purchases by the clicking readers."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    orders = Orders(w, r)
    for aid in (1, 2):
        w.add("content.authors", id=aid, display_name=f"Author {aid}", email=f"a{aid}@x.example")
    for tid in (1, 2, 3):
        w.add("content.topics", id=tid, name=f"Topic {tid}")
    for art in range(1, 9):
        w.add("content.articles", id=art, author_id=art % 2 + 1, title=f"A{art}",
              slug=f"a{art}", published_at=local(PARIS, 2026, 1, 1), word_count=500)
        for tid in [[], [1], [2], [1, 3]][art % 4]:
            w.add("content.article_topics", article_id=art, topic_id=tid)
    oct_, nov = month(PARIS, 2026, 10), month(PARIS, 2026, 11)
    edges = [local(PARIS, 2026, 10, 1, 0, 30), local(PARIS, 2026, 10, 31, 23, 30),
             local(PARIS, 2026, 11, 1, 0, 30), local(PARIS, 2026, 11, 30, 23, 30)]
    for vid, at in enumerate([between(r, oct_[0], nov[1]) for _ in range(400)] + edges,
                             start=1):
        account = r.randint(1, 60) if r.random() < 0.7 else None
        w.add("analytics.sessions", id=vid, account_id=account, started_at=at, ended_at=None,
              device="web", channel_id=None, ip_address=None)
        w.add("content.article_views", id=vid, article_id=r.randint(1, 8), session_id=vid,
              viewed_at=at, seconds_on_page=r.randint(5, 400))
        if r.random() < 0.3:
            clicked = at + timedelta(minutes=r.randint(1, 30))
            w.add("content.article_clicks", article_view_id=vid, product_id=r.randint(1, 8),
                  clicked_at=clicked)
            if account is not None and r.random() < 0.6:
                orders.add(clicked + timedelta(hours=r.choice([1, 50, 167, 169])),
                           r.choice(STATUSES), lines=2, account=account)
    return w


def content_figures(w: World, period: Period) -> dict[str, Decimal]:
    """Views and influenced revenue summed over the (topic, author) rows: a view of an
    article with two topics is in two rows, so it counts twice in the total."""
    topics: dict[int, list[int]] = defaultdict(list)
    for t in w.of("content.article_topics"):
        topics[t["article_id"]].append(t["topic_id"])
    author = {a["id"]: a["author_id"] for a in w.of("content.articles")}
    account = {s["id"]: s["account_id"] for s in w.of("analytics.sessions")}
    views = {v["id"]: v for v in w.of("content.article_views") if inside(v["viewed_at"], period)}
    net: dict[int, Decimal] = defaultdict(Decimal)
    for i in w.of("orders.order_items"):
        net[i["order_id"]] += i["unit_price"] * i["quantity"] - i["discount"]
    buys = [o for o in w.of("orders.orders") if o["status"] in PURCHASE]
    influenced: dict[tuple[int, int], set[int]] = defaultdict(set)
    total_views = 0
    for v in views.values():
        total_views += len(topics[v["article_id"]])
    for c in w.of("content.article_clicks"):
        seen = views.get(c["article_view_id"])
        if seen is None or account[seen["session_id"]] is None:
            continue
        for o in buys:
            if (o["account_id"] == account[seen["session_id"]]
                    and c["clicked_at"] < o["placed_at"] <= c["clicked_at"] + timedelta(hours=168)):
                for topic in topics[seen["article_id"]]:
                    influenced[(topic, author[seen["article_id"]])].add(o["id"])
    revenue = sum((rnd(sum((net[o] for o in orders), Decimal(0)), 2)
                   for orders in influenced.values()), Decimal(0))
    return {"views": Decimal(total_views), "influenced_revenue": revenue}


def test_content_marketing(project: Project, engine: Callable[[World], Engine]) -> None:
    """October (DST month) against an empty September, November against the archived
    October; November again with October computed by the engine (Europe/Paris)."""
    check(project, engine, Case("content_marketing", content_world(18), content_figures,
                                [month(PARIS, 2026, 10), month(PARIS, 2026, 11)],
                                [month(PARIS, 2026, 11)]))


def promo_world(seed: int) -> World:
    """Promo purchases over October and November 2026 (Berlin), codes with and without a
    campaign, a campaign with spend and no orders, cancelled and pending promo orders."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    orders = Orders(w, r)
    w.add("marketing.ad_channels", id=1, name="search")
    for cid in (1, 2, 3):
        w.add("marketing.campaigns", id=cid, name=f"Campaign {cid}", channel_id=1,
              starts_at=local(BERLIN, 2026, 1, 1), ends_at=local(BERLIN, 2027, 1, 1),
              budget=Decimal(5000))
    for did, campaign in [(1, 1), (2, 2), (3, None)]:
        w.add("marketing.discounts", id=did, campaign_id=campaign, kind="amount", value=Decimal(5),
              min_order_total=Decimal(0))
        w.add("marketing.promo_codes", id=did, code=f"CODE{did}", discount_id=did,
              max_uses=None, valid_from=local(BERLIN, 2026, 1, 1),
              valid_until=local(BERLIN, 2027, 1, 1))
    oct_, nov = month(BERLIN, 2026, 10), month(BERLIN, 2026, 11)
    edges = [local(BERLIN, 2026, 10, 1, 0, 30), local(BERLIN, 2026, 10, 31, 23, 30),
             local(BERLIN, 2026, 11, 1, 0, 30), local(BERLIN, 2026, 11, 30, 23, 30)]
    for at in [between(r, oct_[0], nov[1]) for _ in range(300)] + edges:
        order = orders.add(at, "paid" if at in edges else r.choice(STATUSES), lines=2)
        if at in edges or r.random() < 0.5:
            w.add("marketing.promo_redemptions", promo_code_id=r.randint(1, 3),
                  order_id=order["id"], account_id=order["account_id"],
                  discount_amount=money(r, 1, 15), redeemed_at=at)
    d = date(2026, 10, 1)
    while d < date(2026, 12, 1):
        for cid in (1, 3):  # campaign 3 has spend but no code
            if r.random() < 0.7:
                w.add("marketing.ad_spend", campaign_id=cid, day=d, amount=money(r, 0, 80),
                      impressions=1, clicks=1)
        d += timedelta(days=1)
    return w


def promo_figures(w: World, period: Period) -> dict[str, Decimal]:
    redeemed = {p["order_id"]: p for p in w.of("marketing.promo_redemptions")}
    promo = {o["id"] for o in w.of("orders.orders") if o["status"] in PURCHASE
             and o["id"] in redeemed and inside(o["placed_at"], period)}
    revenue = sum((i["unit_price"] * i["quantity"] - i["discount"]
                   for i in w.of("orders.order_items") if i["order_id"] in promo), Decimal(0))
    first, last = period[0].astimezone(BERLIN).date(), period[1].astimezone(BERLIN).date()
    spend = sum((s["amount"] for s in w.of("marketing.ad_spend") if first <= s["day"] < last),
                Decimal(0))
    return {"promo_orders": Decimal(len(promo)), "revenue": rnd(revenue, 2),
            "discount_given": sum((redeemed[o]["discount_amount"] for o in promo), Decimal(0)),
            "ad_spend": spend}


def test_promo_roi(project: Project, engine: Callable[[World], Engine]) -> None:
    check(project, engine, Case("promo_roi", promo_world(18), promo_figures,
                                [month(BERLIN, 2026, 10), month(BERLIN, 2026, 11)],
                                [month(BERLIN, 2026, 11)]))


def assortment_world(seed: int) -> World:
    """Purchases in Q4 2025, Q3 2026 and Q4 2026 (Berlin; Q4 has the October DST change),
    none in Q3 2025 or Q2 2026; a category tree two levels deep, a product without a
    category and an orphan SKU (in no row)."""
    r = random.Random(seed)
    w = World()
    base(w, r)
    w.add("product.categories", id=2, parent_id=1, name="Child", slug="child", is_active=True)
    w.add("product.categories", id=3, parent_id=2, name="Grandchild", slug="gc", is_active=True)
    w.add("product.categories", id=4, parent_id=None, name="Other", slug="other",
          is_active=True)
    w.add("product.categories", id=5, parent_id=None, name="No SKUs", slug="none",
          is_active=True)
    for product in w.of("product.products"):
        product["category_id"] = [1, 2, 3, 4, None, 1, 3, 4][product["id"] - 1]
    w.add("product.skus", id=17, product_id=None, code="ORPHAN", unit_cost=Decimal(1))
    orders = Orders(w, r)
    spans = [quarter(BERLIN, 2025, 4), quarter(BERLIN, 2026, 3), quarter(BERLIN, 2026, 4)]
    edges = [local(BERLIN, 2026, 10, 1, 0, 30), local(BERLIN, 2026, 9, 30, 23, 30),
             local(BERLIN, 2025, 10, 1, 0, 30), local(BERLIN, 2026, 12, 31, 23, 30)]
    for at in [between(r, *spans[k % 3]) for k in range(450)] + edges:
        order = orders.add(at, "paid" if at in edges else r.choice(STATUSES), lines=2)
        if r.random() < 0.1:
            order["items"][0]["sku_id"] = 17
    return w


def assortment_figures(w: World, period: Period) -> dict[str, Decimal]:
    """Revenue and units of purchase lines whose product is in a top-level category's tree
    (every product with a category is: the tree holds all descendants)."""
    category = {p["id"]: p["category_id"] for p in w.of("product.products")}
    sku_product = {s["id"]: s["product_id"] for s in w.of("product.skus")}
    bought = {o["id"] for o in w.of("orders.orders")
              if o["status"] in PURCHASE and inside(o["placed_at"], period)}
    lines = [i for i in w.of("orders.order_items") if i["order_id"] in bought
             and sku_product[i["sku_id"]] is not None
             and category[sku_product[i["sku_id"]]] is not None]
    return {"revenue": rnd(sum((i["unit_price"] * i["quantity"] - i["discount"] for i in lines),
                               Decimal(0)), 2),
            "units": Decimal(sum(i["quantity"] for i in lines))}


def test_assortment(project: Project, engine: Callable[[World], Engine]) -> None:
    """Q3 2026 (units against an empty Q2, revenue against an empty Q3 2025), then Q4 2026
    against the archived Q3 2026 and Q4 2025 a year before (never archived: computed);
    Q4 2026 again with no archive at all."""
    q3, q4 = quarter(BERLIN, 2026, 3), quarter(BERLIN, 2026, 4)
    check(project, engine, Case("assortment", assortment_world(18), assortment_figures,
                                [q3, q4], [q4], slot_delay=timedelta(hours=36)))
