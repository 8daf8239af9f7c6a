"""Asynchronous archiving's spool, driven as PostgreSQL drives archive_command (a pg_wal
with archive_status/*.ready) but without a server: read-ahead, acknowledgement from a
marker, markers that prove nothing, refusals, and a manual push that stays synchronous."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.backups.walqueue import STALL_AFTER, Marker
from runners.backup.walspool import Spool
from tests.integration.test_wal_push_fast import push, root, segment

__all__ = ["root"]  # the fixture, shared with the synchronous fast path's tests

NAMES = [f"0000000100000000000000{n:02X}" for n in range(1, 5)]


@pytest.fixture
def spool(root: Path) -> Spool:
    tier = root / "definitions/backups/wal_archive.yaml"
    tier.write_text(tier.read_text() + "archive_async: {process_max: 2, timeout: 60s}\n")
    return Spool(root / ".marketops/spool/wal_archive")


def pg_wal(tmp_path: Path, names: list[str]) -> Path:
    directory = tmp_path / "pg_wal"
    (directory / "archive_status").mkdir(parents=True, exist_ok=True)
    for number, name in enumerate(names):
        segment(directory, name, f"seg{number:05d}".encode())
        (directory / "archive_status" / f"{name}.ready").touch()
    return directory


def acknowledge(directory: Path, name: str) -> None:
    """What PostgreSQL does when archive_command returned 0."""
    status = directory / "archive_status"
    (status / f"{name}.ready").rename(status / f"{name}.done")


def stored(root: Path, name: str) -> list[Path]:
    return list((root / "var/backups/wal_archive").rglob(f"{name}-*"))


def eventually(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def test_the_pusher_reads_ahead_and_the_next_call_returns_from_its_marker(
        root: Path, spool: Spool, tmp_path: Path) -> None:
    directory = pg_wal(tmp_path, NAMES)
    code, err, _ = push(root, directory / NAMES[0])
    assert code == 0, err
    assert len(stored(root, NAMES[0])) == 1
    eventually(lambda: spool.stored() >= set(NAMES), "the pusher stores the ready segments")
    state = spool.queue_state()
    assert (state.ready, state.stored_ahead, state.failed) == (4, 4, [])
    acknowledge(directory, NAMES[0])
    log = spool.log_path.read_text()
    code, err, heavy = push(root, directory / NAMES[1])
    assert code == 0 and heavy == set(), err
    assert spool.log_path.read_text().count(f"{NAMES[1]}: stored") == 1  # not stored again
    acknowledge(directory, NAMES[1])
    for name in NAMES[2:]:
        assert push(root, directory / name)[0] == 0
        acknowledge(directory, name)
    assert all(len(stored(root, n)) == 1 for n in NAMES)
    assert f"{NAMES[0]}: stored" in log
    # Acknowledged segments' markers are spent: the pusher drops them.
    eventually(lambda: not spool.stored() or spool.pusher_pid() is None, "markers dropped")
    assert spool.queue_state().ready == 0


def test_a_marker_of_other_content_proves_nothing(root: Path, spool: Spool,
                                                  tmp_path: Path) -> None:
    directory = pg_wal(tmp_path, NAMES[:1])
    spool.create()
    archive = f"file://{root / 'var/backups'}#wal_archive"
    spool.write_marker(Marker(NAMES[0], "0" * 64, archive))  # an older cluster's segment
    code, err, _ = push(root, directory / NAMES[0])
    assert code == 0, err
    assert len(stored(root, NAMES[0])) == 1, "acknowledged without being stored"
    marker = spool.read_marker(NAMES[0])
    assert marker is not None and marker.sha256 != "0" * 64


def test_a_refused_segment_fails_in_one_line_and_the_retry_starts_a_new_pusher(
        root: Path, spool: Spool, tmp_path: Path) -> None:
    directory = pg_wal(tmp_path, NAMES[:1])
    original = (directory / NAMES[0]).read_bytes()
    assert push(root, directory / NAMES[0])[0] == 0
    acknowledge(directory, NAMES[0])
    eventually(lambda: spool.pusher_pid() is None, "the idle pusher ends", timeout=120)
    spool.drop_marker(NAMES[0])
    # Same name, other content: another cluster archiving to the same place.
    (directory / NAMES[0]).write_bytes(b"imposter" * (1 << 14))
    (directory / "archive_status" / f"{NAMES[0]}.ready").touch()
    code, err, _ = push(root, directory / NAMES[0])
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"error: wal-push {NAMES[0]}: refusing to archive {NAMES[0]}: a different file of "
        "that name is already archived in 'backups' (wal_archive); is another cluster "
        "archiving to the same place?"]
    assert any("refusing to archive" in e for e in spool.queue_state().failed)
    eventually(lambda: spool.pusher_pid() is None, "the pusher stops after an error")
    (directory / NAMES[0]).write_bytes(original)  # the right segment again: PostgreSQL retries
    code, err, _ = push(root, directory / NAMES[0])
    assert code == 0, err
    assert spool.queue_state().failed == []
    assert len(stored(root, NAMES[0])) == 1


def test_a_file_the_server_does_not_wait_for_is_pushed_synchronously(
        root: Path, spool: Spool, tmp_path: Path) -> None:
    path = segment(tmp_path, NAMES[0], b"manually")  # no archive_status beside it
    code, err, _ = push(root, path)
    assert code == 0, err
    assert len(stored(root, NAMES[0])) == 1
    assert not spool.log_path.exists()


def test_the_pusher_stores_with_the_settings_of_archive_commands_target(
        root: Path, spool: Spool, tmp_path: Path) -> None:
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + "targets:\n  prod:\n    destinations:\n"
                        "      backups: {url: \"file://./var/prod-backups\"}\n")
    directory = pg_wal(tmp_path, NAMES)
    for name in NAMES:
        code, err, _ = push(root, directory / name, target="prod")
        assert code == 0, err
        acknowledge(directory, name)
    assert all(len(list((root / "var/prod-backups/wal_archive").rglob(f"{n}-*"))) == 1
               for n in NAMES)
    assert not any(stored(root, n) for n in NAMES)
    assert f"{NAMES[-1]}: stored" in spool.log_path.read_text()


def gone_or_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_hung_pusher_is_killed_and_the_call_stores_its_segment_itself(
        root: Path, spool: Spool, tmp_path: Path) -> None:
    directory = pg_wal(tmp_path, NAMES[:2])
    assert push(root, directory / NAMES[0])[0] == 0
    eventually(lambda: spool.stored() >= set(NAMES[:2]), "the pusher reads ahead")
    acknowledge(directory, NAMES[0])
    hung = spool.pusher_pid()
    assert hung is not None and hung > 0
    os.kill(hung, signal.SIGSTOP)  # alive, holding its lock, doing nothing
    try:
        # Stored ahead before the hang: acknowledged from its marker, at once.
        code, err, _ = push(root, directory / NAMES[1])
        assert code == 0, err
        acknowledge(directory, NAMES[1])
        segment(directory, NAMES[2], b"after-the-hang")
        (directory / "archive_status" / f"{NAMES[2]}.ready").touch()
        began = time.monotonic()
        code, err, _ = push(root, directory / NAMES[2])
        waited = time.monotonic() - began
        assert code == 0, err
        # Not the whole 60 s timeout: the hang is noticed from the pusher's stale progress.
        assert waited < STALL_AFTER + 20, waited
        assert len(stored(root, NAMES[2])) == 1
        eventually(lambda: gone_or_zombie(hung), "the hung pusher is killed", timeout=10)
        log = spool.log_path.read_text()
        assert f"{NAMES[2]}: the pusher (pid {hung}) made no progress for" in log, log
        assert f"[{hung}] {NAMES[2]}: stored" not in log
        acknowledge(directory, NAMES[2])
        # The next call starts a new pusher, which stores it.
        segment(directory, NAMES[3], b"new-pusher")
        (directory / "archive_status" / f"{NAMES[3]}.ready").touch()
        code, err, _ = push(root, directory / NAMES[3])
        assert code == 0, err
        # The marker is written before the log line that says so.
        eventually(lambda: f"{NAMES[3]}: stored" in spool.log_path.read_text(),
                   "the new pusher logs what it stored", timeout=10)
        assert f"[{hung}] {NAMES[3]}" not in spool.log_path.read_text()
        assert all(len(stored(root, n)) == 1 for n in NAMES)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)
