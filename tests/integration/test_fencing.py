"""A replica frozen (SIGSTOP) past its lease and woken (SIGCONT) after another replica took its
run over sends nothing and publishes nothing: real `marketops serve` processes, PostgreSQL 18
and an SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from email.message import Message
from pathlib import Path
from typing import IO

from runners.postgres.connection import connect
from tests.conftest import free_port
from tests.integration.test_cli import MARKETOPS
from tests.integration.test_service import make_project, stop, wait_for
from tests.mailbox import smtp_server

RECIPIENTS = [f"r{i}@corp.example" for i in range(1, 7)]
REPORT = """\
title: Tick
description: Runs every 30 seconds.
owner: ops@corp.example
cron: "* * * * * */30"
timezone: UTC
period: {{rolling: 1h}}
sql: {sql}
recipients:
{recipients}
run: {{misfire_grace: 1min, retries: 2}}
"""
FAST = "select count(*) as n from shop.orders o"
SLOW = "select count(*) as n from generate_series(1, 30000000) g"


def _project(root: Path, smtp_port: int, sql: str, recipients: list[str]) -> Path:
    make_project(root, every=30)
    (root / "definitions" / "reports" / "tick.yaml").write_text(REPORT.format(
        sql=sql, recipients="\n".join(f"  - email: {r}" for r in recipients)))
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + (
        f"smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, "
        "sender: reports@corp.example}\n"))
    return root


def _of_run(mails: list[tuple[list[str], Message]], run_id: int) -> list[Message]:
    """The mails of one run, by the run id its Message-ID carries."""
    return [m for _, m in mails if f".run{run_id}." in str(m["Message-ID"])]


def _replica(root: Path, dsn: str, name: str, log: IO[str]) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "TEST_PRIMARY_DSN": dsn}
    return subprocess.Popen([MARKETOPS, "--root", str(root), "serve", "--port", "0",
                             "--worker", name, "--tick", "0.5", "--lease", "3"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)


def _taken_over(dsn: str) -> tuple[int, str] | None:
    """(run id, its output directory) of the run attempt 2 finished, once it has."""
    try:
        with connect(dsn) as conn:
            row = conn.execute("select id, outputs->>'directory' from marketops.runs "
                               "where attempt = 2 and status = 'succeeded'").fetchone()
    except Exception:  # the ledger may not exist yet
        return None
    return (int(row[0]), str(row[1])) if row else None


def _running(dsn: str, worker: str) -> bool:
    try:
        with connect(dsn) as conn:
            return conn.execute("select 1 from marketops.runs where worker = %s and "
                                "status = 'running'", (worker,)).fetchone() is not None
    except Exception:
        return False


def test_a_replica_frozen_mid_delivery_sends_nothing_once_woken(tmp_path: Path,
                                                                shop_dsn: str) -> None:
    smtp_port = free_port()
    root = _project(tmp_path / "p", smtp_port, FAST, RECIPIENTS)
    frozen = threading.Event()
    pid: list[int] = []

    def freeze_at_the_second_mail(n: int) -> None:
        if n == 2 and pid:  # one mail went out; the second is under way
            os.kill(pid[0], signal.SIGSTOP)
            frozen.set()

    with (tmp_path / "a.log").open("w") as log_a, (tmp_path / "b.log").open("w") as log_b, \
            smtp_server(smtp_port, on_mail=freeze_at_the_second_mail) as mails:
        a = _replica(root, shop_dsn, "sleepy", log_a)
        pid.append(a.pid)
        b: subprocess.Popen[str] | None = None
        try:
            assert frozen.wait(90), (tmp_path / "a.log").read_text()
            b = _replica(root, shop_dsn, "awake", log_b)
            wait_for(lambda: _taken_over(shop_dsn) is not None, 90)
            taken = _taken_over(shop_dsn)
            assert taken is not None
            sent_before_waking = len(_of_run(mails, taken[0]))
            os.kill(a.pid, signal.SIGCONT)
            wait_for(lambda: "lost its lease" in (tmp_path / "a.log").read_text(), 30)
            time.sleep(2)  # what the woken replica would send next, it would send now
            sent_after_waking = len(_of_run(mails, taken[0]))
        finally:
            if a.poll() is None:
                os.kill(a.pid, signal.SIGCONT)
            stop([a] + ([b] if b else []))
    log = (tmp_path / "a.log").read_text()
    run_id = taken[0]
    mine = _of_run(mails, run_id)
    assert sorted(str(m["To"]) for m in mine) == RECIPIENTS, log  # each once, none twice
    assert sent_after_waking == sent_before_waking == len(RECIPIENTS), log
    ids = Counter(str(m["Message-ID"]) for _, m in mails)
    assert all(n == 1 for n in ids.values()), ids
    assert all(m["Date"] for _, m in mails)
    assert f"run {run_id} attempt 1 lost the run: attempt 2 has taken the run over" in log
    with connect(shop_dsn) as conn:
        rows = conn.execute("select recipient, status, run_attempt from marketops.deliveries "
                            "where run_id = %s", (run_id,)).fetchall()
    assert sorted(rows) == sorted([(f"email:{r}", "sent", 1) for r in RECIPIENTS[:1]]
                                  + [(f"email:{r}", "sent", 2) for r in RECIPIENTS[1:]])


def test_a_replica_frozen_mid_query_publishes_nothing_once_woken(tmp_path: Path,
                                                                 shop_dsn: str) -> None:
    smtp_port = free_port()
    root = _project(tmp_path / "p", smtp_port, SLOW, RECIPIENTS[:1])
    with (tmp_path / "a.log").open("w") as log_a, (tmp_path / "b.log").open("w") as log_b, \
            smtp_server(smtp_port) as mails:
        a = _replica(root, shop_dsn, "sleepy", log_a)
        b: subprocess.Popen[str] | None = None
        try:
            wait_for(lambda: _running(shop_dsn, "sleepy"), 90)
            time.sleep(0.5)  # into its query
            os.kill(a.pid, signal.SIGSTOP)
            b = _replica(root, shop_dsn, "awake", log_b)
            wait_for(lambda: _taken_over(shop_dsn) is not None, 120)
            taken = _taken_over(shop_dsn)
            assert taken is not None
            published = Path(taken[1])
            before = (published.stat().st_ino, (published / "manifest.json").read_bytes())
            sent_before_waking = len(_of_run(mails, taken[0]))
            os.kill(a.pid, signal.SIGCONT)
            wait_for(lambda: "lost its lease" in (tmp_path / "a.log").read_text(), 90)
            time.sleep(1)
            after = (published.stat().st_ino, (published / "manifest.json").read_bytes())
            sent_after_waking = len(_of_run(mails, taken[0]))
        finally:
            if a.poll() is None:
                os.kill(a.pid, signal.SIGCONT)
            stop([a] + ([b] if b else []))
    log = (tmp_path / "a.log").read_text()
    assert f"run {taken[0]} attempt 1 lost the run" in log
    assert after == before, log  # the woken replica did not replace attempt 2's outputs
    assert sent_before_waking == 1 and sent_after_waking == 1, log
    assert not list(published.parent.glob(f".{published.name}.tmp-*"))  # no staging left
