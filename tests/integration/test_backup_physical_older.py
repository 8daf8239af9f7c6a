"""Physical tiers with tools older than 18 (Debian's PostgreSQL 15, server and tools):
pg_verifybackup there reads plain copies only, so the tar is verified by the embedded wheel's
(18), and the WAL parsed by 15's own pg_waldump."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.backup.physical import PhysicalRequest, _tar_verifier, backup_physical, restore_chain
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect
from runners.postgres.toolset import discover
from runners.storage.sealing import Sealing
from runners.storage.stores import Store, StoreSpec
from tests.backupcheck import table_fingerprints

PG15 = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"  # Debian's package creates it; the server refuses to run as root


def _as_server(*argv: str) -> subprocess.CompletedProcess[str]:
    root = os.geteuid() == 0
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd="/",
                          user=USER if root else None, group=USER if root else None,
                          extra_groups=[] if root else None, timeout=180)


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        for parent in path.parents:
            parent.chmod(parent.stat().st_mode | 0o005)
        for item in [path, *path.rglob("*")]:
            shutil.chown(item, USER, USER)
    path.chmod(0o700)


def _start(data: Path, port: int) -> str:
    with (data / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\n"
                   "unix_socket_directories = ''\nwal_level = replica\nmax_wal_senders = 4\n"
                   "archive_mode = off\nrestore_command = ''\n")
    _own(data)
    done = _as_server(str(PG15 / "pg_ctl"), "start", "-w", "-D", str(data), "-l",
                      str(data / "server.log"))
    assert done.returncode == 0, done.stderr + (data / "server.log").read_text(errors="replace")
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture(scope="module")
def pg15(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert (PG15 / "initdb").exists(), "apt-get install postgresql-15 (.ci/run does)"
    data = tmp_path_factory.mktemp("pg15") / "data"
    data.mkdir()
    _own(data)
    done = _as_server(str(PG15 / "initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "--data-checksums")
    assert done.returncode == 0, done.stderr
    dsn = _start(data, free_port())
    try:
        yield dsn
    finally:
        _as_server(str(PG15 / "pg_ctl"), "stop", "-m", "fast", "-D", str(data))


@pytest.fixture(scope="module")
def shop(pg15: str) -> str:
    with connect(pg15, autocommit=True) as conn:
        conn.execute("create schema shop")
        conn.execute("create table shop.orders as select g as id, md5(g::text) as note "
                     "from generate_series(1, 20000) g")
        conn.execute("create table shop.empty (id int primary key)")
    return pg15


@pytest.mark.parametrize(("verify", "stored"), [
    # The verifier (the wheel's pg_verifybackup) cannot read zstd: the engine compresses.
    (True, ["backup_manifest.zst", "base.tar.zst", "pg_wal.tar.zst"]),
    # Unverified, 15's own pg_basebackup compresses (client-zstd; 15 compresses the WAL tar
    # with gzip only), and the files are stored as it wrote them.
    (False, ["backup_manifest", "base.tar.zst", "pg_wal.tar"]),
], ids=["verified", "unverified"])
def test_base_backup_with_postgres15_tools_restores_the_same_data(
        shop: str, tmp_path: Path, verify: bool, stored: list[str]) -> None:
    pg15 = shop
    tools = discover(PG15)
    store = Store(StoreSpec("backups", f"file://{tmp_path / 'dest'}"))
    manifest = backup_physical(PhysicalRequest("base", pg15, tools, store, Sealing("zstd", 3),
                                               tmp_path / "staging", verify=verify))
    assert manifest.tool_version.startswith("15.")
    assert sorted(f.name for f in manifest.files) == stored
    assert manifest.details["verified"] is verify
    assert (manifest.codec, manifest.details["tar_compression"]) == (
        ("zstd", "none") if verify else ("none", "zstd"))
    restored = tmp_path / "restored"
    restore_chain(store, [manifest], restored, key=None, toolset=tools,
                  staging=tmp_path / "staging")
    (restored / "postmaster.pid").unlink(missing_ok=True)
    dsn = _start(restored, free_port())
    try:
        assert table_fingerprints(dsn, ["shop"]) == table_fingerprints(pg15, ["shop"])
        assert table_fingerprints(dsn, ["shop"])["shop.orders"][0] == 20000
    finally:
        _as_server(str(PG15 / "pg_ctl"), "stop", "-m", "fast", "-D", str(restored))


def test_the_tar_verifier_reads_postgres15_backups_and_catches_damage(pg15: str,
                                                                      tmp_path: Path) -> None:
    tools = discover(PG15)
    verifier = _tar_verifier(tools)
    assert verifier.major >= 18
    target = tmp_path / "bare"
    done = subprocess.run([str(tools.path("pg_basebackup")), "-D", str(target), "-Ft",
                           "-X", "stream", "--no-sync", f"--dbname={pg15}"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    verify = [str(verifier.path("pg_verifybackup")), "-n", "-q", str(target)]
    assert subprocess.run(verify, capture_output=True, check=False).returncode == 0
    data = bytearray((target / "base.tar").read_bytes())
    at = (data.index(b"PG_VERSION") // 512 + 1) * 512  # that member's first content byte
    data[at] ^= 0xFF
    (target / "base.tar").write_bytes(bytes(data))
    damaged = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert damaged.returncode != 0
    assert "PG_VERSION" in damaged.stderr
