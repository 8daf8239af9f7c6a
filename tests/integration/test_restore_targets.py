"""`marketops restore` of a physical tier through the CLI, as a DBA would run it after a
crash: to the end of the archive by default, to a restore point made with `marketops mark`,
to a time, to the end of the base backup; a missing or damaged archived segment is named
before recovery starts, a recovery that ends short of its target is one line, and the
--into directory is gone afterwards (unless --keep-on-failure)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.app.tiers.backup import take_backup
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect
from runners.postgres.embedded import EmbeddedServer
from tests.integration.test_backup_physical import (
    KEY,
    Cluster,
    archiving_cluster,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with archiving_cluster(tmp_path_factory.mktemp("targets") / "repo", KEY,
                           {}) as project:
        yield project


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(cluster.root),
                           *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "MARKETOPS_DSN": cluster.dsn})


def write(cluster: Cluster, first: int, last: int, note: str) -> None:
    cluster.sql(f"insert into marks select g, '{note}' from generate_series({first}, {last}) g")


def base_backup(cluster: Cluster) -> None:
    take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)  # type: ignore[arg-type]


def restored_ids(into: Path, done: subprocess.CompletedProcess[str]) -> list[int]:
    """The marker rows in the server the restore left running (stopped afterwards)."""
    assert done.returncode == 0, done.stderr
    dsn = next(line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
               if line.startswith("server running:"))
    try:
        with connect(dsn) as conn:
            return [int(r[0]) for r in conn.execute("select id from marks order by id")]
    finally:
        EmbeddedServer(into, 1).stop()


def archived(cluster: Cluster, name: str) -> Path:
    return next((cluster.root / "var" / "backups" / "wal").rglob(f"{name}-*"))


def one_clean_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one `error:` line of a failed command that exited with `code` (README's table:
    1 failed, 2 a usage or definition error, 3 damaged backup, 4 unreachable)."""
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_restore_without_a_target_returns_every_committed_row(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    write(cluster, 1, 3, "before the backup")
    base_backup(cluster)
    write(cluster, 4, 6, "after the backup")
    cluster.switch_and_wait()
    write(cluster, 7, 9, "in the next segment")
    cluster.switch_and_wait()
    expected = [r[0] for r in cluster.sql("select id from marks order by id")]
    into = tmp_path / "latest"
    done = cli(cluster, "restore", "--tier", "base", "--into", str(into))
    ids = restored_ids(into, done)
    assert ids == expected and {3, 4, 9} <= set(ids)
    assert "recovered to:   the end of the archive" in done.stdout
    assert "each matches its checksum" in done.stdout


def test_target_immediate_gives_the_base_backup_contents(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    write(cluster, 101, 103, "in the backup")
    base_backup(cluster)
    expected = [r[0] for r in cluster.sql("select id from marks order by id")]
    write(cluster, 104, 106, "after the backup")
    cluster.switch_and_wait()
    into = tmp_path / "immediate"
    done = cli(cluster, "restore", "--tier", "base", "--target", "immediate", "--into",
               str(into))
    assert restored_ids(into, done) == expected
    assert "recovered to:   the end of the base backup" in done.stdout


def test_a_named_mark_returns_the_rows_before_it_only(cluster: Cluster, tmp_path: Path) -> None:
    write(cluster, 201, 203, "before the backup")
    base_backup(cluster)
    write(cluster, 204, 206, "before the mark")
    expected = [r[0] for r in cluster.sql("select id from marks order by id")]
    marked = cli(cluster, "mark", "before-207")
    assert marked.returncode == 0, marked.stderr
    assert "restore point 'before-207' at LSN" in marked.stdout
    again = cli(cluster, "mark", "before-207")
    assert "exists already" in one_clean_line(again, code=2)
    write(cluster, 207, 209, "after the mark")
    cluster.switch_and_wait()
    into = tmp_path / "named"
    done = cli(cluster, "restore", "--tier", "base", "--target-name", "before-207", "--into",
               str(into))
    assert restored_ids(into, done) == expected
    assert "stopped at restore point 'before-207'" in done.stdout
    lsn = marked.stdout.split("at LSN ", 1)[1].split()[0]
    into = tmp_path / "lsn"
    done = cli(cluster, "restore", "--tier", "base", "--target-lsn", lsn, "--into", str(into))
    assert restored_ids(into, done) == expected
    assert f"stopped at LSN {lsn}" in done.stdout
    unknown = cli(cluster, "restore", "--tier", "base", "--target-name", "nope", "--into",
                  str(tmp_path / "unknown"))
    assert "no restore point 'nope'" in one_clean_line(unknown)
    assert "before-207" in unknown.stderr and not (tmp_path / "unknown").exists()


def test_a_target_time_across_a_deleted_segment_names_it_and_leaves_nothing(
        cluster: Cluster, tmp_path: Path) -> None:
    base_backup(cluster)
    write(cluster, 301, 301, "first")
    cluster.switch_and_wait()
    write(cluster, 302, 302, "second")
    gone = cluster.switch_and_wait()
    time.sleep(1.1)
    target = datetime.now(UTC)
    time.sleep(1.1)
    write(cluster, 303, 303, "third")
    cluster.switch_and_wait()
    victim = archived(cluster, gone)
    held = victim.with_name("held-aside")
    victim.rename(held)
    into = tmp_path / "across"
    try:
        done = cli(cluster, "restore", "--tier", "base", "--target-time", target.isoformat(),
                   "--into", str(into))
    finally:
        held.rename(victim)
    line = one_clean_line(done)
    assert f"WAL segment {gone} is missing" in line and "nothing was restored" in line
    assert not into.exists()
    # With the segment back, the same restore reaches the target.
    done = cli(cluster, "restore", "--tier", "base", "--target-time", target.isoformat(),
               "--into", str(into))
    ids = restored_ids(into, done)
    assert 302 in ids and 303 not in ids


def test_a_flipped_byte_in_an_archived_segment_is_named_before_recovery(
        cluster: Cluster, tmp_path: Path) -> None:
    base_backup(cluster)
    write(cluster, 401, 401, "in the damaged segment")
    damaged = cluster.switch_and_wait()
    write(cluster, 402, 402, "later")
    cluster.switch_and_wait()
    stored = archived(cluster, damaged)
    saved = stored.read_bytes()
    broken = bytearray(saved)
    broken[len(broken) // 2] ^= 0x01
    stored.write_bytes(bytes(broken))
    into = tmp_path / "damaged"
    try:
        done = cli(cluster, "restore", "--tier", "base", "--into", str(into))
    finally:
        stored.write_bytes(saved)
    line = one_clean_line(done)
    assert f"WAL segment {damaged} in wal is damaged" in line and "nothing was restored" in line
    assert not into.exists()


def test_a_target_past_the_end_of_the_archive_is_one_line(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    base_backup(cluster)
    write(cluster, 501, 501, "archived")
    last = cluster.switch_and_wait()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    into = tmp_path / "future"
    done = cli(cluster, "restore", "--tier", "base", "--target-time", future, "--into",
               str(into))
    line = one_clean_line(done)
    assert f"failed: the archive ends at {last}" in line and "--target latest" in line
    assert f"removed {into}" in line and not into.exists()
    kept = cli(cluster, "restore", "--tier", "base", "--target-time", future, "--into",
               str(into), "--keep-on-failure")
    assert f"kept {into}" in one_clean_line(kept)
    assert (into / "PG_VERSION").exists() and not EmbeddedServer(into, 1).is_running()


def test_a_target_of_now_is_one_line_naming_the_end_of_the_archive(cluster: Cluster,
                                                                    tmp_path: Path) -> None:
    # "now" is later than anything archived: recovery stops short of it, as PostgreSQL
    # refuses to promote then; the DBA is told where the archive ends and what to ask for.
    base_backup(cluster)
    write(cluster, 601, 601, "archived")
    last = cluster.switch_and_wait()
    into = tmp_path / "now"
    done = cli(cluster, "restore", "--tier", "base", "--target-time", "now", "--into",
               str(into))
    line = one_clean_line(done)
    assert f"the archive ends at {last}" in line and "--target latest" in line
    assert not into.exists()


def test_mark_refuses_a_primary_that_does_not_archive(cluster: Cluster, tmp_path: Path) -> None:
    plain = EmbeddedServer(tmp_path / "plain", free_port(), "postgres")
    plain.start()
    try:
        done = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(cluster.root),
                               "mark", "never", "--dsn", plain.dsn("postgres")],
                              capture_output=True, text=True, timeout=120)
        assert "archive_mode is off on the primary" in one_clean_line(done)
        assert not list((cluster.root / "var" / "backups").rglob("never.json"))
    finally:
        plain.stop()
