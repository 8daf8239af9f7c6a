"""One recorded delivery (engine.app.deliveries.deliver_once) on the in-memory ledger: sent
once, a deferral tried again by the next attempt, a refusal for good never again, a lost run
sends nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.app.deliveries import deliver_once
from engine.errors import LeaseLost, TransientError
from runners.delivery.send import DeliveryError
from tests.support.ledger import MemoryLedger

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _sender(log: list[str], *fail: Exception) -> object:
    failures = list(fail)

    def send(queued_at: datetime | None) -> None:
        log.append(f"sent queued at {queued_at}")
        if failures:
            raise failures.pop(0)
    return send


def test_sent_once_then_sent_earlier() -> None:
    ledger = MemoryLedger(NOW)
    run = ledger.claim("report/x", NOW, "a", LEASE)
    assert run is not None
    log: list[str] = []
    send = _sender(log)
    assert deliver_once(ledger, run, "email:cfo@corp.example", send).status == "sent"  # type: ignore[arg-type]
    again = deliver_once(ledger, run, "email:cfo@corp.example", send)  # type: ignore[arg-type]
    assert again.status == "sent earlier" and len(log) == 1


def test_a_deferral_is_tried_again_by_the_next_attempt_and_a_refusal_never() -> None:
    ledger = MemoryLedger(NOW)
    run = ledger.claim("report/x", NOW, "a", LEASE)
    assert run is not None
    log: list[str] = []
    deferred = deliver_once(ledger, run, "email:a@corp.example",
                            _sender(log, TransientError("421 try later")))  # type: ignore[arg-type]
    refused = deliver_once(ledger, run, "email:b@corp.example",
                           _sender(log, DeliveryError("550 no such user")))  # type: ignore[arg-type]
    assert deferred.transient and not deferred.refused
    assert refused.refused and refused.status.startswith("failed: ")
    ledger.retry_later(run.id, "a", timedelta(0), "deferred", attempt=run.attempt)
    retry = ledger.take_over("a", LEASE, ["report/x"])
    assert retry is not None and retry.attempt == 2
    assert deliver_once(ledger, retry, "email:a@corp.example", _sender(log)).status == "sent"  # type: ignore[arg-type]
    final = deliver_once(ledger, retry, "email:b@corp.example", _sender(log))  # type: ignore[arg-type]
    assert final.refused and final.status.startswith("refused earlier")
    assert len(log) == 3  # a twice, b once


def test_a_run_that_lost_its_lease_sends_nothing() -> None:
    ledger = MemoryLedger(NOW)
    run = ledger.claim("report/x", NOW, "sleepy", LEASE)
    assert run is not None
    ledger.now = NOW + LEASE * 2
    ledger.take_over_run(run.id, "awake", LEASE)
    log: list[str] = []
    with pytest.raises(LeaseLost):
        deliver_once(ledger, run, "email:cfo@corp.example", _sender(log))  # type: ignore[arg-type]
    assert log == []
