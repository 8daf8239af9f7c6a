"""Benchmark: backups and restores through the engine against the bare PostgreSQL tools with
the same flags, and against pgBackRest, on the same clusters, in one run.

Run by hand:  python bench/backup.py [--scale 1] [--runs 3] [--work DIR]
                                    [--parts logical restore physical pg15]
Goal: engine overhead within 5% of the bare tools (ratio engine / bare <= 1.05).

Part 1, the embedded PostgreSQL 18 with the demo data at --scale:
  (bare tools sync their output to disk, their default: the engine syncs what it stores)
  logical  bare `pg_dump -Fd -j2` (compression as named) vs the engine's logical tier
           (one exported snapshot, row counts, sealing into a file:// destination, manifest)
  physical the engine's base tier vs the same tool calls run bare: with 18+ tools
           `pg_basebackup -Ft -X stream --manifest-checksums=CRC32C`, `pg_verifybackup -n`,
           pg_waldump over the WAL range (the engine seals base.tar while it is written);
           before 18 a plain copy + that version's pg_verifybackup (the engine verifies its
           tar with the embedded 18 pg_verifybackup and the version's own pg_waldump);
           gzip:1 with pg_basebackup compressing in both (the engine stores its .tar.gz)
  restore  bare `pg_restore -j2` of the plain dump vs the engine's restore (unseal + pg_restore)
Part 2, Debian's PostgreSQL 15 (pgBackRest 2.45 predates 18), same data: pgBackRest full
  backup (process-max 2, zst) vs bare pg_basebackup 15 vs the engine's base tier with
  postgres.bin_dir = /usr/lib/postgresql/15/bin; zstd:3 compressed by the engine (verified:
  the verifier lacks zstd) and by pg_basebackup 15 (unverified) vs bare client-zstd:3; the
  logical tier with 15's pg_dump vs bare `pg_dump -Fd -j2 -Z0` and vs pgBackRest.
Each timing is the median of --runs runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.dbschema.ddl import create_all  # noqa: E402
from engine.validation.validate import validate  # noqa: E402
from runners.backup.logical import LogicalRequest, backup_logical, restore_logical  # noqa: E402
from runners.backup.physical import PhysicalRequest, backup_physical  # noqa: E402
from runners.demo.data import generate  # noqa: E402
from runners.demo.mailbox import free_port  # noqa: E402
from runners.postgres.connection import connect, execute_script, with_database  # noqa: E402
from runners.postgres.embedded import EmbeddedServer, embedded_bin_dir  # noqa: E402
from runners.postgres.toolset import Toolset, discover  # noqa: E402
from runners.storage.sealing import Sealing  # noqa: E402
from runners.storage.stores import Store, StoreSpec  # noqa: E402

PG15 = Path("/usr/lib/postgresql/15/bin")


def timed(action: Callable[[], object], runs: int, reset: Callable[[], None]) -> float:
    times = []
    for _ in range(runs):
        reset()
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def sh(argv: list[str], **kw: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr[-800:]}")


def fill(dsn: str, scale: float) -> int:
    project = validate(ROOT).project
    execute_script(dsn, create_all(s.model for s in project.schemas.values()))
    tables = [f"{s}.{t}" for s, loaded in project.schemas.items() for t in loaded.model.tables]
    return sum(generate(dsn, tables, scale=scale, seed=42, until=date(2026, 11, 1)).rows.values())


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def row(label: str, engine: float, bare: float, note: str = "") -> None:
    print(f"  {label:<46} engine {engine:8.2f}s  baseline {bare:8.2f}s  ratio "
          f"{engine / bare:5.3f}  {note}")


def part_pg18(work: Path, scale: float, runs: int, parts: set[str]) -> None:
    server = EmbeddedServer(work / "pg18", free_port(), "bench")
    server.start()
    try:
        with connect(server.dsn("postgres"), autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = 'bench'").fetchone():
                conn.execute("create database bench")
        dsn = server.dsn("bench")
        with connect(dsn) as conn:
            filled = conn.execute("select count(*) from pg_tables where schemaname = 'orders'"
                                  ).fetchone()
        if not filled or not filled[0]:
            began = time.perf_counter()
            rows = fill(dsn, scale)
            print(f"PG18: generated {rows:,} rows at scale {scale} in "
                  f"{time.perf_counter() - began:.0f}s")
        with connect(dsn) as conn:
            size = conn.execute("select pg_database_size('bench')").fetchone()[0]
        print(f"PG18 database: {size / 1e6:,.0f} MB; median of {runs} run(s) each")
        tools = discover(embedded_bin_dir())
        out = work / "out"
        staging = work / "staging"

        def reset() -> None:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
            out.mkdir(parents=True)

        store = Store(StoreSpec("bench", f"file://{out / 'dest'}"))
        for label, compress, sealing in () if "logical" not in parts else (
                ("logical, no compression", "0", Sealing("none", 0)),
                ("logical, gzip:6 (native in both)", "gzip:6", Sealing("gzip", 6)),
                ("logical, engine zstd:3 vs bare gzip:1", "gzip:1", Sealing("zstd", 3)),
        ):
            bare = timed(lambda c=compress: sh([  # type: ignore[misc]
                str(tools.path("pg_dump")), "-Fd", "-j2", f"--compress={c}",
                "-f", str(out / "bare"), f"--dbname={dsn}"]), runs, reset)
            bare_size = du(out / "bare")
            engine = timed(lambda s=sealing: backup_logical(LogicalRequest(  # type: ignore[misc]
                "full", "logical_full", dsn, tools, store, s, staging, jobs=2)), runs, reset)
            row(label, engine, bare, f"size engine {du(out / 'dest') / 1e6:,.0f} MB, "
                f"bare {bare_size / 1e6:,.0f} MB")
        if "restore" in parts:
            restore(server, dsn, tools, store, out, staging, runs, reset)
        if "physical" in parts:
            physical(server.dsn("postgres"), tools, work, runs, "PG18")
    finally:
        server.stop()


def restore(server: EmbeddedServer, dsn: str, tools: Toolset, store: Store, out: Path,
            staging: Path, runs: int, reset: Callable[[], None]) -> None:
    """pg_restore of a plain dump against the engine's restore of the same data."""
    reset()
    sh([str(tools.path("pg_dump")), "-Fd", "-j2", "--no-sync", "--compress=0", "-f",
        str(out / "plain"), f"--dbname={dsn}"])
    manifest = backup_logical(LogicalRequest("full", "logical_full", dsn, tools, store,
                                             Sealing("none", 0), staging, jobs=2))
    counter = iter(range(1000))

    def fresh_db() -> str:
        name = f"restore_{next(counter)}"
        with connect(server.dsn("postgres"), autocommit=True) as conn:
            # Each restored copy is as big as the source: keep one at a time on the disk.
            for old in conn.execute("select datname from pg_database where datname like "
                                    "'restore\\_%'").fetchall():
                conn.execute(f"drop database {old[0]}".encode())
            conn.execute(f"create database {name}".encode())
        return with_database(dsn, name)

    targets: list[str] = []
    bare_r = timed(lambda: sh([str(tools.path("pg_restore")), "-j2", "--no-owner",
                               f"--dbname={targets[-1]}", str(out / "plain")]), runs,
                   lambda: targets.append(fresh_db()))
    engine_r = timed(lambda: restore_logical(store, manifest, key=None, toolset=tools,
                                             target_dsn=targets[-1], staging=staging,
                                             jobs=2), runs,
                     lambda: targets.append(fresh_db()))
    row("restore, plain dump", engine_r, bare_r)
    with connect(server.dsn("postgres"), autocommit=True) as conn:  # each is a full copy
        for target in targets:
            name = target.rsplit("dbname=", 1)[-1].split()[0] if "dbname=" in target else \
                target.rsplit("/", 1)[-1]
            conn.execute(f"drop database if exists {name}".encode())


