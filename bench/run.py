"""Benchmark: `marketops run report/<id>` of fast reports against psql's COPY of the same
query (same expanded SQL, same parameters, same session TimeZone), in the same run.

Run by hand:  python bench/run.py --root DIR [--reports data_quality search_quality]
                                 [--runs 5] [--other /path/to/other/marketops]
DIR is a repository where `marketops demo` has run (its embedded server up, its data in).
`--other` times a second marketops executable on the same reports (e.g. main's, to compare
before and after a change in one run).
Goal (issue 19): `marketops run` of a fast report no more than 0.4 s slower than psql.
`marketops run` does more than psql (every output format of the report, the ledger, its
deliveries: "sent earlier" on a slot already run), so the difference is the upper bound of
the engine's overhead, not of the query.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.app.context import App, latest_slot  # noqa: E402
from engine.scheduling.jobs import jobs  # noqa: E402
from runners.postgres.embedded import embedded_bin_dir  # noqa: E402


def literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


def median_wall(argv: list[str], runs: int, cwd: Path, env: dict[str, str],
                stdin: str | None = None) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True,
                              text=True, check=False)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"{argv[:3]} failed: {done.stderr[-800:]}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--reports", nargs="+", default=["data_quality", "search_quality"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--other", type=Path, default=None)
    args = parser.parse_args()
    root = args.root.resolve()
    app = App(root)
    project = app.defs.project
    dsn = app.dsn("reports")
    found = jobs(project)
    psql = str(embedded_bin_dir() / "psql")
    ours = str(Path(sys.executable).parent / "marketops")
    env = dict(os.environ)
    print(f"median of {args.runs} runs each; psql: COPY (query) TO STDOUT CSV HEADER")
    for report in args.reports:
        job = found[f"report/{report}"]
        assert job.sql is not None and job.report is not None
        slot = latest_slot(job, datetime.now(UTC))
        variables = [f"--set={k}={literal(v)}" for k, v in job.parameters(slot).items()]
        script = f"COPY ({job.sql.rstrip().rstrip(';')}) TO STDOUT WITH (FORMAT csv, HEADER)\n"
        baseline = median_wall([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *variables,
                                "-o", os.devnull, dsn], args.runs, root,
                               {**env, "PGTZ": job.report.timezone}, script)
        engine = median_wall([ours, "run", f"report/{report}"], args.runs, root, env)
        line = (f"  report/{report:<22} psql {baseline:6.3f} s  marketops run {engine:6.3f} s"
                f"  +{engine - baseline:.3f} s  ratio {engine / baseline:5.1f}x  "
                f"[goal <= +0.4 s: {'met' if engine - baseline <= 0.4 else 'NOT met'}]")
        if args.other is not None:
            other = median_wall([str(args.other), "run", f"report/{report}"], args.runs,
                                root, env)
            line += f"\n  {'':<29} other {other:6.3f} s: this one is {other / engine:.2f}x faster"
        print(line)


if __name__ == "__main__":
    main()
