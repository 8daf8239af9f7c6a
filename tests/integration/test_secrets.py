"""Secrets never reach the CLI output, the logs or the ledger, in any form they come in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.definitions.models.base import RunPolicy
from engine.masking import remember
from engine.runs.execution import execute_run
from engine.runs.ledger import Ledger, Run
from engine.scheduling.jobs import Job
from runners.postgres.connection import connect
from tests.conftest import free_port
from tests.integration.test_cli import MARKETOPS
from tests.integration.test_service import make_project
from tests.mailbox import http_sink, smtp_server

TOKEN = "Tok3n-b7c1e9"

REPORT = """\
title: Order count
description: How many orders there are.
owner: ops@corp.example
cron: "0 6 * * *"
timezone: UTC
period: {rolling: 1d}
sql: select count(*) as n from shop.orders o
formats: [csv]
recipients:
  - webhook: ops
"""


def _project(tmp_path: Path, reports_dsn: bool = False) -> Path:
    root = make_project(tmp_path, every=60)
    (root / "definitions" / "reports" / "tick.yaml").unlink()
    (root / "definitions" / "reports" / "orders.yaml").write_text(REPORT)
    settings = root / "marketops.yaml"
    text = settings.read_text() + 'webhooks:\n  ops: {url: "${OPS_HOOK}"}\n'
    if reports_dsn:
        text = text.replace('primary: {dsn: "${TEST_PRIMARY_DSN}"}',
                            'primary: {dsn: "${TEST_PRIMARY_DSN}"}\n  reports: {dsn: '
                            '"${TEST_REPORTS_DSN}"}')
    settings.write_text(text)
    return root


def _marketops(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    return subprocess.run([MARKETOPS, "--root", str(root), *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def _ledger_text(dsn: str) -> str:
    with connect(dsn, autocommit=True) as conn:
        runs = conn.execute("select coalesce(error, '') from marketops.runs").fetchall()
        deliveries = conn.execute("select recipient || ' ' || coalesce(last_error, '') "
                                  "from marketops.deliveries").fetchall()
    return "\n".join(str(row[0]) for row in [*runs, *deliveries])


def test_a_webhook_url_without_a_scheme_fails_the_delivery_without_its_token(
        tmp_path: Path, shop_dsn: str) -> None:
    root = _project(tmp_path)
    result = _marketops(root, "run", "report/orders", TEST_PRIMARY_DSN=shop_dsn,
                        OPS_HOOK=f"hooks.example.invalid/services/T0/B0/{TOKEN}")
    output = result.stdout + result.stderr
    assert TOKEN not in output and "internal error" not in output, output
    assert "webhook:ops: failed: the webhook URL does not start with https://" in output, output
    ledger = _ledger_text(shop_dsn)
    assert "does not start with https://" in ledger and TOKEN not in ledger, ledger


DSN_FORMS = [
    "postgresql://app:{secret}@127.0.0.1:{port}/shop",
    "postgresql://app@127.0.0.1:{port}/shop?password={secret}&connect_timeout=5",
    "host=127.0.0.1 port={port} user=app password='with space {secret}' dbname=shop",
    "host=127.0.0.1 port={port} user=app password={secret} dbname=shop",
]


@pytest.mark.parametrize("dsn", DSN_FORMS)
def test_dsn_passwords_stay_out_of_output_and_ledger(tmp_path: Path, shop_dsn: str,
                                                     dsn: str) -> None:
    unreachable = dsn.format(secret=TOKEN, port=free_port())
    root = _project(tmp_path, reports_dsn=True)
    # The state database is reachable, the reports database is not: the run fails, recorded.
    ran = _marketops(root, "run", "report/orders", TEST_PRIMARY_DSN=shop_dsn,
                     TEST_REPORTS_DSN=unreachable, OPS_HOOK="http://127.0.0.1:9/h")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "cannot connect to" in ran.stdout + ran.stderr, ran.stdout + ran.stderr
    assert "WithSpace" not in ran.stdout
    assert TOKEN not in ran.stdout + ran.stderr
    ledger = _ledger_text(shop_dsn)
    assert "cannot connect" in ledger and TOKEN not in ledger and "space" not in ledger, ledger
    # The same DSN given directly (not through ${ENV}): masked by its form alone.
    status = _marketops(root, "status", MARKETOPS_DSN=unreachable,
                        TEST_PRIMARY_DSN=unreachable, OPS_HOOK="http://127.0.0.1:9/h")
    assert status.returncode == 4  # the database is unreachable (README's exit codes)
    assert "cannot connect to" in status.stderr and "***" in status.stderr, status.stderr
    assert TOKEN not in status.stdout + status.stderr and "space" not in status.stderr


@pytest.fixture
def ledger(new_database: Callable[..., str]) -> tuple[Ledger, str]:
    dsn = new_database()
    ledger = Ledger(lambda: connect(dsn, autocommit=True))
    ledger.migrate()
    return ledger, dsn


def test_an_internal_error_is_recorded_by_type_and_masked_message(
        ledger: tuple[Ledger, str], caplog: pytest.LogCaptureFixture) -> None:
    store, dsn = ledger
    job = Job("report/x", "report", "x", "ops@corp.example", None, RunPolicy(), "h")
    slot = datetime(2026, 3, 1, tzinfo=UTC)
    run = store.claim(job.id, slot, "w", timedelta(seconds=30), "h")
    assert run is not None
    url = remember(f"hooks.example.invalid/T0/{TOKEN}")

    def crash(job: Job, run: Run) -> dict[str, object]:
        raise ValueError(f"unknown url type: {url!r}")

    outcome = execute_run(store, crash, job, run, "w", timedelta(seconds=30))
    assert outcome.error == "internal error: ValueError: unknown url type: '***'"
    assert _ledger_text(dsn) == "internal error: ValueError: unknown url type: '***'"
    assert TOKEN not in caplog.text


def _everything_in_the_ledger(dsn: str) -> str:
    """Every row of every ledger table as text: no column is left out of the search."""
    with connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = "
            "'marketops'").fetchall()]
        rows = [str(r[0]) for table in tables for r in conn.execute(
            f"select t::text from marketops.{table} t").fetchall()]
    assert any("report/orders" in r for r in rows)  # the search sees the runs
    return "\n".join(rows)


def test_a_run_with_dsn_and_smtp_passwords_set_keeps_them_out_of_everything(
        tmp_path: Path, shop_dsn: str) -> None:
    db_secret, smtp_secret, hook_secret = "Db-p4ss-9f2", "Smtp-p4ss-3c7", "Hook-t0k-5d1"
    # Loopback trust authentication ignores the password, so the runs connect and succeed.
    parts = dict(item.split("=", 1) for item in shop_dsn.split())
    # The ledger's DSN in URL form, the reports' in key=value form with a quoted space.
    with_password = (f"postgresql://{parts['user']}:{db_secret}@{parts['host']}:"
                     f"{parts['port']}/{parts['dbname']}")
    reports_dsn = f"{shop_dsn} password='with space {db_secret}'"
    smtp_port, hook_port = free_port(), free_port()
    root = _project(tmp_path, reports_dsn=True)
    report = root / "definitions" / "reports" / "orders.yaml"
    report.write_text(report.read_text() + "  - email: a@corp.example\n"
                      "  - email: nobody@corp.example\n")
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + (
        f"smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, sender: "
        "reports@corp.example, username: mailer, password: \"${SMTP_PASSWORD}\"}\n"))
    env = {"TEST_PRIMARY_DSN": with_password, "TEST_REPORTS_DSN": reports_dsn,
           "MARKETOPS_DSN": with_password,
           "OPS_HOOK": f"http://127.0.0.1:{hook_port}/services/{hook_secret}"}
    with http_sink(hook_port) as posts, \
            smtp_server(smtp_port, refuse={"nobody@corp.example"},
                        login=("mailer", smtp_secret)) as mails:
        ran = _marketops(root, "run", "report/orders", SMTP_PASSWORD=smtp_secret, **env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert [to for to, _ in mails] == [["a@corp.example"]] and len(posts) == 1
        # A wrong SMTP password: the delivery fails, recorded, with neither password in it.
        wrong = _marketops(root, "run", "report/orders", "--at", "2026-11-01T07:00:00Z",
                           SMTP_PASSWORD=f"{smtp_secret}-wrong", **env)
        assert "email:a@corp.example: failed: the SMTP server refused the login of " \
            "'mailer' (535 5.7.8 Authentication credentials invalid); check smtp.username " \
            "and smtp.password" in wrong.stdout, wrong.stdout + wrong.stderr
        # A settings mistake is not the recipient's refusal: once fixed, the mail goes out.
        fixed = _marketops(root, "run", "report/orders", "--at", "2026-11-01T07:00:00Z",
                           SMTP_PASSWORD=smtp_secret, **env)
        assert [to for to, _ in mails] == [["a@corp.example"]] * 2, fixed.stdout
        status = _marketops(root, "status", **env)
    said = "\n".join(p.stdout + p.stderr for p in (ran, wrong, fixed, status))
    ledger = _everything_in_the_ledger(shop_dsn)
    for secret in (db_secret, smtp_secret, hook_secret, "with space"):
        assert secret not in said, said
        assert secret not in ledger, ledger


@pytest.mark.parametrize("dsn", DSN_FORMS)
def test_serve_logs_no_dsn_password(tmp_path: Path, dsn: str) -> None:
    unreachable = dsn.format(secret=TOKEN, port=free_port())
    root = _project(tmp_path)
    served = subprocess.run(
        [MARKETOPS, "--root", str(root), "serve", "--port", "0", "--worker", "w"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
             "TEST_PRIMARY_DSN": unreachable, "OPS_HOOK": "http://127.0.0.1:9/h"},
        capture_output=True, text=True, timeout=60, check=False)
    assert served.returncode == 4, served.stdout + served.stderr  # the database is down
    assert "cannot connect to" in served.stderr and "***" in served.stderr, served.stderr
    assert TOKEN not in served.stdout + served.stderr and "space" not in served.stderr
