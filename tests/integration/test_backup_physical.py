"""Physical tiers and WAL: base + incremental backups, pg_combinebackup, point-in-time
recovery through `marketops wal-fetch`, archiving through `marketops wal-push`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest

from engine.app.tiers.backup import take_backup
from engine.app.tiers.restore import restore_point_in_time
from engine.app.tiers.wal import configure_archiving, wal_settings
from engine.backups.manifest import Manifest
from engine.backups.pitr import RecoveryTarget
from engine.scheduling.jobs import Job, jobs
from engine.validation.validate import ValidationResult, validate
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect
from runners.postgres.embedded import EmbeddedServer, embedded_bin_dir
from runners.storage.stores import Store
from tests.helpers import write_project

KEY = str(pyrage.x25519.Identity.generate())

SETTINGS = """\
destinations:
  backups: {url: "file://./var/backups"}
keys:
  k1: ${MARKETOPS_TEST_BACKUP_KEY}
"""
BASE_TIER = """\
title: Base backups, incremental
owner: dba@corp.example
kind: physical_base
cron: "30 2 * * *"
destination: backups
encryption: {key: k1}
incremental: true
full_every: 7d
retention: {keep_last: 20}
rpo: 25h
rto: 2h
"""
WAL_TIER = """\
title: WAL archive
owner: dba@corp.example
kind: wal_archive
destination: backups
base_tier: base
encryption: {key: k1}
pitr_window: 7d
archive_timeout: 60s
retention: {max_age: 9d}
rpo: 5min
rto: 2h
"""


DRILL_TIER = """\
title: Drill of the base backups with WAL replay
owner: dba@corp.example
kind: restore_drill
cron: "0 4 * * 6"
tiers: [base]
"""


class Cluster:
    """A project whose primary is its own embedded server, archiving through marketops."""

    def __init__(self, root: Path, server: EmbeddedServer) -> None:
        self.root = root
        self.server = server
        self.result: ValidationResult = validate(root)
        assert self.result.passed(), [f.message for f in self.result.errors]

    @property
    def dsn(self) -> str:
        return self.server.dsn("postgres")

    def job(self, name: str) -> object:
        return jobs(self.result.project)[f"backup/{name}"]

    def full_backup(self, name: str = "base") -> Manifest:
        """A full base backup, a chain of its own whatever the tests before it took."""
        job = self.job(name)
        tier = job.tier  # type: ignore[attr-defined]
        full_job = replace(job, tier=tier.model_copy(update={"incremental": False}))  # type: ignore[type-var]
        manifest = take_backup(self.root, self.result, full_job, self.dsn)
        assert manifest.backup_type == "full"
        return manifest

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        with connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    def switch_and_wait(self) -> str:
        """Close the current segment and wait until the archiver stored it."""
        segment = str(self.sql("select pg_walfile_name(pg_switch_wal())")[0][0])
        deadline = time.monotonic() + 180  # each push starts a Python process; slow under load
        while time.monotonic() < deadline:
            row = self.sql("select last_archived_wal, last_failed_wal from pg_stat_archiver")[0]
            if row[0] is not None and str(row[0]) >= segment:
                return segment
            time.sleep(0.2)
        log = self.server.log_file.read_text(errors="replace")[-2000:]
        raise AssertionError(f"{segment} was not archived; server log:\n{log}")


@contextmanager
def archiving_cluster(root: Path, key: str, tiers: dict[str, str]) -> Iterator[Cluster]:
    """A project under `root` with the base and WAL tiers (and `tiers`, file -> YAML), its
    own server archiving through marketops, and a `marks` table; stopped afterwards."""
    from engine.app.tiers.wal import prepare_archive_access

    os.environ["MARKETOPS_TEST_BACKUP_KEY"] = key  # the server (and archive_command) inherit it
    write_project(root, {"marketops.yaml": SETTINGS, "schema/shop.yaml": None,
                         "definitions/reports/revenue.yaml": None,
                         "definitions/backups/nightly.yaml": None,
                         "definitions/backups/base.yaml": BASE_TIER,
                         "definitions/backups/wal.yaml": WAL_TIER, **tiers})
    server = EmbeddedServer(root / "var" / "pg", free_port(), "postgres")
    server.start()
    project = Cluster(root, server)
    prepare_archive_access(root, project.result)
    if configure_archiving(project.dsn, wal_settings(root, project.result)):
        server.stop()
        server.start()
    project.sql("create table marks (id int primary key, note text)")
    project.switch_and_wait()
    try:
        yield project
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with archiving_cluster(tmp_path_factory.mktemp("physical") / "repo", KEY,
                           {"definitions/backups/drill.yaml": DRILL_TIER}) as project:
        yield project


def _dumpall(dsn: str) -> str:
    done = subprocess.run([str(embedded_bin_dir() / "pg_dumpall"), "--dbname", dsn,
                           "--restrict-key=marketops"], capture_output=True, text=True,
                          check=True)
    return done.stdout


def test_full_plus_incremental_equals_a_full_backup_of_the_same_point(
        cluster: Cluster, tmp_path: Path) -> None:
    full = take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("insert into marks select g, 'row ' || g from generate_series(1, 5000) g")
    incremental = take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    assert incremental.backup_type == "incremental" and incremental.parent_id == full.backup_id
    assert incremental.stored_bytes < full.stored_bytes
    # With summarize_wal, the incremental holds only changed blocks; combined, it must be
    # indistinguishable from a new full backup of the same state.
    cluster.sql("checkpoint")
    from engine.app.tiers.backup import catalog_of

    combined = restore_point_in_time(cluster.root, cluster.result, "base", tmp_path / "combined",
                                     backup_id=incremental.backup_id)
    assert combined.chain == [full.backup_id, incremental.backup_id]
    try:
        chained = _dumpall(combined.dsn)
    finally:
        EmbeddedServer(tmp_path / "combined", 1).stop()
    # A second full of the very same state, from a chain that starts anew.
    from dataclasses import replace


    job: Job = cluster.job("base")  # type: ignore[assignment]
    assert job.tier is not None
    full_job = replace(job, tier=job.tier.model_copy(update={"incremental": False}))
    second = take_backup(cluster.root, cluster.result, full_job, cluster.dsn)
    assert second.backup_type == "full"
    alone = restore_point_in_time(cluster.root, cluster.result, "base", tmp_path / "alone",
                                  backup_id=second.backup_id)
    try:
        assert _dumpall(alone.dsn) == chained
        assert "row 5000" in chained
    finally:
        EmbeddedServer(tmp_path / "alone", 1).stop()
    assert len(catalog_of(cluster.root, cluster.result, "base").complete) >= 3


def test_point_in_time_recovery_before_and_after_a_delete(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    time.sleep(1.1)
    cluster.sql("insert into marks values (900001, 'marker a'), (900002, 'marker b')")
    t1 = datetime.now(UTC)
    time.sleep(1.1)
    between = datetime.now(UTC)
    time.sleep(1.1)
    cluster.sql("delete from marks where id > 900000")
    time.sleep(1.1)
    after = datetime.now(UTC)
    cluster.sql("insert into marks values (900003, 'after the delete')")  # a commit past T2
    cluster.switch_and_wait()
    assert t1 < between < after

    early = restore_point_in_time(cluster.root, cluster.result, "base", tmp_path / "early",
                                  target=RecoveryTarget("time", time=between))
    try:
        with connect(early.dsn.replace("/postgres", "/postgres")) as conn:
            found = conn.execute("select note from marks where id > 900000 order by id").fetchall()
        assert [r[0] for r in found] == ["marker a", "marker b"]
        assert early.recovered_to is not None
    finally:
        EmbeddedServer(tmp_path / "early", 1).stop()

    late = restore_point_in_time(cluster.root, cluster.result, "base", tmp_path / "late",
                                 target=RecoveryTarget("time", time=after))
    try:
        with connect(late.dsn) as conn:
            found = conn.execute("select count(*) from marks where id in (900001, 900002)"
                                 ).fetchone()
        assert found is not None and found[0] == 0
    finally:
        EmbeddedServer(tmp_path / "late", 1).stop()


def _cli(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_wal_push_is_idempotent_and_refuses_a_different_file(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    name = "0000000A0000000000000001"  # timeline 10: never used by the cluster itself
    segment = tmp_path / name
    segment.write_bytes(os.urandom(4096) * 16)
    assert _cli(cluster.root, "wal-push", str(segment)).returncode == 0
    again = _cli(cluster.root, "wal-push", str(segment))
    assert again.returncode == 0, again.stderr
    segment.write_bytes(os.urandom(4096) * 16)
    refused = _cli(cluster.root, "wal-push", str(segment))
    assert refused.returncode == 1
    assert "different file of that name is already archived" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_wal_fetch_tells_missing_from_broken(cluster: Cluster, tmp_path: Path) -> None:
    name = "0000000B0000000000000001"
    segment = tmp_path / name
    segment.write_bytes(os.urandom(1 << 16))
    assert _cli(cluster.root, "wal-push", str(segment)).returncode == 0
    fetched = _cli(cluster.root, "wal-fetch", name, "RESTORED", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "RESTORED").read_bytes() == segment.read_bytes()
    missing = _cli(cluster.root, "wal-fetch", "0000000B0000000000000002", "X", cwd=tmp_path)
    assert missing.returncode == 1 and not (tmp_path / "X").exists()
    stored = next((cluster.root / "var" / "backups" / "wal").rglob(f"{name}-*"))
    data = bytearray(stored.read_bytes())
    data[-100] ^= 0xFF
    stored.write_bytes(bytes(data))
    broken = _cli(cluster.root, "wal-fetch", name, "Y", cwd=tmp_path)
    assert broken.returncode == 255, broken.stderr
    assert "damaged" in broken.stderr and not (tmp_path / "Y").exists()


def test_drill_replays_the_archive_and_a_removed_segment_is_named(cluster: Cluster) -> None:
    from engine.app.executor import run_backup
    from engine.app.health import freshness
    from engine.app.inventory import verify_tier

    take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("insert into marks values (777001, 'for the drill')")
    cluster.switch_and_wait()
    cluster.sql("insert into marks values (777002, 'next segment')")
    last = cluster.switch_and_wait()
    outputs = run_backup(cluster.root, cluster.result, cluster.job("drill"), cluster.dsn)
    drilled = outputs["tiers"]["base"]
    assert drilled["problems"] == [] and drilled["within_rto"] and drilled["seconds"] > 0
    assert freshness(cluster.root, cluster.result, cluster.dsn)["wal"].problem is None

    # Take one archived segment away (one the latest base backup needs for PITR).
    from engine.backups.walnames import parse_segment

    gone = parse_segment(last).number - 1
    victim = next(p for p in (cluster.root / "var" / "backups" / "wal").rglob("*")
                  if p.is_file() and p.name[:24].isalnum() and len(p.name) > 24
                  and p.name[:24] != last and parse_segment(p.name[:24]).number == gone)
    name = victim.name[:24]
    held = victim.with_name("held")
    victim.rename(held)
    try:
        problems, _ = verify_tier(cluster.root, cluster.result, "wal")
        assert any(name in p and "gap" in p for p in problems), problems
        status = freshness(cluster.root, cluster.result, cluster.dsn)["wal"]
        assert status.problem is not None and name in status.problem
        from engine.errors import BackupError

        with pytest.raises(BackupError, match=name):
            run_backup(cluster.root, cluster.result, cluster.job("drill"), cluster.dsn)
    finally:
        held.rename(victim)


def test_wal_check_alerts_once_when_a_gap_appears(cluster: Cluster) -> None:
    from datetime import timedelta

    from engine.app.alerting import FailureAlerter
    from engine.app.executor import JobDispatcher
    from engine.definitions.models.settings import Smtp
    from engine.runs.execution import execute_run
    from engine.runs.ledger import Ledger
    from tests.mailbox import smtp_server

    port = free_port()
    settings = cluster.result.project.settings.model_copy(update={"smtp": Smtp(
        host="127.0.0.1", port=port, starttls=False, sender="marketops@corp.example")})
    from dataclasses import replace as dc_replace

    defs = ValidationResult(dc_replace(cluster.result.project, settings=settings), [])
    ledger = Ledger(lambda: connect(cluster.dsn, autocommit=True))
    ledger.migrate()
    executor = JobDispatcher(cluster.root, defs, cluster.dsn, ledger, primary_dsn=cluster.dsn)
    job = jobs(defs.project)["backup/wal"]
    assert job.schedule is not None  # WAL slots are health checks
    take_backup(cluster.root, defs, job_for(defs, "base"), cluster.dsn)
    last = cluster.switch_and_wait()
    cluster.sql("insert into marks values (888001, 'x')")
    cluster.switch_and_wait()
    from engine.backups.walnames import parse_segment

    victim = next(p for p in (cluster.root / "var" / "backups" / "wal").rglob(f"{last}-*"))
    assert parse_segment(last)
    held = victim.with_name("held-aside")

    def check(minute: int) -> str:
        slot = datetime(2030, 1, 1, 0, minute, tzinfo=UTC)
        run = ledger.claim(job.id, slot, "w", timedelta(seconds=60), job.definition_hash,
                           None)
        assert run is not None
        return execute_run(ledger, executor, job, run, "w", timedelta(seconds=60),
                           FailureAlerter(defs, ledger)).status

    with smtp_server(port) as mails:
        assert check(0) == "succeeded"
        victim.rename(held)
        try:
            assert check(5) == "failed"
            assert check(10) == "failed"  # same problem: no second alert
        finally:
            held.rename(victim)
        assert check(15) == "succeeded"
    assert len(mails) == 1, [m[1]["Subject"] for m in mails]
    assert last in mails[0][1].get_payload()


def job_for(defs: ValidationResult, name: str) -> Job:
    return jobs(defs.project)[f"backup/{name}"]


def test_a_broken_report_does_not_stop_wal_archiving(cluster: Cluster, tmp_path: Path) -> None:
    broken = cluster.root / "definitions" / "reports" / "broken.yaml"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("title: [unclosed\n")
    segment = tmp_path / "0000000C0000000000000001"
    segment.write_bytes(os.urandom(1 << 14))
    try:
        pushed = _cli(cluster.root, "wal-push", str(segment))
        assert pushed.returncode == 0, pushed.stderr
        settings = cluster.root / "marketops.yaml"
        saved = settings.read_text()
        settings.write_text(saved + "unknown_setting: 1\n")
        try:
            refused = _cli(cluster.root, "wal-push", str(segment))
        finally:
            settings.write_text(saved)
        assert refused.returncode == 2 and "marketops.yaml:" in refused.stderr
    finally:
        broken.unlink()


def test_an_incremental_tier_says_what_the_server_must_change(cluster: Cluster) -> None:
    from engine.errors import BackupError

    take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("alter system set summarize_wal = off")
    cluster.sql("select pg_reload_conf()")
    time.sleep(0.5)
    try:
        with pytest.raises(BackupError, match="set summarize_wal = on for incremental backups"):
            take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    finally:
        cluster.sql("alter system reset summarize_wal")
        cluster.sql("select pg_reload_conf()")
        time.sleep(0.5)


def test_a_base_backup_starts_on_its_own_wal_without_the_archive(cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    """PostgreSQL 18 tools store the copy as base.tar + pg_wal.tar; the WAL streamed during
    the backup alone must make the restored copy consistent (no restore_command)."""
    from engine.app.tiers.backup import tier_of, tier_store
    from runners.backup.physical import restore_chain
    from runners.postgres.recovery import start_restored
    from runners.postgres.toolset import discover
    from runners.storage.catalog import read_catalog

    cluster.sql("insert into marks select g, 'own wal ' || g from generate_series(9001, 9100) g")
    job: Job = cluster.job("base")  # type: ignore[assignment]
    assert job.tier is not None
    from dataclasses import replace

    full_job = replace(job, tier=job.tier.model_copy(update={"incremental": False}))
    manifest = take_backup(cluster.root, cluster.result, full_job, cluster.dsn)
    stored = tier_store(cluster.root, cluster.result, tier_of(cluster.result, "base"))
    backup = next(m for m in read_catalog(stored, "base").complete
                  if m.backup_id == manifest.backup_id)
    assert sorted(f.name for f in backup.files) == [
        "backup_manifest.zst.age", "base.tar.zst.age", "pg_wal.tar.zst.age"]
    target = tmp_path / "own-wal"
    restore_chain(stored, [backup], target, key=KEY, toolset=discover(embedded_bin_dir()),
                  staging=tmp_path / "staging")
    assert (target / "backup_manifest").is_file() and any((target / "pg_wal").glob("0000*"))
    recovered = start_restored(target, free_port(), "postgres")
    try:
        with connect(recovered.server.dsn("postgres")) as conn:
            count = conn.execute("select count(*) from marks where note like 'own wal %'"
                                 ).fetchone()
        assert count == (100,)
    finally:
        recovered.server.stop()


def test_a_base_backup_stored_as_it_is_is_moved_in_whole(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    """Uncompressed and unencrypted on a local destination, base.tar is hashed as it is
    written and moved in after pg_verifybackup: the stored file checks and restores."""
    from runners.backup.physical import PhysicalRequest, backup_physical
    from runners.postgres.toolset import discover
    from runners.storage.sealing import Sealing
    from runners.storage.stores import Store, StoreSpec
    from runners.storage.verify import verify_backup

    tools = discover(embedded_bin_dir())
    store = Store(StoreSpec("plain", f"file://{tmp_path / 'dest'}"))
    staging = tmp_path / "staging"
    manifest = backup_physical(PhysicalRequest("plainbase", cluster.dsn, tools, store,
                                               Sealing("none", 0), staging))
    assert sorted(f.name for f in manifest.files) == ["backup_manifest", "base.tar",
                                                     "pg_wal.tar"]
    assert verify_backup(store, manifest) == []
    assert not list(staging.rglob("base.tar"))  # moved, nothing left behind
    _assert_restores_marks(cluster, store, manifest, None, tmp_path)


@pytest.mark.parametrize("key", [None, KEY], ids=["as-is", "encrypted"])
def test_pg_basebackup_compresses_itself_when_it_and_the_verifier_can(
        cluster: Cluster, tmp_path: Path, key: str | None) -> None:
    """The wheel has gzip in pg_basebackup and in pg_verifybackup: a gzip tier stores the
    tool's own base.tar.gz (encrypted when the tier is), verified, and it restores."""
    from runners.backup.physical import PhysicalRequest, backup_physical
    from runners.postgres.toolset import discover
    from runners.storage.sealing import Sealing
    from runners.storage.stores import Store, StoreSpec
    from runners.storage.verify import verify_backup

    tools = discover(embedded_bin_dir())
    store = Store(StoreSpec("gz", f"file://{tmp_path / 'dest'}"))
    staging = tmp_path / "staging"
    sealing = Sealing("gzip", 1, key_name="k1" if key else None, key=key)
    manifest = backup_physical(PhysicalRequest("gzbase", cluster.dsn, tools, store, sealing,
                                               staging))
    suffix = ".age" if key else ""
    assert sorted(f.name for f in manifest.files) == [
        f"backup_manifest{suffix}", f"base.tar.gz{suffix}", f"pg_wal.tar.gz{suffix}"]
    assert manifest.codec == "none" and manifest.details["tar_compression"] == "gzip"
    assert manifest.details["verified"] is True
    data = next(f for f in manifest.files if f.name.startswith("base."))
    if key is None:
        assert (tmp_path / "dest" / "gzbase" / manifest.backup_id / data.name
                ).read_bytes()[:2] == b"\x1f\x8b"  # gzip, as pg_basebackup wrote it
    assert verify_backup(store, manifest) == []
    _assert_restores_marks(cluster, store, manifest, key, tmp_path)


def _assert_restores_marks(cluster: Cluster, store: Store, manifest: Manifest,
                           key: str | None, tmp_path: Path) -> None:
    """Restore one base backup, start it, and compare the marks table with the cluster's."""
    from runners.backup.physical import restore_chain
    from runners.postgres.recovery import start_restored
    from runners.postgres.toolset import discover

    target = tmp_path / "restored"
    restore_chain(store, [manifest], target, key=key, toolset=discover(embedded_bin_dir()),
                  staging=tmp_path / "staging")
    recovered = start_restored(target, free_port(), "postgres")
    try:
        with connect(recovered.server.dsn("postgres")) as conn:
            restored = conn.execute("select count(*), sum(id) from marks").fetchone()
        assert restored == tuple(cluster.sql("select count(*), sum(id) from marks")[0])
    finally:
        recovered.server.stop()
