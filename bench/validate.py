"""Benchmark: `marketops validate` (a new process, as CI and pre-commit call it), cold (no
cache: `--no-cache`), warm (nothing changed: the whole-run memo under .marketops/cache/
replays the last output) and after an edit (the whole-run memo missed, the SQL analyses
cached), against baselines measured in the same run: importing the libraries alone, and
`sqlfluff lint`.

Run by hand:  python bench/validate.py [--runs 7] [--no-sqlfluff] [--other MARKETOPS]
Definition sets: the repository's own, and a copy with 10x its reports (each report cloned
with a distinct SQL text, so each is its own cache entry).
Goals (issue 19): cold < 0.5 s, warm < 0.35 s on the repository's definitions; the 10x copy
warm no more than 3x the repository warm; >= 25x faster than sqlfluff.
On a shared, loaded machine the absolute times swing; the ratios are the measure.
Every process runs with Python's bytecode cache on, as an installed or used checkout has it
(PYTHONDONTWRITEBYTECODE, set on some CI machines, would compile every module each run).
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _wall(argv: list[str], cwd: Path, runs: int, ok: tuple[int, ...] = (0,)) -> float:
    """Median wall time of `runs` new processes, after one unmeasured warm-up run (so both
    tools find their files in the OS cache)."""
    subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True,
                                check=False)
        times.append(time.perf_counter() - start)
        if result.returncode not in ok:
            raise SystemExit(f"{argv} failed ({result.returncode}):\n{result.stdout}"
                             f"{result.stderr}")
    return statistics.median(times)


IMPORTS = ("import pydantic, yaml, click, croniter, sqlglot; "
           "from sqlglot.optimizer.qualify import qualify")


def scaled_copy(target: Path, min_tables: int = 100, min_reports: int = 15) -> None:
    """Copy the repository's definitions, cloning schemas and reports until big enough; a
    cloned report's SQL gets a comment of its own, so it is a different text to analyse."""
    for name in ("marketops.yaml", "schema", "definitions", "jsonschema"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        elif source.exists():
            shutil.copy(source, target / name)
    schemas = sorted((target / "schema").glob("*.yaml"))
    tables = sum(len(yaml.safe_load(p.read_text())["tables"]) for p in schemas)
    copy = 0
    while tables < min_tables:
        copy += 1
        for path in schemas:
            data = yaml.safe_load(path.read_text())
            old = data["name"]
            data["name"] = f"{old}_c{copy}"
            text = yaml.safe_dump(data, sort_keys=False).replace(f"table: {old}.",
                                                                  f"table: {old}_c{copy}.")
            (target / "schema" / f"{old}_c{copy}.yaml").write_text(text)
            tables += len(data["tables"])
    reports = sorted((target / "definitions/reports").glob("*.yaml"))
    count, copy = len(reports), 0
    while count < min_reports:
        copy += 1
        for path in reports:
            text = path.read_text()
            sql = path.with_suffix(".sql")
            if sql.exists():
                clone = path.with_name(f"{path.stem}_c{copy}.sql")
                clone.write_text(f"-- copy {copy}\n" + sql.read_text())
                text = text.replace(f"sql_file: {sql.name}", f"sql_file: {clone.name}")
            else:
                text = text.replace("sql: |\n", f"sql: |\n  -- copy {copy}\n", 1)
            path.with_name(f"{path.stem}_c{copy}.yaml").write_text(text)
            count += 1


def sql_files(root: Path, out: Path) -> int:
    """Write every report's SQL into `out` as .sql files (what sqlfluff lints)."""
    out.mkdir()
    count = 0
    for path in sorted((root / "definitions/reports").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        sql = data.get("sql") or (path.parent / data["sql_file"]).read_text()
        (out / f"{path.stem}.sql").write_text(sql)
        count += 1
    return count


def measure(label: str, root: Path, runs: int, sqlfluff: bool, other: Path | None = None
            ) -> dict[str, float]:
    marketops = str(BIN / "marketops")
    imports = _wall([sys.executable, "-c", IMPORTS], root, runs)
    cold = _wall([marketops, "validate", "--no-cache"], root, runs)
    warm = _wall([marketops, "validate"], root, runs)
    # An edit anywhere misses the whole-run memo: dropping it each time is that case.
    edited = _wall(["sh", "-c", f"rm -f .marketops/cache/validate-runs.json && {marketops} "
                    "validate"], root, runs)
    tables = sum(len(yaml.safe_load(p.read_text())["tables"])
                 for p in (root / "schema").glob("*.yaml"))
    reports = len(list((root / "definitions/reports").glob("*.yaml")))
    print(f"{label}: {tables} tables, {reports} reports (median of {runs} new processes)")
    print(f"  baseline: importing pydantic, yaml, click, croniter, sqlglot: {imports:.3f} s")
    print(f"  marketops validate --no-cache (cold): {cold:.3f} s = {cold / imports:.2f}x the "
          f"imports")
    print(f"  marketops validate (warm cache):      {warm:.3f} s = {warm / imports:.2f}x the "
          f"imports, {cold / warm:.2f}x faster than cold")
    print(f"  marketops validate after an edit (SQL analyses cached): {edited:.3f} s = "
          f"{cold / edited:.2f}x faster than cold")
    if other is not None:
        before = _wall([str(other), "validate"], root, runs)
        print(f"  other marketops validate ({other}): {before:.3f} s: this one is "
              f"{before / cold:.2f}x faster cold, {before / warm:.2f}x warm")
    if sqlfluff:
        with tempfile.TemporaryDirectory() as tmp:
            count = sql_files(root, Path(tmp) / "sql")
            theirs = _wall([str(BIN / "sqlfluff"), "lint", "--dialect", "postgres",
                            "--processes", "1", str(Path(tmp) / "sql")], root,
                           max(1, runs // 3), ok=(0, 1))
        print(f"  baseline sqlfluff lint over the same {count} SQL files: {theirs:.3f} s: "
              f"{theirs / cold:.1f}x cold, {theirs / warm:.1f}x warm  [goal >= 25x]")
    return {"imports": imports, "cold": cold, "warm": warm, "edited": edited}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--other", type=Path, default=None,
                        help="Another marketops executable to time on the same sets.")
    parser.add_argument("--no-sqlfluff", action="store_true",
                        help="Skip the sqlfluff baseline (a minute per run here).")
    args = parser.parse_args()
    sqlfluff = not args.no_sqlfluff
    if sqlfluff and shutil.which("sqlfluff", path=str(BIN)) is None:
        raise SystemExit("sqlfluff is the baseline: pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory() as tmp:
        own, scaled = Path(tmp) / "own", Path(tmp) / "scaled"
        own.mkdir()
        scaled.mkdir()
        scaled_copy(own, 0, 0)  # a copy: the checkout's own cache stays as it is
        base = measure("repository definitions", own, args.runs, sqlfluff, args.other)
        reports = len(list((own / "definitions/reports").glob("*.yaml")))
        scaled_copy(scaled, 0, 10 * reports)
        big = measure("copy with 10x the reports", scaled, args.runs, False, args.other)
    print(f"10x the reports, warm: {big['warm'] / base['warm']:.2f}x the repository's warm "
          f"time  [goal <= 3x]; after an edit: {big['edited'] / base['edited']:.2f}x; cold: "
          f"{big['cold'] / base['cold']:.2f}x")


if __name__ == "__main__":
    main()
