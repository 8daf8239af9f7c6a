"""How fresh each backup tier is against its RPO, and whether WAL archiving keeps up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.backups.walnames import DEFAULT_SEGMENT_SIZE, SEGMENT, missing_segments, parse_segment
from engine.backups.walqueue import QueueState

LAG_SEGMENTS = 8  # segments waiting to be archived before it counts as a growing lag


@dataclass(frozen=True)
class Freshness:
    """The newest valid backup of a tier (or newest archived WAL) against the tier's RPO."""

    tier: str
    rpo: timedelta
    newest: str | None
    age: timedelta | None
    problem: str | None
    detail: str = ""
    queue: QueueState | None = None  # asynchronous WAL archiving's spool


def backup_freshness(tier: str, rpo: timedelta, newest_id: str | None,
                     newest_at: datetime | None, now: datetime) -> Freshness:
    """Stale when the newest complete backup is older than the RPO (or there is none)."""
    if newest_at is None:
        return Freshness(tier, rpo, None, None, f"no complete backup (RPO {rpo})")
    age = now - newest_at
    problem = f"newest backup is {span(age)} old, RPO is {span(rpo)}" if age > rpo else None
    return Freshness(tier, rpo, newest_id, age, problem)


@dataclass(frozen=True)
class WalState:
    """What WAL checks need: the archive's contents and the server's archiver."""

    stored: list[str]
    first_needed: str | None
    last_archived: str | None  # pg_stat_archiver's, which a restart can reset or leave stale
    last_archived_age: timedelta | None
    current_wal: str | None
    failing: bool
    failed_count: int
    last_failed: str | None
    segment_size: int = DEFAULT_SEGMENT_SIZE
    newest_stored_age: timedelta | None = None  # since the newest stored segment was written
    ready: list[str] | None = None  # archive_status/*.ready; None when it cannot be read


def newest_archived(state: WalState) -> tuple[str | None, timedelta | None]:
    """The newest segment known archived and how long ago: the later of the server's own
    record and the newest segment actually in the archive (after a restart,
    pg_stat_archiver may name an older segment, or none)."""
    recorded = _as_segment(state.last_archived)
    segments = _segments(state)
    stored = segments[-1] if segments else None
    if stored is not None and (recorded is None or _number(state, stored)
                               > _number(state, recorded)):
        return stored, state.newest_stored_age
    return recorded, state.last_archived_age if recorded else None


def waiting_segments(state: WalState) -> int:
    """Completed segments not archived yet. Only when the archive really lags the current
    segment; then the .ready files not stored yet, when they can be read (a .ready file of
    a stored segment is only an acknowledgement still to come)."""
    newest, _ = newest_archived(state)
    if not (state.current_wal and newest and SEGMENT.match(state.current_wal)):
        return 0
    behind = _number(state, state.current_wal) - _number(state, newest) - 1
    if behind <= 0:
        return 0
    if state.ready is None:
        return behind
    stored = set(state.stored)
    return len([n for n in state.ready if SEGMENT.match(n) and n not in stored])


def wal_problems(state: WalState, rpo: timedelta) -> tuple[list[str], list[str]]:
    """(problems, gaps): missing segments by name, a failing or stalled archiver, lag."""
    problems: list[str] = []
    segments = _segments(state)
    last, last_age = newest_archived(state)
    gaps: list[str] = []
    # With no base backup yet, nothing older is needed: the archive starts at its oldest
    # stored segment, and a segment missing after it is still a gap.
    start = state.first_needed or (segments[0] if segments else None)
    if start and last:
        first = parse_segment(start, state.segment_size)
        end = parse_segment(last, state.segment_size)
        gaps = missing_segments(segments, first, end) if end.number >= first.number else []
        if gaps:
            shown = ", ".join(gaps[:5]) + (f" and {len(gaps) - 5} more" if len(gaps) > 5 else "")
            problems.append(f"WAL gap: {len(gaps)} segment(s) missing from the archive: {shown}"
                            "; point-in-time recovery cannot cross it (take a new base backup)")
    if state.failing:
        problems.append(f"archiver failing on {state.last_failed} ({state.failed_count} "
                        "failures): segments pile up in pg_wal until it succeeds")
    waiting = waiting_segments(state)
    if waiting > LAG_SEGMENTS:
        problems.append(f"archive lag: {waiting} completed segments not archived yet")
    # An idle server switches no segment: an old last-archived time alone is not a stall.
    if waiting > 0 and last_age is not None and last_age > rpo:
        problems.append(f"archiver stalled: last segment archived {span(last_age)}"
                        f" ago with {waiting} waiting, RPO is {span(rpo)}")
    if state.last_archived is None and not segments:
        problems.append("nothing archived yet: is archive_command set? (marketops wal-setup)")
    return problems, gaps


def _segments(state: WalState) -> list[str]:
    """The stored segments (no history or label files), oldest first."""
    return sorted((s for s in state.stored if SEGMENT.match(s)),
                  key=lambda n: _number(state, n))


def _number(state: WalState, name: str) -> int:
    return parse_segment(name, state.segment_size).number


def _as_segment(name: str | None) -> str | None:
    """The segment a WAL file name belongs to (a .backup label names its segment first);
    None for history files."""
    if name and SEGMENT.match(name[:24]):
        return name[:24]
    return None


def span(delta: timedelta) -> str:
    """A short human duration: 45s, 12min, 3.5h, 2.0d."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
