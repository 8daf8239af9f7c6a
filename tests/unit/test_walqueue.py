"""Asynchronous archiving's queue policy: what the pusher stores next, which markers are
spent, what a marker proves, and the status line."""

from __future__ import annotations

from engine.backups.walqueue import (
    STALL_AFTER,
    Marker,
    QueueState,
    describe,
    next_to_store,
    parse_marker,
    proves_stored,
    ready_names,
    spent,
    stalled,
)

A, B, C, D = (f"0000000100000000000000{n:02X}" for n in (1, 2, 3, 4))


def test_ready_names_in_the_archivers_order_history_first() -> None:
    entries = [f"{C}.ready", f"{A}.done", f"{B}.ready", "00000002.history.ready",
               f"{A}.ready.tmp", "junk.ready", f"{D}.partial.ready",
               f"{B}.00000028.backup.ready"]
    assert ready_names(entries) == ["00000002.history", B, f"{B}.00000028.backup", C,
                                    f"{D}.partial"]


def test_next_to_store_fills_free_slots_oldest_first() -> None:
    ready = [A, B, C, D]
    assert next_to_store(ready, stored={A}, busy={B}, slots=1) == [C]
    assert next_to_store(ready, stored=set(), busy=set(), slots=2) == [A, B]
    assert next_to_store(ready, stored={A, B, C, D}, busy=set(), slots=4) == []
    assert next_to_store(ready, stored=set(), busy={A}, slots=0) == []


def test_only_markers_of_files_no_longer_ready_are_spent() -> None:
    assert spent({A, B, C}, ready={B, C, D}) == [A]
    assert spent({A}, ready={A}) == []


def test_a_marker_proves_only_the_same_content_in_the_same_archive() -> None:
    marker = Marker(A, "ab" * 32, "file:///srv/wal#wal_archive")
    assert parse_marker(marker.render()) == marker
    assert proves_stored(marker, A, "ab" * 32, "file:///srv/wal#wal_archive")
    assert not proves_stored(marker, A, "cd" * 32, "file:///srv/wal#wal_archive")
    assert not proves_stored(marker, A, "ab" * 32, "file:///elsewhere#wal_archive")
    assert not proves_stored(marker, B, "ab" * 32, "file:///srv/wal#wal_archive")
    assert not proves_stored(None, A, "ab" * 32, "file:///srv/wal#wal_archive")


def test_torn_or_foreign_markers_are_none() -> None:
    whole = Marker(A, "ab" * 32, "s3://bucket#wal").render()
    for text in (whole[: len(whole) // 2], "", "[]", '{"name": "x"}',
                 '{"name": "", "sha256": "a", "archive": "b"}',
                 '{"name": 1, "sha256": "a", "archive": "b"}'):
        assert parse_marker(text) is None, text


def test_the_status_line_names_the_queue_and_the_pusher() -> None:
    assert describe(QueueState(5, 2, [], 4242)) == (
        "async queue: 5 ready, 2 stored ahead, pusher running (pid 4242)")
    line = describe(QueueState(None, 0, [f"{A}: refusing to archive"], None))
    assert line == ("async queue: ready: unknown (pg_wal not readable here), 0 stored ahead, "
                    "pusher not running (the next archive_command starts it); last error: "
                    f"{A}: refusing to archive")


def test_a_pusher_is_hung_only_after_stall_after_seconds_without_progress() -> None:
    assert not stalled(None)  # a pusher that records no progress is waited for
    assert not stalled(STALL_AFTER - 0.5)
    assert stalled(STALL_AFTER + 0.5)
    assert stalled(3.0, stall_after=2.0) and not stalled(1.0, stall_after=2.0)


def test_the_status_line_names_a_hung_pusher() -> None:
    assert describe(QueueState(3, 0, [], 4242, progress_age=42.4)) == (
        "async queue: 3 ready, 0 stored ahead, pusher HUNG (pid 4242, no progress for 42s; "
        "the next archive_command replaces it)")
    assert describe(QueueState(3, 0, [], 4242, progress_age=1.0)).endswith(
        "pusher running (pid 4242)")
