"""The repository's Monthly P&L delivered with `reports.locale: de_DE` to a real SMTP server
(aiosmtpd): the figures in the MIME parts read as a Berlin finance team writes them, the
spreadsheet keeps numbers and names the euro after them, the CSV stays raw."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from decimal import ROUND_HALF_UP, Decimal
from email.message import EmailMessage
from pathlib import Path

from openpyxl import load_workbook

from tests.conftest import free_port
from tests.integration.conftest import copy_repository
from tests.integration.test_cli import MARKETOPS
from tests.mailbox import smtp_server

NBSP = "\u00a0"
OCTOBER_SLOT = "2026-11-01T06:00+01:00"  # the demo data ends on 1 Nov: October is full


def _german(raw: str, decimals: int = 2) -> str:
    """A figure as written in Germany, built by hand (not by the code under test):
    '.' groups thousands, ',' marks decimals, a real minus sign."""
    number = Decimal(raw).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(number):f}".partition(".")
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = ".".join(groups) + ("," + fraction if fraction else "")
    return ("\u2212" if number < 0 else "") + text


def _part(message: EmailMessage, content_type: str) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == content_type)
    assert isinstance(part, EmailMessage)
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_pnl_in_de_DE_reads_with_german_separators(repo_root: Path, market_dsn: str,
                                                   tmp_path: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo", "TEST_PRIMARY_DSN")
    port = free_port()
    settings = (root / "marketops.yaml").read_text().replace("port: 2525", f"port: {port}")
    assert "reports:\n" in settings
    (root / "marketops.yaml").write_text(settings.replace("reports:\n",
                                                          "reports:\n  locale: de_DE\n"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "TEST_PRIMARY_DSN": market_dsn}
    with smtp_server(port) as mails:
        done = subprocess.run([MARKETOPS, "--root", str(root), "run", "report/pnl_monthly",
                               "--at", OCTOBER_SLOT], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    assert len(mails) == 2  # cfo@ and finance@
    message = mails[0][1]
    assert isinstance(message, EmailMessage)
    # Period words stay English; only numbers follow the locale.
    assert re.fullmatch(r"(\[ALERT\] )?Monthly P&L: October 2026", str(message["Subject"]))

    archived = root / "var" / "reports" / "pnl_monthly" / "2026-10-01_2026-11-01"
    manifest = json.loads((archived / "manifest.json").read_text())
    [row] = list(csv.DictReader(io.StringIO((archived / "pnl_monthly.csv").read_text())))
    # The CSV stays raw and machine-readable: a plain decimal point, no grouping.
    assert re.fullmatch(r"-?\d+\.\d\d", row["revenue"]), row
    revenue = Decimal(row["revenue"])
    assert revenue >= 1000, "the demo month should have revenue worth grouping"
    september = manifest["compared"]["previous_period"]["figures"]["revenue"]

    html = _part(message, "text/html")
    text = _part(message, "text/plain")
    money = f"{_german(row['revenue'])}{NBSP}€"
    assert f'<td class="num" style="text-align:right">{money}</td>' in html
    assert f"{_german(row['contribution'])}{NBSP}€" in html
    # The P&L reads as a statement: label, then the amount right-aligned.
    assert re.search(rf"^Net revenue +{re.escape(money)}\r?$", text, re.M), text
    # The comparison line: the change in % and the previous month, German separators.
    change = (revenue - Decimal(september)) / abs(Decimal(september)) * 100
    arrow = "▲" if change > 0 else "▼"
    compared = (f"- Net revenue {money} ({arrow} {_german(str(abs(change)), 1)}{NBSP}% vs "
                f"{_german(september)}{NBSP}€ for September 2026)")
    assert compared in text.splitlines(), text
    assert f"{arrow} {_german(str(abs(change)), 1)}{NBSP}%" in html
    assert "1 row." in text and "€" + row["revenue"] not in html

    xlsx = next(p for p in message.walk()
                if p.get_filename() == "Monthly P&L - October 2026.xlsx")
    (tmp_path / "got.xlsx").write_bytes(xlsx.get_payload(decode=True))
    sheet = load_workbook(tmp_path / "got.xlsx").active
    assert sheet is not None
    assert sheet["A2"].value == float(revenue)  # a real number; Excel shows its separators
    assert sheet["A2"].number_format == '#,##0.00" €";-#,##0.00" €"'

    # The preview renders the same figures without sending.
    look = subprocess.run([MARKETOPS, "--root", str(root), "preview", "report/pnl_monthly",
                           "--at", OCTOBER_SLOT, "--out", str(tmp_path / "look")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert look.returncode == 0, look.stdout + look.stderr
    page = (tmp_path / "look" / "2026-10-01_2026-11-01" / "pnl_monthly.mail.html").read_text()
    assert f'<td class="num" style="text-align:right">{money}</td>' in page
