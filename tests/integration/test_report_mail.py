"""The report mail as a reader gets it: parsed from the real MIME message (aiosmtpd), with the
spreadsheet read back by openpyxl, and the previous period's figures from the archive."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from openpyxl import load_workbook

from runners.postgres.connection import connect
from tests.conftest import free_port
from tests.integration.test_cli import MARKETOPS
from tests.mailbox import http_sink, smtp_server

SCHEMA = """\
name: shop
owner: shop@corp.example
description: A tiny shop.
tables:
  orders:
    backup_exclude_reason: Test data, rebuilt by every test.
    columns:
      id: {type: bigint, nullable: false}
      region: {type: text, nullable: false}
      total: {type: "numeric(12,2)", nullable: false}
      placed_at: {type: timestamptz, nullable: false}
    primary_key: [id]
"""

REPORT = """\
title: Sales by region
description: Orders and revenue per region for the previous month.
owner: ops@corp.example
cron: "0 6 1 * *"
timezone: Europe/Berlin
period: previous_month
sql: |
  select o.region, count(*) as orders, sum(o.total) as revenue,
         avg(case when o.total >= 1000 then 1.0 else 0.0 end) as big_share, '' as note
  from shop.orders o
  where o.placed_at >= :period_start and o.placed_at < :period_end
  group by o.region
  order by revenue desc
formats: [csv, xlsx, html]
columns:
  region: {label: Region}
  orders: {label: Orders, format: integer, key: true, compare: previous_period}
  revenue: {label: Revenue, format: {currency: EUR}, key: true, compare: previous_period,
            description: Order totals placed in the month.}
  big_share: {label: Orders of 1000+, format: percent}
chart: {type: bar, x: region, y: [revenue]}
recipients:
  - email: cfo@corp.example
  - webhook: finance
