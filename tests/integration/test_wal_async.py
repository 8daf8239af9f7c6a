"""Asynchronous WAL archiving on a real server: archive_command (the fast path) returns
once the background pusher has stored its segment; bursts are archived whole, a killed
pusher is started again by the next call with nothing lost or stored twice, status shows
the queue, and a point-in-time recovery replays what the pusher stored."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest

from engine.app.tiers.restore import restore_point_in_time
from engine.app.tiers.wal import (
    compile_archive_config,
    configure_archiving,
    prepare_archive_access,
    verify_wal_archive,
    wal_settings,
)
from engine.backups.pitr import RecoveryTarget
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect
from runners.postgres.embedded import EmbeddedServer
from tests.helpers import write_project
from tests.integration.test_backup_physical import BASE_TIER, WAL_TIER, Cluster

KEY = str(pyrage.x25519.Identity.generate())
SETTINGS = """\
databases:
  primary: {dsn: "${MARKETOPS_TEST_ASYNC_DSN}"}
destinations:
  backups: {url: "file://./var/backups"}
keys:
  k1: ${MARKETOPS_TEST_BACKUP_KEY}
"""
ASYNC_WAL_TIER = WAL_TIER + "archive_async: {process_max: 2, timeout: 120s}\n"


class AsyncCluster(Cluster):
    @property
    def spool(self) -> Path:
        return self.root / ".marketops" / "spool" / "wal"

    def pusher_pid(self) -> int | None:
        try:
            return int((self.spool / "pusher.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def log(self) -> str:
        path = self.spool / "pusher.log"
        return path.read_text() if path.exists() else ""

    def burst(self, segments: int, rows: int = 2000) -> list[str]:
        """Write some WAL and close the segment, `segments` times, as fast as possible."""
        closed = []
        with connect(self.dsn, autocommit=True) as conn:
            for _ in range(segments):
                conn.execute("insert into marks select nextval('ids'), md5(random()::text) "
                             f"from generate_series(1, {rows})")
                row = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
                assert row is not None
                closed.append(str(row[0]))
        return closed

    def wait_archived(self, segment: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.sql("select last_archived_wal from pg_stat_archiver")[0]
            if row[0] is not None and str(row[0]) >= segment:
                return
            time.sleep(0.1)
        raise AssertionError(f"{segment} was not archived; server log:\n"
                             f"{self.server.log_file.read_text(errors='replace')[-2000:]}\n"
                             f"pusher log:\n{self.log()[-2000:]}")

    def stored(self) -> Counter[str]:
        """WAL name -> how many stored files carry it."""
        files = (self.root / "var" / "backups" / "wal").rglob("*")
        return Counter(p.name.split("-", 1)[0] for p in files
                       if p.is_file() and not p.name.startswith(".")
                       and p.parent.name != "keys")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsyncCluster]:
    root = tmp_path_factory.mktemp("walasync") / "repo"
    os.environ["MARKETOPS_TEST_BACKUP_KEY"] = KEY
    write_project(root, {"marketops.yaml": SETTINGS, "schema/shop.yaml": None,
                         "definitions/reports/revenue.yaml": None,
                         "definitions/backups/nightly.yaml": None,
                         "definitions/backups/base.yaml": BASE_TIER,
                         "definitions/backups/wal.yaml": ASYNC_WAL_TIER})
    server = EmbeddedServer(root / "var" / "pg", free_port(), "postgres")
    os.environ["MARKETOPS_TEST_ASYNC_DSN"] = server.dsn("postgres")
    server.start()
    project = AsyncCluster(root, server)
    # What `marketops wal-setup --apply` does for the embedded server: compile the settings
    # the fast path reads, open the repository, destination and spool to the server's user,
    # set archiving up.
    assert compile_archive_config(root, project.result)
    prepare_archive_access(root, project.result)
    if configure_archiving(project.dsn, wal_settings(root, project.result)):
        server.stop()
        server.start()
    project.sql("create table marks (id bigint primary key, note text)")
    project.sql("create sequence ids")
    project.wait_archived(project.switch_and_wait())
    try:
        yield project
    finally:
        server.stop()
        pid = project.pusher_pid()
        if pid is not None:  # the pusher this module's server started, if still idling
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_a_burst_is_archived_by_the_pusher_and_verifies(cluster: AsyncCluster) -> None:
    closed = cluster.burst(12)
    cluster.wait_archived(closed[-1])
    stored = cluster.stored()
    for name in closed:
        assert stored[name] == 1, (name, stored[name])
    log = cluster.log()
    for name in closed:  # stored by the pusher, not by archive_command itself
        assert f"{name}: stored" in log, log[-1500:]
    assert "not stored" not in log
    problems, checked = verify_wal_archive(cluster.root, cluster.result, "wal")
    assert problems == [], problems
    assert any("re-read, each matches the checksum" in c for c in checked), checked


def test_status_shows_the_queue(cluster: AsyncCluster) -> None:
    cluster.wait_archived(cluster.burst(1)[-1])  # a switch needs WAL written since the last
    env = {**os.environ, "MARKETOPS_TEST_ASYNC_DSN": cluster.dsn}
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(cluster.root),
                           "status", "--format", "json"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.stdout, done.stderr
    wal = next(s for s in json.loads(done.stdout) if s["job"] == "backup/wal")
    queue = wal["backup"]["queue"]
    assert queue["ready"] == 0 and queue["errors"] == []
    assert queue["stored_ahead"] == 0  # the server has acknowledged everything stored
    text = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(cluster.root),
                           "status"], capture_output=True, text=True, env=env, timeout=120)
    line = next(x for x in text.stdout.splitlines() if "async queue:" in x)
    assert re.fullmatch(r"  async queue: 0 ready, 0 stored ahead, pusher (running \(pid "
                        r"\d+\)|not running \(the next archive_command starts it\))", line)



def test_a_killed_pusher_is_started_again_and_nothing_is_lost_or_doubled(
        cluster: AsyncCluster) -> None:
    first = str(cluster.sql("select pg_walfile_name(pg_current_wal_lsn())")[0][0])
    made: dict[str, list[str]] = {}
    writer = threading.Thread(target=lambda: made.update(closed=cluster.burst(16, rows=4000)))
    writer.start()
    # SIGKILL the pusher as soon as it has stored the burst's first segment: the rest of the
    # burst is still being written.
    deadline = time.monotonic() + 120
    victim = None
    while victim is None and time.monotonic() < deadline:
        if f"{first}: stored" in cluster.log():
            victim = cluster.pusher_pid()
        time.sleep(0.002)
    assert victim is not None, cluster.log()[-1500:]
    os.kill(victim, signal.SIGKILL)
    writer.join()
    closed = made["closed"]
    assert closed[0] == first
    cluster.wait_archived(closed[-1])
    stored = cluster.stored()
    assert {n: stored[n] for n in closed} == dict.fromkeys(closed, 1)
    by = {name: int(pid) for pid, name in
          re.findall(r"\[(\d+)\] (\S+): stored", cluster.log())}  # the last store of each
    after = [n for n in closed if by.get(n) not in (None, victim)]
    assert after, f"no segment of the burst stored after the kill: {cluster.log()[-1500:]}"
    problems, _ = verify_wal_archive(cluster.root, cluster.result, "wal")
    assert problems == [], problems


def test_point_in_time_recovery_from_the_asynchronous_archive(cluster: AsyncCluster,
                                                               tmp_path: Path) -> None:
    cluster.full_backup("base")
    cluster.sql("insert into marks values (-1, 'before the target'), (-2, 'also before')")
    time.sleep(1.1)
    target = datetime.now(UTC)
    time.sleep(1.1)
    cluster.sql("delete from marks where id < 0")
    cluster.sql("insert into marks values (-3, 'after the target')")
    closed = cluster.burst(3)
    cluster.wait_archived(closed[-1])
    restored = restore_point_in_time(cluster.root, cluster.result, "base", tmp_path / "pitr",
                                     target=RecoveryTarget("time", time=target))
    try:
        with connect(restored.dsn) as conn:
            notes = [r[0] for r in conn.execute(
                "select note from marks where id < 0 order by id desc").fetchall()]
        assert notes == ["before the target", "also before"]
    finally:
        EmbeddedServer(tmp_path / "pitr", 1).stop()
