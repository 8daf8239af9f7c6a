"""`marketops backups`: every tier's backups the way pgBackRest's `info` lists them (type,
start and stop time and LSN, sizes, when last verified), the recoverable range of the
point-in-time tier, and the audit vault as batches with the state of its chain."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engine.backups.auditchain import Batch, chain_problems
from engine.backups.manifest import Manifest
from engine.backups.walnames import DEFAULT_SEGMENT_SIZE, SEGMENT, parse_segment, segment_of_lsn


@dataclass(frozen=True)
class Verified:
    """The last time a backup was shown to be restorable, and how."""

    at: datetime
    how: str  # "at backup (pg_verifybackup, pg_waldump)", "restore drill"


@dataclass(frozen=True)
class Point:
    """A recoverable point: a time (exact, or when the WAL holding it was archived) and LSN."""

    time: datetime | None
    lsn: str | None
    what: str


@dataclass(frozen=True)
class WalRange:
    """What the archive can recover: from the oldest base backup's end to the end of the
    WAL that follows the newest one without a gap."""

    segments: int
    first: str | None
    last: str | None
    earliest: Point | None
    latest: Point | None
    gap_after: str | None = None  # the first segment missing after the newest base backup
    latest_segment: str | None = None  # the segment `latest` ends, when past the base


@dataclass(frozen=True)
class Chain:
    """One audit table's batches in the vault and whether their hash chain holds."""

    table: str
    batches: list[Manifest]
    incomplete: list[str]
    damaged: list[str]
    problems: list[str]

    @property
    def state(self) -> str:
        return "intact" if not (self.problems or self.incomplete or self.damaged) else "broken"


@dataclass(frozen=True)
class TierListing:
    """One tier as `marketops backups` shows it."""

    tier: str
    kind: str
    destination: str | None
    encrypted_with: str | None
    backups: list[Manifest] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    verified: dict[str, Verified] = field(default_factory=dict)
    wal: WalRange | None = None
    chains: list[Chain] = field(default_factory=list)


def lsn_text(position: int) -> str:
    """An LSN as PostgreSQL writes it, X/Y."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def wal_range(bases: list[Manifest], stored: list[str],
              segment_size: int = DEFAULT_SEGMENT_SIZE) -> WalRange:
    """The recoverable range of a WAL archive over its base tier's complete backups (oldest
    first). A base backup carries its own WAL, so each is restorable to its end; past the
    newest one, to the end of the last segment before the first gap in the archive (its
    time is when that segment was archived, filled in by the caller: `archived_at`)."""
    segments = sorted({parse_segment(n, segment_size).number for n in stored
                       if SEGMENT.match(n)})
    names = sorted(n for n in stored if SEGMENT.match(n))
    first, last = (names[0], names[-1]) if names else (None, None)
    if not bases:
        return WalRange(len(names), first, last, None, None)
    oldest, newest = bases[0], bases[-1]
    earliest = Point(oldest.finished_at, oldest.details.get("stop_lsn"),
                     f"end of base backup {oldest.backup_id}")
    latest = Point(newest.finished_at, newest.details.get("stop_lsn"),
                   f"end of base backup {newest.backup_id}")
    start_lsn, timeline = newest.details.get("start_lsn"), newest.details.get("timeline", 1)
    if start_lsn is None:
        return WalRange(len(names), first, last, earliest, latest)
    start = segment_of_lsn(int(timeline), str(start_lsn), segment_size)
    present = set(segments)
    number = start.number
    while number in present:
        number += 1
    gap = None
    if any(n > number for n in segments):
        gap = type(start)(start.timeline, number, segment_size).name
    reached = number - 1  # the last segment of the unbroken run from the newest base's start
    stop = newest.details.get("stop_lsn")
    stop_number = segment_of_lsn(int(timeline), str(stop), segment_size).number \
        if stop is not None else start.number
    if reached >= stop_number:
        end = type(start)(start.timeline, reached, segment_size)
        latest = Point(None, lsn_text((reached + 1) * segment_size),
                       f"end of WAL segment {end.name}")
        return WalRange(len(names), first, last, earliest, latest, gap, end.name)
    return WalRange(len(names), first, last, earliest, latest, gap)


def archived_at(wal: WalRange, when: datetime | None) -> WalRange:
    """The range with its latest point timed by when its last segment was archived."""
    if wal.latest is None or wal.latest_segment is None:
        return wal
    return replace(wal, latest=replace(wal.latest, time=when))


def audit_chain(table: str, batches: list[Manifest], incomplete: list[str],
                damaged: list[str]) -> Chain:
    """One table's vault batches (ordered by id) with the problems of their hash chain."""
    ordered = sorted(batches, key=lambda m: m.backup_id)
    links = []
    for manifest in ordered:
        d = manifest.details
        links.append(Batch(manifest.backup_id, int(d["seq"]), int(d["first_id"]),
                           int(d["last_id"]), int(d["rows"]), manifest.files[0].raw_sha256,
                           str(d["prev_hash"]), str(d["chain_hash"])))
    return Chain(table, ordered, incomplete, damaged, chain_problems(links))


