"""Benchmark: cold `marketops validate` (a new process, as CI calls it) against `sqlfluff lint`.

Run by hand:  python bench/validate.py [--runs 5]
Measures two definition sets: the repository's own, and a copy scaled up to at least
100 tables and 15 reports (while the repository holds fewer). The baseline is `sqlfluff lint
--dialect postgres` over the same SQL, measured in the same run. Goals: marketops under 1 s
wall, and at least 10x faster than sqlfluff.
"""

from __future__ import annotations

import argparse
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


def _wall(argv: list[str], cwd: Path, runs: int, ok: tuple[int, ...] = (0,)) -> float:
    """Median wall time of `runs` new processes, after one unmeasured warm-up run (so both
    tools find their files in the OS cache)."""
    subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if result.returncode not in ok:
            raise SystemExit(f"{argv} failed ({result.returncode}):\n{result.stdout}"
                             f"{result.stderr}")
    return statistics.median(times)


def scaled_copy(target: Path, min_tables: int = 100, min_reports: int = 15) -> None:
    """Copy the repository's definitions, cloning schemas and reports until big enough."""
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
            shutil.copy(path, path.with_name(f"{path.stem}_c{copy}.yaml"))
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


def measure(label: str, root: Path, runs: int) -> None:
    ours = _wall([str(BIN / "marketops"), "validate"], root, runs)
    with tempfile.TemporaryDirectory() as tmp:
        count = sql_files(root, Path(tmp) / "sql")
        theirs = _wall([str(BIN / "sqlfluff"), "lint", "--dialect", "postgres", "--processes",
                        "1", str(Path(tmp) / "sql")], root, max(1, runs // 2), ok=(0, 1))
    tables = sum(len(yaml.safe_load(p.read_text())["tables"])
                 for p in (root / "schema").glob("*.yaml"))
    print(f"{label}: {tables} tables, {count} reports")
    print(f"  marketops validate (cold, median of {runs}): {ours:.3f} s"
          f"  [goal < 1 s: {'met' if ours < 1 else 'NOT met'}]")
    print(f"  baseline sqlfluff lint over the same {count} SQL files: {theirs:.3f} s")
    print(f"  ratio sqlfluff / marketops: {theirs / ours:.1f}x"
          f"  [goal >= 10x: {'met' if theirs / ours >= 10 else 'NOT met'}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("sqlfluff", path=str(BIN)) is None:
        raise SystemExit("sqlfluff is the baseline: pip install -e '.[bench]'")
    measure("repository definitions", ROOT, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        scaled_copy(Path(tmp))
        measure("scaled copy", Path(tmp), args.runs)


if __name__ == "__main__":
    main()
