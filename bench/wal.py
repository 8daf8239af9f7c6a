"""Benchmark: WAL archiving, from one archive_command call to a bulk load under a real server.

Run by hand:  python bench/wal.py [--segments 7] [--backlog 24] [--postgres N] [--bulk-gb G]
                                  [--servers 15,18] [--load fill|switch] [--process-max 2]

1. Per 16 MB segment, as PostgreSQL's archiver calls archive_command (one new process per
   segment, one after the other), on a copy of the repository's definitions with its
   encrypted wal_archive tier and a file:// destination; median per call of
     baseline interpreter   `python -c pass` (what any Python archive_command pays)
     baseline zstd -3       the `zstd` command compressing the segment to a file (the floor
                            of the work itself, without encryption or checksums)
     full path              `python -m engine.cli wal-push` (loads the definitions)
     fast path              `python -m engine.app.walpush` (compiled settings; the
                            archive_command that `marketops wal-setup` sets)
2. A backlog, as after a bulk load: `--backlog` synthetic segments ready at once in a pg_wal
   with archive_status, archived the way PostgreSQL's archiver does it (oldest .ready first,
   one call after the other, .ready renamed .done on success): the fast path synchronously,
   then with `archive_async` (the background pusher, `--process-max` at once).
3. Under a real server (`--postgres N`: a write load of N segments; `--bulk-gb G`: a bulk
   load writing G GB of WAL), each mode on its own new cluster, archive and repository,
   removed afterwards, the same load for all, as fast as one session can: a table of md5
   text (20,000 rows for the write load, 1,000,000 for the bulk load; made, and its WAL
   archived, before the clock starts) copied by INSERT ... SELECT into another, again and
   again, until that much WAL is written (by pg_current_wal_lsn), then pg_switch_wal to close
   the last segment (`--load switch`: 5000 new rows and a pg_switch_wal per statement, the
   load of sessions 10 and before, mostly empty segments). Measured per mode: the load's
   seconds and WAL bytes, the seconds from its start until pg_stat_archiver reports its last
   segment archived (throughput = WAL / that), the seconds of lag left once the load ended
   (the bulk-load goal), the .ready segments waiting when it ended, pg_wal's peak size
   (sampled every 0.2 s) and the archive's size after. While an archiver keeps up, its
   throughput is the load's own speed, which it slows by the CPU it takes (2 cores here):
   read the lag after the load and the load's seconds with it.
   On Debian's PostgreSQL 15 (--servers 15): marketops sync, marketops archive_async
   process_max=P, pgBackRest `archive-push` sync, pgBackRest `archive-async=y process-max=P`
   (spool-path in the mode's directory), with ratios between them. On the embedded
   PostgreSQL 18 (--servers 18): marketops sync and async alone, set up as `wal-setup --apply`
   does it (its settings, with summarize_wal, by ALTER SYSTEM).

Fair comparison: marketops stores each segment compressed with zstd level 3 (the tier's
default compression), encrypted with age (X25519, ChaCha20-Poly1305), a sha256 of its content
in its name, written to a temporary file, fsynced and renamed, in a local file:// directory.
pgBackRest gets the same work: compress-type=zst compress-level=3, repo1-cipher-type=
aes-256-cbc with a random passphrase, a local repo1-path (posix; it checksums, with SHA-1,
and fsyncs each file as it always does), log-level-file=warn, console logging off. The
clusters are identical (initdb defaults, archive_mode=on, archive_timeout=60s,
max_wal_size=4GB so that checkpoints do not throttle the load); both archivers run as the
same user (as root, the engine's server user), the same write load, one mode after the other
in this order (the machine is shared: say its load with the figures). Async in both
acknowledges a segment to PostgreSQL only once it is stored in the archive.

Goals (issue 19): one segment, sync, < 0.15 s; async throughput >= pgBackRest async on the
same cluster; archive lag back to zero within 30 s after a bulk load of 2 GB of WAL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pyrage

if TYPE_CHECKING:
    from runners.postgres.connection import Connection

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEGMENT = 16 * 1024 * 1024
PG15 = Path("/usr/lib/postgresql/15/bin")
STANZA = "bench"


def segment_bytes(seed: int) -> bytes:
    """WAL-like content: page headers and records (compressible) with some random data."""
    block = bytearray()
    rng = os.urandom(SEGMENT // 8)
    while len(block) < SEGMENT:
        block += seed.to_bytes(8, "little") * 64 + rng[len(block) // 8 % len(rng):][:512]
    return bytes(block[:SEGMENT])


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed ({done.returncode}): {done.stderr[-800:]}")
    return elapsed


def archive_backlog(python: str, root: Path, env: dict[str, str], pg_wal: Path,
                    segments: list[bytes]) -> float:
    """Seconds for PostgreSQL's serial archiver to archive `segments`, all ready at once."""
    status = pg_wal / "archive_status"
    status.mkdir(parents=True)
    names = []
    for number, data in enumerate(segments, start=0x100):
        name = f"00000001{number >> 8:08X}{number & 0xFF:08X}"
        (pg_wal / name).write_bytes(data)
        (status / f"{name}.ready").touch()
        names.append(name)
    argv = [python, "-m", "engine.app.walpush", "--root", str(root)]
    began = time.perf_counter()
    for name in names:  # the oldest .ready first, as pgarch.c takes them
        timed([*argv, f"{pg_wal.name}/{name}"], env, pg_wal.parent)
        (status / f"{name}.ready").rename(status / f"{name}.done")
    elapsed = time.perf_counter() - began
    spool_pid = root / ".marketops" / "spool" / "wal_archive" / "pusher.pid"
    deadline = time.monotonic() + 60
    while spool_pid.exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the idle pusher ends by itself; the directory goes after it
    return elapsed


