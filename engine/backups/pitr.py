"""Recovery targets and what they need from the WAL archive: which base backup to start
from, which segments recovery will read, and what the server's log says it reached."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from engine.backups.walnames import SEGMENT, Segment, parse_segment, segment_of_lsn
from engine.errors import BackupError, UsageError

TargetKind = Literal["latest", "immediate", "time", "lsn", "name"]
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
# A restore point's name becomes a file name in the archive and a SQL literal: keep it plain
# (PostgreSQL allows at most 63 bytes).
MARK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def parse_lsn(text: str) -> int:
    """An LSN written as X/Y, as an integer; UsageError for anything else."""
    if not _LSN.match(text):
        raise UsageError(f"'{text}' is not an LSN such as 0/3000060 (as pg_current_wal_lsn() "
                         "prints it)")
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


@dataclass(frozen=True)
class RecoveryTarget:
    """Where a physical restore stops: the end of the archive (latest), the end of the base
    backup (immediate), a time, an LSN, or a named restore point."""

    kind: TargetKind = "latest"
    time: datetime | None = None
    lsn: str | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.kind == "latest":
            return "the end of the archive"
        if self.kind == "immediate":
            return "the end of the base backup"
        if self.kind == "time":
            assert self.time is not None
            return f"time {self.time.isoformat()}"
        if self.kind == "lsn":
            return f"LSN {self.lsn}"
        return f"restore point '{self.name}'"

    @property
    def replays_archive(self) -> bool:
        return self.kind != "immediate"

    def settings(self) -> dict[str, str]:
        """postgresql.auto.conf settings beyond restore_command; none for latest (recovery
        runs until the archive has no next segment) and for immediate (no archive recovery:
        the backup's own WAL)."""
        goal = {"time": ("recovery_target_time", self.time.isoformat() if self.time else ""),
                "lsn": ("recovery_target_lsn", self.lsn or ""),
                "name": ("recovery_target_name", self.name or "")}.get(self.kind)
        if goal is None:
            return {}
        return {goal[0]: goal[1], "recovery_target_action": "promote"}


def target_from_options(target: str | None, time: datetime | None, lsn: str | None,
                        name: str | None) -> RecoveryTarget:
    """The one target the restore options name (latest when none)."""
    given = [flag for flag, value in (("--target", target), ("--target-time", time),
                                      ("--target-lsn", lsn), ("--target-name", name))
             if value is not None]
    if len(given) > 1:
        raise UsageError(f"give one recovery target, not {' and '.join(given)}")
    if time is not None:
        return RecoveryTarget("time", time=time)
    if lsn is not None:
        return RecoveryTarget("lsn", lsn=format_lsn(parse_lsn(lsn)))
    if name is not None:
        return RecoveryTarget("name", name=check_mark_name(name))
    if target in (None, "latest"):
        return RecoveryTarget("latest")
    if target == "immediate":
        return RecoveryTarget("immediate")
    raise UsageError(f"--target {target}: use latest or immediate (or --target-time, "
                     "--target-lsn, --target-name)")


def check_mark_name(name: str) -> str:
    if not MARK_NAME.match(name):
        raise UsageError(f"restore point name '{name}': use letters, digits, '.', '_' and '-' "
                         "(at most 63, starting with a letter or digit)")
    return name


@dataclass(frozen=True)
class Mark:
    """A restore point made by `marketops mark`, recorded next to the WAL archive."""

    name: str
    lsn: str
    time: datetime
    timeline: int
    segment: str

    def to_json(self) -> bytes:
        return (json.dumps({"name": self.name, "lsn": self.lsn, "time": self.time.isoformat(),
                            "timeline": self.timeline, "segment": self.segment}, indent=2)
                + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Mark:
        data = json.loads(raw)
        return cls(str(data["name"]), str(data["lsn"]), datetime.fromisoformat(data["time"]),
                   int(data["timeline"]), str(data["segment"]))


@dataclass(frozen=True)
class BaseChoice:
    """What choosing a base backup for a target needs to know of each complete backup."""

    backup_id: str
    finished_at: datetime
    stop_lsn: str | None


def choose_base(backups: list[BaseChoice], target: RecoveryTarget, mark: Mark | None,
                tier: str) -> str:
    """The newest backup whose end lies before the target (the newest of all for latest and
    immediate); BackupError when every backup ends after it."""
    if not backups:
        raise BackupError(f"{tier} has no complete backup to restore")
    stop = _target_lsn(target, mark)
    if target.kind == "time" and target.time is not None:
        usable = [b for b in backups if b.finished_at <= target.time]
        if not usable:
            raise BackupError(f"no {tier} backup finished before {target.time.isoformat()}: "
                              f"the earliest ends at {backups[0].finished_at.isoformat()}")
        return usable[-1].backup_id
    if stop is not None:
        usable = [b for b in backups if b.stop_lsn is not None and parse_lsn(b.stop_lsn) <= stop]
        if not usable:
            raise BackupError(f"no {tier} backup ends before {target.describe()} (LSN "
                              f"{format_lsn(stop)}): the earliest ends at "
                              f"{backups[0].stop_lsn or 'an unknown LSN'}")
        return usable[-1].backup_id
    return backups[-1].backup_id


def check_base_fits(backup_id: str, stop_lsn: str | None, finished_at: datetime,
                    target: RecoveryTarget, mark: Mark | None) -> None:
    """A chosen (--backup) base backup must end before the target: PostgreSQL cannot stop
    before the backup is consistent."""
    stop = _target_lsn(target, mark)
    if stop is not None and stop_lsn is not None and stop < parse_lsn(stop_lsn):
        raise BackupError(f"{target.describe()} lies before the end of backup {backup_id} "
                          f"(LSN {stop_lsn}): restore an earlier backup, or leave out --backup")
    if target.kind == "time" and target.time is not None and target.time < finished_at:
        raise BackupError(f"{target.describe()} lies before the end of backup {backup_id} "
                          f"({finished_at.isoformat()}): restore an earlier backup, or leave "
                          "out --backup")


def _target_lsn(target: RecoveryTarget, mark: Mark | None) -> int | None:
    if target.kind == "lsn" and target.lsn:
        return parse_lsn(target.lsn)
    if target.kind == "name" and mark is not None:
        return parse_lsn(mark.lsn)
    return None


@dataclass(frozen=True)
class WalRange:
    """The segments recovery will read from the archive, first to last (inclusive)."""

    first: Segment
    last: Segment
    bounded: bool  # False: to the end of the archive

    def names(self, stored: Iterable[str]) -> dict[int, list[str]]:
        """Stored segment names in the range, by segment number (one per timeline)."""
        found: dict[int, list[str]] = {}
        for name in stored:
            if SEGMENT.match(name):
                segment = parse_segment(name, self.first.size)
                if self.first.number <= segment.number <= self.last.number \
                        and segment.timeline >= self.first.timeline:
                    found.setdefault(segment.number, []).append(name)
        return found


def needed_range(start_wal: str, target: RecoveryTarget, mark: Mark | None,
                 stored: Mapping[str, datetime | None], size: int) -> WalRange | None:
    """The archive segments recovery to `target` reads from the base backup's start segment:
    to the target LSN's segment, for a time to the first segment archived after it (WAL in
    earlier ones was all written before it), else to the end of the archive; None when the
    archive holds nothing past the start (recovery then needs only the backup's own WAL)."""
    first = parse_segment(start_wal, size)
    segments = sorted((parse_segment(n, size) for n in stored if SEGMENT.match(n)),
                      key=lambda s: s.number)
    later = [s for s in segments if s.number >= first.number and s.timeline >= first.timeline]
    if not later:
        return None
    end = later[-1]
    stop = _target_lsn(target, mark)
    if stop is not None:
        wanted = segment_of_lsn(first.timeline, format_lsn(stop), size)
        return WalRange(first, Segment(end.timeline, max(wanted.number, first.number), size),
                        True)
    if target.kind == "time" and target.time is not None:
        for segment in later:
            when = stored.get(segment.name)
            if when is not None and when >= target.time:
                return WalRange(first, segment, True)
    return WalRange(first, end, False)


def first_gap(wal_range: WalRange, stored: Iterable[str]) -> str | None:
    """The first segment of the range the archive lacks."""
    present = wal_range.names(stored)
    for number in range(wal_range.first.number, wal_range.last.number + 1):
        if number not in present:
            return Segment(wal_range.first.timeline, number, wal_range.first.size).name
    return None


# -- the restored server's log --------------------------------------------------------------
# How PostgreSQL writes a timestamptz in its log (DateStyle ISO): 2026-12-02 20:59:01.5+00.
_LOG_TIME = re.compile(r"\b(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)?"
                       r"([+-]\d{2}(?::\d{2})?)(?![\d:])")


def in_zone(text: str, zone: str) -> str:
    """`text` with each time PostgreSQL's log wrote (in the server's log_timezone) shown in
    `zone`, named: '... commit at 2026-12-02 20:59:01.5+00' in Europe/Berlin reads
    '... commit at 2026-12-02 21:59:01 CET'."""
    from zoneinfo import ZoneInfo

    where = ZoneInfo(zone)

    def shown(found: re.Match[str]) -> str:
        offset = found.group(3)
        at = datetime.fromisoformat(f"{found.group(1)}{offset}" if ":" in offset
                                    else f"{found.group(1)}{offset}:00").astimezone(where)
        return f"{at:%Y-%m-%d %H:%M:%S} {at.tzname()}"

    return _LOG_TIME.sub(shown, text)


_RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')
_NOT_RESTORED = re.compile(r'could not restore file "([0-9A-F]{24})" from archive')
_STOPPED = re.compile(r"recovery stopping (?:before|after) (?:commit|abort) of transaction "
                      r"\d+, time (.+)$", re.MULTILINE)
_AT_POINT = re.compile(r'recovery stopping at restore point "(.+)", time (.+)$', re.MULTILINE)
_AT_LSN = re.compile(r'recovery stopping (?:before|after) WAL location \(LSN\) "(.+)"')
_LAST = re.compile(r"last completed transaction was at log time (.+)$", re.MULTILINE)
_REDO_DONE = re.compile(r"redo done at ([0-9A-F]+/[0-9A-F]+)")
ENDED_EARLY = "recovery ended before configured recovery target was reached"


@dataclass(frozen=True)
class RecoveryLog:
    """What a recovery's server log says: segments restored, where it stopped, why it failed."""

    restored: list[str]
    not_restored: str | None
    ended_early: bool
    stopped_at: str | None
    last_commit: str | None
    redo_done: str | None
    fatal: str | None

    @property
    def last_restored(self) -> str | None:
        return self.restored[-1] if self.restored else None

    def reached(self) -> str | None:
        """The point recovery reached, for people."""
        parts = []
        if self.stopped_at:
            parts.append(self.stopped_at)
        if self.last_commit:
            parts.append(f"last replayed commit at {self.last_commit}")
        if self.last_restored:
            parts.append(f"last archived segment {self.last_restored}")
        return "; ".join(parts) or None


def read_recovery_log(log: str) -> RecoveryLog:
    """Parse a restored server's log."""
    stopped = None
    if found := _STOPPED.findall(log):
        stopped = f"stopped before the commit at {found[-1].strip()}"
    elif point := _AT_POINT.findall(log):
        stopped = f"stopped at restore point '{point[-1][0]}' (made {point[-1][1].strip()})"
    elif lsn := _AT_LSN.findall(log):
        stopped = f"stopped at LSN {lsn[-1]}"
    last = _LAST.findall(log)
    redo = _REDO_DONE.findall(log)
    failed = _NOT_RESTORED.findall(log)
    fatal = [line.split("FATAL:", 1)[1].strip() for line in log.splitlines() if "FATAL:" in line]
    return RecoveryLog(_RESTORED.findall(log), failed[-1] if failed else None,
                       ENDED_EARLY in log, stopped, last[-1].strip() if last else None,
                       redo[-1] if redo else None, fatal[-1] if fatal else None)


def explain_early_end(parsed: RecoveryLog, target: RecoveryTarget, stored: Iterable[str],
                      start_wal: str, size: int) -> str:
    """Why recovery stopped short of its target, naming the segment it could not read."""
    if parsed.not_restored:
        return (f"WAL segment {parsed.not_restored} could not be read from the archive "
                "(damaged or unreadable)")
    after = parsed.last_restored or start_wal
    following = parse_segment(after, size).number + 1
    numbers = sorted(parse_segment(n, size).number for n in stored if SEGMENT.match(n))
    reached = parsed.reached()
    tail = f" ({reached})" if reached else ""
    nxt = Segment(parse_segment(after, size).timeline, following, size).name
    if any(n > following for n in numbers):
        return (f"WAL segment {nxt} is missing from the archive, so recovery could not go "
                f"past {after}{tail}")
    return (f"the archive ends at {after}{tail}, before {target.describe()}; restore with "
            "--target latest to recover everything it holds")
