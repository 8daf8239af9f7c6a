"""The fencing decision and delivery claims as pure functions: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.runs.fencing import Delivery, Holder, claim_delivery, fence, message_id

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
LIVE = NOW + timedelta(seconds=20)


def test_the_current_attempt_under_a_live_lease_may_act() -> None:
    assert fence(Holder("running", 3, LIVE), 3, NOW) is None


@pytest.mark.parametrize(("holder", "why"), [
    (None, "the run is not in the ledger"),
    (Holder("running", 4, LIVE), "attempt 4 has taken the run over"),
    (Holder("running", 3, NOW), "its lease expired"),
    (Holder("running", 3, NOW - timedelta(seconds=1)), "its lease expired"),
    (Holder("running", 3, None), "its lease expired"),
    (Holder("retrying", 3, None), "the run is retrying"),
    (Holder("cancelled", 3, None), "the run is cancelled"),
    (Holder("succeeded", 3, None), "the run is succeeded"),
    (Holder("failed", 4, None), "attempt 4 has taken the run over"),
])
def test_a_worker_that_lost_the_run_is_fenced(holder: Holder | None, why: str) -> None:
    assert fence(holder, 3, NOW) == why


def test_the_attempt_that_recorded_a_failure_may_send_its_alert() -> None:
    assert fence(Holder("failed", 3, None), 3, NOW) is None


def test_claims() -> None:
    assert claim_delivery(None, 2).send
    assert not claim_delivery(Delivery("sent", 1), 2)
    assert claim_delivery(Delivery("sent", 1), 2).reason == "sent earlier"
    refused = claim_delivery(Delivery("failed", 1, True, "recipients refused: x (550)"), 2)
    assert not refused and refused.reason == ("refused earlier, not retried: "
                                              "recipients refused: x (550)")
    assert claim_delivery(Delivery("failed", 1, False, "deferred (451)"), 2).send
    # Pending under this very attempt: being sent; never claimed a second time.
    assert not claim_delivery(Delivery("pending", 2), 2)
    assert claim_delivery(Delivery("pending", 2), 2).reason == "being sent by attempt 2"
    # Pending under an older attempt: that worker lost the run (the fence says this attempt
    # holds it), so the delivery is claimed again.
    assert claim_delivery(Delivery("pending", 1), 2).send
    assert claim_delivery(Delivery("pending", None), 2).send  # recorded before fencing


def test_message_ids_are_stable_per_run_and_recipient() -> None:
    one = message_id(7, "email:a@corp.example", "Reports <reports@corp.example>")
    assert one == message_id(7, "email:a@corp.example", "Reports <reports@corp.example>")
    assert one.startswith("<marketops.run7.") and one.endswith("@corp.example>")
    assert one != message_id(7, "email:b@corp.example", "reports@corp.example")
    assert one != message_id(8, "email:a@corp.example", "reports@corp.example")
    assert "corp" not in one.split("@")[0]  # the address itself is not spelled out
    assert message_id(7, "email:a@x", "reports").endswith("@marketops.invalid>")
