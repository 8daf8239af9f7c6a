"""Benchmark: archive_command per 16 MB WAL segment, as PostgreSQL's archiver calls it (one
new process per segment, one after the other), on a copy of the repository's definitions
with its encrypted wal_archive tier and a file:// destination.

Run by hand:  python bench/wal.py [--segments 7] [--backlog 24] [--process-max 2]
Measured in the same run, per call:
  baseline interpreter   `python -c pass` (what any Python archive_command pays)
  baseline zstd -3       the `zstd` command compressing the segment to a file (the floor
                         of the work itself, without encryption or checksums)
  full path              `python -m engine.cli wal-push` (loads the definitions)
  fast path              `python -m engine.app.walpush` (compiled settings; the
                         archive_command that `marketops wal-setup` sets)
Then a backlog, as after a bulk load: `--backlog` segments ready at once in a pg_wal with
archive_status, archived the way PostgreSQL's archiver does it (archive_command on the
oldest .ready, one call after the other, .ready renamed .done on success), until none is
left: the fast path synchronously, then with `archive_async` (the background pusher,
`--process-max` at once), each on its own copy of the repository and archive.
With `--postgres N`, last, on the embedded PostgreSQL 18: a server per mode archiving
through marketops (as `wal-setup --apply` sets it up), a write load closing N segments as
fast as it can (inserts, pg_switch_wal), and the seconds until pg_stat_archiver has
archived the last one (total, and the lag left after the load ended).
Goal (issue 19): one segment, sync, < 0.15 s. Not measured here: pgBackRest (not installed
on this machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrage

ROOT = Path(__file__).resolve().parents[1]
SEGMENT = 16 * 1024 * 1024


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


def archive_under_load(root: Path, data: Path, segments: int) -> tuple[float, float]:
    """(seconds from the load's start until its last segment is archived, of which after
    the load ended) on a new embedded server archiving for `root`."""
    sys.path.insert(0, str(ROOT))
    from engine.app.tiers.wal import (
        compile_archive_config,
        configure_archiving,
        prepare_archive_access,
        wal_settings,
    )
    from engine.validation.validate import validate
    from runners.demo.mailbox import free_port
    from runners.postgres.connection import connect
    from runners.postgres.embedded import EmbeddedServer

    defs = validate(root)
    server = EmbeddedServer(data, free_port(), "postgres")
    server.start()
    try:
        compile_archive_config(root, defs)
        prepare_archive_access(root, defs)
        if configure_archiving(server.dsn(), wal_settings(root, defs)):
            server.stop()
            server.start()
        with connect(server.dsn(), autocommit=True) as conn:
            conn.execute("create table load (id bigserial primary key, note text)")

            def archived() -> str:
                row = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()
                return str(row[0]) if row and row[0] else ""

            began = time.perf_counter()
            last = ""
            for _ in range(segments):
                conn.execute("insert into load (note) select md5(random()::text) "
                             "from generate_series(1, 5000)")
                row = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
                last = str(row[0]) if row else last
            loaded = time.perf_counter()
            deadline = loaded + 600
            while archived() < last:
                if time.perf_counter() > deadline:
                    raise SystemExit(f"{last} not archived in 600 s; see {server.log_file}")
                time.sleep(0.02)
            done = time.perf_counter()
        return done - began, done - loaded
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=7, help="Segments per method.")
    parser.add_argument("--backlog", type=int, default=24,
                        help="Segments ready at once in the backlog runs (0: skip them).")
    parser.add_argument("--postgres", type=int, default=0, metavar="N",
                        help="Segments of write load on the embedded PostgreSQL 18 per mode "
                             "(0: skip).")
    parser.add_argument("--process-max", type=int, default=2,
                        help="archive_async.process_max of the asynchronous backlog run.")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
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

        methods: dict[str, list[str]] = {
            "baseline interpreter (python -c pass)": [python, "-c", "pass"],
            "baseline zstd -3 to a file": ["zstd", "-3", "-q", "-f", "-o", str(work / "z")],
            "full path (engine.cli wal-push)": [python, "-m", "engine.cli", "--root",
                                                str(root), "wal-push"],
            "fast path (engine.app.walpush)": [python, "-m", "engine.app.walpush",
                                               "--root", str(root)],
        }
        # One unmeasured push compiles the settings and warms the OS cache.
        timed([*methods["full path (engine.cli wal-push)"], str(next_segment())], env, pg_wal)
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
        if args.backlog <= 0:
            return
        backlog = [segment_bytes(10_000 + n) for n in range(args.backlog)]
        def fresh_copy(mode: str, name: str) -> Path:
            """The repository without its archive, asynchronous in mode `async`."""
            copy = work / name
            shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".marketops", "var"))
            if mode == "async":
                tier = copy / "definitions" / "backups" / "wal_archive.yaml"
                tier.write_text(tier.read_text() + "archive_async: {process_max: "
                                f"{args.process_max}}}\n")
            return copy

        copies = {}
        for mode in ("sync", "async"):
            copy = fresh_copy(mode, f"repo-{mode}")
            # Compile its settings (an unmeasured full-path push of a file nobody waits for).
            timed([python, "-m", "engine.cli", "--root", str(copy), "wal-push",
                   str(next_segment())], env, pg_wal)
            copies[mode] = copy
        seconds = {mode: archive_backlog(python, copy, env, work / f"pg_wal-{mode}", backlog)
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
        if args.postgres <= 0:
            return
        os.environ.update(env)  # the servers (and so archive_command) inherit the key
        under_load = {mode: archive_under_load(fresh_copy(mode, f"repo-pg-{mode}"),
                                               work / f"pg-{mode}", args.postgres)
                      for mode in ("sync", "async")}
        print(f"embedded PostgreSQL 18, a write load closing {args.postgres} segments as fast "
              "as it can:")
        for mode, (total, lag) in under_load.items():
            label = ("archive_command synchronous" if mode == "sync" else
                     f"archive_async process_max={args.process_max}")
            print(f"  {label:<40} {total:6.2f} s to archive all "
                  f"({16 * args.postgres / total:6.1f} MB/s), {lag:6.2f} s of lag after the "
                  "load")
        print(f"async: {under_load['sync'][0] / under_load['async'][0]:.2f}x the synchronous "
              "throughput under load")


if __name__ == "__main__":
    main()
