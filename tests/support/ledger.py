"""An in-memory ledger for unit tests of run execution: the runs table's rows and the same
fencing decisions (engine.fencing) the PostgreSQL ledger takes, with the clock passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.errors import LeaseLost
from engine.fencing import Delivery, DeliveryClaim, Holder, claim_delivery, fence
from engine.ledger import Run


@dataclass
class Row:
    job: str
    slot: datetime
    worker: str
    attempt: int = 1
    status: str = "running"
    lease_until: datetime | None = None
    error: str | None = None
    outputs: dict[str, Any] | None = None


@dataclass
class MemoryLedger:
    now: datetime
    runs: dict[int, Row] = field(default_factory=dict)
    deliveries: dict[tuple[int, str], Delivery] = field(default_factory=dict)

    def claim(self, job: str, slot: datetime, worker: str, lease: timedelta) -> Run:
        run_id = len(self.runs) + 1
        self.runs[run_id] = Row(job, slot, worker, lease_until=self.now + lease)
        return Run(run_id, job, slot, 1, "schedule")

    def take_over(self, run_id: int, worker: str, lease: timedelta) -> Run:
        """What another replica does once the lease ran out: the next attempt is its."""
        row = self.runs[run_id]
        assert row.status == "running" and row.lease_until is not None
        assert row.lease_until < self.now
        row.worker, row.attempt, row.lease_until = worker, row.attempt + 1, self.now + lease
        return Run(run_id, row.job, row.slot, row.attempt, "schedule")

    def _ours(self, run_id: int, worker: str, attempt: int | None) -> Row | None:
        row = self.runs.get(run_id)
        if row is None or row.worker != worker or row.status != "running":
            return None
        return row if attempt is None or row.attempt == attempt else None

    def heartbeat(self, run_id: int, worker: str, lease: timedelta,
                  attempt: int | None = None) -> bool:
        row = self._ours(run_id, worker, attempt)
        if row is not None:
            row.lease_until = self.now + lease
        return row is not None

    def finish(self, run_id: int, worker: str, status: str, error: str | None = None,
               outputs: dict[str, Any] | None = None, attempt: int | None = None) -> bool:
        row = self._ours(run_id, worker, attempt)
        if row is not None:
            row.status, row.error, row.outputs, row.lease_until = status, error, outputs, None
        return row is not None

    def retry_later(self, run_id: int, worker: str, delay: timedelta, error: str,
                    attempt: int | None = None) -> bool:
        row = self._ours(run_id, worker, attempt)
        if row is not None:
            row.status, row.error, row.lease_until = "retrying", error, None
        return row is not None

    def fence(self, run_id: int, attempt: int) -> None:
        row = self.runs.get(run_id)
        why = fence(Holder(row.status, row.attempt, row.lease_until) if row else None, attempt,
                    self.now)
        if why is not None:
            raise LeaseLost(f"run {run_id} attempt {attempt} lost the run: {why}")

    def begin_delivery(self, run_id: int, recipient: str, attempt: int) -> DeliveryClaim:
        self.fence(run_id, attempt)
        claim = claim_delivery(self.deliveries.get((run_id, recipient)), attempt)
        if claim:
            self.deliveries[(run_id, recipient)] = Delivery("pending", attempt)
        return claim

    def finish_delivery(self, run_id: int, recipient: str, error: str | None, *,
                        attempt: int | None = None, permanent: bool = False) -> bool:
        row = self.deliveries.get((run_id, recipient))
        if row is None or (attempt is not None and row.claimed_by != attempt):
            return False
        self.deliveries[(run_id, recipient)] = Delivery(
            "failed" if error else "sent", row.claimed_by, bool(error) and permanent, error)
        return True
