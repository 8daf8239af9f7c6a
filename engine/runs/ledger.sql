-- The run ledger's queries, by name (engine/ledger.py reads them at import).
-- Each starts with a line `-- name --`; %s are its parameters, in order.

-- lock_migrations --
-- Replicas starting together apply the migrations one at a time.
select pg_advisory_lock(hashtext('marketops.migrations'));

-- create_schema --
create schema if not exists marketops;

-- create_migrations --
create table if not exists marketops.migrations (
    version integer primary key, description text not null,
    applied_at timestamptz not null default now());

-- applied_migrations --
select version from marketops.migrations;

-- record_migration --
insert into marketops.migrations (version, description) values (%s, %s);

-- unlock_migrations --
select pg_advisory_unlock(hashtext('marketops.migrations'));

-- claim --
-- Take the slot if nobody has: the run, or None when it exists already.
insert into marketops.runs (job, slot, status, trigger, attempt, worker,
    claimed_at, heartbeat_at, lease_until, started_at, definition_hash, git_commit)
values (%s, %s, 'running', %s, 1, %s, now(), now(), now() + %s, now(), %s, %s)
on conflict (job, slot) do nothing
returning id, job, slot, attempt, trigger;

-- reclaim --
-- Run a recorded slot again (manual run, backfill); None while it is running.
update marketops.runs set status = 'running', attempt = attempt + 1,
    worker = %s, trigger = %s, claimed_at = now(), heartbeat_at = now(),
    lease_until = now() + %s, started_at = now(), finished_at = null,
    next_attempt_at = null, error = null, definition_hash = %s
where job = %s and slot = %s
  and (status <> 'running' or lease_until < now())
returning id, job, slot, attempt, trigger;

-- running_rows --
-- The rows recorded running (of these jobs, or all when null), with the database's clock.
select job, slot, worker, started_at, heartbeat_at, lease_until, now() from marketops.runs
    where status = 'running' and (%s::text[] is null or job = any(%s))
    order by slot;

-- release_dead --
-- End the lease of a running row whose worker is known to have died, so the next take-over
-- takes it now; no row when the row changed meanwhile.
update marketops.runs set lease_until = now() - interval '1 millisecond',
    notes = concat_ws('; ', notes, 'worker ' || worker || ' died')
where job = %s and slot = %s and status = 'running' and worker is not distinct from %s
returning id;

-- take_over_dead --
-- Take a running slot whose worker `dead` is known to have died, without waiting out its
-- lease; None when the row changed meanwhile (finished, or someone else took it).
update marketops.runs set status = 'running', attempt = attempt + 1,
    notes = concat_ws('; ', notes, 'worker ' || worker || ' died'),
    worker = %s, trigger = %s, claimed_at = now(), heartbeat_at = now(),
    lease_until = now() + %s, started_at = now(), finished_at = null,
    next_attempt_at = null, error = null, definition_hash = %s
where job = %s and slot = %s and status = 'running' and worker = %s
returning id, job, slot, attempt, trigger;

-- statuses_of --
-- The recorded status of each of these runs that exists.
select id, status from marketops.runs where id = any(%s);

-- record_skipped --
-- Record a slot that will not run (missed, coalesced, overlapping); False if known.
insert into marketops.runs (job, slot, status, trigger, error, definition_hash,
    finished_at)
values (%s, %s, 'skipped', %s, %s, %s, now())
on conflict (job, slot) do nothing returning id;

-- take_over --
-- A run whose lease expired (its worker died) or whose retry is due, now ours, with the
-- status it had ("running": a lease expired; "retrying": its retry fell due).
with candidate as (
    select id, status from marketops.runs
    where job = any(%s) and (
        (status = 'running' and lease_until < now())
        or (status = 'retrying' and next_attempt_at <= now()))
    order by slot limit 1 for update skip locked)
update marketops.runs r set
    notes = concat_ws('; ', r.notes, case when r.status = 'running'
        then 'lease of ' || r.worker || ' expired'
        else 'attempt ' || r.attempt || ' failed: ' || r.error end),
    status = 'running', attempt = r.attempt + 1, worker = %s,
    heartbeat_at = now(), lease_until = now() + %s, started_at = now(),
    next_attempt_at = null
from candidate where r.id = candidate.id
returning r.id, r.job, r.slot, r.attempt, r.trigger, candidate.status;

-- heartbeat --
-- Extend our lease; False when the run is no longer ours (taken over, cancelled).
update marketops.runs set heartbeat_at = now(), lease_until = now() + %s
where id = %s and worker = %s and status = 'running'
  and (%s::integer is null or attempt = %s) returning id;

-- finish --
-- Record the result; False when the run was no longer ours.
update marketops.runs set status = %s, error = %s, outputs = %s,
    finished_at = now(), lease_until = null
where id = %s and worker = %s and status = 'running'
  and (%s::integer is null or attempt = %s) returning id;

-- retry_later --
-- Hand the run back for another attempt after `delay`.
update marketops.runs set status = 'retrying', error = %s, lease_until = null,
    next_attempt_at = now() + %s
where id = %s and worker = %s and status = 'running'
  and (%s::integer is null or attempt = %s) returning id;

