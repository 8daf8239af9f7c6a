"""What killed and failed runs leave behind, through the CLI: plaintext in staging, a dead
worker's lease, a half-made restore database; and the `backups` listing scripts read."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

from engine.app.tiers.backup import take_backup
from engine.errors import BackupError
from runners.postgres.connection import connect, database_name, query
from tests.integration.conftest import copy_repository
from tests.integration.test_backup_physical import KEY as KEY_PHYSICAL
from tests.integration.test_backup_physical import Cluster, cluster

__all__ = ["cluster"]  # the physical tests' archiving cluster, shared as a fixture

KEY = str(pyrage.x25519.Identity.generate())
MARKER = "plaintext-marker-7f3a"  # a value that must never sit unencrypted on disk


@pytest.fixture
def root(tmp_path: Path, repo_root: Path) -> Path:
    return copy_repository(repo_root, tmp_path / "repo", "TEST_PRIMARY_DSN")


@pytest.fixture
def env(market_dsn: str) -> Iterator[dict[str, str]]:
    yield {**os.environ, "TEST_PRIMARY_DSN": market_dsn, "MARKETOPS_BACKUP_KEY": KEY}


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=300)


def _plaintext(staging: Path) -> list[Path]:
    """Files under staging holding the marker in the clear."""
    found = []
    for path in staging.rglob("*") if staging.exists() else []:
        try:
            if path.is_file() and MARKER.encode() in path.read_bytes():
                found.append(path)
        except FileNotFoundError:
            continue
    return found


def _kill_mid_dump(root: Path, env: dict[str, str], market_dsn: str) -> int:
    """Start `run backup/nightly_full`, SIGKILL it while pg_dump writes; its pid."""
    with connect(market_dsn, autocommit=True) as conn:  # enough rows to be caught mid-dump
        conn.execute("create table admin.bulk as select g as id, %s || (select string_agg("
                     "md5(random()::text || g || i), '') from generate_series(1, 30) i) as "
                     "body from generate_series(1, 60000) g", (MARKER,))
    staging = root / "var" / "staging"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(root), "run",
                             "backup/nightly_full"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _plaintext(staging):  # pg_dump is writing
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return proc.pid


def _processes(name: str) -> list[list[str]]:
    """The command lines of this host's processes called `name`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == name:
                found.append((entry / "cmdline").read_text().split("\0"))
        except OSError:
            continue
    return found


def _gone_soon(staging: Path, pid: int) -> list[str]:
    """What is left under staging by the killed `pid`, once its watcher had a few seconds."""
    deadline = time.monotonic() + 15
    left = [p.name for p in staging.iterdir() if f".{pid}@" in p.name]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p.name for p in staging.iterdir() if f".{pid}@" in p.name]
    return left


def _dead_runs_staging(staging: Path) -> Path:
    """A staging directory with plaintext, named after a process of this host that is gone:
    what a run leaves when even its watcher could not clean up (the machine went down)."""
    from engine.runs.liveness import staging_name
    from runners.service.processes import host_name

    dead = staging / (staging_name("nightly_full/z", 2 ** 22 + 19, host_name(), 5) + "c")
    dead.mkdir(parents=True)
    (dead / "4321.dat").write_text(MARKER)
    return dead


def test_a_killed_encrypted_backup_leaves_no_plaintext_and_can_be_rerun_at_once(
        root: Path, env: dict[str, str], market_dsn: str) -> None:
    staging = root / "var" / "staging"
    pid = _kill_mid_dump(root, env, market_dsn)
    # Its watcher removes the killed run's staging and kills its pg_dump: the plaintext
    # does not outlive the run.
    assert _gone_soon(staging, pid) == []
    assert _plaintext(staging) == []
    assert not [p for p in _processes("pg_dump") if str(root) in " ".join(p)]

    # What a run leaves when even the watcher could not clean up (the machine went down)
    # is cleared by the next run of another tier.
    _dead_runs_staging(staging)
    other = _cli(root, env, "run", "backup/users_schema")
    assert other.returncode == 0, other.stdout + other.stderr
    assert _plaintext(staging) == []
    assert [p.name for p in staging.iterdir()] == []

    # The dead worker's lease (60 s) is not waited out: the slot is taken over now.
    started = time.monotonic()
    again = _cli(root, env, "run", "backup/nightly_full")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "running right now elsewhere" not in again.stderr
    assert time.monotonic() - started < 50
    with connect(market_dsn) as conn:
        notes = query(conn, "select notes, attempt, status from marketops.runs where job = "
                      "'backup/nightly_full'")
    assert len(notes) == 1 and f":{pid} died" in notes[0][0] and notes[0][1:] == (
        2, "succeeded")
    assert _plaintext(staging) == []


