"""Benchmark the scheduler.

1. Fire latency (actual start minus scheduled time) of a job firing every second, with three
   `marketops serve` replicas on an embedded PostgreSQL 18, against a baseline measured in the
   same run: a bare loop that sleeps until each slot (the best any scheduler can do here).
2. CPU cost of the loop's tick with 10,000 scheduled jobs, as a share of one core at one tick
   per second, against a baseline of asking croniter for each job's next time once per tick.

Run by hand:  python bench/scheduler.py [--seconds 40] [--jobs 10000]
Goals: p99 latency under 1 s; idle CPU under 5% of a core at 10,000 jobs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from croniter import croniter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.definitions.models.base import RunPolicy  # noqa: E402
from engine.runs.service import Scheduler  # noqa: E402
from engine.scheduling.jobs import Job  # noqa: E402
from engine.scheduling.schedule import Schedule  # noqa: E402
from runners.demo.mailbox import free_port  # noqa: E402
from runners.postgres.embedded import EmbeddedServer  # noqa: E402

BIN = Path(sys.executable).parent


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def baseline_latency(seconds: float) -> list[float]:
    """Sleep until each whole second and record how late we woke up."""
    late = []
    end = time.time() + seconds
    while time.time() < end:
        target = int(time.time()) + 1
        time.sleep(max(0.0, target - time.time()))
        late.append(time.time() - target)
    return late


def replica_latency(seconds: float, tmp: Path) -> list[float]:
    server = EmbeddedServer(tmp / "pg", free_port())
    server.start()
    try:
        dsn = server.dsn("postgres")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("create schema shop; create table shop.t (id int primary key)")
        root = tmp / "project"
        (root / "schema").mkdir(parents=True)
        (root / "definitions" / "reports").mkdir(parents=True)
        (root / "schema" / "shop.yaml").write_text(textwrap.dedent("""\
            name: shop
            owner: ops@corp.example
            description: bench
            tables:
              t:
                backup_exclude_reason: benchmark scratch table
                columns: {id: {type: integer, nullable: false}}
                primary_key: [id]
            """))
        (root / "definitions" / "reports" / "tick.yaml").write_text(textwrap.dedent("""\
            title: Tick
            description: every second
            owner: ops@corp.example
            cron: "* * * * * *"
            timezone: UTC
            period: {rolling: 1h}
            sql: select count(*) as n from shop.t t
            recipients: [{destination: archive}]
            """))
        (root / "marketops.yaml").write_text(
            f'databases: {{primary: {{dsn: "{dsn}"}}}}\n'
            f'destinations: {{archive: {{url: "file://{root}/out"}}}}\n'
            "reports: {destination: archive}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
        replicas = [subprocess.Popen([str(BIN / "marketops"), "--root", str(root), "serve",
                                      "--port", "0", "--worker", f"r{i}"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for i in range(3)]
        began = datetime.now(UTC)
        time.sleep(seconds)
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        for replica in replicas:
            replica.wait(60)
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(
                "select extract(epoch from claimed_at - slot)::float8 from marketops.runs "
                "where status = 'succeeded' and slot > %s", (began + timedelta(seconds=5),)
            ).fetchall()
        return [r[0] for r in rows]
    finally:
        server.stop()


def tick_cpu(n_jobs: int, ticks: int) -> tuple[float, float]:
    """CPU seconds per tick: our scheduler, and croniter's next time for every job."""
    crons = ["0 6 * * *", "15 * * * *", "0 7 * * 1", "30 2 1 * *", "*/10 * * * *", "0 9 * * 1-5"]
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"]
    policy = RunPolicy()
    jobs = [Job(f"report/j{i}", "report", f"j{i}", "o@x.example",
                Schedule(crons[i % len(crons)], zones[i % len(zones)]), policy, f"h{i}")
            for i in range(n_jobs)]
    scheduler = Scheduler()
    now = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)
    for job in jobs:
        scheduler.start(job, None, now)
    scheduler.due(jobs, now)  # warm the next-fire cache, as a running service has
    began = time.process_time()
    for k in range(ticks):
        scheduler.due(jobs, now + timedelta(seconds=k + 1))
    ours = (time.process_time() - began) / ticks
    began = time.process_time()
    for k in range(max(1, ticks // 10)):
        moment = datetime(2026, 3, 2, 10, 0, 31 + k)
        for job in jobs:
            croniter(job.schedule.cron if job.schedule else "", moment).get_next(datetime)
    baseline = (time.process_time() - began) / max(1, ticks // 10)
    return ours, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        base = baseline_latency(min(args.seconds, 20))
        ours = replica_latency(args.seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"fire latency, job every second, 3 replicas, {len(ours)} runs:")
    for q in (0.5, 0.99):
        b, o = _percentile(base, q), _percentile(ours, q)
        print(f"  p{int(q * 100)}: marketops {o * 1000:7.1f} ms   baseline sleep-until loop "
              f"{b * 1000:6.1f} ms   ratio {o / max(b, 1e-6):8.1f}x")
    print(f"  goal p99 < 1 s: {'met' if _percentile(ours, 0.99) < 1 else 'NOT met'}")
    per_tick, baseline = tick_cpu(args.jobs, 20)
    print(f"tick CPU with {args.jobs:,} jobs: marketops {per_tick * 1000:.1f} ms per tick "
          f"({per_tick * 100:.2f}% of a core at 1 tick/s); baseline croniter next-time for every "
          f"job {baseline * 1000:.1f} ms; ratio {per_tick / baseline:.3f}x")
    print(f"  goal < 5% of a core: {'met' if per_tick < 0.05 else 'NOT met'}")
    print(f"  (median baseline wake-up {statistics.median(base) * 1000:.2f} ms)")


if __name__ == "__main__":
    main()