-- cancel_running --
-- Cancel a job's running runs (overlap: replace); their workers see it at heartbeat.
update marketops.runs set status = 'cancelled', error = %s, finished_at = now(),
    lease_until = null
where job = %s and status = 'running' returning id;

-- fence_run --
-- Raise LeaseLost unless `attempt` holds the run; locks its row (for share) until the caller's
-- transaction ends, so no take-over slips in before its update.
select status, attempt, lease_until, now() from marketops.runs
    where id = %s for share;

-- delivery_for_update --
-- Claim (run, recipient) for `attempt` before sending, in one transaction with the fence:
-- LeaseLost when the attempt no longer holds the run; a false claim when it was sent already,
-- refused for good, or is being sent by this attempt (never twice).
select status, run_attempt, permanent, last_error from marketops.deliveries
where run_id = %s and recipient = %s for update;

-- queue_delivery --
insert into marketops.deliveries (run_id, recipient, status, attempts,
    run_attempt)
values (%s, %s, 'pending', 1, %s)
on conflict (run_id, recipient) do update set attempts =
    marketops.deliveries.attempts + 1, status = 'pending',
    run_attempt = excluded.run_attempt
returning queued_at;

-- finish_delivery --
-- Record the result of a send by the attempt that claimed it (`permanent`: refused for good,
-- never tried again); False when another attempt has claimed it since.
update marketops.deliveries set status = %s, last_error = %s,
    sent_at = case when %s then now() end, permanent = %s
where run_id = %s and recipient = %s
  and (%s::integer is null or run_attempt = %s) returning run_id;

-- record_delivery --
-- A delivery made outside a run's attempt (a re-send on purpose), recorded as it ended.
insert into marketops.deliveries (run_id, recipient, status, attempts, last_error, sent_at)
values (%s, %s, %s, 1, %s, case when %s then now() end)
on conflict (run_id, recipient) do update set status = excluded.status,
    attempts = marketops.deliveries.attempts + 1, last_error = excluded.last_error,
    sent_at = excluded.sent_at;

-- deliveries --
-- recipient -> (status, attempts).
select recipient, status, attempts from marketops.deliveries where run_id = %s;

-- record_audit_head --
-- Record the vault chain's head, outside the vault; never moves it back.
insert into marketops.audit_heads (tier, table_name, batches, last_hash,
    last_id, signature)
values (%s, %s, %s, %s, %s, %s)
on conflict (tier, table_name) do update set batches = excluded.batches,
    last_hash = excluded.last_hash, last_id = excluded.last_id,
    signature = excluded.signature, recorded_at = now()
where marketops.audit_heads.batches <= excluded.batches;

-- audit_head --
-- The recorded head of one table's vault chain, if any.
select batches, last_hash, last_id, signature
    from marketops.audit_heads where tier = %s and table_name = %s;

-- is_running --
-- Whether a run of `job` holds a live lease.
select 1 from marketops.runs where job = %s and
    status = 'running' and lease_until >= now() limit 1;

-- last_slot --
-- The latest slot recorded for a job, whatever its status.
select max(slot) from marketops.runs where job = %s;

-- last_slots --
-- The latest recorded slot of each of `jobs` that has one.
select job, max(slot) from marketops.runs where job = any(%s) group by job;

-- runs --
-- Newest runs first.
select id, job, slot, status, attempt, worker, started_at, finished_at, error, outputs, trigger from marketops.runs where (%s::text is null or job = %s) order by slot desc, id desc limit %s;

-- run --
-- One run by its id (the status page's link to its outputs and error).
select id, job, slot, status, attempt, worker, started_at, finished_at, error, outputs, trigger from marketops.runs where id = %s;

-- suspend --
-- Stop scheduling a job until resumed (kubectl's cronjob suspend, held here so every
-- replica sees it); no row when it was suspended already.
insert into marketops.suspended (job, reason, suspended_by) values (%s, %s, %s)
on conflict (job) do nothing returning job;

-- resume --
-- Schedule a job again; no row when it was not suspended.
delete from marketops.suspended where job = %s returning job;

-- suspended --
-- Every suspended job: (job, reason, by whom, since when).
select job, reason, suspended_by, suspended_at from marketops.suspended;

-- latest_by_job --
-- The newest non-skipped run of every job.
select distinct on (job) id, job, slot, status, attempt, worker, started_at, finished_at, error, outputs, trigger from marketops.runs
where status <> 'skipped' order by job, slot desc, id desc;

-- previous_run --
-- The newest finished, non-skipped run of `job` before `slot`.
select id, job, slot, status, attempt, worker, started_at, finished_at, error, outputs, trigger from marketops.runs
where job = %s and slot < %s and status in ('succeeded', 'failed')
order by slot desc, id desc limit 1;

-- last_success --
-- When each job last succeeded (finish time).
select job, max(finished_at) from marketops.runs
    where status = 'succeeded' group by job;

-- delivery_failures --
-- Failed delivery attempts per job (recipient kind folded in the job's label).
select r.job, count(*) from marketops.deliveries d
    join marketops.runs r on r.id = d.run_id where d.status = 'failed'
    group by r.job;

-- counts --
-- (job, status, count) for metrics.
select job, status, count(*) from marketops.runs
    group by job, status order by job, status;