def _bare_tar_verified(tools: Toolset, dsn: str, target: Path, flags: list[str]) -> None:
    """What the engine runs with 18+ tools, bare: -Ft, pg_verifybackup -n on the tar,
    pg_waldump over the backup's WAL range (pg_verifybackup cannot parse WAL in a tar)."""
    sh([str(tools.path("pg_basebackup")), "-D", str(target), "-Ft", *flags, f"--dbname={dsn}"])
    sh([str(tools.path("pg_verifybackup")), "-n", "-q", str(target)])
    wal = target / "wal"
    wal.mkdir()
    sh(["tar", "-xf", str(next(target.glob("pg_wal.tar*"))), "-C", str(wal)])
    span = json.loads((target / "backup_manifest").read_text())["WAL-Ranges"][0]
    sh([str(tools.path("pg_waldump")), "-q", f"--path={wal}", f"--timeline={span['Timeline']}",
        f"--start={span['Start-LSN']}", f"--end={span['End-LSN']}"])


def physical(dsn: str, tools: Toolset, work: Path, runs: int, tag: str) -> float:
    out, staging = work / "out", work / "staging"

    def reset() -> None:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        out.mkdir(parents=True)

    store = Store(StoreSpec("bench", f"file://{out / 'dest'}"))
    flags = ["-X", "stream", "--checkpoint=fast", "--manifest-checksums=CRC32C"]
    bare = timed(lambda: sh([str(tools.path("pg_basebackup")), "-D", str(out / "bare"), "-Fp",
                             *flags, f"--dbname={dsn}"]), runs, reset)
    bare_plain = timed(lambda: (sh([str(tools.path("pg_basebackup")), "-D", str(out / "bare"),
                                    "-Fp", *flags, f"--dbname={dsn}"]),
                                sh([str(tools.path("pg_verifybackup")), str(out / "bare")])),
                       runs, reset)
    # The baseline is the tool calls the engine makes, run bare: tar + verify on 18+,
    # a plain copy + verify before (pg_verifybackup reads tar from 18 on).
    if tools.major >= 18:
        bare_v = timed(lambda: _bare_tar_verified(tools, dsn, out / "bare", flags), runs, reset)
        print(f"  {tag} bare -Fp + pg_verifybackup {bare_plain:.2f}s; bare -Ft + "
              f"pg_verifybackup -n + pg_waldump {bare_v:.2f}s (baseline below)")
    else:
        bare_v = bare_plain
    engine = timed(lambda: backup_physical(PhysicalRequest(
        "base", dsn, tools, store, Sealing("none", 0), staging, verify=True)), runs, reset)
    row(f"{tag} base backup + verify, engine as-is", engine, bare_v,
        f"(bare -Fp without verify {bare:.2f}s)")
    engine = timed(lambda: backup_physical(PhysicalRequest(
        "base", dsn, tools, store, Sealing("zstd", 3), staging, verify=True)), runs, reset)
    row(f"{tag} base backup + verify, engine zstd:3", engine, bare_v, "(uncompressed bare)")
    if tools.major >= 18:
        # The embedded tools compress with gzip only; level 1 is their fastest.
        bare_z = timed(lambda: _bare_tar_verified(tools, dsn, out / "bare",
                                                  [*flags, "--compress=client-gzip:1"]),
                       runs, reset)
        row(f"{tag} the same, vs bare client-gzip:1", engine, bare_z)
        # gzip both ways: pg_basebackup compresses, the engine stores what it wrote.
        engine_gz = timed(lambda: backup_physical(PhysicalRequest(
            "base", dsn, tools, store, Sealing("gzip", 1), staging, verify=True)), runs, reset)
        row(f"{tag} base backup + verify, gzip:1 native in both", engine_gz, bare_z)
    return bare


