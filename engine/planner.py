"""`marketops plan`: every slot that would fire in a window, in order, with what it would run."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from engine.jobs import Job
from engine.models.backup import stored


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
