"""WAL freshness after a server restart: pg_stat_archiver's record against the archive."""

from __future__ import annotations

from datetime import timedelta

from engine.backups.freshness import WalState, newest_archived, waiting_segments, wal_problems
from engine.backups.walnames import Segment

RPO = timedelta(minutes=5)


def names(first: int, last: int) -> list[str]:
    return [Segment(1, n).name for n in range(first, last + 1)]


def state(stored_to: int, recorded: int | None, current: int, ready: list[str] | None,
          recorded_age: timedelta = timedelta(minutes=12),
          stored_age: timedelta = timedelta(seconds=20)) -> WalState:
    return WalState(names(1, stored_to), Segment(1, 1).name,
                    Segment(1, recorded).name if recorded is not None else None,
                    recorded_age if recorded is not None else None, Segment(1, current).name,
                    False, 0, None, newest_stored_age=stored_age, ready=ready)


def test_a_stale_archiver_record_behind_the_archive_is_neither_lag_nor_a_stall() -> None:
    # Restarted: the server remembers segment 14, 12 min ago; the archive holds up to 22.
    stale = state(22, 14, 23, ready=[])
    assert newest_archived(stale) == (Segment(1, 22).name, timedelta(seconds=20))
    assert waiting_segments(stale) == 0
    assert wal_problems(stale, RPO) == ([], [])
    # Unreadable archive_status changes nothing: the archive itself is not behind.
    assert wal_problems(state(22, 14, 23, ready=None), RPO) == ([], [])


def test_a_reset_archiver_record_takes_the_archives_newest_segment() -> None:
    reset = state(22, None, 23, ready=[])
    assert newest_archived(reset) == (Segment(1, 22).name, timedelta(seconds=20))
    assert wal_problems(reset, RPO) == ([], [])


def test_an_archiver_really_behind_still_stalls_with_its_ready_files_waiting() -> None:
    behind = state(14, 14, 23, ready=names(15, 22))
    problems, _ = wal_problems(behind, RPO)
    assert problems == ["archiver stalled: last segment archived 12min ago with 8 waiting, "
                        "RPO is 5min"]
    # Without archive_status, the distance to the current segment counts.
    assert waiting_segments(state(14, 14, 23, ready=None)) == 8
    assert "archive lag: 12" in wal_problems(state(14, 14, 27, ready=None), RPO)[0][0]


def test_ready_files_already_stored_are_not_waiting() -> None:
    # Stored ahead of PostgreSQL's call (asynchronous archiving): 15-18 are in the archive,
    # their .ready files wait only for the acknowledgement.
    ahead = state(18, 14, 23, ready=names(15, 22), stored_age=timedelta(minutes=7))
    assert waiting_segments(ahead) == 4
    assert "with 4 waiting" in wal_problems(ahead, RPO)[0][0]
    # A leftover .ready of a stored segment while the archive is current waits for nothing.
    assert waiting_segments(state(22, 14, 23, ready=[Segment(1, 20).name])) == 0


def test_the_archivers_record_counts_when_it_is_the_newer() -> None:
    # Another archive's files are not ours to count; the record is newer than the archive.
    ahead_of_listing = state(20, 22, 23, ready=[], recorded_age=timedelta(seconds=3))
    assert newest_archived(ahead_of_listing) == (Segment(1, 22).name, timedelta(seconds=3))
    problems, gaps = wal_problems(ahead_of_listing, RPO)
    assert gaps == names(21, 22) and problems[0].startswith("WAL gap: 2 segment(s)")
