"""The service's scheduling decisions, with the time passed in: misfire grace, coalescing."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.runs.service import Scheduler
from engine.scheduling.jobs import Job, jobs
from tests.helpers import REVENUE, check

HOURLY = REVENUE.replace('cron: "0 6 * * *"', 'cron: "0 * * * *"').replace(
    "period: previous_day", "period: {rolling: 1h}").replace(
    "recipients:", "run: {misfire_grace: 90min}\nrecipients:")


def _job(tmp_path: Path) -> Job:
    project = check(tmp_path, {"definitions/reports/revenue.yaml": HOURLY}).project
    return jobs(project)["report/revenue"]


def test_new_job_starts_now_and_runs_each_slot_once(tmp_path: Path) -> None:
    job = _job(tmp_path)
    scheduler = Scheduler()
    now = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    scheduler.start(job, None, now)
    assert scheduler.due([job], now).run == []
    decision = scheduler.due([job], now + timedelta(minutes=31))
    assert [s for _, s in decision.run] == [datetime(2026, 3, 1, 11, tzinfo=UTC)]
    assert scheduler.due([job], now + timedelta(minutes=32)).run == []  # not twice


def test_missed_slots_within_grace_coalesce_and_older_are_skipped(tmp_path: Path) -> None:
    job = _job(tmp_path)
    scheduler = Scheduler()
    now = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    scheduler.start(job, datetime(2026, 3, 1, 6, tzinfo=UTC), now)  # down since 06:00
    decision = scheduler.due([job], now)
    assert [s.hour for _, s in decision.run] == [10]
    reasons = {s.hour: r for _, s, r in decision.skip}
    assert sorted(reasons) == [7, 8, 9]
    assert reasons[9].startswith("coalesced into the slot at 2026-03-01T10:00")
    assert "beyond the misfire grace" in reasons[7] and "beyond" in reasons[8]


def test_retry_backoff_doubles_with_bounded_jitter(tmp_path: Path) -> None:
    import random

    from engine.runs.execution import backoff

    job = _job(tmp_path)  # retry_backoff defaults to 30 s
    rng = random.Random(7)
    delays = [[backoff(job, attempt, rng).total_seconds() for _ in range(200)]
              for attempt in (1, 2, 3)]
    for attempt, values in enumerate(delays, start=1):
        base = 30 * 2 ** (attempt - 1)
        assert 0.5 * base <= min(values) and max(values) <= 1.5 * base
        assert len(set(values)) > 150  # jittered, so replicas do not retry in lockstep
    assert backoff(job, 30, rng).total_seconds() == 6 * 3600  # capped
