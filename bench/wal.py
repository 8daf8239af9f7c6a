"""Benchmark: archive_command per 16 MB WAL segment, as PostgreSQL's archiver calls it (one
new process per segment, one after the other), on a copy of the repository's definitions
with its encrypted wal_archive tier and a file:// destination.

Run by hand:  python bench/wal.py [--segments 7]
Measured in the same run:
  baseline interpreter   `python -c pass` (what any Python archive_command pays)
  baseline zstd -3       the `zstd` command compressing the segment to a file (the floor
                         of the work itself, without encryption or checksums)
  full path              `python -m engine.cli wal-push` (loads the definitions)
  fast path              `python -m engine.app.walpush` (compiled settings; the
                         archive_command that `marketops wal-setup` sets)
Goal (issue 19): one segment, sync, < 0.15 s. Not measured here: pgBackRest (not installed
on this machine) and the asynchronous pusher (not built yet).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=7, help="Segments per method.")
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


if __name__ == "__main__":
    main()
