"""Runs a job's slot with the handler of its kind: reports, and each kind of backup tier."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from engine import logger
from engine.app.context import LiveDefinitions, current, database_dsn, worker_name
from engine.app.reporting import ReportDelivery, report_request
from engine.app.tiers.handler import TierHandler
from engine.definitions.models.backup import BackupTier
from engine.runs.execution import Outcome, execute_run
from engine.runs.ledger import Ledger, Run, RunningRow
from engine.runs.liveness import run_owner_dead, worker_pid
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.report.query import run_report
from runners.service.processes import host_name, process

log = logger("marketops.reports")


def handler_for(tier: BackupTier) -> TierHandler[Any]:
    """The handler of the tier's kind."""
    return _handler(tier.kind)


@cache
def _handler(kind: str) -> TierHandler[Any]:
    # One handler per tier kind (barman's executor per backup method, chosen once), each
    # imported when a job of its kind first needs it: a report run loads none of them.
    if kind in ("logical_full", "logical_schemas"):
        from engine.app.tiers.logical import LogicalHandler

        return LogicalHandler()
    if kind == "physical_base":
        from engine.app.tiers.physical import PhysicalHandler

        return PhysicalHandler()
    if kind == "wal_archive":
        from engine.app.tiers.wal import WalHandler

        return WalHandler()
    if kind == "audit_vault":
        from engine.app.tiers.audit import AuditHandler

        return AuditHandler()
    if kind == "restore_drill":
        from engine.app.tiers.drill import DrillHandler

        return DrillHandler(handler_for)
    raise KeyError(kind)


def run_slot(ledger: Ledger, executor: JobDispatcher, job: Job, slot: datetime,
             trigger: str) -> Outcome | None:
    """Claim one slot outside the service (manual run, backfill, demo) — or take it again
    when it ran before — and run it to its recorded end; None while it runs elsewhere."""
    worker, lease = worker_name(), timedelta(seconds=60)
    run = ledger.claim(job.id, slot, worker, lease, job.definition_hash, job.git_commit,
                       trigger=trigger) or \
        ledger.reclaim(job.id, slot, worker, lease, job.definition_hash, trigger=trigger) or \
        take_over_dead(ledger, job, slot, worker, lease, trigger)
    if run is None:
        return None
    return execute_run(ledger, executor, job, run, worker, lease)


def take_over_dead(ledger: Ledger, job: Job, slot: datetime, worker: str, lease: timedelta,
                   trigger: str) -> Run | None:
    """The slot's running run, when its worker died (a process of this host that is gone,
    or a heartbeat that stopped): taken now rather than after its lease; None otherwise."""
    for row in ledger.running_rows([job.id]):
        if row.slot == slot and row.worker is not None and owner_died(row):
            return ledger.take_over_dead(job.id, slot, row.worker, worker, lease,
                                         job.definition_hash, trigger)
    return None


def owner_died(row: RunningRow) -> bool:
    """Whether a running row's worker is dead, as this host can tell."""
    pid = worker_pid(row.worker, host_name())
    found = process(pid) if pid is not None else None
    return run_owner_dead(row.worker, host_name(), found, row.started_at, row.heartbeat_at,
                          row.lease_until, row.now, os.getpid())


def release_dead_runs(ledger: Ledger) -> list[RunningRow]:
    """At service start: end the leases of running rows whose worker died, so the first
    take-over runs them again now; the rows released."""
    return [row for row in ledger.running_rows()
            if owner_died(row) and ledger.release_dead(row.job, row.slot, row.worker)]


@dataclass(frozen=True)
class JobDispatcher:
    """Runs a job's slot with the runner of its kind, then delivers what it produced."""

    root: Path
    definitions: ValidationResult | LiveDefinitions
    reports_dsn: str
    ledger: Ledger | None = None
    primary_dsn: str | None = None
    observe_delivery: Callable[[Job, str, str], None] | None = None
    keep_on_failure: bool = False  # drills: keep a failed drill's restored copies

    @property
    def defs(self) -> ValidationResult:
        return current(self.definitions)

    def supports(self, job: Job) -> bool:
        return job.kind == "report" or job.schedule is not None

    def __call__(self, job: Job, run: Run) -> dict[str, object]:
        if job.kind == "backup":
            return run_backup(self.root, self.defs, job,
                              self.primary_dsn or database_dsn(self.root, self.defs,
                                                               "primary"),
                              run_id=run.id, ledger=self.ledger,
                              keep_on_failure=self.keep_on_failure)
        defs = self.defs
        ledger = self.ledger
        fence = (lambda: ledger.fence(run.id, run.attempt)) if ledger is not None else None
        done = run_report(report_request(self.root, defs, job, run.slot, self.reports_dsn),
                          before_publish=fence)
        outputs: dict[str, object] = {
            "rows": done.rows, "columns": done.columns, "files": done.files,
            "directory": str(done.directory), "seconds": round(done.seconds, 3),
            "alerts": done.alerts}
        if done.warnings:
            outputs["warnings"] = list(done.warnings)
            for warning in done.warnings:
                log.warning("report/%s: %s", job.name, warning)
        if self.ledger is not None:
            outputs["deliveries"] = ReportDelivery(self.root, defs, self.ledger,
                                                    self.observe_delivery).deliver(
                job, run, done)
        return outputs


def run_backup(root: Path, defs: ValidationResult, job: Job, primary_dsn: str,
               ledger_note: Any = None, *, run_id: int | None = None,
               ledger: Ledger | None = None, keep_on_failure: bool = False) -> dict[str, Any]:
    """Run one slot of a backup tier, then apply its retention. Any tier's run first clears
    the staging leftovers of dead runs."""
    tier = job.tier
    assert tier is not None
    from engine.app.tiers.backup import clear_staging

    clear_staging(root, ledger)
    return handler_for(tier).run(root, defs, job, tier, primary_dsn, run_id=run_id,
                                 ledger=ledger, keep_on_failure=keep_on_failure)
