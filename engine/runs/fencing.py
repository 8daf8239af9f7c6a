"""Fencing a run's side effects, and the keys receivers de-duplicate a re-send by.

A run's fencing token is its attempt number (`marketops.runs.attempt`), incremented at every
claim and take-over. A worker may send, copy or publish for a run only while the ledger still
records its attempt as the run's, running under a live lease; the ledger asks `fence` in the
same transaction as the update that records the side effect. Deliveries remember the attempt
that claimed them, so a delivery is claimed by exactly one live attempt (`claim_delivery`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr


@dataclass(frozen=True)
class Holder:
    """The run's ledger row, as the fence reads it."""

    status: str
    attempt: int
    lease_until: datetime | None


def fence(holder: Holder | None, attempt: int, now: datetime) -> str | None:
    """Why `attempt` may no longer act for the run; None while it still holds it."""
    if holder is None:
        return "the run is not in the ledger"
    if holder.attempt != attempt:
        return f"attempt {holder.attempt} has taken the run over"
    if holder.status == "running":
        if holder.lease_until is None or holder.lease_until <= now:
            return "its lease expired"
        return None
    if holder.status == "failed":
        return None  # the failure alert, sent by the attempt that recorded the failure
    return f"the run is {holder.status}"


@dataclass(frozen=True)
class Delivery:
    """A (run, recipient) row of the ledger: its state and the attempt that claimed it."""

    status: str
    claimed_by: int | None
    permanent: bool = False
    error: str | None = None


@dataclass(frozen=True)
class DeliveryClaim:
    """Whether to send now, and if not, why (true when the send should go ahead)."""

    send: bool
    reason: str
    queued_at: datetime | None = None

    def __bool__(self) -> bool:
        return self.send


def claim_delivery(row: Delivery | None, attempt: int) -> DeliveryClaim:
    """May `attempt` (which holds the run) send to this recipient now?

    A pending row of an older attempt belongs to a worker that lost the run while sending: it
    is sent again (the receiver de-duplicates by Message-ID). A pending row of this attempt is
    already being sent; a refusal for good is final."""
    if row is None:
        return DeliveryClaim(True, "new")
    if row.status == "sent":
        return DeliveryClaim(False, "sent earlier")
    if row.status == "failed" and row.permanent:
        return DeliveryClaim(False, f"refused earlier, not retried: {row.error or 'refused'}")
    if row.status == "pending" and row.claimed_by is not None and row.claimed_by >= attempt:
        return DeliveryClaim(False, f"being sent by attempt {row.claimed_by}")
    if row.status == "pending":
        return DeliveryClaim(True, "claimed again from an attempt that lost the run")
    return DeliveryClaim(True, "retry")


def deferred(codes: Iterable[int]) -> bool:
    """Whether an SMTP refusal is only for now (every code 4xx: try again later); any 5xx, or
    a code outside the SMTP ranges, is a refusal for good that no retry can change."""
    found = list(codes)
    return bool(found) and all(400 <= code < 500 for code in found)


def sender_domain(sender: str) -> str:
    """The domain of the sender's address, the right-hand side of its Message-IDs (a sender
    without one, such as a bare local name, gets a reserved domain that is never real)."""
    local, at, domain = parseaddr(sender)[1].rpartition("@")
    return domain.strip() if at and local and domain.strip() else "marketops.invalid"


def message_id(run_id: int, recipient: str, sender: str) -> str:
    """A Message-ID that every send of this run's mail to `recipient` shares (so a re-send
    after a crash between DATA and the server's 250 is recognisably the same message)."""
    digest = hashlib.sha256(f"{run_id}\0{recipient}".encode()).hexdigest()[:24]
    domain = sender_domain(sender)
    return f"<marketops.run{run_id}.{digest}@{domain}>"
