"""Report delivery with real servers on loopback: SMTP (aiosmtpd) and an HTTP webhook sink."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from openpyxl import load_workbook

from runners.postgres.connection import connect
from tests.conftest import free_port
from tests.integration.test_cli import MARKETOPS
from tests.integration.test_service import make_project
from tests.mailbox import http_sink, smtp_server

REPORT = """\
title: Orders by size
description: Orders and totals, biggest first.
owner: ops@corp.example
cron: "0 6 * * *"
timezone: UTC
period: {{rolling: 3650d}}
sql: select o.id, o.total from shop.orders o order by o.total desc
formats: [csv, xlsx, html]
chart: {{type: bar, x: id, y: [total]}}
recipients:
  - email: a@corp.example
  - email: b@corp.example
  - email: nobody@corp.example
  - webhook: ops
  - destination: archive
alerts:
  - name: big_order
    column: total
    op: ">="
    value: 100
    message: An order of 100 or more.
    notify:
      - email: boss@corp.example
"""


def _project(tmp_path: Path, smtp_port: int, hook_port: int) -> Path:
    root = make_project(tmp_path, every=60)
    (root / "definitions" / "reports" / "tick.yaml").unlink()
    (root / "definitions" / "reports" / "orders.yaml").write_text(REPORT.format())
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + (
        f"smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, "
        "sender: reports@corp.example}\n"
        "webhooks:\n  ops: {url: \"${OPS_HOOK}\"}\n"))
    return root


def _run(root: Path, dsn: str, hook_port: int) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "TEST_PRIMARY_DSN": dsn, "OPS_HOOK": f"http://127.0.0.1:{hook_port}/h"}
    return subprocess.run([MARKETOPS, "--root", str(root), "run", "report/orders"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_mail_parts_webhook_alert_and_bad_address(tmp_path: Path, shop_dsn: str) -> None:
    with connect(shop_dsn, autocommit=True) as conn:
        conn.execute("insert into shop.orders values (2, 150.5), (3, 20)")
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path, smtp_port, hook_port)
    with smtp_server(smtp_port, refuse={"nobody@corp.example"}) as mails, \
            http_sink(hook_port) as posts:
        result = _run(root, shop_dsn, hook_port)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "email:nobody@corp.example: failed: recipients refused" in result.stdout
    assert sorted(to[0] for to, _ in mails) == ["a@corp.example", "b@corp.example",
                                               "boss@corp.example"]
    _, message = mails[0]
    assert str(message["Subject"]).strip().startswith("[ALERT] Orders by size: ")
    types = [p.get_content_type() for p in message.walk()]
    assert {"text/plain", "text/html", "image/png", "text/csv"} <= set(types)
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    assert 'src="cid:chart"' in html.get_content() and "An order of 100 or more" in \
        html.get_content()
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<chart>" and image.get_payload(decode=True)[:4] == b"\x89PNG"
    # Attachments are named after the report and its period (issue 18).
    csv_part = next(p for p in message.walk() if (p.get_filename() or "").endswith(".csv"))
    assert csv_part.get_filename().startswith("Orders by size - 3650 days to ")
    assert csv_part.get_payload(decode=True).decode().splitlines() == [
        "id,total", "2,150.50", "3,20.00", "1,2.00"]
    xlsx = next(p for p in message.walk() if (p.get_filename() or "").endswith(".xlsx"))
    (tmp_path / "got.xlsx").write_bytes(xlsx.get_payload(decode=True))
    sheet = load_workbook(tmp_path / "got.xlsx").active
    assert [c.value for c in sheet[1]] == ["id", "total"]
    assert sheet["B2"].value == 150.5 and sheet.freeze_panes == "A2"
    assert len(posts) == 1 and "Orders by size" in posts[0]["text"]


def test_smtp_deferral_is_retried_and_each_recipient_gets_one_mail(tmp_path: Path,
                                                                   shop_dsn: str) -> None:
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path, smtp_port, hook_port)
    with smtp_server(smtp_port, refuse={"nobody@corp.example"},
                     defer_once={"b@corp.example"}) as mails, http_sink(hook_port):
        first = _run(root, shop_dsn, hook_port)
        assert first.returncode == 1
        assert "retrying" in first.stdout and "b@corp.example" in first.stdout
        assert [to for to, _ in mails] == [["a@corp.example"]]
        second = _run(root, shop_dsn, hook_port)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "email:a@corp.example: sent earlier" in second.stdout
        # The 550 is final: the retry does not even connect for it.
        assert "email:nobody@corp.example: refused earlier, not retried: recipients " \
            "refused: nobody@corp.example (550 5.1.1 no such mailbox)" in second.stdout
    assert sorted(to[0] for to, _ in mails) == ["a@corp.example", "b@corp.example"]
    assert len({str(m["Message-ID"]) for _, m in mails}) == 2 and all(m["Date"] for _, m in mails)
    with connect(shop_dsn) as conn:
        rows = {r: (s, n) for r, s, n in conn.execute(
            "select recipient, status, attempts from marketops.deliveries").fetchall()}
    assert rows["email:a@corp.example"] == ("sent", 1)
    assert rows["email:b@corp.example"] == ("sent", 2)  # the 451 was tried again
    assert rows["email:nobody@corp.example"] == ("failed", 1)


def test_copy_to_an_s3_destination(tmp_path: Path, shop_dsn: str, s3_endpoint: str) -> None:
    import boto3

    os.environ.update({"S3_KEY": "testing", "S3_SECRET": "testing"})
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="reports-bucket")
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path, smtp_port, hook_port)
    report = root / "definitions" / "reports" / "orders.yaml"
    report.write_text(report.read_text().replace(
        "  - destination: archive\n", "  - destination: bucket\n    path: shared/orders\n"))
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text().replace("destinations:\n", (
        "destinations:\n  bucket: {url: \"s3://reports-bucket/marketops\", "
        f"endpoint_url: \"{s3_endpoint}\", region: us-east-1, "
        "access_key_id: \"${S3_KEY}\", secret_access_key: \"${S3_SECRET}\"}\n")))
    with smtp_server(smtp_port, refuse={"nobody@corp.example"}), http_sink(hook_port):
        result = _run(root, shop_dsn, hook_port)
    assert "destination:bucket: sent" in result.stdout, result.stdout + result.stderr
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="reports-bucket")["Contents"])
    assert [k.rsplit("/", 1)[1] for k in keys] == ["manifest.json", "orders.csv", "orders.html",
                                                   "orders.png", "orders.xlsx"]
    assert all(k.startswith("marketops/shared/orders/") for k in keys)
    body = client.get_object(Bucket="reports-bucket", Key=keys[1])["Body"].read()
    assert body.splitlines()[0] == b"id,total"
    assert "testing" not in result.stdout + result.stderr


def test_mail_above_the_size_cap_links_to_the_archive(tmp_path: Path, shop_dsn: str) -> None:
    with connect(shop_dsn, autocommit=True) as conn:
        conn.execute("insert into shop.orders select g, g from generate_series(10, 400) g")
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path, smtp_port, hook_port)
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text().replace(
        "sender: reports@corp.example}", "sender: reports@corp.example, max_message_bytes: 1024}"))
    with smtp_server(smtp_port, refuse={"nobody@corp.example"}) as mails, http_sink(hook_port):
        result = _run(root, shop_dsn, hook_port)
    assert result.returncode == 0, result.stdout + result.stderr
    _, message = mails[0]
    assert not [p for p in message.walk()
                if (p.get_filename() or "").endswith((".csv", ".xlsx"))]
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "too large to attach" in text and str(tmp_path / "reports") in text
