"""`marketops serve` as real processes on PostgreSQL 18: replicas, crashes, restarts."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.scheduling.schedule import Schedule
from runners.postgres.connection import connect
from runners.postgres.embedded import EmbeddedServer
from tests.conftest import free_port
from tests.integration.test_cli import MARKETOPS

SCHEMA = """\
name: shop
owner: shop@corp.example
description: A tiny shop.
tables:
  orders:
    backup_exclude_reason: Test data, rebuilt by every test.
    columns:
      id: {type: bigint, nullable: false}
      total: {type: "numeric(12,2)", nullable: false}
    primary_key: [id]
"""

REPORT = """\
title: Tick
description: Runs every {every} seconds.
owner: ops@corp.example
cron: "* * * * * */{every}"
timezone: UTC
period: {{rolling: 1h}}
sql: {sql}
recipients:
  - destination: archive
run: {{misfire_grace: 1min, retries: 2}}
"""


def make_project(root: Path, every: int, sql: str = "select count(*) as n from shop.orders o"
                 ) -> Path:
    (root / "schema").mkdir(parents=True)
    (root / "definitions" / "reports").mkdir(parents=True)
    (root / "schema" / "shop.yaml").write_text(SCHEMA)
    (root / "definitions" / "reports" / "tick.yaml").write_text(
        REPORT.format(every=every, sql=sql))
    (root / "marketops.yaml").write_text(textwrap.dedent(f"""\
        databases:
          primary: {{dsn: "${{TEST_PRIMARY_DSN}}"}}
        destinations:
          archive: {{url: "file://{root / 'reports'}"}}
        reports:
          destination: archive
        """))
    return root


def start_replica(root: Path, dsn: str, name: str, *extra: str,
                  port: int = 0) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "TEST_PRIMARY_DSN": dsn}
    return subprocess.Popen([MARKETOPS, "--root", str(root), "serve", "--port", str(port),
                             "--worker", name, "--tick", "0.5", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(processes: list[subprocess.Popen[str]]) -> list[str]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    logs = []
    for process in processes:
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        logs.append(err)
    return logs


def runs(dsn: str) -> list[tuple[datetime, str, int, str]]:
    with connect(dsn) as conn:
        return conn.execute("select slot, status, attempt, worker from marketops.runs "
                            "where job = 'report/tick' order by slot").fetchall()


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_three_replicas_run_every_slot_exactly_once(tmp_path: Path, shop_dsn: str) -> None:
    root = make_project(tmp_path, every=2)
    replicas = [start_replica(root, shop_dsn, f"r{i}") for i in range(3)]
    began = datetime.now(UTC)
    time.sleep(60)
    ended = datetime.now(UTC)
    assert all(p.poll() is None for p in replicas), stop(replicas)
    logs = stop(replicas)
    assert all(p.returncode == 0 for p in replicas), logs
    recorded = runs(shop_dsn)
    # Every slot from shortly after start to shortly before the stop ran once, successfully.
    expected = Schedule("* * * * * */2", "UTC").between(began + timedelta(seconds=6),
                                                        ended - timedelta(seconds=4))
    by_slot = {slot: (status, worker) for slot, status, _, worker in recorded}
    assert len(by_slot) == len(recorded)  # unique per slot
    missing = [s for s in expected if by_slot.get(s, ("",))[0] != "succeeded"]
    assert missing == [], (missing, logs)
    workers = {by_slot[s][1] for s in expected}
    assert len(workers) >= 2, workers  # the work is shared, not pinned to one replica
    events = [json.loads(line) for line in logs[0].splitlines() if line.startswith("{")]
    assert all({"time", "level", "message", "worker"} <= set(e) for e in events)
    assert any("run_id" in e and "slot" in e and e.get("job") == "report/tick" for e in events)


def test_a_killed_replica_s_run_is_taken_over_after_its_lease(tmp_path: Path,
                                                             shop_dsn: str) -> None:
    slow = "select count(*) as n from generate_series(1, 40000000) g"
    root = make_project(tmp_path, every=30, sql=slow)
    first = start_replica(root, shop_dsn, "doomed", "--lease", "3")
    try:
        wait_for(lambda: any(s == "running" for _, s, _, _ in _safe_runs(shop_dsn)), 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    second = start_replica(root, shop_dsn, "survivor", "--lease", "3")
    try:
        wait_for(lambda: any(s == "succeeded" and a == 2 for _, s, a, _ in
                             _safe_runs(shop_dsn)), 90)
    finally:
        logs = stop([second])
    taken = [r for r in runs(shop_dsn) if r[2] == 2]
    assert taken and taken[0][1:] == ("succeeded", 2, "survivor"), logs
    with connect(shop_dsn) as conn:
        notes = conn.execute("select notes from marketops.runs where attempt = 2").fetchone()[0]
    assert "lease of doomed expired" in notes


def _safe_runs(dsn: str) -> list[tuple[datetime, str, int, str]]:
    try:
        return runs(dsn)
    except Exception:  # the ledger may not exist yet
        return []


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "pg", free_port())
    server.start()
    yield server
    server.stop()


def test_service_survives_a_database_restart(tmp_path: Path, own_server: EmbeddedServer) -> None:
    dsn = own_server.dsn("postgres")
    with connect(dsn, autocommit=True) as conn:
        conn.execute("create schema shop; create table shop.orders (id bigint primary key, "
                     "total numeric(12,2) not null)")
    root = make_project(tmp_path / "project", every=2)
    replica = start_replica(root, dsn, "steady")
    try:
        wait_for(lambda: sum(s == "succeeded" for _, s, _, _ in _safe_runs(dsn)) >= 2, 60)
        own_server.stop()
        time.sleep(5)
        own_server.start()
        restarted = datetime.now(UTC)
        wait_for(lambda: any(slot > restarted and s == "succeeded"
                             for slot, s, _, _ in _safe_runs(dsn)), 60)
        assert replica.poll() is None  # still serving
    finally:
        logs = stop([replica])
    assert replica.returncode == 0
    assert "tick failed" in logs[0] or "heartbeat failed" in logs[0] or "run failed" in logs[0] \
        or "retry" in logs[0]


def test_status_endpoints(tmp_path: Path, shop_dsn: str) -> None:
    root = make_project(tmp_path, every=2)
    port = free_port()
    replica = start_replica(root, shop_dsn, "web", port=port)
    try:
        wait_for(lambda: _get(port, "/healthz")[0] == 200, 30)
        wait_for(lambda: any(s == "succeeded" for _, s, _, _ in _safe_runs(shop_dsn)), 30)
        code, body = _get(port, "/metrics")
        assert code == 200
        assert 'marketops_runs_total{job="report/tick",status="succeeded"}' in body
        assert 'marketops_job_healthy{job="report/tick"} 1' in body
        code, body = _get(port, "/status")
        assert code == 200 and "report/tick" in body and "<table" in body
        code, body = _get(port, "/status.json")
        assert json.loads(body)[0]["job"] == "report/tick"
        assert _get(port, "/nope")[0] == 404
    finally:
        stop([replica])


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_live_reload_refuses_invalid_definitions_and_takes_valid_ones(tmp_path: Path,
                                                                      shop_dsn: str) -> None:
    root = make_project(tmp_path, every=2)
    report = root / "definitions" / "reports" / "tick.yaml"
    replica = start_replica(root, shop_dsn, "reloader")
    try:
        wait_for(lambda: any(s == "succeeded" for _, s, _, _ in _safe_runs(shop_dsn)), 30)
        report.write_text(report.read_text().replace("timezone: UTC", "timezone: Mars/Base"))
        broken_at = datetime.now(UTC)
        # The last valid set keeps running.
        wait_for(lambda: any(slot > broken_at + timedelta(seconds=3) and s == "succeeded"
                             for slot, s, _, _ in _safe_runs(shop_dsn)), 30)
        (root / "definitions" / "reports" / "tock.yaml").write_text(
            report.read_text().replace("timezone: Mars/Base", "timezone: UTC"))
        report.write_text(report.read_text().replace("timezone: Mars/Base", "timezone: UTC"))
        wait_for(lambda: _count(shop_dsn, "report/tock") >= 2, 30)
    finally:
        logs = stop([replica])
    assert "definitions changed but are invalid" in logs[0]
    assert "unknown IANA timezone 'Mars/Base'" in logs[0]


def _count(dsn: str, job: str) -> int:
    try:
        with connect(dsn) as conn:
            return int(conn.execute("select count(*) from marketops.runs where job = %s and "
                                    "status = 'succeeded'", (job,)).fetchone()[0])
    except Exception:
        return 0


def test_overlap_forbid_skips_a_slot_while_the_previous_run_goes_on(tmp_path: Path,
                                                                   shop_dsn: str) -> None:
    slow = "select count(*) as n from generate_series(1, 30000000) g"
    root = make_project(tmp_path, every=1, sql=slow)
    replica = start_replica(root, shop_dsn, "solo")
    try:
        wait_for(lambda: any(s == "skipped" for _, s, _, _ in _safe_runs(shop_dsn)), 60)
    finally:
        stop([replica])
    with connect(shop_dsn) as conn:
        reasons = [r[0] for r in conn.execute(
            "select error from marketops.runs where status = 'skipped'").fetchall()]
    assert any("previous run still running (overlap: forbid)" in r for r in reasons)


TIER = """\
title: Shop dump {name}
owner: dba@corp.example
kind: logical_schemas
schemas: [shop]
cron: "* * * * * */3"
destination: backups
retention: {{keep_last: 3}}
rpo: 1h
rto: 1h
run: {{misfire_grace: 1min}}
"""


def test_replicas_run_backups_one_at_a_time_and_report_their_age(tmp_path: Path,
                                                                  shop_dsn: str) -> None:
    from engine.app.tiers.backup import catalog_of
    from engine.validation.validate import validate

    root = make_project(tmp_path, every=5)
    (root / "definitions" / "backups").mkdir()
    for name in ("a", "b"):
        (root / "definitions" / "backups" / f"dump_{name}.yaml").write_text(
            TIER.format(name=name))
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text().replace(
        "destinations:\n", f"destinations:\n  backups: {{url: \"file://{root / 'backups'}\"}}\n"))
    ports = [free_port(), free_port()]
    replicas = [start_replica(root, shop_dsn, f"b{i}", port=ports[i]) for i in range(2)]
    try:
        wait_for(lambda: _succeeded_backups(shop_dsn) >= 8, 90)
        body = urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/metrics", timeout=10
                                      ).read().decode()
    finally:
        logs = stop(replicas)
    defs = validate(root)
    spans = sorted((m.started_at, m.finished_at) for tier in ("dump_a", "dump_b")
                   for m in catalog_of(root, defs, tier).complete)
    assert 2 <= len(spans) <= 6, logs  # retention keeps the newest 3 of each
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, spans  # the advisory lock: never two dumps of one cluster at once
    with connect(shop_dsn) as conn:
        twice = conn.execute("select job, slot from marketops.runs where job like 'backup/%' "
                             "group by job, slot having count(*) > 1").fetchall()
    assert twice == []
    assert 'marketops_backup_age_seconds{tier="dump_a"}' in body, body
    assert 'marketops_backup_fresh{tier="dump_b"} 1' in body, body


def _succeeded_backups(dsn: str) -> int:
    with connect(dsn) as conn:
        ready = conn.execute("select to_regclass('marketops.runs') is not null").fetchone()
        if not ready or not ready[0]:
            return 0  # the replicas have not migrated the ledger yet
        row = conn.execute("select count(*) from marketops.runs where job like 'backup/%' "
                           "and status = 'succeeded'").fetchone()
    return int(row[0]) if row else 0
