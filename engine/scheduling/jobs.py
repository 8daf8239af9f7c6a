"""Jobs: the schedulable units (report/<id>, backup/<id>) derived from a valid project."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from engine.definitions.models.backup import BackupTier, WalArchiveTier
from engine.definitions.models.base import RunPolicy
from engine.definitions.models.report import Report, RollingPeriod
from engine.definitions.project import Project
from engine.scheduling.periods import Period, calendar_period, rolling_period
from engine.scheduling.schedule import Schedule


@dataclass(frozen=True)
class Job:
    """One job: what it is, when it fires, and how its slots are run."""

    id: str
    kind: str  # "report" | "backup"
    name: str
    owner: str
    schedule: Schedule | None  # None: continuous (WAL archiving)
    policy: RunPolicy
    definition_hash: str
    report: Report | None = None
    sql: str | None = None
    tier: BackupTier | None = None
    git_commit: str | None = None

    def period(self, slot: datetime) -> Period | None:
        """The period a report slot covers, in the report's timezone."""
        if self.report is None or self.schedule is None:
            return None
        tz = ZoneInfo(self.report.timezone)
        if isinstance(self.report.period, RollingPeriod):
            return rolling_period(self.report.period.rolling, slot, tz)
        return calendar_period(self.report.period, slot, tz)


    def parameters(self, slot: datetime) -> dict[str, object]:
        """What a report's SQL receives for a slot: its params, the period, the slot time."""
        assert self.report is not None
        period = self.period(slot)
        assert period is not None
        return {**self.report.params, "period_start": period.start,
                "period_end": period.end, "slot_time": slot, "timezone": self.report.timezone}


def _hash(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def jobs(project: Project, git_commit: str | None = None) -> dict[str, Job]:
    """Every enabled job of a (valid) project, by id, tagged with the definitions' commit."""
    found: dict[str, Job] = {}
    for report_id, loaded in sorted(project.reports.items()):
        report = loaded.model
        if not report.enabled:
            continue
        sql = project.report_sql[report_id].text
        found[f"report/{report_id}"] = Job(
            f"report/{report_id}", "report", report_id, report.owner,
            Schedule(report.cron, report.timezone), report.run,
            _hash(report.model_dump_json(), sql), report=report, sql=sql,
            git_commit=git_commit)
    for tier_id, tier_loaded in sorted(project.backups.items()):
        tier = tier_loaded.model
        if not tier.enabled:
            continue
        # WAL archiving itself is continuous (archive_command); its slots are health checks.
        schedule = Schedule(tier.check_cron, "UTC") if isinstance(tier, WalArchiveTier) \
            else Schedule(tier.cron, tier.timezone)
        found[f"backup/{tier_id}"] = Job(
            f"backup/{tier_id}", "backup", tier_id, tier.owner, schedule, tier.run,
            _hash(tier.model_dump_json()), tier=tier, git_commit=git_commit)
    return found
