"""Local destinations: a file is reported stored only once it would survive a crash."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from runners.storage.stores import Store, StoreSpec


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path os.fsync is called on, in order (the real fsync still runs)."""
    seen: list[str] = []
    real: Callable[[int], None] = os.fsync

    def spy(descriptor: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real(descriptor)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def test_a_written_file_and_the_directories_made_for_it_are_synced(
        tmp_path: Path, synced: list[str]) -> None:
    store = Store(StoreSpec("local", f"file://{tmp_path / 'dest'}"))
    with store.writer("tier/backup-1/data.zst") as sink:
        sink.write(b"payload")
    backup = tmp_path / "dest" / "tier" / "backup-1"
    assert (backup / "data.zst").read_bytes() == b"payload"
    # The contents before the rename (under the partial name), then the new name's directory
    # and the names of the directories created for it.
    assert ".data.zst.partial-" in synced[0]
    assert set(synced[1:]) == {str(backup), str(backup.parent), str(tmp_path / "dest"),
                               str(tmp_path)}


def test_a_second_file_syncs_only_its_directory(tmp_path: Path, synced: list[str]) -> None:
    store = Store(StoreSpec("local", f"file://{tmp_path}"))
    store.put_bytes("tier/b/one", b"1")
    synced.clear()
    store.put_bytes("tier/b/two", b"2")
    assert synced[1:] == [str(tmp_path / "tier" / "b")]


def test_a_placed_file_is_synced_before_it_is_moved_in(tmp_path: Path,
                                                        synced: list[str]) -> None:
    written = tmp_path / "work" / "base.tar"
    written.parent.mkdir()
    written.write_bytes(b"tar")
    store = Store(StoreSpec("local", f"file://{tmp_path / 'dest'}"))
    store.place(written, "tier/b/base.tar")
    assert synced[0] == str(written)  # under its old name: the tool wrote it with --no-sync
    assert str(tmp_path / "dest" / "tier" / "b") in synced[1:]
    assert (tmp_path / "dest" / "tier" / "b" / "base.tar").read_bytes() == b"tar"


def test_a_failed_write_publishes_nothing(tmp_path: Path, synced: list[str]) -> None:
    store = Store(StoreSpec("local", f"file://{tmp_path}"))
    with pytest.raises(RuntimeError), store.writer("tier/b/half") as sink:
        sink.write(b"half")
        raise RuntimeError("the tool died")
    assert list((tmp_path / "tier" / "b").iterdir()) == []
    assert synced == []