def part_pg15(work: Path, scale: float, runs: int) -> None:
    if not (PG15 / "initdb").exists() or not shutil.which("pgbackrest"):
        print("PG15 part skipped: apt-get install postgresql-15 pgbackrest")
        return
    data, repo, port = work / "pg15", work / "pgbackrest", free_port()
    conf = work / "pgbackrest.conf"
    for path in (work,):
        path.chmod(0o755)
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        shutil.chown(data, "postgres", "postgres")
        sh(["runuser", "-u", "postgres", "--", str(PG15 / "initdb"), "-D", str(data),
            "--auth=trust", "-U", "postgres"])
    repo.mkdir(exist_ok=True)
    shutil.chown(repo, "postgres", "postgres")
    conf.write_text(f"[global]\nrepo1-path={repo}\nprocess-max=2\ncompress-type=zst\n"
                    f"compress-level=3\nstart-fast=y\nlog-level-console=warn\n"
                    # Each run's full backup expires the one before: the disk holds one copy.
                    "repo1-retention-full=1\n"
                    f"[bench]\npg1-path={data}\npg1-port={port}\npg1-socket-path=/tmp\n")
    with (data / "postgresql.auto.conf").open("w") as handle:
        handle.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
                     "unix_socket_directories = '/tmp'\narchive_mode = on\nwal_level = replica\n"
                     f"archive_command = 'pgbackrest --config={conf} --stanza=bench "
                     "archive-push %p'\nmax_wal_senders = 4\n")
    shutil.chown(data / "postgresql.auto.conf", "postgres", "postgres")
    sh(["runuser", "-u", "postgres", "--", str(PG15 / "pg_ctl"), "start", "-w", "-D", str(data),
        "-l", str(data / "server.log")])
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with connect(dsn, autocommit=True) as conn:
            if not conn.execute("select 1 from pg_database where datname = 'bench'").fetchone():
                conn.execute("create database bench")
        bench = with_database(dsn, "bench")
        with connect(bench) as conn:
            filled = conn.execute("select count(*) from pg_tables where schemaname = 'orders'"
                                  ).fetchone()
        if not filled or not filled[0]:
            began = time.perf_counter()
            rows = fill(bench, scale)
            print(f"PG15: generated {rows:,} rows in {time.perf_counter() - began:.0f}s")
        sh(["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={conf}",
            "--stanza=bench", "stanza-create"])
        # The WAL written while the data was generated (before the stanza existed) must be
        # archived before a backup can start: not part of the backup's time.
        sh(["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={conf}",
            "--stanza=bench", "--archive-timeout=1800", "check"])
        pgbr = timed(lambda: sh(["runuser", "-u", "postgres", "--", "pgbackrest",
                                 f"--config={conf}", "--stanza=bench", "--type=full",
                                 "backup"]), runs, lambda: None)
        newest = max((repo / "backup" / "bench").glob("*F"), key=lambda p: p.name)
        print(f"  PG15 pgBackRest full backup (zst:3, process-max 2): {pgbr:.2f}s, "
              f"{du(newest) / 1e6:,.0f} MB")
        tools = discover(PG15)
        bare = physical(dsn, tools, work / "pg15-run", runs, "PG15")
        engine = timed(lambda: backup_physical(PhysicalRequest(
            "base", dsn, tools, Store(StoreSpec("bench", f"file://{work / 'pg15-dest'}")),
            Sealing("zstd", 3), work / "pg15-staging", verify=True)), runs,
            lambda: shutil.rmtree(work / "pg15-dest", ignore_errors=True))
        # The same compression bare: 15's pg_basebackup has zstd (the embedded 18 has not);
        # it cannot verify a tar, so this baseline skips the verification the engine makes.
        bare_zstd = timed(lambda: sh([
            str(tools.path("pg_basebackup")), "-D", str(work / "pg15-run" / "bare"), "-Ft",
            "-X", "stream", "--checkpoint=fast", "--manifest-checksums=CRC32C",
            "--compress=client-zstd:level=3,workers=2", f"--dbname={dsn}"]), runs,
            lambda: shutil.rmtree(work / "pg15-run" / "bare", ignore_errors=True))
        row("PG15 engine base (zstd:3, verify) vs bare client-zstd:3 (2 workers, no verify)",
            engine, bare_zstd)
        row("PG15 engine base (zstd:3, verify) vs pgBackRest", engine, pgbr)
        # Unverified, the engine lets 15's pg_basebackup compress: the same calls as bare.
        engine_native = timed(lambda: backup_physical(PhysicalRequest(
            "base", dsn, tools, Store(StoreSpec("bench", f"file://{work / 'pg15-dest'}")),
            Sealing("zstd", 3), work / "pg15-staging", verify=False)), runs,
            lambda: shutil.rmtree(work / "pg15-dest", ignore_errors=True))
        row("PG15 engine base (zstd:3 native, no verify) vs bare client-zstd:3", engine_native,
            bare_zstd)
        row("PG15 bare pg_basebackup vs pgBackRest", bare, pgbr)
        # The logical tier on the same cluster, with 15's own pg_dump (no zstd before 16).
        dest, dumped = work / "pg15-dest", work / "pg15-run" / "dump"

        def reset_dump() -> None:
            shutil.rmtree(dest, ignore_errors=True)
            shutil.rmtree(dumped, ignore_errors=True)

        bare_dump = timed(lambda: sh([str(tools.path("pg_dump")), "-Fd", "-j2", "-Z0", "-f",
                                      str(dumped), f"--dbname={bench}"]), runs, reset_dump)
        for label, sealing in (("no compression", Sealing("none", 0)),
                               ("engine zstd:3", Sealing("zstd", 3))):
            engine_dump = timed(lambda s=sealing: backup_logical(LogicalRequest(  # type: ignore[misc]
                "full", "logical_full", bench, tools, Store(StoreSpec("bench", f"file://{dest}")),
                s, work / "pg15-staging", jobs=2)), runs, reset_dump)
            row(f"PG15 logical, {label}, vs bare pg_dump -Z0", engine_dump, bare_dump)
            row(f"PG15 logical, {label}, vs pgBackRest", engine_dump, pgbr)
    finally:
        sh(["runuser", "-u", "postgres", "--", str(PG15 / "pg_ctl"), "stop", "-m", "fast",
            "-t", "600", "-D", str(data)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/var/tmp/marketops-bench-backup"))
    parser.add_argument("--parts", nargs="+", default=["logical", "restore", "physical", "pg15"],
                        choices=["logical", "restore", "physical", "pg15"])
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.chmod(args.work, 0o755)
    part_pg18(args.work, args.scale, args.runs, set(args.parts))
    if "pg15" in args.parts:
        part_pg15(args.work, args.scale, args.runs)


if __name__ == "__main__":
    main()
