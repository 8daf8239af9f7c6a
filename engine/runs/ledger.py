"""The run ledger in PostgreSQL: one row per (job, slot), claimed exactly once across replicas.

Claims are `INSERT ... ON CONFLICT DO NOTHING` on the unique (job, slot); a claim carries a
lease renewed by heartbeat, and a run whose worker died is taken over once its lease expires
(`FOR UPDATE SKIP LOCKED`). All times come from the database clock, shared by every replica.
The SQL is in ledger.sql, one named query per statement (procrastinate's layout).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from engine.backups.auditchain import Head
from engine.errors import LeaseLost
from engine.masking import mask
from engine.runs.fencing import Delivery, DeliveryClaim, Holder, claim_delivery, fence


def named_queries(text: str) -> dict[str, str]:
    """The queries of a .sql file by name: each follows a line `-- name --` (procrastinate's
    layout), its leading comment lines kept out."""
    queries: dict[str, str] = {}
    for match in re.finditer(r"^-- ([a-z_]+) --\n(.*?)(?=^-- [a-z_]+ --\n|\Z)", text,
                             re.S | re.M):
        body = [line for line in match.group(2).splitlines() if not line.startswith("--")]
        queries[match.group(1)] = "\n".join(body).strip()
    return queries


QUERIES = named_queries(Path(__file__).with_name("ledger.sql").read_text(encoding="utf-8"))

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "runs and deliveries", """
        create table marketops.runs (
            id bigint generated always as identity primary key,
            job text not null,
            slot timestamptz not null,
            status text not null check (status in
                ('running', 'retrying', 'succeeded', 'failed', 'skipped', 'cancelled')),
            trigger text not null default 'schedule',
            attempt integer not null default 0,
            worker text,
            claimed_at timestamptz,
            heartbeat_at timestamptz,
            lease_until timestamptz,
            started_at timestamptz,
            finished_at timestamptz,
            next_attempt_at timestamptz,
            error text,
            notes text,
            outputs jsonb not null default '{}',
            definition_hash text not null,
            git_commit text,
            unique (job, slot)
        );
        create index runs_pending on marketops.runs (status, lease_until, next_attempt_at)
            where status in ('running', 'retrying');
        create index runs_job_slot on marketops.runs (job, slot desc);
        create table marketops.deliveries (
            run_id bigint not null references marketops.runs (id),
            recipient text not null,
            status text not null check (status in ('pending', 'sent', 'failed')),
            attempts integer not null default 0,
            last_error text,
            sent_at timestamptz,
            primary key (run_id, recipient)
        );
    """),
    (2, "audit vault chain heads", """
        create table marketops.audit_heads (
            tier text not null,
            table_name text not null,
            batches integer not null,
            last_hash text not null,
            last_id bigint,
            signature text,
            recorded_at timestamptz not null default now(),
            primary key (tier, table_name)
        );
    """),
    (3, "deliveries fenced by the claiming attempt", """
        alter table marketops.deliveries
            add column run_attempt integer,
            add column permanent boolean not null default false,
            add column queued_at timestamptz not null default now();
    """),
    # Numbered after its issue (20), not 4: other branches may add a 4 of their own; the
    # versions are a set, so main's 3 and this 20 apply in either order.
    (20, "suspended jobs", """
        create table marketops.suspended (
            job text primary key,
            reason text,
            suspended_by text,
            suspended_at timestamptz not null default now()
        );
    """),
]


class Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What the ledger needs of a (psycopg, autocommit) connection."""

    def execute(self, query: Any, params: Any = ...) -> Cursor: ...


@dataclass(frozen=True)
class Run:
    """A claimed run: which slot, which attempt."""

    id: int
    job: str
    slot: datetime
    attempt: int
    trigger: str
    # take_over only: what the run was before it became ours ("running": a lease expired;
    # "retrying": its retry fell due, whoever made the earlier attempt).
    was: str | None = None