def test_a_live_runs_staging_is_left_alone(root: Path, env: dict[str, str]) -> None:
    from engine.runs.liveness import staging_name
    from runners.service.processes import host_name

    staging = root / "var" / "staging"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live = staging / (staging_name("nightly_full/x", sleeper.pid, host_name(), None) + "a")
        dead = staging / (staging_name("nightly_full/y", 2 ** 22 + 17, host_name(), None) + "b")
        foreign = staging / "someone-elses-dir"
        for directory in (live, dead, foreign):
            directory.mkdir(parents=True)
            (directory / "1234.dat").write_text(MARKER)
        done = _cli(root, env, "run", "backup/users_schema")
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(p.name for p in staging.iterdir()) == sorted([live.name, foreign.name])
    finally:
        sleeper.kill()
        sleeper.wait()
    _cli(root, env, "run", "backup/users_schema")
    assert [p.name for p in staging.iterdir()] == [foreign.name]


def _databases(dsn: str) -> set[str]:
    with connect(dsn) as conn:
        return {str(r[0]) for r in query(conn, "select datname from pg_database")}


def test_a_failed_logical_restore_leaves_no_database_and_says_why(
        root: Path, env: dict[str, str], market_dsn: str) -> None:
    made = _cli(root, env, "run", "backup/users_schema")
    assert made.returncode == 0, made.stdout + made.stderr
    before = _databases(market_dsn)

    def restore(environment: dict[str, str], name: str) -> subprocess.CompletedProcess[str]:
        done = _cli(root, environment, "restore", "--tier", "users_schema", "--into-database",
                    name, "--dsn", market_dsn)
        assert "Traceback" not in done.stderr
        assert _databases(market_dsn) == before, f"{name} was left behind"
        return done

    unset = restore({k: v for k, v in env.items() if k != "MARKETOPS_BACKUP_KEY"}, "r_unset")
    assert unset.returncode == 2 and "MARKETOPS_BACKUP_KEY" in unset.stderr, unset.stderr

    wrong = restore({**env, "MARKETOPS_BACKUP_KEY": str(pyrage.x25519.Identity.generate())},
                    "r_wrong")
    assert wrong.returncode == 2, wrong.stderr
    assert "wrong key" in wrong.stderr and "damaged" not in wrong.stderr

    folder = root / "var" / "backups" / "users_schema"
    backup = next(p for p in folder.iterdir() if p.is_dir())
    victim = max((p for p in backup.iterdir() if p.name.endswith(".age")),
                 key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    victim.write_bytes(bytes(data))
    damaged = restore(env, "r_damaged")
    assert damaged.returncode == 3, damaged.stderr
    assert f"users_schema/{backup.name}/{victim.name}" in damaged.stderr
    assert "damaged" in damaged.stderr and "wrong key" not in damaged.stderr

    # Its header damaged, a file no longer says whom it is for: the fingerprint tells.
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x40
    data[40] ^= 0x01
    victim.write_bytes(bytes(data))
    header = restore(env, "r_header")
    assert header.returncode == 3, header.stderr
    assert "key matches" in header.stderr and victim.name in header.stderr

    # An existing, empty database is left as it was found.
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("create database r_existing")
    before = _databases(market_dsn)
    restore(env, "r_existing")
    assert "r_existing" in _databases(market_dsn)
    assert database_name(market_dsn) in before


def test_backups_lists_every_tier_as_json(root: Path, env: dict[str, str]) -> None:
    for job in ("backup/users_schema", "backup/audit_vault"):
        done = _cli(root, env, "run", job)
        assert done.returncode == 0, done.stdout + done.stderr
    listed = _cli(root, env, "backups", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    tiers = {t["tier"]: t for t in json.loads(listed.stdout)["tiers"]}
    users = tiers["users_schema"]
    assert users["kind"] == "logical_schemas" and users["incomplete"] == []
    (only,) = users["backups"]
    assert only["type"] == "dump" and only["stored_bytes"] > 0 and only["rows"] > 0
    assert only["start"] < only["stop"] and only["encrypted_with"] == "backup-key"
    vault = tiers["audit_vault"]
    assert vault["incomplete"] == [] and vault["chains"][0]["state"] == "intact"
    assert vault["chains"][0]["batches"][0]["seq"] == 1
    text = _cli(root, env, "backups")
    assert "1 incomplete" not in text.stdout and "chain intact" in text.stdout, text.stdout


def test_backups_lists_physical_backups_and_the_recoverable_range(cluster: Cluster) -> None:
    full = take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("insert into marks select g, 'listed ' || g from generate_series(1, 500) g")
    incremental = take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("insert into marks values (700001, 'after the newest base backup')")
    last = cluster.switch_and_wait()
    env = {**os.environ, "MARKETOPS_TEST_BACKUP_KEY": KEY_PHYSICAL}
    listed = _cli(cluster.root, env, "backups", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    tiers = {t["tier"]: t for t in json.loads(listed.stdout)["tiers"]}
    base = {b["backup_id"]: b for b in tiers["base"]["backups"]}
    assert base[full.backup_id]["type"] == "full"
    assert base[incremental.backup_id]["type"] == "incremental"
    assert base[incremental.backup_id]["parent"] == full.backup_id
    newest = base[incremental.backup_id]
    assert newest["start_lsn"] == incremental.details["start_lsn"]
    assert newest["stop_lsn"] == incremental.details["stop_lsn"]
    assert newest["verified"]["how"].startswith("at backup")
    wal = tiers["wal"]["wal"]
    oldest = min(tiers["base"]["backups"], key=lambda b: b["start"])
    assert wal["earliest_recoverable"]["lsn"] == oldest["stop_lsn"]
    latest = wal["latest_recoverable"]
    # To the end of the segment just archived: past the newest backup's end.
    assert latest["what"] == f"end of WAL segment {last}", latest
    assert latest["time"] is not None and latest["time"] >= newest["stop"]
    assert _lsn(latest["lsn"]) > _lsn(newest["stop_lsn"])
    assert wal["gap_after"] is None
    text = _cli(cluster.root, env, "backups")
    assert f"incremental of {full.backup_id}" in text.stdout
    assert "recoverable from" in text.stdout and f"end of WAL segment {last}" in text.stdout


def _lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def test_plan_retention_needs_no_window(root: Path, env: dict[str, str]) -> None:
    made = _cli(root, env, "run", "backup/users_schema")
    assert made.returncode == 0, made.stdout + made.stderr
    planned = _cli(root, env, "plan", "--retention")
    assert planned.returncode == 0, planned.stderr
    # nightly_full keeps 3 months: the longest horizon of this repository's tiers.
    assert "backup/nightly_full: 93 run(s)" in planned.stdout, planned.stdout
    assert "report/" not in planned.stdout
    assert "retention users_schema: keep 1, delete 0" in planned.stdout
    as_json = json.loads(_cli(root, env, "plan", "--retention", "--format", "json").stdout)
    from datetime import datetime

    span = datetime.fromisoformat(as_json["until"]) - datetime.fromisoformat(as_json["from"])
    assert span.days == 93 and as_json["retention"]["users_schema"]["delete"] == {}
    one_day = json.loads(_cli(root, env, "plan", "--format", "json").stdout)
    assert any(s["job"].startswith("report/") for s in one_day["slots"])


def _start_lines(serve: subprocess.Popen[str]) -> list[str]:
    """What `serve` says up to its `serving:` line (or its end): the message of each JSON log
    line on its stderr (a line that is not JSON fails here: all service output is JSON)."""
    assert serve.stderr is not None
    said = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = serve.stderr.readline()
        if not line:
            break
        try:
            message = str(json.loads(line)["message"])
        except ValueError:
            raise AssertionError(f"serve said a line that is not JSON: {line!r}") from None
        said.append(message)
        if message.startswith("serving:"):
            break
    return said


def test_serve_clears_dead_runs_staging_at_start(root: Path, env: dict[str, str]) -> None:
    staging = root / "var" / "staging"
    dead = _dead_runs_staging(staging)
    serve = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(root), "serve",
                              "--port", "0", "--shutdown-grace", "1"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said = _start_lines(serve)
        assert f"removed staging/{dead.name}: left by a run that died" in said, said
        assert not dead.exists()
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)


def test_serve_takes_over_a_killed_run_at_start_without_waiting_out_its_lease(
        root: Path, env: dict[str, str], market_dsn: str) -> None:
    from runners.service.processes import host_name

    pid = _kill_mid_dump(root, env, market_dsn)
    staging = root / "var" / "staging"
    assert _gone_soon(staging, pid) == []
    with connect(market_dsn, autocommit=True) as conn:  # a lease far longer than the test
        conn.execute("update marketops.runs set lease_until = now() + interval '1 hour' "
                     "where job = 'backup/nightly_full'")
    serve = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(root), "serve",
                              "--port", "0", "--shutdown-grace", "30"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        said = _start_lines(serve)
        assert any(line.startswith("backup/nightly_full slot ") and
                   f"worker {host_name()}:{pid} died; taken over now" in line
                   for line in said), said
        assert _plaintext(staging) == []
        rows: list[tuple[object, ...]] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with connect(market_dsn) as conn:
                rows = query(conn, "select status, attempt, notes from marketops.runs "
                             "where job = 'backup/nightly_full'")
            if rows and rows[0][0] != "running":
                break
            time.sleep(1)
        assert len(rows) == 1 and rows[0][:2] == ("succeeded", 2), rows
        assert f":{pid} died" in str(rows[0][2])
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=90)
    assert _plaintext(staging) == []


def test_a_killed_physical_restore_leaves_nothing_in_staging_after_the_next_run(
        cluster: Cluster, tmp_path: Path) -> None:
    from engine.app.executor import run_backup

    take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("insert into marks select g, 'killed restore ' || g from generate_series("
                "900001, 960000) g")
    take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)  # a chain
    staging = cluster.root / "var" / "staging"
    env = {**os.environ, "MARKETOPS_TEST_BACKUP_KEY": KEY_PHYSICAL}
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(cluster.root),
                             "restore", "--tier", "base", "--into", str(tmp_path / "into")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def restoring() -> list[str]:
        names = [p.name for p in staging.iterdir()] if staging.exists() else []
        return [n for n in names if n.startswith("restore-base.")]

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not restoring() and proc.poll() is None:
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()  # caught while unpacking the chain
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert _gone_soon(staging, proc.pid) == []  # its watcher removed the decrypted copy

    # What is left when even the watcher could not run is cleared by the next backup run
    # (of another tier: the drill's).
    from engine.runs.liveness import staging_name
    from runners.service.processes import host_name

    (staging / (staging_name("restore-base", 2 ** 22 + 23, host_name(), None) + "x")).mkdir()
    with contextlib.suppress(BackupError):  # a drill may fail; its clearing came first
        run_backup(cluster.root, cluster.result, cluster.job("drill"), cluster.dsn)
    assert restoring() == []
    assert [n for n in os.listdir(staging) if n.startswith(("restore-", "drill-"))] == []