def fresh_copy(root: Path, into: Path, process_max: int) -> Path:
    """The repository without its archive; asynchronous (archive_async) when process_max."""
    shutil.copytree(root, into, ignore=shutil.ignore_patterns(".marketops", "var"))
    if process_max:
        tier = into / "definitions" / "backups" / "wal_archive.yaml"
        tier.write_text(tier.read_text() + f"archive_async: {{process_max: {process_max}}}\n")
    return into


def wait_gone(path: Path, seconds: float = 60) -> None:
    """Until `path` (an idle background pusher's pid file) is gone, at most `seconds`."""
    deadline = time.monotonic() + seconds
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def server_user() -> str | None:
    """Who runs the clusters and so archive_command: as root, the engine's own server user
    (PostgreSQL refuses root), so that marketops and pgBackRest run as the same user."""
    from runners.postgres.embedded import SYSTEM_USER

    return SYSTEM_USER if os.geteuid() == 0 else None


def as_server(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    user = server_user()
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/",
                          user=user, group=user, extra_groups=[] if user else None,
                          timeout=timeout)


def owned(*paths: Path) -> None:
    """Create `paths`, owned by (and reachable for) the servers' user."""
    from runners.postgres.embedded import grant_server_access

    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
    grant_server_access(readable=[], writable=list(paths))


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def pg_wal_size(pg_wal: Path) -> int:
    total = 0
    try:
        with os.scandir(pg_wal) as entries:
            for entry in entries:
                try:
                    total += entry.stat(follow_symlinks=False).st_size \
                        if entry.is_file(follow_symlinks=False) else 0
                except FileNotFoundError:
                    pass  # recycled or removed while we looked
    except FileNotFoundError:
        pass
    return total