@dataclass(frozen=True)
class RunningRow:
    """A row recorded running, as deciding whether its worker died needs it."""

    job: str
    slot: datetime
    worker: str | None
    started_at: datetime | None
    heartbeat_at: datetime | None
    lease_until: datetime | None
    now: datetime


@dataclass(frozen=True)
class RunRecord:
    """A ledger row as status pages show it."""

    id: int
    job: str
    slot: datetime
    status: str
    attempt: int
    worker: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    outputs: dict[str, Any]
    trigger: str




def _record(row: Any) -> RunRecord:
    return RunRecord(id=row[0], job=row[1], slot=row[2], status=row[3], attempt=row[4],
                     worker=row[5], started_at=row[6], finished_at=row[7], error=row[8],
                     outputs=row[9] or {}, trigger=row[10])


class Ledger:
    """Run history and slot claims; `connect` yields an autocommit connection."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Connection]]) -> None:
        self._connect = connect

    def _conn(self) -> AbstractContextManager[Connection]:
        return self._connect()

    # -- migrations ------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply pending migrations, serialized by an advisory lock; the versions applied."""
        applied: list[int] = []
        with self._conn() as conn:
            conn.execute(QUERIES["lock_migrations"])
            try:
                conn.execute(QUERIES["create_schema"])
                conn.execute(QUERIES["create_migrations"])
                done = {row[0] for row in
                        conn.execute(QUERIES["applied_migrations"]).fetchall()}
                for version, description, sql in MIGRATIONS:
                    if version in done:
                        continue
                    conn.execute("begin")
                    try:
                        conn.execute(sql.encode())
                        conn.execute(QUERIES["record_migration"], (version, description))
                        conn.execute("commit")
                    except Exception:
                        conn.execute("rollback")
                        raise
                    applied.append(version)
            finally:
                conn.execute(QUERIES["unlock_migrations"])
        return applied

    # -- claims ------------------------------------------------------------------------------
    def claim(self, job: str, slot: datetime, worker: str, lease: timedelta,
              definition_hash: str, git_commit: str | None = None,
              trigger: str = "schedule") -> Run | None:
        """Take the slot if nobody has: the run, or None when it exists already."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["claim"], (job, slot, trigger, worker, lease,
                                                  definition_hash, git_commit)).fetchone()
        return Run(*row) if row else None

    def reclaim(self, job: str, slot: datetime, worker: str, lease: timedelta,
                definition_hash: str, trigger: str = "manual") -> Run | None:
        """Run a recorded slot again (manual run, backfill); None while it is running."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["reclaim"],
                               (worker, trigger, lease, definition_hash, job, slot)).fetchone()
        return Run(*row) if row else None

    def running_rows(self, jobs: list[str] | None = None) -> list[RunningRow]:
        """The rows recorded running (of these jobs), with the database's clock."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["running_rows"], (jobs, jobs)).fetchall()
        return [RunningRow(*row) for row in rows]

    def release_dead(self, job: str, slot: datetime, dead: str | None) -> bool:
        """End the lease of a running row whose worker `dead` is known to have died, so the
        next take-over takes it now; False when the row changed meanwhile."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["release_dead"], (job, slot, dead)).fetchone()
        return row is not None

    def take_over_dead(self, job: str, slot: datetime, dead: str, worker: str, lease: timedelta,
                       definition_hash: str, trigger: str = "manual") -> Run | None:
        """Take a running slot whose worker `dead` is known to have died, without waiting out
        its lease; None when the row changed meanwhile (finished, or someone else took it)."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["take_over_dead"], (worker, trigger, lease, definition_hash,
                                                           job, slot, dead)).fetchone()
        return Run(*row) if row else None

    def statuses_of(self, run_ids: list[int]) -> dict[int, str]:
        """The recorded status of each of these runs that exists."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["statuses_of"], (run_ids,)).fetchall()
        return {int(i): str(s) for i, s in rows}

    def record_skipped(self, job: str, slot: datetime, reason: str, definition_hash: str,
                       trigger: str = "schedule") -> bool:
        """Record a slot that will not run (missed, coalesced, overlapping); False if known."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["record_skipped"],
                               (job, slot, trigger, reason, definition_hash)).fetchone()
        return row is not None

    def take_over(self, worker: str, lease: timedelta, jobs: list[str]) -> Run | None:
        """A run whose lease expired (its worker died) or whose retry is due, now ours."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["take_over"], (jobs, worker, lease)).fetchone()
        return Run(*row) if row else None

    def heartbeat(self, run_id: int, worker: str, lease: timedelta,
                  attempt: int | None = None) -> bool:
        """Extend our lease; False when the run is no longer ours (taken over, cancelled)."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["heartbeat"],
                               (lease, run_id, worker, attempt, attempt)).fetchone()
        return row is not None

    def finish(self, run_id: int, worker: str, status: str, error: str | None = None,
               outputs: dict[str, Any] | None = None, attempt: int | None = None) -> bool:
        """Record the result; False when the run was no longer ours."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["finish"],
                               (status, error and mask(error), json.dumps(outputs or {}), run_id,
                                worker, attempt, attempt)).fetchone()
        return row is not None

    def retry_later(self, run_id: int, worker: str, delay: timedelta, error: str,
                    attempt: int | None = None) -> bool:
        """Hand the run back for another attempt after `delay`."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["retry_later"],
                               (mask(error), delay, run_id, worker, attempt, attempt)).fetchone()
        return row is not None

    def cancel_running(self, job: str, reason: str) -> int:
        """Cancel a job's running runs (overlap: replace); their workers see it at heartbeat."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["cancel_running"], (reason, job)).fetchall()
        return len(rows)

    # -- fencing and deliveries ------------------------------------------------------------
    def _fence(self, conn: Connection, run_id: int, attempt: int) -> None:
        """Raise LeaseLost unless `attempt` holds the run; locks its row (for share) until
        the caller's transaction ends, so no take-over slips in before its update."""
        row = conn.execute(QUERIES["fence_run"], (run_id,)).fetchone()
        why = fence(Holder(row[0], int(row[1]), row[2]) if row else None, attempt,
                    row[3] if row else datetime.max)
        if why is not None:
            raise LeaseLost(f"run {run_id} attempt {attempt} lost the run: {why}")

    def fence(self, run_id: int, attempt: int) -> None:
        """Raise LeaseLost unless `attempt` still holds the run (checked before publishing)."""
        with self._conn() as conn:
            self._fence(conn, run_id, attempt)

    def begin_delivery(self, run_id: int, recipient: str, attempt: int) -> DeliveryClaim:
        """Claim (run, recipient) for `attempt` before sending, in one transaction with the
        fence: LeaseLost when the attempt no longer holds the run; a false claim when it was
        sent already, refused for good, or is being sent by this attempt (never twice)."""
        with self._conn() as conn:
            conn.execute("begin")
            try:
                self._fence(conn, run_id, attempt)
                row = conn.execute(QUERIES["delivery_for_update"], (run_id, recipient)).fetchone()
                claim = claim_delivery(Delivery(*row) if row else None, attempt)
                if claim:
                    queued = conn.execute(
                        QUERIES["queue_delivery"], (run_id, recipient, attempt)).fetchone()
                    claim = DeliveryClaim(True, claim.reason, queued[0])
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise
        return claim

    def finish_delivery(self, run_id: int, recipient: str, error: str | None, *,
                        attempt: int | None = None, permanent: bool = False) -> bool:
        """Record the result of a send by the attempt that claimed it (`permanent`: refused
        for good, never tried again); False when another attempt has claimed it since."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["finish_delivery"], (
                "failed" if error else "sent", error and mask(error), error is None,
                bool(error) and permanent, run_id, recipient, attempt, attempt)).fetchone()
        return row is not None

    def record_delivery(self, run_id: int, recipient: str, error: str | None) -> None:
        """Record a delivery made outside the run's attempts (a re-send asked for by
        someone), as it ended: sent, or failed with `error`."""
        with self._conn() as conn:
            conn.execute(QUERIES["record_delivery"], (
                run_id, recipient, "failed" if error else "sent", error and mask(error),
                error is None))

    def deliveries(self, run_id: int) -> dict[str, tuple[str, int]]:
        """recipient -> (status, attempts)."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["deliveries"], (run_id,)).fetchall()
        return {r: (s, int(a)) for r, s, a in rows}

    # -- audit vault anchor -------------------------------------------------------------------
    def record_audit_head(self, tier: str, table: str, head: Head) -> None:
        """Record the vault chain's head, outside the vault; never moves it back."""
        with self._conn() as conn:
            conn.execute(QUERIES["record_audit_head"],
                         (tier, table, head.batches, head.last_hash, head.last_id, head.signature))

    def audit_head(self, tier: str, table: str) -> Head | None:
        """The recorded head of one table's vault chain, if any."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["audit_head"], (tier, table)).fetchone()
        return Head(int(row[0]), str(row[1]), row[2], row[3]) if row else None

    # -- queries ------------------------------------------------------------------------------
    def is_running(self, job: str) -> bool:
        """Whether a run of `job` holds a live lease."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["is_running"], (job,)).fetchone()
        return row is not None

    def last_slot(self, job: str) -> datetime | None:
        """The latest slot recorded for a job, whatever its status."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["last_slot"], (job,)).fetchone()
        return row[0] if row else None

    def last_slots(self, jobs: list[str]) -> dict[str, datetime]:
        """The latest recorded slot of each of `jobs` that has one."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["last_slots"], (jobs,)).fetchall()
        return {job: slot for job, slot in rows}

    def runs(self, job: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Newest runs first."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["runs"], (job, job, limit)).fetchall()
        return [_record(r) for r in rows]

    # -- suspension (kubectl's cronjob suspend, held here so every replica sees it) ---------
    def suspend(self, job: str, reason: str | None, by: str) -> bool:
        """Stop scheduling `job` until resumed; False when it was suspended already."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["suspend"], (job, reason, by)).fetchone()
        return row is not None

    def resume(self, job: str) -> bool:
        """Schedule `job` again; False when it was not suspended."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["resume"], (job,)).fetchone()
        return row is not None

    def suspended(self) -> dict[str, tuple[str | None, str | None, datetime]]:
        """job -> (reason, by whom, since when)."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["suspended"]).fetchall()
        return {str(r[0]): (r[1], r[2], r[3]) for r in rows}

    def run(self, run_id: int) -> RunRecord | None:
        """One run by its id (the status page's link to its outputs and error)."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["run"], (run_id,)).fetchone()
        return _record(row) if row else None

    def latest_by_job(self) -> dict[str, RunRecord]:
        """The newest non-skipped run of every job."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["latest_by_job"]).fetchall()
        return {r[1]: _record(r) for r in rows}

    def previous_run(self, job: str, slot: datetime) -> RunRecord | None:
        """The newest finished, non-skipped run of `job` before `slot`."""
        with self._conn() as conn:
            row = conn.execute(QUERIES["previous_run"], (job, slot)).fetchone()
        return _record(row) if row else None

    def last_success(self) -> dict[str, datetime]:
        """When each job last succeeded (finish time)."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["last_success"]).fetchall()
        return {job: at for job, at in rows}

    def delivery_failures(self) -> dict[str, int]:
        """Failed delivery attempts per job (recipient kind folded in the job's label)."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["delivery_failures"]).fetchall()
        return {job: int(n) for job, n in rows}

    def counts(self) -> Iterator[tuple[str, str, int]]:
        """(job, status, count) for metrics."""
        with self._conn() as conn:
            rows = conn.execute(QUERIES["counts"]).fetchall()
        yield from ((job, status, int(n)) for job, status, n in rows)
