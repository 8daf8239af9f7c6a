"""WAL file names: segments (TTTTTTTTXXXXXXXXYYYYYYYY), history and backup-label files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
BACKUP_LABEL = re.compile(r"^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$")
PARTIAL = re.compile(r"^[0-9A-F]{24}\.partial$")
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024


def is_wal_name(name: str) -> bool:
    """Whether PostgreSQL could ask to archive or restore a file of this name."""
    return bool(SEGMENT.match(name) or HISTORY.match(name) or BACKUP_LABEL.match(name)
                or PARTIAL.match(name))


@dataclass(frozen=True, order=True)
class Segment:
    """One WAL segment: timeline and segment number (for a given segment size)."""

    timeline: int
    number: int
    size: int = DEFAULT_SEGMENT_SIZE

    @property
    def per_xlogid(self) -> int:
        return 0x100000000 // self.size

    @property
    def name(self) -> str:
        return (f"{self.timeline:08X}{self.number // self.per_xlogid:08X}"
                f"{self.number % self.per_xlogid:08X}")

    def next(self) -> Segment:
        return Segment(self.timeline, self.number + 1, self.size)


def parse_segment(name: str, size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
    """The segment a 24-hex-digit name denotes; ValueError for anything else."""
    match = SEGMENT.match(name)
    if not match:
        raise ValueError(f"not a WAL segment name: {name!r}")
    timeline, log, seg = (int(g, 16) for g in match.groups())
    per = 0x100000000 // size
    if seg >= per:
        raise ValueError(f"not a WAL segment name for {size}-byte segments: {name!r}")
    return Segment(timeline, log * per + seg, size)


def segment_of_lsn(timeline: int, lsn: str, size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
    """The segment holding an LSN written as X/Y."""
    high, _, low = lsn.partition("/")
    return Segment(timeline, ((int(high, 16) << 32) + int(low, 16)) // size, size)


def segments_between(first: Segment, last: Segment) -> Iterator[Segment]:
    """Every segment from first to last inclusive, on first's timeline."""
    for number in range(first.number, last.number + 1):
        yield Segment(first.timeline, number, first.size)


def missing_segments(stored: Iterable[str], first: Segment, last: Segment) -> list[str]:
    """Names between first and last (inclusive) that are not stored, on first's timeline.

    A segment may also be present on a later timeline (after a promotion, the switch segment
    is copied to the new timeline); only the numbers matter for recovery continuity.
    """
    numbers = {parse_segment(name, first.size).number for name in stored if SEGMENT.match(name)}
    return [s.name for s in segments_between(first, last) if s.number not in numbers]
