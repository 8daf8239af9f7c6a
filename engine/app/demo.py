"""`marketops demo`: WAL archiving on the embedded server, every tier once, then a drill."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.app.context import demo_data, latest_slot, ledger_for
from engine.app.executor import Executor, run_slot
from engine.app.tiers.audit import verify_audit
from engine.app.tiers.verify import verify_tier
from engine.app.tiers.wal import (
    configure_archiving,
    prepare_archive_access,
    wait_for_archiver,
    wal_settings,
    wal_state,
)
from engine.jobs import Job, jobs
from engine.models.backup import (
    AuditVaultTier,
    RestoreDrillTier,
    WalArchiveTier,
)
from engine.models.settings import Smtp
from engine.validate import ValidationResult
from runners.codec import generate_key
from runners.database import connect
from runners.mailbox import LocalMailbox


def ensure_demo_key(root: Path, variable: str = "MARKETOPS_BACKUP_KEY") -> bool:
    """For the demo only: when the key variable is unset, use (or make) var/demo-backup.key.
    True when the demo key is used. Production keys never come from a file we write."""
    if os.environ.get(variable):
        return False
    path = root / "var" / "demo-backup.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_key()[0] + "\n", encoding="utf-8")
    os.environ[variable] = path.read_text(encoding="utf-8").strip()
    return True


@dataclass(frozen=True)
class DemoTier:
    """One tier's demo run, as the demo table prints it."""

    tier: str
    kind: str
    status: str
    stored_bytes: int
    seconds: float
    verified: str
    recovery: str
    error: str | None = None


def enable_archiving(root: Path, result: ValidationResult, target: Any) -> None:
    """WAL archiving on the embedded server (restarted if archive_mode was off; it inherits
    the key variable from this process)."""
    prepare_archive_access(root, result)
    if configure_archiving(target.dsn, wal_settings(root, result)) and target.server:
        target.server.stop()
        target.server.start()


def run_demo_backups(root: Path, result: ValidationResult, target: Any, now: datetime
                     ) -> list[DemoTier]:
    """Configure WAL archiving on the embedded server, run every tier once, then the drill."""
    enable_archiving(root, result, target)
    ledger = ledger_for(target.dsn)
    executor = Executor(root, result, target.dsn, ledger, primary_dsn=target.dsn)
    all_jobs = {j.name: j for j in _jobs(result).values() if j.kind == "backup"}
    order = sorted(all_jobs.values(), key=lambda j: (
        {"physical_base": 0, "restore_drill": 3, "wal_archive": 2}.get(
            j.tier.kind if j.tier else "", 1), j.name))
    found: list[DemoTier] = []
    for job in order:
        tier = job.tier
        assert tier is not None
        assert job.schedule is not None
        if isinstance(tier, WalArchiveTier):
            wait_for_archiver(target.dsn)
            # The WAL tier's slot is its health check, recorded in the ledger like any run.
            checked = run_slot(ledger, executor, job, job.schedule.latest_at_or_before(now)
                               or now, "manual")
            state = wal_state(root, result, job.name, target.dsn)
            ok = checked is not None and checked.status == "succeeded"
            found.append(DemoTier(job.name, tier.kind, checked.status if checked else "-", 0,
                                  0.0, f"{len(state.stored)} segments, no gap" if ok else
                                  str(checked.error if checked else "not checked"), "-"))
            continue
        slot = job.schedule.latest_at_or_before(now) or now
        outcome = run_slot(ledger, executor, job, slot, "manual")
        if outcome is None:
            continue
        outputs = outcome.outputs or {}
        if isinstance(tier, RestoreDrillTier):
            for tier_id, drilled in (outputs.get("tiers") or {}).items():
                seconds = drilled.get("seconds") or 0.0
                rto = drilled.get("rto_seconds") or 0.0
                smoke = sum(1 for v in (drilled.get("smoke") or {}).values()
                            if str(v).startswith("ok"))
                found.append(DemoTier(f"drill:{tier_id}", "restore_drill", outcome.status, 0,
                                      seconds, f"{drilled.get('checked', '')}, {smoke} smoke ok",
                                      f"{seconds:.1f}s / RTO {rto:.0f}s"))
            if outcome.status != "succeeded":
                found.append(DemoTier(job.name, tier.kind, outcome.status, 0, 0.0, "-", "-",
                                      outcome.error))
            continue
        verified = "-"
        if outcome.status == "succeeded" and not isinstance(tier, AuditVaultTier):
            problems, _ = verify_tier(root, result, job.name)
            verified = "yes" if not problems else "NO"
        elif outcome.status == "succeeded":
            problems, _ = verify_audit(root, result, job.name, dsn=target.dsn)
            verified = "chain ok" if not problems else "BROKEN"
        found.append(DemoTier(job.name, tier.kind, outcome.status,
                              int(outputs.get("stored_bytes", 0)),
                              float(outputs.get("seconds", 0.0)), verified, "-",
                              outcome.error))
    return found


def _jobs(result: ValidationResult) -> dict[str, Job]:
    return jobs(result.project)


def ensure_demo_data(root: Path, result: ValidationResult, dsn: str) -> bool:
    """On the embedded server, create and fill the marketplace when it is not there yet."""
    with connect(dsn) as conn:
        present = conn.execute(
            "select count(*) from pg_tables where schemaname = 'orders' "
            "and tablename = 'orders'").fetchone()
        if present and present[0]:
            rows = conn.execute("select exists (select 1 from orders.orders)").fetchone()
            if rows and rows[0]:
                return False
    demo_data(root, "embedded", scale=0.01, seed=42, until=None)
    return True


@dataclass(frozen=True)
class DemoReport:
    """One report's demo run."""

    job: str
    period: str
    status: str
    rows: int
    outputs: list[str]
    deliveries: dict[str, str]


def run_demo_reports(root: Path, result: ValidationResult, dsn: str, mailbox: Path,
                     now: datetime) -> list[DemoReport]:
    """Every report for its latest period, delivered to a local mailbox started for it."""
    ledger = ledger_for(dsn)
    found: list[DemoReport] = []
    with LocalMailbox(mailbox) as box:
        settings = result.project.settings
        webhooks = {name: hook.model_copy(update={"url": "${MARKETOPS_DEMO_WEBHOOK}"})
                    for name, hook in settings.webhooks.items()}
        smtp = Smtp(host="127.0.0.1", port=box.smtp_port, starttls=False,
                    sender=settings.smtp.sender if settings.smtp else "marketops@localhost")
        demo_settings = settings.model_copy(update={"smtp": smtp, "webhooks": webhooks})
        demo = ValidationResult(dataclasses.replace(result.project, settings=demo_settings),
                                result.findings)
        os.environ["MARKETOPS_DEMO_WEBHOOK"] = box.webhook_url
        executor = Executor(root, demo, dsn, ledger)
        for job in sorted((j for j in jobs(demo.project).values() if j.kind == "report"),
                          key=lambda j: j.id):
            slot = latest_slot(job, now)
            period = job.period(slot)
            outcome = run_slot(ledger, executor, job, slot, "manual")
            if outcome is None:
                continue
            outputs = outcome.outputs or {}
            found.append(DemoReport(
                job.id, f"{period.start.date()} .. {period.end.date()}" if period else "",
                outcome.status, int(outputs.get("rows", 0)),
                sorted(str(f).rsplit(".", 1)[-1] for f in outputs.get("files", {})),
                dict(outputs.get("deliveries", {}))))
    return found