@dataclass
class Cluster:
    """A running server archiving one mode's WAL."""

    data: Path
    port: int
    stop: Callable[[], None]

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def start_pg15(data: Path, port: int, settings: dict[str, str]) -> Cluster:
    """initdb and start Debian's PostgreSQL 15 on `data` with `settings` (and a socket for
    pgBackRest, which talks to the server through one)."""
    socket_dir = data.with_name(f"{data.name}-socket")
    owned(data, socket_dir)
    done = as_server([str(PG15 / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8"])
    if done.returncode != 0:
        raise SystemExit(f"initdb (15) failed: {done.stderr[-800:]}")
    every = {"port": str(port), "listen_addresses": "127.0.0.1",
             "unix_socket_directories": str(socket_dir), **settings}
    with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
        for name, value in every.items():
            escaped = value.replace("'", "''")
            conf.write(f"{name} = '{escaped}'\n")
    log = data.with_name(f"{data.name}.log")
    owned(log.parent)
    done = as_server([str(PG15 / "pg_ctl"), "start", "-w", "-t", "120", "-D", str(data),
                      "-l", str(log)])
    if done.returncode != 0:
        raise SystemExit(f"PostgreSQL 15 did not start: {done.stderr[-400:]} "
                         f"{log.read_text(errors='replace')[-800:]}")

    def stop() -> None:
        as_server([str(PG15 / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(data)])

    return Cluster(data, port, stop)


def start_pg18(data: Path, port: int, settings: dict[str, str]) -> Cluster:
    """The embedded PostgreSQL 18, archiving configured as `wal-setup --apply` does it."""
    from engine.app.tiers.wal import configure_archiving
    from runners.postgres.embedded import EmbeddedServer

    server = EmbeddedServer(data, port, "postgres")
    server.start()
    if configure_archiving(server.dsn(), settings):
        server.stop()
        server.start()
    def stop() -> None:
        server.stop()

    return Cluster(data, server.port, stop)


@dataclass(frozen=True)
class Mode:
    label: str
    archiver: str  # engine | pgbackrest
    process_max: int  # 0: synchronous


@dataclass(frozen=True)
class Outcome:
    load: float  # seconds the load took
    wal: int  # bytes of WAL it wrote
    total: float  # seconds from its start until its last segment was archived
    lag: float  # of which after the load ended
    peak_pg_wal: int  # bytes
    ready_at_end: int  # segments waiting for the archiver when the load ended
    stored: int  # bytes in the archive afterwards
    sample: str  # the name one segment was stored under (its suffixes show the sealing)


@dataclass(frozen=True)
class Load:
    """The same load for every mode: a table of `chunk` rows of md5 text (about half
    compressible, as table data often is), made and archived before the clock starts, copied
    by INSERT ... SELECT again and again until `wal` bytes of WAL are written (cheap for the
    server's CPU, so the WAL comes faster than the archivers store it); with `switch`,
    5000 new rows and a pg_switch_wal per statement instead (mostly empty segments: the
    per-call cost of archive_command rather than compression and encryption)."""

    wal: int
    chunk: int
    switch: bool = False


def one(conn: Connection, sql: str, params: tuple[object, ...] = ()) -> tuple[object, ...]:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def run_load(conn: Connection, load: Load) -> tuple[int, str]:
    """Write `load`; (WAL bytes written, the last segment it closed)."""
    start = one(conn, "select pg_current_wal_lsn()")[0]
    first = 1
    written = 0
    while written < load.wal:
        if load.switch:
            conn.execute("insert into load select g, md5(g::text) || md5((g + 1)::text) "
                         "from generate_series(%s::bigint, %s::bigint) g",
                         (first, first + 4999))
            first += 5000
            conn.execute("select pg_switch_wal()")
            written += SEGMENT
        else:
            conn.execute("insert into load select * from seed")
            written = int(str(one(conn, "select pg_current_wal_lsn() - %s::pg_lsn",
                                  (start,))[0]))
    row = one(conn, "select pg_walfile_name(pg_switch_wal()), "
              "pg_current_wal_lsn() - %s::pg_lsn", (start,))
    return int(str(row[1])), str(row[0])


def archived(conn: Connection) -> str:
    row = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()
    return str(row[0]) if row and row[0] else ""


def wait_archived(conn: Connection, last: str, seconds: float, log: Path) -> None:
    deadline = time.perf_counter() + seconds
    while archived(conn) < last:
        if time.perf_counter() > deadline:
            row = conn.execute("select failed_count, last_failed_wal from pg_stat_archiver"
                               ).fetchone()
            tail = log.read_text(errors="replace")[-1200:] if log.exists() else ""
            raise SystemExit(f"{last} not archived in {seconds:.0f} s (failed: {row}); "
                             f"{log}:\n{tail}")
        time.sleep(0.02)


def measure(cluster: Cluster, load: Load, log: Path) -> Outcome:
    """Warm the archiver up with one segment, then the load, timed until its last segment
    is archived, pg_wal's size sampled all along."""
    from runners.postgres.connection import connect

    pg_wal = cluster.data / "pg_wal"
    with connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("create table seed as select g::bigint as id, md5(g::text) || "
                     "md5((g + 1)::text) as note from generate_series(1, %s) g", (load.chunk,))
        conn.execute("create table load (like seed)")
        warm = one(conn, "select pg_walfile_name(pg_switch_wal())")[0]
        wait_archived(conn, str(warm), 600, log)
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], pg_wal_size(pg_wal))
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter()
        wal, last = run_load(conn, load)
        loaded = time.perf_counter()
        ready = sum(1 for name in os.listdir(pg_wal / "archive_status")
                    if name.endswith(".ready"))
        wait_archived(conn, last, 1800, log)
        done = time.perf_counter()
        stop.set()
        sampler.join()
    return Outcome(loaded - began, wal, done - began, done - loaded, peak[0], ready, 0, "")


def pgbackrest_config(work: Path, data: Path, port: int, process_max: int) -> tuple[Path, Path]:
    """A pgBackRest configuration (and its repository) set as the engine's tier is: zstd
    level 3, encrypted (aes-256-cbc, a random passphrase), a local repository, checksums and
    fsync as it always does; async with a spool and `process_max` when given."""
    repo, spool, logs, lock = (work / "repo", work / "spool", work / "log", work / "lock")
    owned(repo, spool, logs, lock)
    lines = ["[global]", f"repo1-path={repo}", "repo1-cipher-type=aes-256-cbc",
             f"repo1-cipher-pass={secrets.token_hex(24)}", "compress-type=zst",
             "compress-level=3", f"log-path={logs}", f"lock-path={lock}",
             f"spool-path={spool}", "log-level-console=off", "log-level-file=warn",
             f"archive-async={'y' if process_max else 'n'}",
             f"process-max={process_max or 1}", "", f"[{STANZA}]", f"pg1-path={data}",
             f"pg1-port={port}", "pg1-user=postgres",
             f"pg1-socket-path={data.with_name(f'{data.name}-socket')}"]
    conf = work / "pgbackrest.conf"
    conf.write_text("\n".join(lines) + "\n")
    conf.chmod(0o600)  # it holds the passphrase
    owned(work)
    return conf, repo


def run_mode(mode: Mode, server: str, work: Path, root: Path, load: Load) -> Outcome:
    """One mode on its own new cluster and archive, removed afterwards."""
    from engine.app.tiers.backup import archive_command
    from engine.app.tiers.wal import (
        compile_archive_config,
        prepare_archive_access,
        wal_settings,
    )
    from engine.validation.validate import validate
    from runners.demo.mailbox import free_port

    work.mkdir(parents=True)
    port = free_port()
    data = work / "data"
    log = work / "data.log" if server == "15" else data / "server.log"
    settings = {"archive_mode": "on", "archive_timeout": "60s", "max_wal_size": "4GB"}
    pusher = None
    stored = work / "none"
    try:
        if mode.archiver == "engine":
            copy = fresh_copy(root, work / "repo", mode.process_max)
            defs = validate(copy)
            compile_archive_config(copy, defs)
            prepare_archive_access(copy, defs)
            settings["archive_command"] = archive_command(copy)
            if server == "18":  # as wal-setup sets it (with summarize_wal, which 15 lacks)
                settings = {**wal_settings(copy, defs), "max_wal_size": "4GB"}
            pusher = copy / ".marketops" / "spool" / "wal_archive" / "pusher.pid"
            stored = copy / "var" / "backups"
        else:
            conf, stored = pgbackrest_config(work / "pgbackrest", data, port,
                                              mode.process_max)
            settings["archive_command"] = (f"pgbackrest --config={conf} --stanza={STANZA} "
                                           "archive-push %p")
        cluster = (start_pg15 if server == "15" else start_pg18)(data, port, settings)
        try:
            if mode.archiver == "pgbackrest":
                done = as_server(["pgbackrest", f"--config={conf}", f"--stanza={STANZA}",
                                  "stanza-create"])
                if done.returncode != 0:
                    raise SystemExit(f"pgbackrest stanza-create failed: {done.stdout[-800:]}"
                                     f"{done.stderr[-800:]}")
            outcome = measure(cluster, load, log)
        finally:
            cluster.stop()
        if pusher is not None:
            wait_gone(pusher)
        names = sorted(p.name for p in stored.rglob("0000000*") if p.is_file())
        return replace(outcome, stored=du(stored), sample=names[-1] if names else "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(server: str, modes: list[Mode], work: Path, root: Path, load: Load,
            title: str) -> dict[str, Outcome]:
    results = {}
    for number, mode in enumerate(modes):
        results[mode.label] = run_mode(mode, server, work / f"pg{server}-{number}", root, load)
    print(title)
    print(f"  {'mode':<34} {'load s':>7} {'WAL MB':>7} {'all archived s':>15} {'MB/s':>6} "
          f"{'lag after s':>11} {'ready at end':>12} {'peak pg_wal MB':>14} {'stored MB':>9}")
    for label, got in results.items():
        print(f"  {label:<34} {got.load:7.2f} {got.wal / 2**20:7.0f} {got.total:15.2f} "
              f"{got.wal / 2**20 / got.total:6.1f} {got.lag:11.2f} {got.ready_at_end:12d} "
              f"{got.peak_pg_wal / 2**20:14.0f} {got.stored / 2**20:9.0f}")
    for label, got in results.items():
        print(f"  {label:<34} stored as {got.sample}")
    return results


def ratio_line(results: dict[str, Outcome], faster: str, slower: str) -> None:
    """Throughput (WAL bytes per second from the load's start until all of it is archived)
    of `faster` over `slower`, and both lags after the load."""
    a, b = results[faster], results[slower]
    print(f"  {faster} / {slower}: {(a.wal / a.total) / (b.wal / b.total):.2f}x the "
          f"throughput; lag after the load {a.lag:.2f} s vs {b.lag:.2f} s")


def per_segment(args: argparse.Namespace, work: Path, root: Path, env: dict[str, str],
                next_segment: Callable[[], Path]) -> None:
    python = sys.executable
    pg_wal = work / "pg_wal"
    methods: dict[str, list[str]] = {
        "baseline interpreter (python -c pass)": [python, "-c", "pass"],
        "baseline zstd -3 to a file": ["zstd", "-3", "-q", "-f", "-o", str(work / "z")],
        "full path (engine.cli wal-push)": [python, "-m", "engine.cli", "--root",
                                            str(root), "wal-push"],
        "fast path (engine.app.walpush)": [python, "-m", "engine.app.walpush",
                                           "--root", str(root)],
    }
    results: dict[str, float] = {}
    for label, argv in methods.items():
        times = []
        for _ in range(args.segments):
            path = next_segment()
            tail = [] if "interpreter" in label else [str(path)]
            times.append(timed([*argv, *tail], env, pg_wal))
            path.unlink()
        results[label] = statistics.median(times)
    print(f"archive_command per 16 MB segment, median of {args.segments}, serial:")
    fast = results["fast path (engine.app.walpush)"]
    for label, seconds in results.items():
        print(f"  {label:<40} {seconds:6.3f} s  {16 / seconds:7.1f} MB/s  "
              f"{seconds / fast:5.2f}x the fast path")
    full = results["full path (engine.cli wal-push)"]
    print(f"fast path: {full / fast:.2f}x faster than the full path; "
          f"{fast - results['baseline interpreter (python -c pass)']:.3f} s above a bare "
          f"interpreter  [goal: < 0.15 s per segment: "
          f"{'met' if fast < 0.15 else 'NOT met'}]")


def backlog(args: argparse.Namespace, work: Path, root: Path, env: dict[str, str],
            next_segment: Callable[[], Path]) -> None:
    python = sys.executable
    segments = [segment_bytes(10_000 + n) for n in range(args.backlog)]
    copies = {}
    for mode in ("sync", "async"):
        copy = fresh_copy(root, work / f"repo-{mode}",
                          args.process_max if mode == "async" else 0)
        # Compile its settings (an unmeasured full-path push of a file nobody waits for).
        timed([python, "-m", "engine.cli", "--root", str(copy), "wal-push",
               str(next_segment())], env, work / "pg_wal")
        copies[mode] = copy
    seconds = {mode: archive_backlog(python, copy, env, work / f"pg_wal-{mode}", segments)
               for mode, copy in copies.items()}
    megabytes = 16 * args.backlog
    print(f"backlog of {args.backlog} segments ({megabytes} MB) ready at once, archived "
          "by a serial archiver:")
    for mode, elapsed in seconds.items():
        label = ("fast path, synchronous" if mode == "sync" else
                 f"fast path, archive_async process_max={args.process_max}")
        print(f"  {label:<40} {elapsed:6.2f} s  {megabytes / elapsed:7.1f} MB/s  "
              f"{elapsed / args.backlog:6.3f} s/segment")
    print(f"async: {seconds['sync'] / seconds['async']:.2f}x the synchronous throughput")


def pgbackrest_version() -> str:
    done = subprocess.run(["pgbackrest", "version"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def under_load(args: argparse.Namespace, work: Path, root: Path) -> None:
    pm = args.process_max
    engine = [Mode("marketops sync", "engine", 0),
              Mode(f"marketops archive_async pm={pm}", "engine", pm)]
    pgbackrest = [Mode("pgBackRest archive-push sync", "pgbackrest", 0),
                  Mode(f"pgBackRest archive-async pm={pm}", "pgbackrest", pm)]
    loads = []
    if args.postgres > 0:
        how = ("a pg_switch_wal per 5000 rows" if args.load == "switch" else
               "INSERT ... SELECT of 20,000 rows")
        loads.append((f"a write load of {args.postgres} segments ({how})",
                      Load(args.postgres * SEGMENT, 5000 if args.load == "switch" else 20_000,
                           args.load == "switch")))
    if args.bulk_gb > 0:
        loads.append((f"a bulk load of {args.bulk_gb:g} GB of WAL (INSERT ... SELECT of "
                      "1,000,000 rows)",
                      Load(int(args.bulk_gb * 2**30), 1_000_000)))
    for text, load in loads:
        if "15" in args.servers:
            version = pgbackrest_version()
            if not (PG15 / "initdb").exists() or not version:
                raise SystemExit("PostgreSQL 15 or pgBackRest missing: apt-get install -y "
                                 "postgresql-15 pgbackrest")
            results = compare("15", [*engine, *pgbackrest], work, root, load,
                              f"Debian PostgreSQL 15 with {version}, {text}, each mode on "
                              "its own new cluster and archive:")
            for a, b in ((engine[0], pgbackrest[0]), (engine[1], pgbackrest[1]),
                         (engine[1], engine[0]), (pgbackrest[1], pgbackrest[0])):
                ratio_line(results, a.label, b.label)
            goal = results[engine[1].label].wal / results[engine[1].label].total >= \
                results[pgbackrest[1].label].wal / results[pgbackrest[1].label].total
            print(f"  [goal: async throughput >= pgBackRest async: {'met' if goal else 'NOT met'}]")
            if load.wal >= 2**31:
                lag_goal(results)
        if "18" in args.servers:
            results = compare("18", engine, work, root, load,
                              f"embedded PostgreSQL 18 (as wal-setup --apply sets it up), "
                              f"{text}:")
            ratio_line(results, engine[1].label, engine[0].label)
            if load.wal >= 2**31:
                lag_goal(results)


def lag_goal(results: dict[str, Outcome]) -> None:
    for label, got in results.items():
        print(f"  [goal: lag back to zero within 30 s after 2 GB: {label}: {got.lag:.1f} s, "
              f"{'met' if got.lag <= 30 else 'NOT met'}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=7,
                        help="Segments per method, one call each (0: skip).")
    parser.add_argument("--backlog", type=int, default=24,
                        help="Segments ready at once in the backlog runs (0: skip them).")
    parser.add_argument("--postgres", type=int, default=0, metavar="N",
                        help="Segments of write load per mode on each server (0: skip).")
    parser.add_argument("--load", choices=("fill", "switch"), default="fill",
                        help="The --postgres load: full segments, or a pg_switch_wal after "
                             "each 5000 rows (mostly empty segments; sessions 10 and before).")
    parser.add_argument("--bulk-gb", type=float, default=0, metavar="G",
                        help="A bulk load writing G GB of WAL per mode on each server "
                             "(0: skip).")
    parser.add_argument("--servers", default="15,18",
                        help="Where --postgres and --bulk-gb run: 15 (Debian's, marketops "
                             "and pgBackRest), 18 (embedded, marketops alone), or both.")
    parser.add_argument("--process-max", type=int, default=2,
                        help="archive_async.process_max, and pgBackRest's process-max.")
    args = parser.parse_args()
    args.servers = set(args.servers.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-wal-") as tmp:
        work = Path(tmp)
        root = work / "repo"
        root.mkdir()
        for name in ("marketops.yaml", "schema", "definitions"):
            source = ROOT / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
        env = {**os.environ, "MARKETOPS_BACKUP_KEY": str(pyrage.x25519.Identity.generate())}
        env.pop("MARKETOPS_CACHE_DIR", None)
        pg_wal = work / "pg_wal"
        pg_wal.mkdir()
        counter = iter(range(1, 1_000_000))

        def next_segment() -> Path:
            number = next(counter)
            path = pg_wal / f"00000001{number >> 8:08X}{number & 0xFF:08X}"
            path.write_bytes(segment_bytes(number))
            return path

        # One unmeasured push compiles the settings and warms the OS cache.
        timed([sys.executable, "-m", "engine.cli", "--root", str(root), "wal-push",
               str(next_segment())], env, pg_wal)
        if args.segments > 0:
            per_segment(args, work, root, env, next_segment)
        if args.backlog > 0:
            backlog(args, work, root, env, next_segment)
        if args.postgres > 0 or args.bulk_gb > 0:
            os.environ.update(env)  # the servers (and so archive_command) inherit the key
            under_load(args, work, root)


if __name__ == "__main__":
    main()
