"""Secrets never reach the CLI output, the logs or the ledger, in any form they come in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.execution import execute_run
from engine.jobs import Job
from engine.ledger import Ledger, Run
from engine.masking import remember
from engine.models.base import RunPolicy
from runners.database import connect
from tests.conftest import free_port
from tests.integration.test_cli import MARKETOPS
from tests.integration.test_service import make_project

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


@pytest.mark.parametrize("dsn", [
    "postgresql://app:{secret}@127.0.0.1:{port}/shop",
    "postgresql://app@127.0.0.1:{port}/shop?password={secret}&connect_timeout=5",
    "host=127.0.0.1 port={port} user=app password='with space {secret}' dbname=shop",
    "host=127.0.0.1 port={port} user=app password={secret} dbname=shop",
])
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
