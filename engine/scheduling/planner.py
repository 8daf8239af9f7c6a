"""`marketops plan`: every slot that would fire in a window, in order, with what it would run."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from engine.definitions.models.backup import stored
from engine.errors import UsageError
from engine.scheduling.jobs import Job


@dataclass(frozen=True)
class PlannedSlot:
    """One slot: its job, when (UTC and the job's own zone), the period and the action."""

    job: Job
    slot: datetime

    @property
    def local(self) -> datetime:
        assert self.job.schedule is not None
        return self.slot.astimezone(self.job.schedule.tz)

    def action(self) -> str:
        """The SQL a report runs, or what a backup tier does."""
        if self.job.sql is not None:
            return self.job.sql.strip()
        tier = self.job.tier
        assert tier is not None
        storing = stored(tier)
        target = f" to {storing.destination}" if storing is not None else ""
        return f"{tier.kind.replace('_', ' ')} backup{target}"

    def as_dict(self) -> dict[str, object]:
        period = self.job.period(self.slot)
        return {
            "job": self.job.id, "slot": self.local.isoformat(), "slot_utc": self.slot.isoformat(),
            "timezone": self.job.schedule.timezone if self.job.schedule else None,
            "period": ({"start": period.start.isoformat(), "end": period.end.isoformat()}
                       if period else None),
            "action": self.action(),
        }


def plan(jobs: Iterable[Job], start: datetime, end: datetime) -> Iterator[PlannedSlot]:
    """Slots in (start, end] of every scheduled job, merged in time order (then job id)."""
    streams = [_slots(job, start, end) for job in sorted(jobs, key=lambda j: j.id)
               if job.schedule is not None]
    for slot, _, job in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
        yield PlannedSlot(job, slot)


def _slots(job: Job, start: datetime, end: datetime) -> Iterator[tuple[datetime, str, Job]]:
    assert job.schedule is not None
    for slot in job.schedule.between(start, end):
        yield slot, job.id, job


@dataclass(frozen=True)
class PlanWindow:
    """What `plan` shows: the window, its slots, and whether the slots are summed up per tier
    (a retention window reaches months ahead)."""

    start: datetime
    end: datetime
    slots: list[PlannedSlot]
    summarize: bool


def retained(job: Job) -> bool:
    """Whether a job is a backup tier whose runs apply a retention (not WAL, drills, vault)."""
    return job.tier is not None and job.tier.kind in ("logical_full", "logical_schemas",
                                                      "physical_base")


def horizon(jobs: Iterable[Job], start: datetime) -> timedelta:
    """The longest retention horizon among the backup tiers of `jobs` (a day without any)."""
    from engine.backups.retention import retention_horizon

    spans = [timedelta(days=1)]
    for job in jobs:
        if not retained(job) or job.schedule is None:
            continue
        upcoming = job.schedule.between(start, start + timedelta(days=32))[:2]
        interval = upcoming[1] - upcoming[0] if len(upcoming) == 2 else None
        spans.append(retention_horizon(job.tier.retention, interval))  # type: ignore[union-attr]
    return max(spans)


def plan_window(available: dict[str, Job], job_ids: Sequence[str], start: datetime | None,
                end: datetime | None, *, retention: bool, now: datetime) -> PlanWindow:
    """The slots `plan` lists. Without a window: now .. a day, or with `retention` now .. the
    longest retention horizon, counting only the runs that apply retention."""
    unknown = [j for j in job_ids if j not in available]
    if unknown:
        raise UsageError(f"unknown job {unknown[0]} (jobs: {', '.join(sorted(available))})")
    selected = [available[j] for j in job_ids] if job_ids else list(available.values())
    summarize = retention and end is None and start is None and not job_ids
    if summarize:
        selected = [j for j in selected if retained(j)]
    start = start or now.replace(microsecond=0)
    if end is None:
        end = start + (horizon(selected, start) if retention else timedelta(days=1))
    if end <= start:
        raise UsageError("--until must be after --from")
    return PlanWindow(start, end, list(plan(selected, start, end)), summarize)


def plan_text(window: PlanWindow, preview: dict[str, Any], *, utc: bool = False,
              group_checks: bool = True) -> list[str]:
    """`plan`'s text: each slot with its period and action (or per tier when summed up),
    then what each tier's retention would delete. Slots are in their job's own zone, named
    (`utc`: in UTC); the WAL tiers' health checks, which fire every few minutes, are one line
    per tier when `group_checks`."""
    def when(planned: PlannedSlot) -> str:
        schedule = planned.job.schedule
        if utc or schedule is None:
            return planned.slot.isoformat()
        return f"{planned.local.isoformat()} {schedule.timezone}"

    lines: list[str] = []
    if window.summarize:
        lines.append(f"from {window.start.isoformat()} until {window.end.isoformat()} (the "
                     "longest retention horizon), runs that apply retention:")
        for job_id in sorted({s.job.id for s in window.slots}):
            mine = [s for s in window.slots if s.job.id == job_id]
            lines.append(f"  {job_id}: {len(mine)} run(s), {mine[0].local.isoformat()} .. "
                         f"{mine[-1].local.isoformat()}")
    else:
        checks: dict[str, list[PlannedSlot]] = {}
        if group_checks:
            for planned in window.slots:
                if planned.job.tier is not None and planned.job.tier.kind == "wal_archive":
                    checks.setdefault(planned.job.id, []).append(planned)
        for planned in window.slots:
            if planned.job.id in checks:
                continue
            entry = planned.as_dict()
            period = entry["period"]
            covers = (f"  period {period['start']} .. {period['end']}"  # type: ignore[index]
                      if period else "")
            lines.append(f"{when(planned)}  {planned.job.id}{covers}")
            action = planned.action().splitlines()
            lines.append(f"    {action[0]}{' ...' if len(action) > 1 else ''}")
        for job_id, mine in sorted(checks.items()):
            schedule = mine[0].job.schedule
            cron = schedule.cron if schedule is not None else "?"
            lines.append(f"{job_id}: {len(mine)} WAL health checks ({cron}), "
                         f"{when(mine[0])} .. {when(mine[-1])}  (--all lists each)")
        grouped = sum(len(m) for m in checks.values())
        lines.append(f"{len(window.slots)} slot(s)" + (
            f", {grouped} of them WAL health checks on {len(checks)} line(s)"
            if grouped else ""))
    for tier_id, entry in preview.items():
        deletes = entry["delete"]
        wal = entry.get("wal_segments") or []
        lines.append(f"retention {tier_id}: keep {len(entry['keep'])}, delete {len(deletes)}"
                     + (f", {len(wal)} WAL segment(s)" if wal else "")
                     + (f" ({entry['note']})" if entry.get("note") else ""))
        lines += [f"    delete {tier_id}/{backup_id}: {why}"
                  for backup_id, why in sorted(deletes.items())]
        if wal:
            lines.append(f"    delete WAL {wal[0]} .. {wal[-1]}")
    return lines


def plan_payload(window: PlanWindow, preview: dict[str, Any] | None) -> dict[str, Any]:
    """`plan --format json`."""
    payload: dict[str, Any] = {"from": window.start.isoformat(), "until": window.end.isoformat(),
                               "slots": [s.as_dict() for s in window.slots]}
    if preview is not None:
        payload["retention"] = preview
    return payload
