"""Running jobs now, from the command line: `run` (one slot each) and `backfill` (every
slot of a past range), each outcome said as it ends."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Protocol

from engine.app import clock
from engine.app.context import App, latest_slot
from engine.app.executor import JobDispatcher, run_slot
from engine.definitions.models.base import format_duration
from engine.errors import UsageError
from engine.runs.execution import Outcome
from engine.runs.ledger import Ledger
from engine.scheduling.jobs import Job
from engine.scheduling.jobs import jobs as all_jobs
from engine.scheduling.selection import select
from runners.service.gitinfo import head_commit


class Echo(Protocol):
    """Where lines go: click.echo, or a test's list."""

    def __call__(self, message: str, *, err: bool = False) -> None: ...


def outcome_line(job: Job, slot: datetime, outcome: Outcome, now: datetime) -> str:
    """`JOB slot TIME: STATUS: ERROR`, in the job's timezone; a retrying run says when its
    next attempt is due and what takes it."""
    tz = job.schedule.tz if job.schedule else None
    line = f"{job.id} slot {slot.astimezone(tz).isoformat()}: {outcome.status}" + \
        (f": {outcome.error}" if outcome.error else "")
    if outcome.status == "retrying" and outcome.retry_in is not None:
        due = (now + outcome.retry_in).astimezone(tz)
        line += (f"; next attempt at {due:%Y-%m-%d %H:%M:%S} {due.tzname()} (in "
                 f"{format_duration(outcome.retry_in)}), taken by `marketops serve` or the "
                 "next `marketops run` of this slot")
    return line


def run_now(app: App, job_id: str | None, selectors: Sequence[str], at: datetime | None,
            dsn: str | None, echo: Echo, *, keep_on_failure: bool = False) -> bool:
    """Run JOB's (or each selected job's) slot at or before `at`, recorded in the ledger;
    True when every one succeeded. `dsn`: the one database for the run, ledger and backups."""

    if job_id is not None and not selectors:
        app = app.for_job(job_id)  # checks what the job reads, not every report
    defs = app.defs
    available = all_jobs(defs.project, head_commit(app.root))
    if job_id is None and not selectors:
        raise UsageError("say which job: marketops run JOB (or --select tag:finance)")
    chosen = []
    if job_id is not None:
        job = available.get(job_id)
        if job is None:
            everything = all_jobs(app.as_loaded().defs.project)  # name every job
            raise UsageError(f"unknown job {job_id} (jobs: {', '.join(sorted(everything))})")
        if job.schedule is None:
            raise UsageError(f"{job_id} runs continuously (archive_command); see "
                             "`marketops wal-setup`")
        chosen.append(job)
    if selectors:
        # Selected continuous jobs (WAL archiving) have no slot to run: left out, said so.
        for job in select(available, selectors):
            if job.schedule is None:
                echo(f"{job.id}: runs continuously (archive_command), not run", err=True)
            elif job not in chosen:
                chosen.append(job)
    # --dsn / MARKETOPS_DSN: the one database for the run, its ledger and its backups.
    ledger = app.ledger_at(app.dsn("state", dsn)) if dsn else app.ledger
    ok = [_run_one(app, job, at or clock.now(), ledger, dsn, len(chosen) == 1, echo,
                   keep_on_failure=keep_on_failure) for job in chosen]
    return all(ok)