"""

NOVEMBER = "2026-12-01T06:00+01:00"
OCTOBER = "2026-11-01T06:00+01:00"


def _project(root: Path, smtp_port: int) -> Path:
    (root / "schema").mkdir(parents=True)
    (root / "definitions" / "reports").mkdir(parents=True)
    (root / "schema" / "shop.yaml").write_text(SCHEMA)
    (root / "definitions" / "reports" / "sales.yaml").write_text(REPORT)
    (root / "marketops.yaml").write_text(textwrap.dedent(f"""\
        databases:
          primary: {{dsn: "${{TEST_PRIMARY_DSN}}"}}
        destinations:
          archive: {{url: "file://{root / 'reports'}"}}
        reports:
          destination: archive
          public_url: https://reports.corp.example/archive
        smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, sender: r@corp.example}}
        webhooks:
          finance: {{url: "${{FINANCE_HOOK}}"}}
        """))
    return root


def _database(new_database: Callable[..., str]) -> str:
    dsn = new_database()
    with connect(dsn, autocommit=True) as conn:
        conn.execute("create schema shop; create table shop.orders (id bigint primary key, "
                     "region text not null, total numeric(12,2) not null, "
                     "placed_at timestamptz not null)")
        # October: 2 orders (300.00); November: 3 orders (2,468.50), one of them 1,234.50.
        # The order at 23:30 UTC on 31 Oct is 1 Nov in Berlin: November's.
        conn.execute("""insert into shop.orders values
            (1, 'North', 100.00, '2026-10-05 10:00+00'),
            (2, 'South', 200.00, '2026-10-20 10:00+00'),
            (3, 'North', 1234.50, '2026-10-31 23:30+00'),
            (4, 'North', 34.00, '2026-11-10 10:00+00'),
            (5, 'South', 1200.00, '2026-11-30 12:00+00')""")
    return dsn


def _run(root: Path, dsn: str, hook_port: int, at: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "TEST_PRIMARY_DSN": dsn, "FINANCE_HOOK": f"http://127.0.0.1:{hook_port}/h"}
    return subprocess.run([MARKETOPS, "--root", str(root), "run", "report/sales", "--at", at],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def _part(message: EmailMessage, content_type: str) -> EmailMessage:
    return next(p for p in message.walk() if p.get_content_type() == content_type)


def test_mail_subject_table_chart_figures_and_spreadsheet(
        tmp_path: Path, new_database: Callable[..., str]) -> None:
    dsn = _database(new_database)
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path / "project", smtp_port)
    with smtp_server(smtp_port) as mails, http_sink(hook_port) as posts:
        first = _run(root, dsn, hook_port, OCTOBER)
        assert first.returncode == 0, first.stdout + first.stderr
        # The archived October figures are what November is compared with: change them to
        # show they are read from the archive, not recomputed.
        october = root / "reports" / "sales" / "2026-10-01_2026-11-01"
        manifest = json.loads((october / "manifest.json").read_text())
        assert manifest["figures"] == {"orders": "2", "revenue": "300.00"}
        manifest["figures"]["revenue"] = "2000.00"
        (october / "manifest.json").write_text(json.dumps(manifest))
        second = _run(root, dsn, hook_port, NOVEMBER)
        assert second.returncode == 0, second.stdout + second.stderr
    assert [str(m["Subject"]) for _, m in mails] == ["Sales by region: October 2026",
                                                      "Sales by region: November 2026"]
    message = mails[1][1]
    assert isinstance(message, EmailMessage)
    image = _part(message, "image/png")
    assert image.get_content_disposition() == "inline" and image["Content-ID"] == "<chart>"

    html = _part(message, "text/html").get_content()
    assert "November 2026 (Europe/Berlin)" in html
    assert '<td class="num" style="text-align:right">€1,268.50</td>' in html
    assert '<td class="num" style="text-align:right">50.0%</td>' in html
    assert "<th>Region</th>" in html and ">Revenue</th>" in html
    # Revenue €2,468.50 against the archived €2,000.00: +23.4%; orders 3 against 2: +50%.
    assert "€2,468.50" in html and "▲ 23.4%" in html and "vs €2,000.00 for October 2026" in html
    assert "▲ 50.0%" in html and "2 rows." in html and "1 rows" not in html

    text = _part(message, "text/plain").get_content()
    assert "- Revenue €2,468.50 (▲ 23.4% vs €2,000.00 for October 2026)" in text
    assert "North" in text and "€1,268.50" in text and "Orders of 1000+" in text

    xlsx = next(p for p in message.walk()
                if p.get_filename() == "Sales by region - November 2026.xlsx")
    (tmp_path / "got.xlsx").write_bytes(xlsx.get_payload(decode=True))
    book = load_workbook(tmp_path / "got.xlsx")
    sheet = book["Sales by region"]
    assert [c.value for c in sheet[1]] == ["Region", "Orders", "Revenue", "Orders of 1000+",
                                           "note"]
    assert sheet["C2"].value == 1268.5 and sheet["C2"].number_format == \
        '"€"#,##0.00;-"€"#,##0.00'
    assert sheet["B2"].number_format == "#,##0" and sheet["D2"].number_format == "0.0%"
    assert sheet["E2"].value is None  # empty text is an empty cell
    assert sheet.auto_filter.ref == "A1:E3"
    about = {r[0].value: r[1].value for r in book["About"].iter_rows()}
    assert about["Period"] == "November 2026 (Europe/Berlin)"
    assert about["SQL sha256"] == json.loads(
        (root / "reports" / "sales" / "2026-11-01_2026-12-01" / "manifest.json")
        .read_text())["sql_sha256"]

    csv = next(p for p in message.walk()
               if p.get_filename() == "Sales by region - November 2026.csv")
    assert csv.get_payload(decode=True).decode().splitlines()[:2] == [
        "region,orders,revenue,big_share,note", "North,2,1268.50,0.50000000000000000000,\"\""]

    link = "https://reports.corp.example/archive/reports/sales/2026-11-01_2026-12-01/sales.html"
    assert link in html and link in text
    assert str(tmp_path) not in posts[1]["text"]
    assert link in posts[1]["text"] and "Revenue €2,468.50 (▲ 23.4%" in posts[1]["text"]


def test_without_an_archived_previous_run_the_previous_period_is_computed(
        tmp_path: Path, new_database: Callable[..., str]) -> None:
    dsn = _database(new_database)
    with connect(dsn, autocommit=True) as conn:  # a year earlier: one order
        conn.execute("insert into shop.orders values (9, 'North', 10, '2025-11-15 10:00+00')")
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path / "project", smtp_port)
    report = root / "definitions" / "reports" / "sales.yaml"
    report.write_text(report.read_text().replace(
        "orders: {label: Orders, format: integer, key: true, compare: previous_period}",
        "orders: {label: Orders, format: integer, key: true, compare: year_over_year}"))
    with smtp_server(smtp_port) as mails, http_sink(hook_port):
        done = _run(root, dsn, hook_port, NOVEMBER)
        assert done.returncode == 0, done.stdout + done.stderr
    message = mails[0][1]
    html = _part(message, "text/html").get_content()  # type: ignore[arg-type]
    # October really had €300.00 in 2 orders; November 2025 one order.
    assert "vs €300.00 for October 2026" in html and "▲ 722.8%" in html
    text = _part(message, "text/plain").get_content()  # type: ignore[arg-type]
    assert "- Orders 3 (▲ 200.0% vs 1 for November 2025)" in text
    assert not (root / "reports" / "sales" / "2026-10-01_2026-11-01").exists()


def _cli(root: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "TEST_PRIMARY_DSN": dsn, "FINANCE_HOOK": "http://127.0.0.1:9/h"}
    return subprocess.run([MARKETOPS, "--root", str(root), *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_preview_renders_the_mail_without_sending_or_touching_the_ledger(
        tmp_path: Path, new_database: Callable[..., str]) -> None:
    import email
    import email.policy

    dsn = _database(new_database)
    smtp_port = free_port()
    root = _project(tmp_path / "project", smtp_port)
    with smtp_server(smtp_port) as mails:
        done = _cli(root, dsn, "preview", "report/sales", "--at", NOVEMBER,
                    "--out", str(tmp_path / "look"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "previewed, nothing sent" in done.stdout and mails == []
    folder = tmp_path / "look" / "2026-11-01_2026-12-01"
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "sales.csv", "sales.eml", "sales.html", "sales.mail.html",
        "sales.png", "sales.xlsx"]
    message = email.message_from_bytes((folder / "sales.eml").read_bytes(),
                                       policy=email.policy.default)
    assert str(message["Subject"]) == "Sales by region: November 2026"
    assert message["To"] == "cfo@corp.example"
    page = (folder / "sales.mail.html").read_text()
    assert 'src="data:image/png;base64,' in page and "€2,468.50" in page
    assert not (root / "reports").exists()
    with connect(dsn) as conn:
        assert conn.execute("select to_regclass('marketops.runs')").fetchone() == (None,)


def test_resend_is_explicit_and_recorded(tmp_path: Path,
                                         new_database: Callable[..., str]) -> None:
    dsn = _database(new_database)
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path / "project", smtp_port)
    with smtp_server(smtp_port) as mails, http_sink(hook_port):
        assert _run(root, dsn, hook_port, NOVEMBER).returncode == 0
        again = _run(root, dsn, hook_port, NOVEMBER)
        assert "email:cfo@corp.example: sent earlier" in again.stdout, again.stdout
        missing = _cli(root, dsn, "resend", "report/sales", "--at", OCTOBER)
        assert missing.returncode != 0 and "has no succeeded run" in missing.stderr
        resent = _cli(root, dsn, "resend", "report/sales", "--at", NOVEMBER,
                      "--to", "boss@corp.example", "--by", "alice")
        assert resent.returncode == 0, resent.stdout + resent.stderr
        still_once = _run(root, dsn, hook_port, NOVEMBER)
        assert "email:cfo@corp.example: sent earlier" in still_once.stdout
    assert [to for to, _ in mails] == [["cfo@corp.example"], ["boss@corp.example"]]
    message = mails[1][1]
    assert str(message["Subject"]) == "Sales by region: November 2026"
    assert any(p.get_filename() == "Sales by region - November 2026.xlsx"
               for p in message.walk())
    html = _part(message, "text/html").get_content()  # type: ignore[arg-type]
    assert "€1,268.50" in html and "▲ 722.8%" in html
    with connect(dsn) as conn:
        rows = conn.execute("select recipient, status, sent_at is not null "
                            "from marketops.deliveries order by recipient").fetchall()
    resend_rows = [r for r in rows if "resent" in r[0]]
    assert len(resend_rows) == 1 and resend_rows[0][1:] == ("sent", True)
    assert resend_rows[0][0].startswith("email:boss@corp.example (resent at 2")
    assert resend_rows[0][0].endswith(" by alice)")
