"""The run ledger in PostgreSQL: one row per (job, slot), claimed exactly once across replicas.

Claims are `INSERT ... ON CONFLICT DO NOTHING` on the unique (job, slot); a claim carries a
lease renewed by heartbeat, and a run whose worker died is taken over once its lease expires
(`FOR UPDATE SKIP LOCKED`). All times come from the database clock, shared by every replica.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.auditchain import Head
from engine.masking import mask

SCHEMA = "marketops"

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


_RECORD_COLUMNS = ("id, job, slot, status, attempt, worker, started_at, finished_at, error, "
                   "outputs, trigger")


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
            conn.execute("select pg_advisory_lock(hashtext('marketops.migrations'))")
            try:
                conn.execute(f"create schema if not exists {SCHEMA}")
                conn.execute(f"""create table if not exists {SCHEMA}.migrations (
                    version integer primary key, description text not null,
                    applied_at timestamptz not null default now())""")
                done = {row[0] for row in
                        conn.execute(f"select version from {SCHEMA}.migrations").fetchall()}
                for version, description, sql in MIGRATIONS:
                    if version in done:
                        continue
                    conn.execute("begin")
                    try:
                        conn.execute(sql.encode())
                        conn.execute(f"insert into {SCHEMA}.migrations (version, description) "
                                     "values (%s, %s)", (version, description))
                        conn.execute("commit")
                    except Exception:
                        conn.execute("rollback")
                        raise
                    applied.append(version)
            finally:
                conn.execute("select pg_advisory_unlock(hashtext('marketops.migrations'))")
        return applied

    # -- claims ------------------------------------------------------------------------------
    def claim(self, job: str, slot: datetime, worker: str, lease: timedelta,
              definition_hash: str, git_commit: str | None = None,
              trigger: str = "schedule") -> Run | None:
        """Take the slot if nobody has: the run, or None when it exists already."""
        with self._conn() as conn:
            row = conn.execute(f"""
                insert into {SCHEMA}.runs (job, slot, status, trigger, attempt, worker,
                    claimed_at, heartbeat_at, lease_until, started_at, definition_hash, git_commit)
                values (%s, %s, 'running', %s, 1, %s, now(), now(), now() + %s, now(), %s, %s)
                on conflict (job, slot) do nothing
                returning id, job, slot, attempt, trigger""",
                (job, slot, trigger, worker, lease, definition_hash, git_commit)).fetchone()
        return Run(*row) if row else None

    def reclaim(self, job: str, slot: datetime, worker: str, lease: timedelta,
                definition_hash: str, trigger: str = "manual") -> Run | None:
        """Run a recorded slot again (manual run, backfill); None while it is running."""
        with self._conn() as conn:
            row = conn.execute(f"""
                update {SCHEMA}.runs set status = 'running', attempt = attempt + 1,
                    worker = %s, trigger = %s, claimed_at = now(), heartbeat_at = now(),
                    lease_until = now() + %s, started_at = now(), finished_at = null,
                    next_attempt_at = null, error = null, definition_hash = %s
                where job = %s and slot = %s
                  and (status <> 'running' or lease_until < now())
                returning id, job, slot, attempt, trigger""",
                (worker, trigger, lease, definition_hash, job, slot)).fetchone()
        return Run(*row) if row else None

    def running_rows(self, jobs: list[str] | None = None) -> list[RunningRow]:
        """The rows recorded running (of these jobs), with the database's clock."""
        with self._conn() as conn:
            rows = conn.execute(f"""select job, slot, worker, started_at, heartbeat_at,
                    lease_until, now() from {SCHEMA}.runs
                where status = 'running' and (%s::text[] is null or job = any(%s))
                order by slot""", (jobs, jobs)).fetchall()
        return [RunningRow(*row) for row in rows]

    def release_dead(self, job: str, slot: datetime, dead: str | None) -> bool:
        """End the lease of a running row whose worker `dead` is known to have died, so the
        next take-over takes it now; False when the row changed meanwhile."""
        with self._conn() as conn:
            row = conn.execute(f"""
                update {SCHEMA}.runs set lease_until = now() - interval '1 millisecond',
                    notes = concat_ws('; ', notes, 'worker ' || worker || ' died')
                where job = %s and slot = %s and status = 'running'
                  and worker is not distinct from %s
                returning id""", (job, slot, dead)).fetchone()
        return row is not None

    def running_owner(self, job: str, slot: datetime) -> tuple[str | None, datetime] | None:
        """The worker of the slot's run and when it started, while it is recorded running."""
        with self._conn() as conn:
            row = conn.execute(f"""select worker, started_at from {SCHEMA}.runs
                where job = %s and slot = %s and status = 'running'""", (job, slot)).fetchone()
        return (row[0], row[1]) if row else None

    def take_over_dead(self, job: str, slot: datetime, dead: str, worker: str, lease: timedelta,
                       definition_hash: str, trigger: str = "manual") -> Run | None:
        """Take a running slot whose worker `dead` is known to have died, without waiting out
        its lease; None when the row changed meanwhile (finished, or someone else took it)."""
        with self._conn() as conn:
            row = conn.execute(f"""
                update {SCHEMA}.runs set status = 'running', attempt = attempt + 1,
                    notes = concat_ws('; ', notes, 'worker ' || worker || ' died'),
                    worker = %s, trigger = %s, claimed_at = now(), heartbeat_at = now(),
                    lease_until = now() + %s, started_at = now(), finished_at = null,
                    next_attempt_at = null, error = null, definition_hash = %s
                where job = %s and slot = %s and status = 'running' and worker = %s
                returning id, job, slot, attempt, trigger""",
                (worker, trigger, lease, definition_hash, job, slot, dead)).fetchone()
        return Run(*row) if row else None

    def statuses_of(self, run_ids: list[int]) -> dict[int, str]:
        """The recorded status of each of these runs that exists."""
        with self._conn() as conn:
            rows = conn.execute(f"select id, status from {SCHEMA}.runs where id = any(%s)",
                                (run_ids,)).fetchall()
        return {int(i): str(s) for i, s in rows}

    def record_skipped(self, job: str, slot: datetime, reason: str, definition_hash: str,
                       trigger: str = "schedule") -> bool:
        """Record a slot that will not run (missed, coalesced, overlapping); False if known."""
        with self._conn() as conn:
            row = conn.execute(f"""
                insert into {SCHEMA}.runs (job, slot, status, trigger, error, definition_hash,
                    finished_at)
                values (%s, %s, 'skipped', %s, %s, %s, now())
                on conflict (job, slot) do nothing returning id""",
                (job, slot, trigger, reason, definition_hash)).fetchone()
        return row is not None

    def take_over(self, worker: str, lease: timedelta, jobs: list[str]) -> Run | None:
        """A run whose lease expired (its worker died) or whose retry is due, now ours."""
        with self._conn() as conn:
            row = conn.execute(f"""
                with candidate as (
                    select id from {SCHEMA}.runs
                    where job = any(%s) and (
                        (status = 'running' and lease_until < now())
                        or (status = 'retrying' and next_attempt_at <= now()))
                    order by slot limit 1 for update skip locked)
                update {SCHEMA}.runs r set
                    notes = concat_ws('; ', r.notes, case when r.status = 'running'
                        then 'lease of ' || r.worker || ' expired'
                        else 'attempt ' || r.attempt || ' failed: ' || r.error end),
                    status = 'running', attempt = r.attempt + 1, worker = %s,
                    heartbeat_at = now(), lease_until = now() + %s, started_at = now(),
                    next_attempt_at = null
                from candidate where r.id = candidate.id
                returning r.id, r.job, r.slot, r.attempt, r.trigger""",
                (jobs, worker, lease)).fetchone()
        return Run(*row) if row else None

    def heartbeat(self, run_id: int, worker: str, lease: timedelta) -> bool:
        """Extend our lease; False when the run is no longer ours (taken over, cancelled)."""
        with self._conn() as conn:
            row = conn.execute(f"""
                update {SCHEMA}.runs set heartbeat_at = now(), lease_until = now() + %s
                where id = %s and worker = %s and status = 'running' returning id""",
                (lease, run_id, worker)).fetchone()
        return row is not None

    def finish(self, run_id: int, worker: str, status: str, error: str | None = None,
               outputs: dict[str, Any] | None = None) -> bool:
        """Record the result; False when the run was no longer ours."""
        with self._conn() as conn:
            row = conn.execute(f"""
                update {SCHEMA}.runs set status = %s, error = %s, outputs = %s,
                    finished_at = now(), lease_until = null
                where id = %s and worker = %s and status = 'running' returning id""",
                (status, error and mask(error), json.dumps(outputs or {}), run_id,
                 worker)).fetchone()
        return row is not None

    def retry_later(self, run_id: int, worker: str, delay: timedelta, error: str) -> bool:
        """Hand the run back for another attempt after `delay`."""
        with self._conn() as conn:
            row = conn.execute(f"""
                update {SCHEMA}.runs set status = 'retrying', error = %s, lease_until = null,
                    next_attempt_at = now() + %s
                where id = %s and worker = %s and status = 'running' returning id""",
                (mask(error), delay, run_id, worker)).fetchone()
        return row is not None

    def cancel_running(self, job: str, reason: str) -> int:
        """Cancel a job's running runs (overlap: replace); their workers see it at heartbeat."""
        with self._conn() as conn:
            rows = conn.execute(f"""
                update {SCHEMA}.runs set status = 'cancelled', error = %s, finished_at = now(),
                    lease_until = null
                where job = %s and status = 'running' returning id""", (reason, job)).fetchall()
        return len(rows)

    # -- deliveries ---------------------------------------------------------------------------
    def begin_delivery(self, run_id: int, recipient: str) -> bool:
        """Record an attempt before sending; False when it was sent already (never twice)."""
        with self._conn() as conn:
            row = conn.execute(f"""
                insert into {SCHEMA}.deliveries (run_id, recipient, status, attempts)
                values (%s, %s, 'pending', 1)
                on conflict (run_id, recipient) do update set attempts =
                    {SCHEMA}.deliveries.attempts + 1, status = 'pending'
                where {SCHEMA}.deliveries.status <> 'sent'
                returning attempts""", (run_id, recipient)).fetchone()
        return row is not None

    def finish_delivery(self, run_id: int, recipient: str, error: str | None) -> None:
        """Record the result of a send."""
        with self._conn() as conn:
            conn.execute(f"""
                update {SCHEMA}.deliveries set status = %s, last_error = %s,
                    sent_at = case when %s then now() end
                where run_id = %s and recipient = %s""",
                ("failed" if error else "sent", error and mask(error), error is None, run_id,
                 recipient))

    def deliveries(self, run_id: int) -> dict[str, tuple[str, int]]:
        """recipient -> (status, attempts)."""
        with self._conn() as conn:
            rows = conn.execute(f"select recipient, status, attempts from {SCHEMA}.deliveries "
                                "where run_id = %s", (run_id,)).fetchall()
        return {r: (s, int(a)) for r, s, a in rows}

    # -- audit vault anchor -------------------------------------------------------------------
    def record_audit_head(self, tier: str, table: str, head: Head) -> None:
        """Record the vault chain's head, outside the vault; never moves it back."""
        with self._conn() as conn:
            conn.execute(f"""
                insert into {SCHEMA}.audit_heads (tier, table_name, batches, last_hash,
                    last_id, signature)
                values (%s, %s, %s, %s, %s, %s)
                on conflict (tier, table_name) do update set batches = excluded.batches,
                    last_hash = excluded.last_hash, last_id = excluded.last_id,
                    signature = excluded.signature, recorded_at = now()
                where {SCHEMA}.audit_heads.batches <= excluded.batches""",
                (tier, table, head.batches, head.last_hash, head.last_id, head.signature))

    def audit_head(self, tier: str, table: str) -> Head | None:
        """The recorded head of one table's vault chain, if any."""
        with self._conn() as conn:
            row = conn.execute(f"""select batches, last_hash, last_id, signature
                from {SCHEMA}.audit_heads where tier = %s and table_name = %s""",
                (tier, table)).fetchone()
        return Head(int(row[0]), str(row[1]), row[2], row[3]) if row else None

    # -- queries ------------------------------------------------------------------------------
    def is_running(self, job: str) -> bool:
        """Whether a run of `job` holds a live lease."""
        with self._conn() as conn:
            row = conn.execute(f"""select 1 from {SCHEMA}.runs where job = %s and
                status = 'running' and lease_until >= now() limit 1""", (job,)).fetchone()
        return row is not None

    def last_slot(self, job: str) -> datetime | None:
        """The latest slot recorded for a job, whatever its status."""
        with self._conn() as conn:
            row = conn.execute(f"select max(slot) from {SCHEMA}.runs where job = %s",
                               (job,)).fetchone()
        return row[0] if row else None

    def last_slots(self, jobs: list[str]) -> dict[str, datetime]:
        """The latest recorded slot of each of `jobs` that has one."""
        with self._conn() as conn:
            rows = conn.execute(f"select job, max(slot) from {SCHEMA}.runs where job = any(%s) "
                                "group by job", (jobs,)).fetchall()
        return {job: slot for job, slot in rows}

    def runs(self, job: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Newest runs first."""
        with self._conn() as conn:
            rows = conn.execute(
                f"select {_RECORD_COLUMNS} from {SCHEMA}.runs "
                "where (%s::text is null or job = %s) order by slot desc, id desc limit %s",
                (job, job, limit)).fetchall()
        return [_record(r) for r in rows]

    def latest_by_job(self) -> dict[str, RunRecord]:
        """The newest non-skipped run of every job."""
        with self._conn() as conn:
            rows = conn.execute(f"""
                select distinct on (job) {_RECORD_COLUMNS} from {SCHEMA}.runs
                where status <> 'skipped' order by job, slot desc, id desc""").fetchall()
        return {r[1]: _record(r) for r in rows}

    def previous_run(self, job: str, slot: datetime) -> RunRecord | None:
        """The newest finished, non-skipped run of `job` before `slot`."""
        with self._conn() as conn:
            row = conn.execute(f"""
                select {_RECORD_COLUMNS} from {SCHEMA}.runs
                where job = %s and slot < %s and status in ('succeeded', 'failed')
                order by slot desc, id desc limit 1""", (job, slot)).fetchone()
        return _record(row) if row else None

    def last_success(self) -> dict[str, datetime]:
        """When each job last succeeded (finish time)."""
        with self._conn() as conn:
            rows = conn.execute(f"""select job, max(finished_at) from {SCHEMA}.runs
                where status = 'succeeded' group by job""").fetchall()
        return {job: at for job, at in rows}

    def delivery_failures(self) -> dict[str, int]:
        """Failed delivery attempts per job (recipient kind folded in the job's label)."""
        with self._conn() as conn:
            rows = conn.execute(f"""select r.job, count(*) from {SCHEMA}.deliveries d
                join {SCHEMA}.runs r on r.id = d.run_id where d.status = 'failed'
                group by r.job""").fetchall()
        return {job: int(n) for job, n in rows}

    def counts(self) -> Iterator[tuple[str, str, int]]:
        """(job, status, count) for metrics."""
        with self._conn() as conn:
            rows = conn.execute(f"""select job, status, count(*) from {SCHEMA}.runs
                group by job, status order by job, status""").fetchall()
        yield from ((job, status, int(n)) for job, status, n in rows)