def _run_one(app: App, job: Job, at: datetime, ledger: Ledger, dsn: str | None, alone: bool,
             echo: Echo, *, keep_on_failure: bool = False) -> bool:
    """One job's slot at or before `at`, said as it ended; True when it succeeded."""


    from engine.app.demo import demo_mailbox, into_mailbox

    defs = app.defs
    slot = latest_slot(job, at)
    with demo_mailbox(app.root, defs) if job.kind == "report" else nullcontext() as box:
        if box is not None:
            echo(f"the demo's project and no mail server: mail and unset webhooks go to "
                       f"{box.directory}, as in the demo", err=True)
        executor = JobDispatcher(app.root, into_mailbox(defs, box) if box else defs,
                                 app.dsn("reports", dsn), ledger,
                                 primary_dsn=app.dsn("primary", dsn) if dsn else None,
                                 keep_on_failure=keep_on_failure)
        outcome = run_slot(ledger, executor, job, slot, "manual")
    if outcome is None:
        busy = f"{job.id} slot {slot.isoformat()} is running right now elsewhere"
        if alone:
            raise UsageError(busy)
        echo(busy)
        return False
    echo(outcome_line(job, slot, outcome, clock.now()))
    if outcome.outputs and job.kind == "backup":
        for key, value in outcome.outputs.items():
            echo(f"  {key}: {value}")
    elif outcome.outputs:
        echo(f"  rows: {outcome.outputs['rows']:,}  directory: "
                   f"{outcome.outputs['directory']}")
        for alert in outcome.outputs.get("alerts") or []:
            echo(f"  alert: {alert}")
        for recipient, state in (outcome.outputs.get("deliveries") or {}).items():
            echo(f"  {recipient}: {state}")
    return bool(outcome.status == "succeeded")


def backfill(app: App, job_id: str | None, selectors: Sequence[str], start: datetime,
             end: datetime, echo: Echo) -> bool:
    """Every slot of JOB (or of each selected report) in (start, end], oldest first; True
    when none failed."""
    if job_id is None and not selectors:
        raise UsageError("say which job: marketops backfill JOB (or --select tag:finance)")
    if end <= start:
        raise UsageError("--until must be after --from")
    if end > clock.now():
        raise UsageError("--until is in the future; backfill runs past slots only")
    if job_id is not None and not selectors:
        app = app.for_job(job_id)  # checks what the job reads, not every report
    defs = app.defs
    available = all_jobs(defs.project)
    chosen = []
    if job_id is not None:
        job = available.get(job_id)
        if job is None or job.schedule is None:
            raise UsageError(f"unknown or unscheduled job {job_id}")
        if job.kind != "report":
            raise UsageError(f"{job_id}: a backup is of the database as it is now and cannot "
                             f"be backfilled; run `marketops run {job_id}`")
        chosen.append(job)
    if selectors:
        for job in select(available, selectors):
            if job.kind != "report" or job.schedule is None:
                # Said and left out, as `run --select` leaves out continuous jobs.
                echo(f"{job.id}: a backup is of the database as it is now, not "
                           "backfilled", err=True)
            elif job not in chosen:
                chosen.append(job)
        if not chosen:
            raise UsageError(f"--select {' '.join(selectors)} picks no report; backups cannot "
                             "be backfilled")
    ledger = app.ledger
    executor = JobDispatcher(app.root, defs, app.dsn("reports"), ledger)
    slots = failed = 0
    for job in chosen:
        ran, lost = _backfill_job(ledger, executor, job, start, end, len(chosen) > 1, echo)
        slots, failed = slots + ran, failed + lost
    echo(f"{slots} slot(s), {failed} failed"
               + (f", {len(chosen)} reports" if len(chosen) > 1 else ""))
    return not failed


def _backfill_job(ledger: Ledger, executor: JobDispatcher, job: Job, start: datetime,
                  end: datetime, named: bool, echo: Echo) -> tuple[int, int]:
    """Every slot of `job` in the range, oldest first, each said as it ended: (slots,
    failed)."""
    schedule = job.schedule
    assert schedule is not None  # chosen by backfill(): scheduled reports only
    failed = 0
    slots = schedule.between(start, end)
    who = f"{job.id} " if named else ""
    for slot in slots:
        outcome = run_slot(ledger, executor, job, slot, "backfill")
        if outcome is None:
            echo(f"{who}{slot.isoformat()}: running elsewhere, left alone")
            continue
        failed += outcome.status != "succeeded"
        rows = f" ({outcome.outputs['rows']:,} rows)" if outcome.outputs else ""
        echo(f"{who}{slot.astimezone(schedule.tz).isoformat()}: {outcome.status}{rows}"
             + (f": {outcome.error}" if outcome.error else ""))
    return len(slots), failed