def _point(point: Point | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {"time": point.time.isoformat() if point.time else None, "lsn": point.lsn,
            "what": point.what}


def _backup(m: Manifest, verified: Verified | None) -> dict[str, Any]:
    return {"backup_id": m.backup_id, "type": m.backup_type, "parent": m.parent_id,
            "start": m.started_at.isoformat(), "stop": m.finished_at.isoformat(),
            "start_lsn": m.details.get("start_lsn"), "stop_lsn": m.details.get("stop_lsn"),
            "start_wal": m.details.get("start_wal"), "stop_wal": m.details.get("stop_wal"),
            "stored_bytes": m.stored_bytes, "raw_bytes": m.raw_bytes, "files": len(m.files),
            "rows": sum(m.row_counts.values()), "encrypted_with": m.encrypted_with,
            "key_fingerprint": m.details.get("key_fingerprint"),
            "server_version": m.server_version,
            "verified": {"at": verified.at.isoformat(), "how": verified.how}
            if verified else None}


def as_dict(listing: TierListing) -> dict[str, Any]:
    """The JSON shape of one tier (`marketops backups --format json`)."""
    out: dict[str, Any] = {
        "tier": listing.tier, "kind": listing.kind, "destination": listing.destination,
        "encrypted_with": listing.encrypted_with, "incomplete": listing.incomplete,
        "damaged": listing.damaged,
        "backups": [_backup(m, listing.verified.get(m.backup_id)) for m in listing.backups]}
    if listing.wal is not None:
        w = listing.wal
        out["wal"] = {"segments": w.segments, "first": w.first, "last": w.last,
                      "earliest_recoverable": _point(w.earliest),
                      "latest_recoverable": _point(w.latest), "gap_after": w.gap_after}
    if listing.chains:
        out["chains"] = [{
            "table": c.table, "state": c.state, "problems": c.problems,
            "incomplete": c.incomplete, "damaged": c.damaged,
            "batches": [{"batch_id": m.backup_id, "seq": m.details.get("seq"),
                         "first_id": m.details.get("first_id"),
                         "last_id": m.details.get("last_id"), "rows": m.details.get("rows"),
                         "stored_bytes": m.stored_bytes, "exported_at":
                         m.finished_at.isoformat(), "chain_hash": m.details.get("chain_hash")}
                        for m in c.batches]} for c in listing.chains]
    return out


def human_size(size: float) -> str:
    """Bytes as B, kB, MB, GB, TB."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S%z") if moment else "?"


def render_text(listings: list[TierListing]) -> str:
    """The listing for people: one block per tier, one line per backup."""
    lines: list[str] = []
    for t in listings:
        where = f", destination {t.destination}" if t.destination else ""
        sealed = f", encrypted with {t.encrypted_with}" if t.encrypted_with else ""
        lines.append(f"{t.tier} ({t.kind}{where}{sealed})")
        if t.chains:
            for c in t.chains:
                ids = (f", ids {c.batches[0].details.get('first_id')}.."
                       f"{c.batches[-1].details.get('last_id')}" if c.batches else "")
                state = "chain intact" if c.state == "intact" else \
                    f"chain BROKEN: {(c.problems or ['incomplete or damaged batches'])[0]}"
                extra = "".join(f", {len(x)} {what}" for x, what in
                                ((c.incomplete, "incomplete"), (c.damaged, "damaged")) if x)
                lines.append(f"  {c.table}: {len(c.batches)} batch(es){ids}{extra}, {state}")
                for m in c.batches:
                    d = m.details
                    lines.append(f"    #{d.get('seq'):<4} {m.backup_id}  ids {d.get('first_id')}"
                                 f"..{d.get('last_id')}  {int(d.get('rows', 0)):,} rows  "
                                 f"{human_size(m.stored_bytes)}")
            continue
        if t.kind != "wal_archive":
            extra = "".join(f", {len(x)} {what}" for x, what in
                            ((t.incomplete, "incomplete (interrupted, removed by the next run)"),
                             (t.damaged, "with a damaged manifest")) if x)
            lines.append(f"  {len(t.backups)} backup(s){extra}")
        for m in t.backups:
            lines.append(f"  {m.backup_id}  {m.backup_type}"
                         + (f" of {m.parent_id}" if m.parent_id else ""))
            lsn = m.details.get("start_lsn")
            lines.append(f"      start {_when(m.started_at)}" + (f"  lsn {lsn}" if lsn else "")
                         + f"   stop {_when(m.finished_at)}"
                         + (f"  lsn {m.details['stop_lsn']}" if m.details.get("stop_lsn")
                            else "")
                         + f"   ({(m.finished_at - m.started_at).total_seconds():.1f}s)")
            rows = f", {sum(m.row_counts.values()):,} rows" if m.row_counts else ""
            seen = t.verified.get(m.backup_id)
            lines.append(f"      size {human_size(m.stored_bytes)} stored, "
                         f"{human_size(m.raw_bytes)} raw, {len(m.files)} file(s){rows}; "
                         "verified: " + (f"{_when(seen.at)} ({seen.how})" if seen else "never"))
        if t.wal is not None:
            w = t.wal
            lines.append(f"  {w.segments} WAL segment(s)"
                         + (f", {w.first} .. {w.last}" if w.first else ""))
            if w.earliest and w.latest:
                lines.append(f"  recoverable from {_when(w.earliest.time)}"
                             f" (lsn {w.earliest.lsn}, {w.earliest.what})")
                approx = "" if w.latest.what.startswith("end of base") else "about "
                lines.append(f"              to {approx}{_when(w.latest.time)}"
                             f" (lsn {w.latest.lsn}, {w.latest.what})")
            else:
                lines.append("  recoverable: nothing (no complete base backup)")
            if w.gap_after:
                lines.append(f"  gap: {w.gap_after} is missing; recovery cannot go past it")
    return "\n".join(lines) + "\n"
