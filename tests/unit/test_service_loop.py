"""The service loop on an in-memory ledger, the clock set by the test: replicas run each slot
once, a dead replica's run is taken over once its lease expires, a failing run is retried as
its policy says and alerted once when it gives up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import JobError, TransientError
from engine.runs.ledger import Run
from engine.runs.service import Service, ServiceConfig
from engine.scheduling.jobs import Job, jobs
from tests.helpers import REVENUE, check
from tests.support.ledger import MemoryLedger

HOURLY = REVENUE.replace('cron: "0 6 * * *"', 'cron: "0 * * * *"').replace(
    "period: previous_day", "period: {rolling: 1h}").replace(
    "recipients:", "run: {misfire_grace: 90min, retries: 1}\nrecipients:")
START = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
LEASE = timedelta(seconds=30)


class Runner:
    """Runs report jobs by recording them; `fail` says how each attempt ends."""

    def __init__(self, fail: list[Exception] | None = None) -> None:
        self.calls: list[tuple[str, datetime, int]] = []
        self.fail = list(fail or [])

    def supports(self, job: Job) -> bool:
        return job.kind == "report"

    def __call__(self, job: Job, run: Run) -> dict[str, object]:
        self.calls.append((job.id, run.slot, run.attempt))
        if self.fail:
            raise self.fail.pop(0)
        return {"rows": 1}


def _jobs(tmp_path: Path) -> dict[str, Job]:
    project = check(tmp_path, {"definitions/reports/revenue.yaml": HOURLY}).project
    return {k: v for k, v in jobs(project).items() if k == "report/revenue"}


def _service(tmp_path: Path, ledger: MemoryLedger, runner: Runner, worker: str,
             alerts: list[Any] | None = None) -> Service:
    loaded = _jobs(tmp_path)
    service = Service(lambda: loaded, ledger, runner,  # type: ignore[arg-type]
                      ServiceConfig(worker=worker, lease=LEASE), clock=lambda: ledger.now,
                      on_failure=(lambda job, run, error: alerts.append((job.id, error)))
                      if alerts is not None else None)
    service.reload()
    service.tick()  # a job with no history starts watching now: it has missed nothing
    return service


def _settle(*services: Service) -> None:
    for service in services:
        for _, _, future in list(service.active.values()):
            future.result(timeout=10)
        service.tick()


def test_two_replicas_run_each_slot_once(tmp_path: Path) -> None:
    ledger = MemoryLedger(START)
    runner = Runner()
    a, b = (_service(tmp_path, ledger, runner, w) for w in ("a", "b"))
    for hour in range(3):
        ledger.now = START + timedelta(hours=hour, minutes=31)
        a.tick()
        b.tick()
        _settle(a, b)
    slots = [slot.hour for _, slot, _ in runner.calls]
    assert sorted(slots) == [11, 12, 13]  # once each, by whichever replica claimed it
    assert set(ledger.statuses("report/revenue").values()) == {"succeeded"}
    a.pool.shutdown()
    b.pool.shutdown()


def test_a_dead_replicas_run_is_taken_over_once_its_lease_expires(tmp_path: Path) -> None:
    ledger = MemoryLedger(START + timedelta(minutes=31))
    dead = ledger.claim("report/revenue", datetime(2026, 3, 1, 11, tzinfo=UTC), "dead", LEASE)
    assert dead is not None
    runner = Runner()
    alive = _service(tmp_path, ledger, runner, "alive")
    ledger.now += LEASE / 2
    alive.tick()
    _settle(alive)
    assert runner.calls == []  # the lease is live: not taken
    ledger.now += LEASE
    alive.tick()
    _settle(alive)
    assert runner.calls == [("report/revenue", dead.slot, 2)]
    assert ledger.runs[dead.id].status == "succeeded" and ledger.runs[dead.id].worker == "alive"
    alive.pool.shutdown()


def test_a_transient_failure_is_retried_and_giving_up_alerts_once(tmp_path: Path) -> None:
    ledger = MemoryLedger(START)
    runner = Runner(fail=[TransientError("smtp down"), TransientError("smtp still down")])
    alerts: list[Any] = []
    service = _service(tmp_path, ledger, runner, "a", alerts)
    ledger.now = START + timedelta(minutes=31)
    service.tick()
    _settle(service)
    (run_id, row), = ledger.runs.items()
    assert row.status == "retrying" and row.next_attempt_at is not None
    ledger.now = row.next_attempt_at
    service.tick()
    _settle(service)
    assert [attempt for _, _, attempt in runner.calls] == [1, 2]  # retries: 1
    assert ledger.runs[run_id].status == "failed"
    assert len(alerts) == 1 and "smtp still down" in alerts[0][1]
    service.pool.shutdown()


def test_a_job_error_fails_at_once_without_a_retry(tmp_path: Path) -> None:
    ledger = MemoryLedger(START)
    runner = Runner(fail=[JobError("relation does not exist")])
    alerts: list[Any] = []
    service = _service(tmp_path, ledger, runner, "a", alerts)
    ledger.now = START + timedelta(minutes=31)
    service.tick()
    _settle(service)
    assert len(runner.calls) == 1
    assert set(ledger.statuses("report/revenue").values()) == {"failed"}
    assert alerts == [("report/revenue", "relation does not exist")]
    service.pool.shutdown()
