"""An in-memory ledger for unit tests of the service loop, run execution and deliveries: the
runs table's rows, the same claim rules (one run per job and slot, a lease taken over once it
expired, a retry once it is due) and the same fencing decisions (engine.runs.fencing) as the
PostgreSQL ledger, with the clock set by the test."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.errors import LeaseLost
from engine.runs.fencing import Delivery, DeliveryClaim, Holder, claim_delivery, fence
from engine.runs.ledger import Run


@dataclass
class Row:
    job: str
    slot: datetime
    worker: str | None
    attempt: int = 1
    status: str = "running"
    lease_until: datetime | None = None
    error: str | None = None
    outputs: dict[str, Any] | None = None
    next_attempt_at: datetime | None = None
    trigger: str = "schedule"


@dataclass
class MemoryLedger:
    now: datetime
    runs: dict[int, Row] = field(default_factory=dict)
    deliveries: dict[tuple[int, str], Delivery] = field(default_factory=dict)
    held: dict[str, tuple[str | None, str | None, datetime]] = field(default_factory=dict)

    lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, run_id: int) -> Run:
        row = self.runs[run_id]
        return Run(run_id, row.job, row.slot, row.attempt, row.trigger)

    def claim(self, job: str, slot: datetime, worker: str, lease: timedelta,
              definition_hash: str = "", git_commit: str | None = None,
              trigger: str = "schedule") -> Run | None:
        """The slot's run, or None when the (job, slot) is recorded already."""
        with self.lock:
            if any(r.job == job and r.slot == slot for r in self.runs.values()):
                return None
            run_id = len(self.runs) + 1
            self.runs[run_id] = Row(job, slot, worker, lease_until=self.now + lease,
                                    trigger=trigger)
            return self._run(run_id)

    def take_over_run(self, run_id: int, worker: str, lease: timedelta) -> Run:
        """What another replica does once the lease ran out: the next attempt is its."""
        row = self.runs[run_id]
        assert row.status == "running" and row.lease_until is not None
        assert row.lease_until < self.now
        row.worker, row.attempt, row.lease_until = worker, row.attempt + 1, self.now + lease
        return self._run(run_id)

    def suspended(self) -> dict[str, tuple[str | None, str | None, datetime]]:
        """job -> (reason, by whom, since when), as `marketops suspend` holds them."""
        return dict(self.held)

    def take_over(self, worker: str, lease: timedelta, jobs: list[str]) -> Run | None:
        """The oldest slot of `jobs` whose lease expired or whose retry is due, now ours."""
        with self.lock:
            due = sorted((row.slot, run_id) for run_id, row in self.runs.items()
                         if row.job in jobs and (
                             (row.status == "running" and row.lease_until is not None
                              and row.lease_until < self.now)
                             or (row.status == "retrying" and row.next_attempt_at is not None
                                 and row.next_attempt_at <= self.now)))
            if not due:
                return None
            row = self.runs[due[0][1]]
            row.status, row.worker, row.attempt = "running", worker, row.attempt + 1
            row.lease_until, row.next_attempt_at = self.now + lease, None
            return self._run(due[0][1])

    def record_skipped(self, job: str, slot: datetime, reason: str, definition_hash: str = "",
                       trigger: str = "schedule") -> bool:
        with self.lock:
            if any(r.job == job and r.slot == slot for r in self.runs.values()):
                return False
            self.runs[len(self.runs) + 1] = Row(job, slot, None, status="skipped",
                                                error=reason, trigger=trigger)
            return True

    def last_slots(self, jobs: list[str]) -> dict[str, datetime]:
        latest: dict[str, datetime] = {}
        for row in self.runs.values():
            if row.job in jobs and (row.job not in latest or row.slot > latest[row.job]):
                latest[row.job] = row.slot
        return latest

    def is_running(self, job: str) -> bool:
        return any(r.job == job and r.status == "running" and r.lease_until is not None
                   and r.lease_until >= self.now for r in self.runs.values())

    def cancel_running(self, job: str, reason: str) -> int:
        cancelled = [r for r in self.runs.values() if r.job == job and r.status == "running"]
        for row in cancelled:
            row.status, row.error, row.lease_until = "cancelled", reason, None
        return len(cancelled)

    def statuses(self, job: str) -> dict[datetime, str]:
        """Each recorded slot of `job` and its status (for assertions)."""
        return {r.slot: r.status for r in self.runs.values() if r.job == job}

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
            row.next_attempt_at = self.now + delay
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