def test_a_drill_that_fails_offers_no_option_it_lacks(tmp_path: Path) -> None:
    from engine.app.tiers.restore import _discard

    copy = tmp_path / "base-pitr"
    copy.mkdir()
    said = _discard(copy, False, None)  # what a failed drill's message ends with
    assert "--keep-on-failure" not in said and str(copy) in said and not copy.exists()
    copy.mkdir()
    assert "keep it with --keep-on-failure" in _discard(copy, False, False)


def test_a_failed_drill_keeps_its_copies_only_when_asked(cluster: Cluster) -> None:

    from engine.app.executor import run_backup

    full = cluster.full_backup()
    victim = max(full.files, key=lambda f: f.stored_size)
    path = cluster.root / "var" / "backups" / "base" / full.backup_id / victim.name
    saved = path.read_bytes()
    data = bytearray(saved)
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    kept_root = cluster.root / "var" / "kept"
    try:
        with pytest.raises(BackupError) as plain:
            run_backup(cluster.root, cluster.result, cluster.job("drill"), cluster.dsn)
        assert f"base/{full.backup_id}/{victim.name}" in str(plain.value)
        assert not kept_root.exists() or list(kept_root.iterdir()) == []
        with pytest.raises(BackupError) as asked:
            run_backup(cluster.root, cluster.result, cluster.job("drill"), cluster.dsn,
                       keep_on_failure=True)
        kept = [p for p in kept_root.iterdir()]
        assert len(kept) == 1 and f"kept the drill's restored copies in {kept[0]}" in \
            str(asked.value), str(asked.value)
        assert (kept[0] / "base-pitr").is_dir() and any((kept[0] / "base-pitr").iterdir())
        assert "staging" not in str(asked.value)
    finally:
        path.write_bytes(saved)
    staging = cluster.root / "var" / "staging"
    assert [n for n in os.listdir(staging) if n.startswith("drill-")] == []
