"""Runs and deliveries fenced by their attempt, on an in-memory ledger: a worker that lost its
run records nothing and claims nothing; a refusal for good is final, a deferral is retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from engine.definitions.models.base import RunPolicy
from engine.errors import LeaseLost, TransientError
from engine.runs.execution import execute_run
from engine.runs.fencing import deferred
from engine.runs.ledger import Ledger, Run
from engine.scheduling.jobs import Job
from tests.support.ledger import MemoryLedger

NOW = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
SLOW_BEAT = timedelta(hours=3)  # no heartbeat fires while a unit test runs
JOB = Job("report/tick", "report", "tick", "ops@corp.example", None, RunPolicy(), "h")


def _taken_over_while_running() -> tuple[MemoryLedger, Run, Run]:
    ledger = MemoryLedger(NOW)
    first = ledger.claim(JOB.id, NOW, "sleepy", LEASE)
    ledger.now = NOW + LEASE + timedelta(seconds=1)  # frozen past its lease
    second = ledger.take_over_run(first.id, "awake", LEASE)
    return ledger, first, second


def _run(ledger: MemoryLedger, execute: Any, run: Run, worker: str,
         failures: list[str]) -> Any:
    return execute_run(cast(Ledger, ledger), execute, JOB, run, worker, SLOW_BEAT,
                       on_failure=lambda job, r, error: failures.append(error))


def test_a_side_effect_refused_by_the_fence_ends_the_run_with_nothing_recorded() -> None:
    ledger, first, _ = _taken_over_while_running()
    failures: list[str] = []

    def deliver(job: Job, run: Run) -> dict[str, Any]:
        ledger.begin_delivery(run.id, "email:a@corp.example", run.attempt)
        raise AssertionError("sent after the fence refused")

    outcome = _run(ledger, deliver, first, "sleepy", failures)
    assert outcome.status == "lost"
    assert outcome.error == (f"run {first.id} attempt 1 lost the run: "
                             "attempt 2 has taken the run over")
    row = ledger.runs[first.id]
    assert (row.status, row.attempt, row.worker, row.error) == ("running", 2, "awake", None)
    assert failures == [] and ledger.deliveries == {}  # no alert, no claim


def test_a_result_finished_after_a_take_over_is_not_recorded() -> None:
    ledger, first, _ = _taken_over_while_running()
    failures: list[str] = []
    outcome = _run(ledger, lambda job, run: {"rows": 1}, first, "sleepy", failures)
    assert outcome.status == "lost"
    assert ledger.runs[first.id].outputs is None and ledger.runs[first.id].status == "running"


def test_a_transient_failure_after_a_take_over_hands_nothing_back() -> None:
    ledger, first, _ = _taken_over_while_running()

    def flaky(job: Job, run: Run) -> dict[str, Any]:
        raise TransientError("SMTP unreachable")

    _run(ledger, flaky, first, "sleepy", [])
    assert ledger.runs[first.id].status == "running"  # attempt 2's, not 'retrying'


def test_the_current_attempt_records_its_result() -> None:
    ledger = MemoryLedger(NOW)
    run = ledger.claim(JOB.id, NOW, "solo", LEASE)
    outcome = _run(ledger, lambda job, r: {"rows": 3}, run, "solo", [])
    assert outcome.status == "succeeded" and ledger.runs[run.id].outputs == {"rows": 3}


def test_a_delivery_is_claimed_by_one_live_attempt_only() -> None:
    ledger = MemoryLedger(NOW)
    first = ledger.claim(JOB.id, NOW, "sleepy", LEASE)
    assert ledger.begin_delivery(first.id, "email:a", 1)
    assert ledger.finish_delivery(first.id, "email:a", None, attempt=1)
    assert ledger.begin_delivery(first.id, "email:b", 1)  # then frozen before DATA
    assert not ledger.begin_delivery(first.id, "email:b", 1)  # never twice by one attempt
    ledger.now = NOW + LEASE + timedelta(seconds=1)
    with pytest.raises(LeaseLost, match="its lease expired"):  # nobody took over yet
        ledger.begin_delivery(first.id, "email:c", 1)
    second = ledger.take_over_run(first.id, "awake", LEASE)
    assert ledger.begin_delivery(second.id, "email:a", 2).reason == "sent earlier"
    assert ledger.begin_delivery(second.id, "email:b", 2)  # the frozen attempt's claim
    # The frozen worker wakes: it can neither record over attempt 2's claim nor claim more.
    assert not ledger.finish_delivery(first.id, "email:b", None, attempt=1)
    with pytest.raises(LeaseLost, match="attempt 2 has taken the run over"):
        ledger.begin_delivery(first.id, "email:c", 1)
    with pytest.raises(LeaseLost):
        ledger.fence(first.id, 1)
    ledger.fence(second.id, 2)


def test_a_refusal_for_good_is_final_and_a_deferral_is_retried() -> None:
    ledger = MemoryLedger(NOW)
    run = ledger.claim(JOB.id, NOW, "solo", LEASE)
    for recipient in ("email:gone", "email:busy"):
        assert ledger.begin_delivery(run.id, recipient, 1)
    ledger.finish_delivery(run.id, "email:gone", "recipients refused: gone (550 no such "
                           "mailbox)", attempt=1, permanent=True)
    ledger.finish_delivery(run.id, "email:busy", "recipients deferred: busy (451)", attempt=1)
    ledger.retry_later(run.id, "solo", timedelta(0), "1 delivery failed for now", attempt=1)
    ledger.runs[run.id].status = "running"  # the retry claimed by the next attempt
    ledger.runs[run.id].attempt = 2
    ledger.runs[run.id].lease_until = NOW + LEASE
    gone = ledger.begin_delivery(run.id, "email:gone", 2)
    assert not gone and gone.reason.startswith("refused earlier, not retried: recipients "
                                               "refused: gone (550")
    assert ledger.begin_delivery(run.id, "email:busy", 2).reason == "retry"


@pytest.mark.parametrize(("codes", "later"), [
    ([421], True), ([450, 451, 452], True), ([499], True),
    ([550], False), ([554], False), ([451, 550], False), ([500], False),
    ([399], False), ([600], False), ([], False),
])
def test_only_4xx_smtp_refusals_are_tried_again(codes: list[int], later: bool) -> None:
    assert deferred(codes) is later
