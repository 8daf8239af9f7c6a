"""Runs a job's slot with the handler of its kind: reports, and each kind of backup tier."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.app.context import LiveDefinitions, current, database_dsn, worker_name
from engine.app.reporting import ReportDelivery, report_request
from engine.app.roles import backups_dsn
from engine.app.tiers.audit import export_audit
from engine.app.tiers.backup import (
    CLUSTER_LOCK,
    BackupRun,
    apply_retention,
    clear_staging,
    take_backup,
)
from engine.app.tiers.drill import run_drill
from engine.app.tiers.wal import check_wal
from engine.execution import Outcome, execute_run
from engine.jobs import Job
from engine.ledger import Ledger, Run
from engine.liveness import dead_worker, worker_pid
from engine.models.backup import AuditVaultTier, RestoreDrillTier, WalArchiveTier
from engine.validate import ValidationResult
from runners.database import advisory_lock
from runners.processes import host_name, process
from runners.report import run_report

log = logging.getLogger("marketops.reports")


def run_slot(ledger: Ledger, executor: Executor, job: Job, slot: datetime,
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
    """The slot's running run, when its worker is a process of this host that has died
    (killed, crashed): taken now rather than after its lease; None otherwise."""
    owner = ledger.running_owner(job.id, slot)
    if owner is None:
        return None
    pid = worker_pid(owner[0], host_name())
    found = process(pid) if pid is not None else None
    if owner[0] is None or not dead_worker(owner[0], host_name(), found, owner[1], os.getpid()):
        return None
    return ledger.take_over_dead(job.id, slot, owner[0], worker, lease, job.definition_hash,
                                 trigger)


@dataclass(frozen=True)
class Executor:
    """Runs a job's slot with the runner of its kind, then delivers what it produced."""

    root: Path
    definitions: ValidationResult | LiveDefinitions
    reports_dsn: str
    ledger: Ledger | None = None
    primary_dsn: str | None = None

    @property
    def result(self) -> ValidationResult:
        return current(self.definitions)

    def supports(self, job: Job) -> bool:
        return job.kind == "report" or job.schedule is not None

    def __call__(self, job: Job, run: Run) -> dict[str, object]:
        if job.kind == "backup":
            return run_backup(self.root, self.result, job,
                              self.primary_dsn or database_dsn(self.root, self.result,
                                                               "primary"),
                              run_id=run.id, ledger=self.ledger)
        result = self.result
        done = run_report(report_request(self.root, result, job, run.slot, self.reports_dsn))
        outputs: dict[str, object] = {
            "rows": done.rows, "columns": done.columns, "files": done.files,
            "directory": str(done.directory), "seconds": round(done.seconds, 3),
            "alerts": done.alerts}
        if done.warnings:
            outputs["warnings"] = list(done.warnings)
            for warning in done.warnings:
                log.warning("report/%s: %s", job.name, warning)
        if self.ledger is not None:
            outputs["deliveries"] = ReportDelivery(self.root, result, self.ledger).deliver(
                job, run, done)
        return outputs


def run_backup(root: Path, result: ValidationResult, job: Job, primary_dsn: str,
               ledger_note: Any = None, *, run_id: int | None = None,
               ledger: Ledger | None = None) -> dict[str, Any]:
    """Run one slot of a backup tier, then apply its retention. Any tier's run first clears
    the staging leftovers of dead runs."""
    tier = job.tier
    assert tier is not None
    started = time.monotonic()
    clear_staging(root, ledger)
    if isinstance(tier, RestoreDrillTier):
        return run_drill(root, result, job, primary_dsn)
    if isinstance(tier, AuditVaultTier):
        return export_audit(root, result, job.name, primary_dsn)
    if isinstance(tier, WalArchiveTier):
        return check_wal(root, result, job.name, primary_dsn)
    with advisory_lock(primary_dsn, CLUSTER_LOCK, job.id):
        manifest = take_backup(root, result, job, backups_dsn(root, result, primary_dsn),
                               run_id=run_id)
        plan = apply_retention(root, result, job.name)
    return BackupRun(manifest, plan, time.monotonic() - started).outputs()
