"""Benchmark: CSV export of a multi-million-row report, against psql's \\copy of the same query
to a file, in the same run; and the exporter's peak memory at each size.

Run by hand:  python bench/report_export.py [--rows 1000000 5000000]
Goals: throughput >= 0.9x psql; peak memory flat, under 200 MB, at 1M and 5M rows.
The report runs in a child process so its peak memory (VmHWM) is measured alone.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runners.demo.mailbox import free_port  # noqa: E402
from runners.postgres.embedded import EmbeddedServer, embedded_bin_dir  # noqa: E402

QUERY = ("select t.id, t.amount, t.placed_at, t.label from bench.facts t "
         "where t.id <= {rows} order by t.id")

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from datetime import timedelta
from pathlib import Path
from runners.report.query import ReportRequest, run_report
began = time.perf_counter()
psql = {psql!r}
done = run_report(ReportRequest("export", {dsn!r}, {sql!r}, {{}}, timedelta(hours=1),
                                 100_000_000, Path({out!r}), "UTC",
                                 psql=Path(psql) if psql else None))
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(done.rows, time.perf_counter() - began, hwm)
"""


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    args = parser.parse_args()
    biggest = max(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp) / "pg", free_port())
        server.start()
        try:
            dsn = server.dsn("postgres")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("create schema bench")
                conn.execute(f"""create table bench.facts as
                    select g as id, round((random() * 1000)::numeric, 2) as amount,
                           now() - g * interval '1 second' as placed_at,
                           'label ' || (g % 1000) as label
                    from generate_series(1, {biggest}) g""".encode())
                conn.execute("alter table bench.facts add primary key (id)")
                conn.execute("vacuum analyze bench.facts")
            for rows in sorted(args.rows):
                sql = QUERY.format(rows=rows)
                out = Path(tmp) / f"export-{rows}"
                began = time.perf_counter()
                subprocess.run([str(embedded_bin_dir() / "psql"), dsn, "-q", "-c",
                                f"\\copy ({sql}) to '{Path(tmp) / 'psql.csv'}' csv header"],
                               check=True)
                psql_seconds = time.perf_counter() - began
                for label, psql in (("psql COPY path", str(embedded_bin_dir() / "psql")),
                                    ("psycopg stream path", "")):
                    child = subprocess.run(
                        [sys.executable, "-c", CHILD.format(root=str(ROOT), dsn=dsn, sql=sql,
                                                            out=str(out), psql=psql)],
                        check=True, capture_output=True, text=True)
                    got, seconds, maxrss_kb = child.stdout.split()
                    assert int(got) == rows
                    same = _digest(out / "export.csv") == _digest(Path(tmp) / "psql.csv")
                    ratio = psql_seconds / float(seconds)
                    rss = int(maxrss_kb) / 1024
                    print(f"{rows:>10,} rows, marketops {label}: {float(seconds):6.2f} s "
                          f"({rows / float(seconds):>10,.0f} rows/s); baseline psql \\copy "
                          f"{psql_seconds:6.2f} s ({rows / psql_seconds:>10,.0f} rows/s): "
                          f"ratio {ratio:.2f}x [goal >= 0.9x: "
                          f"{'met' if ratio >= 0.9 else 'NOT met'}]; peak RSS {rss:.0f} MB "
                          f"[goal < 200 MB: {'met' if rss < 200 else 'NOT met'}]; "
                          f"identical CSV: {same}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
