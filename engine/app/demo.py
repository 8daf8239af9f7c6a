"""`marketops demo`: WAL archiving on the embedded server, every tier once, then a drill."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.app.context import (
    DEMO_KEY_VARIABLE,
    demo_data,
    demo_key_file,
    hand_on_demo_key,
    is_demo_project,
    latest_slot,
    ledger_for,
)
from engine.app.executor import JobDispatcher, handler_for, run_slot
from engine.app.tiers.wal import (
    configure_archiving,
    prepare_archive_access,
    wal_settings,
    wal_state,
)
from engine.definitions.models.settings import Smtp
from engine.runs.ledger import Ledger
from engine.scheduling.jobs import Job, jobs
from engine.validation.validate import ValidationResult
from runners.backup.wal import wait_for_archiver
from runners.demo.data import has_orders
from runners.demo.mailbox import LocalMailbox, answers
from runners.service import progress
from runners.storage.sealing import generate_key


def ensure_demo_key(root: Path, variable: str = DEMO_KEY_VARIABLE) -> bool:
    """For the demo only: when the key variable is unset, use (or make) var/demo-backup.key.
    True when the demo key is used. Production keys never come from a file we write."""
    if os.environ.get(variable):
        return False
    path = demo_key_file(root)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_key()[0] + "\n", encoding="utf-8")
    hand_on_demo_key(root, variable)
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


def enable_archiving(root: Path, defs: ValidationResult, target: Any) -> None:
    """WAL archiving on the embedded server (restarted if archive_mode was off; it inherits
    the key variable from this process)."""
    prepare_archive_access(root, defs)
    if configure_archiving(target.dsn, wal_settings(root, defs)) and target.server:
        target.server.stop()
        target.server.start()


def run_demo_backups(root: Path, defs: ValidationResult, target: Any, now: datetime
                     ) -> list[DemoTier]:
    """Configure WAL archiving on the embedded server, run every tier once, then the drill."""
    with progress.step("WAL archiving on the embedded server"):
        enable_archiving(root, defs, target)
    ledger = ledger_for(target.dsn)
    executor = JobDispatcher(root, defs, target.dsn, ledger, primary_dsn=target.dsn)
    backups = [j for j in _jobs(defs).values() if j.kind == "backup" and j.tier is not None]
    order = sorted(backups, key=_demo_order)
    found: list[DemoTier] = []
    with progress.step("every backup tier once, then the drill", total=len(order),
                       unit="tiers") as shown:
        for job in order:
            assert job.tier is not None and job.schedule is not None
            rows = _DEMO_ROWS.get(job.tier.kind, _backup_rows)
            found += rows(root, defs, target, ledger, executor, job, now)
            shown.advance()
    return found


def _demo_order(job: Job) -> tuple[int, str]:
    assert job.tier is not None
    return handler_for(job.tier).demo_order, job.name


def _wal_rows(root: Path, defs: ValidationResult, target: Any, ledger: Ledger,
              executor: JobDispatcher, job: Job, now: datetime) -> list[DemoTier]:
    assert job.tier is not None and job.schedule is not None
    wait_for_archiver(target.dsn)
    # The WAL tier's slot is its health check, recorded in the ledger like any run.
    checked = run_slot(ledger, executor, job, job.schedule.latest_at_or_before(now) or now,
                       "manual")
    state = wal_state(root, defs, job.name, target.dsn)
    ok = checked is not None and checked.status == "succeeded"
    return [DemoTier(job.name, job.tier.kind, checked.status if checked else "-", 0, 0.0,
                     f"{len(state.stored)} segments, no gap" if ok else
                     str(checked.error if checked else "not checked"), "-")]


def _drill_rows(root: Path, defs: ValidationResult, target: Any, ledger: Ledger,
                executor: JobDispatcher, job: Job, now: datetime) -> list[DemoTier]:
    assert job.tier is not None and job.schedule is not None
    outcome = run_slot(ledger, executor, job, job.schedule.latest_at_or_before(now) or now,
                       "manual")
    if outcome is None:
        return []
    found = []
    for tier_id, drilled in ((outcome.outputs or {}).get("tiers") or {}).items():
        seconds = drilled.get("seconds") or 0.0
        rto = drilled.get("rto_seconds") or 0.0
        smoke = sum(1 for v in (drilled.get("smoke") or {}).values()
                    if str(v).startswith("ok"))
        found.append(DemoTier(f"drill:{tier_id}", "restore_drill", outcome.status, 0,
                              seconds, f"{drilled.get('checked', '')}, {smoke} smoke ok",
                              f"{seconds:.1f}s / RTO {rto:.0f}s"))
    if outcome.status != "succeeded":
        found.append(DemoTier(job.name, job.tier.kind, outcome.status, 0, 0.0, "-", "-",
                              outcome.error))
    return found


def _backup_rows(root: Path, defs: ValidationResult, target: Any, ledger: Ledger,
                 executor: JobDispatcher, job: Job, now: datetime) -> list[DemoTier]:
    tier = job.tier
    assert tier is not None and job.schedule is not None
    outcome = run_slot(ledger, executor, job, job.schedule.latest_at_or_before(now) or now,
                       "manual")
    if outcome is None:
        return []
    outputs = outcome.outputs or {}
    verified = "-"
    if outcome.status == "succeeded":
        handler = handler_for(tier)
        problems, _ = handler.verify(root, defs, job.name, tier, dsn=target.dsn)
        verified = handler.verified_words[1 if problems else 0]
    return [DemoTier(job.name, tier.kind, outcome.status, int(outputs.get("stored_bytes", 0)),
                     float(outputs.get("seconds", 0.0)), verified, "-", outcome.error)]


_DemoRows = Callable[[Path, ValidationResult, Any, Ledger, JobDispatcher, Job, datetime],
                     list[DemoTier]]
# How the demo table shows a kind's run: the WAL check and drills have rows of their own.
_DEMO_ROWS: dict[str, _DemoRows] = {"wal_archive": _wal_rows, "restore_drill": _drill_rows}


def _jobs(defs: ValidationResult) -> dict[str, Job]:
    return jobs(defs.project)


def ensure_demo_data(root: Path, defs: ValidationResult, dsn: str) -> bool:
    """On the embedded server, create and fill the marketplace when it is not there yet."""
    if has_orders(dsn):
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


def _period_words(job: Job, period: Any) -> str:
    from engine.reports.figures import period_kind, period_words

    if period is None or job.report is None:
        return ""
    return period_words(period_kind(job.report.period), period)


def run_demo_reports(root: Path, defs: ValidationResult, dsn: str, mailbox: Path,
                     now: datetime) -> list[DemoReport]:
    """Every report for its latest period, delivered to a local mailbox started for it."""
    ledger = ledger_for(dsn)
    found: list[DemoReport] = []
    with LocalMailbox(mailbox) as box:
        demo = into_mailbox(defs, box, every_webhook=True)
        executor = JobDispatcher(root, demo, dsn, ledger)
        reports = sorted((j for j in jobs(demo.project).values() if j.kind == "report"),
                         key=lambda j: j.id)
        with progress.step("every report for its latest period", total=len(reports),
                           unit="reports") as shown:
            for job in reports:
                found.extend(_demo_report(ledger, executor, job, now))
                shown.advance()
    return found


_WEBHOOK_VARIABLE = "MARKETOPS_DEMO_WEBHOOK"


def into_mailbox(defs: ValidationResult, box: LocalMailbox,
                 every_webhook: bool = False) -> ValidationResult:
    """The definitions with mail, and the webhooks (every one, or those whose URL variable is
    unset), delivered to the local mailbox instead."""
    settings = defs.project.settings

    def unset(url: str) -> bool:
        match = re.fullmatch(r"\$\{(\w+)\}", url)
        return bool(match) and not os.environ.get(match.group(1) if match else "")

    webhooks = {name: hook.model_copy(update={"url": f"${{{_WEBHOOK_VARIABLE}}}"})
                if every_webhook or unset(hook.url) else hook
                for name, hook in settings.webhooks.items()}
    smtp = Smtp(host="127.0.0.1", port=box.smtp_port, starttls=False,
                sender=settings.smtp.sender if settings.smtp else "marketops@localhost")
    os.environ[_WEBHOOK_VARIABLE] = box.webhook_url
    changed = settings.model_copy(update={"smtp": smtp, "webhooks": webhooks})
    return ValidationResult(dataclasses.replace(defs.project, settings=changed),
                            defs.findings)


@contextmanager
def demo_mailbox(root: Path, defs: ValidationResult) -> Iterator[LocalMailbox | None]:
    """In the demo's project, when nothing answers at its SMTP server (the demo's mailbox
    stopped with it): the local mailbox again, for `run` and `serve`; None otherwise."""
    smtp = defs.project.settings.smtp
    if not is_demo_project(defs) or smtp is None or answers(smtp.host, smtp.port):
        yield None
        return
    with LocalMailbox(root / "var" / "mailbox") as box:
        yield box


def _demo_report(ledger: Ledger, executor: JobDispatcher, job: Job, now: datetime
                 ) -> list[DemoReport]:
    slot = latest_slot(job, now)
    period = job.period(slot)
    outcome = run_slot(ledger, executor, job, slot, "manual")
    if outcome is None:
        return []
    outputs = outcome.outputs or {}
    return [DemoReport(
        job.id, _period_words(job, period),
        outcome.status, int(outputs.get("rows", 0)),
        sorted(str(f).rsplit(".", 1)[-1] for f in outputs.get("files", {})),
        dict(outputs.get("deliveries", {})))]
