"""Which backups a tier keeps and which it deletes, and which WAL the kept ones still need.

Applied only after a successful backup. Never deletes the newest complete backup, a parent
of a kept incremental, or WAL inside the point-in-time-recovery window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.definitions.models.backup import Retention


@dataclass(frozen=True)
class BackupInfo:
    """What retention needs to know about one complete backup."""

    backup_id: str
    finished_at: datetime
    parent_id: str | None = None
    start_wal: str | None = None


@dataclass(frozen=True)
class RetentionPlan:
    """Backups kept (with the rule that keeps each) and deleted (with why)."""

    keep: dict[str, str]
    delete: dict[str, str]


def _newest_per(backups: list[BackupInfo], count: int, key: str) -> dict[str, str]:
    picked: dict[str, str] = {}
    seen: list[str] = []
    for backup in reversed(backups):  # newest first
        moment = backup.finished_at
        bucket = {"daily": moment.strftime("%Y-%m-%d"),
                  "weekly": "{}-W{:02d}".format(*moment.isocalendar()[:2]),
                  "monthly": moment.strftime("%Y-%m")}[key]
        if bucket in seen:
            continue
        if len(seen) >= count:
            break
        seen.append(bucket)
        picked[backup.backup_id] = f"newest of {key} bucket {bucket}"
    return picked


def plan_retention(backups: list[BackupInfo], retention: Retention, now: datetime
                   ) -> RetentionPlan:
    """Apply keep_last, keep_daily/weekly/monthly and max_age to backups sorted oldest first."""
    ordered = sorted(backups, key=lambda b: (b.finished_at, b.backup_id))
    keep: dict[str, str] = {}
    for index, backup in enumerate(reversed(ordered)):
        if index < retention.keep_last:
            keep[backup.backup_id] = f"one of the newest {retention.keep_last}"
    for count, key in ((retention.keep_daily, "daily"), (retention.keep_weekly, "weekly"),
                       (retention.keep_monthly, "monthly")):
        if count:
            for backup_id, why in _newest_per(ordered, count, key).items():
                keep.setdefault(backup_id, why)
    if retention.max_age is not None:
        for backup in ordered:
            if now - backup.finished_at <= retention.max_age:
                keep.setdefault(backup.backup_id, f"younger than {retention.max_age}")
    by_id = {b.backup_id: b for b in ordered}
    for backup_id in list(keep):
        parent = by_id[backup_id].parent_id
        while parent is not None and parent in by_id:
            keep.setdefault(parent, f"parent of kept incremental {backup_id}")
            parent = by_id[parent].parent_id
    delete = {b.backup_id: "outside every keep rule" for b in ordered if b.backup_id not in keep}
    return RetentionPlan(keep, delete)


def wal_cutoff(bases: list[BackupInfo], kept: set[str], pitr_window: timedelta,
               now: datetime) -> str | None:
    """The first WAL segment still needed: the start of the newest kept base backup that
    finished before the PITR window opened (so every point in the window is reachable).
    None: keep all WAL (no base backup is old enough yet)."""
    opens = now - pitr_window
    candidates = [b for b in bases if b.backup_id in kept and b.finished_at <= opens
                  and b.start_wal]
    if not candidates:
        return None
    return max(candidates, key=lambda b: b.finished_at).start_wal


def retention_horizon(retention: Retention, interval: timedelta | None) -> timedelta:
    """How far ahead a tier's retention reaches: the longest span any of its rules keeps a
    backup for (`interval`: the time between two of its runs, for keep_last); at least a
    day. `marketops plan --retention` looks this far ahead by default."""
    spans = [timedelta(days=retention.keep_daily), timedelta(weeks=retention.keep_weekly),
             timedelta(days=31 * retention.keep_monthly), retention.max_age or timedelta(0)]
    if interval is not None:
        spans.append(interval * retention.keep_last)
    return max([timedelta(days=1), *spans])
