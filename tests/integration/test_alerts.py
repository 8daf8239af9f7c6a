"""A run that fails for good alerts its owner by mail and the alert webhook, once per run."""

from __future__ import annotations

import os
from pathlib import Path

from runners.postgres.connection import connect
from tests.conftest import free_port
from tests.integration.test_service import make_project, start_replica, stop, wait_for
from tests.mailbox import http_sink, smtp_server


def test_terminal_failure_alerts_owner_and_webhook_exactly_once(tmp_path: Path,
                                                                shop_dsn: str) -> None:
    root = make_project(tmp_path, every=3,
                        sql="select 1 / (count(*) - count(*)) as boom from shop.orders o")
    smtp_port, hook_port = free_port(), free_port()
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + (
        f"smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, "
        "sender: marketops@corp.example}\n"
        "webhooks:\n  ops: {url: \"${OPS_HOOK}\"}\n"
        "alerts: {webhook: ops}\n"))
    os.environ["OPS_HOOK"] = f"http://127.0.0.1:{hook_port}/hook"
    try:
        with smtp_server(smtp_port) as mails, http_sink(hook_port) as posts:
            replica = start_replica(root, shop_dsn, "alerting")
            try:
                wait_for(lambda: len(mails) >= 2 and len(posts) >= 2, 40)
            finally:
                logs = stop([replica])
            with connect(shop_dsn) as conn:
                failed = conn.execute("select count(*) from marketops.runs "
                                      "where status = 'failed'").fetchone()[0]
                sent = conn.execute("select recipient, count(*) from marketops.deliveries "
                                    "where status = 'sent' group by recipient").fetchall()
    finally:
        del os.environ["OPS_HOOK"]
    assert len(mails) == failed and len(posts) == failed, logs
    assert dict(sent) == {"email:ops@corp.example": failed, "webhook:ops": failed}
    recipients, message = mails[0]
    assert recipients == ["ops@corp.example"]
    assert str(message["Subject"]).strip().startswith("[marketops] report/tick failed (slot ")
    body = message.get_payload()
    assert "division by zero" in body and "marketops run report/tick --at" in body
    assert "division by zero" in posts[0]["text"]
    assert f"127.0.0.1:{hook_port}" not in logs[0]  # the webhook URL is a secret
