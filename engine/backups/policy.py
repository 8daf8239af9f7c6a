"""Backup decisions as functions of their inputs (the time passed in): full or incremental,
whether a backup can be restored with the chain it builds on, a drill's RTO verdict, and which
smoke queries a restored tier can answer."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


def incremental_parent(incremental: bool, full_every: timedelta | None,
                       latest_id: str | None, full_started_at: datetime | None,
                       now: datetime) -> str | None:
    """The backup an incremental builds on (the newest one), or None when a full is due:
    the tier is not incremental, there is nothing to build on, or the chain's full backup
    started `full_every` or longer ago."""
    if not incremental or latest_id is None:
        return None
    if full_every is not None and full_started_at is not None \
            and now - full_started_at >= full_every:
        return None
    return latest_id


def restore_chain_problems(tier_id: str, backup_id: str, chain: list[str],
                           first_parent: str | None, broken: list[str]) -> str | None:
    """Why `backup_id` cannot be restored with the `chain` it builds on (oldest first), given
    the parent the oldest names and the backups of the chain found damaged; None when it can
    (or when only the backup itself is damaged: that is its own problem, reported apart)."""
    name = f"{tier_id}/{backup_id}"
    if first_parent is not None:
        return (f"{name}: cannot be restored: backup {first_parent}, which {chain[0]} "
                "builds on, is missing")
    others = [b for b in broken if b != backup_id]
    if others:
        return (f"{name}: cannot be restored: " + ", ".join(f"{tier_id}/{b}" for b in others)
                + " that it builds on " + ("is" if len(others) == 1 else "are") + " damaged")
    return None


@dataclass
class DrillResult:
    """One tier's drill: what was restored, how long it took, what failed."""

    tier: str
    backup_id: str | None = None
    seconds: float | None = None
    rto_seconds: float = 0
    tables_checked: int = 0
    checked: str = ""
    smoke: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def within_rto(self) -> bool:
        return within_rto(self.seconds, self.rto_seconds)


def within_rto(seconds: float | None, rto_seconds: float) -> bool:
    """A restore that finished no later than the RTO; one that never finished is not."""
    return seconds is not None and seconds <= rto_seconds


def rto_problem(seconds: float | None, rto_seconds: float) -> str | None:
    """The drill's problem when a finished restore took longer than the RTO."""
    if seconds is None or within_rto(seconds, rto_seconds):
        return None
    return f"recovery took {seconds:.1f}s, over the RTO of {rto_seconds:.0f}s"


def smoke_applies(reads: Iterable[str], restored: set[str] | None) -> bool:
    """Whether a smoke query reading these schemas can run on a restore holding `restored`
    (None: the whole database)."""
    return restored is None or set(reads) <= restored
