"""Asynchronous WAL archiving's queue, as pgBackRest's archive-async keeps it: what the
background pusher stores next, which "stored" markers are spent, what a marker proves, and
how the queue reads in `status`.

PostgreSQL marks a finished WAL file `archive_status/<name>.ready`; once archive_command
returns 0 for it, it becomes `<name>.done`. The pusher stores ready files ahead of those
serial calls and leaves a marker per stored file; archive_command acknowledges a file only
when its marker names the same content (sha256) and the same archive.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from engine.backups.walnames import HISTORY, is_wal_name

READY = ".ready"


def ready_names(status_entries: Iterable[str]) -> list[str]:
    """The WAL files PostgreSQL waits to archive, from the names in archive_status, in the
    order its archiver takes them: timeline history files first, then by name."""
    names = {e[: -len(READY)] for e in status_entries if e.endswith(READY)}
    return sorted((n for n in names if is_wal_name(n)),
                  key=lambda n: (not HISTORY.match(n), n))


def next_to_store(ready: list[str], stored: Collection[str], busy: Collection[str],
                  slots: int) -> list[str]:
    """Up to `slots` ready files, oldest first, neither stored nor being stored."""
    if slots <= 0:
        return []
    return [n for n in ready if n not in stored and n not in busy][:slots]


def spent(stored: Iterable[str], ready: Collection[str]) -> list[str]:
    """Markers PostgreSQL no longer needs: their file is no longer ready (acknowledged,
    then recycled or removed). A marker is dropped only after its acknowledgement."""
    return sorted(n for n in stored if n not in ready)


# Seconds a running pusher may go without progress (a file read from, stored, or nothing
# to do) before archive_command deems it hung: above what one 1 MiB read waits for a slow
# destination's upload of the block before it.
STALL_AFTER = 10.0


def stalled(progress_age: float | None, stall_after: float = STALL_AFTER) -> bool:
    """Whether a running pusher whose last progress is `progress_age` seconds old is hung
    (alive, storing nothing); a pusher that records no progress (None) is never deemed
    hung: archive_command then waits for it as long as its timeout."""
    return progress_age is not None and progress_age > stall_after


@dataclass(frozen=True)
class Marker:
    """What the pusher stored for one WAL file: its content and the archive it went to."""

    name: str
    sha256: str
    archive: str  # "<destination url>#<tier>": a marker of another archive proves nothing

    def render(self) -> str:
        return json.dumps({"name": self.name, "sha256": self.sha256,
                           "archive": self.archive}) + "\n"


def parse_marker(text: str) -> Marker | None:
    """A marker's content; None for anything not written whole by `Marker.render`."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    name, sha256, archive = data.get("name"), data.get("sha256"), data.get("archive")
    if not (isinstance(name, str) and isinstance(sha256, str) and isinstance(archive, str)):
        return None
    if not (name and sha256 and archive):
        return None
    return Marker(name, sha256, archive)


def proves_stored(marker: Marker | None, name: str, sha256: str, archive: str) -> bool:
    """Whether `marker` shows this very file (name and content) stored in this archive."""
    return marker is not None and marker.name == name and marker.sha256 == sha256 \
        and marker.archive == archive


@dataclass(frozen=True)
class QueueState:
    """The spool as `status` shows it."""

    ready: int | None  # None when pg_wal cannot be read from here
    stored_ahead: int  # stored, waiting for PostgreSQL's call
    failed: list[str]  # errors the pusher left, one line each
    pusher_pid: int | None
    progress_age: float | None = None  # seconds since the running pusher's last progress


def describe(state: QueueState) -> str:
    """One line for `status`: the queue and whether the pusher runs."""
    ready = "ready: unknown (pg_wal not readable here)" if state.ready is None \
        else f"{state.ready} ready"
    pusher = f"pusher running (pid {state.pusher_pid})" if state.pusher_pid is not None \
        else "pusher not running (the next archive_command starts it)"
    if state.pusher_pid is not None and stalled(state.progress_age):
        pusher = (f"pusher HUNG (pid {state.pusher_pid}, no progress for "
                  f"{state.progress_age:.0f}s; the next archive_command replaces it)")
    line = f"async queue: {ready}, {state.stored_ahead} stored ahead, {pusher}"
    if state.failed:
        line += f"; last error: {state.failed[0]}"
    return line
