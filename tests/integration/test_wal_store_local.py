"""WAL segments on a file:// destination: stored in one pass and named after their content
once sealed, the check for a namesake made again under the folder's lock; and the local
file system answering Store's calls as fsspec's does."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyrage
import pytest

from engine.errors import BackupError
from runners.backup.wal import archive_file, fetch
from runners.storage.localfs import LocalFiles
from runners.storage.sealing import Sealing
from runners.storage.stores import Store, StoreSpec

KEY = str(pyrage.x25519.Identity.generate())
NAME = "000000010000000000000007"
FOLDER = "wal/0000000100000000"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(StoreSpec("backups", f"file://{tmp_path / 'archive'}"))


def segment(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / NAME
    path.write_bytes(content * (1 << 14))
    return path


def entries(store: Store) -> list[str]:
    folder = Path(store.path(FOLDER))
    return sorted(p.name for p in folder.iterdir())


def test_a_segment_is_stored_in_one_pass_under_its_digest_and_fetched_back(
        store: Store, tmp_path: Path) -> None:
    path = segment(tmp_path, b"walpages")
    digest, stored = archive_file(store, "wal", path, Sealing("zstd", 3, "k", KEY))
    assert stored and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entries(store) == [f"{NAME}-{digest}.zst.age"]  # no partial file left
    assert archive_file(store, "wal", path, Sealing("zstd", 3, "k", KEY)) == (digest, False)
    fetch(store, "wal", NAME, tmp_path / "restored", KEY)
    assert (tmp_path / "restored").read_bytes() == path.read_bytes()


def test_a_namesake_stored_meanwhile_is_checked_before_publishing(
        store: Store, tmp_path: Path) -> None:
    path = segment(tmp_path, b"walpages")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    other = f"{NAME}-{'0' * 64}.zst.age"

    def another_cluster() -> None:  # stores the same name while this one seals
        folder = Path(store.path(FOLDER))
        if folder.is_dir() and not (folder / other).exists():
            (folder / other).write_bytes(b"theirs")

    with pytest.raises(BackupError, match=f"refusing to archive {NAME}: a different file"):
        archive_file(store, "wal", path, Sealing("zstd", 3, "k", KEY), tick=another_cluster)
    assert entries(store) == [other]  # theirs only, and no partial file of ours

    (Path(store.path(FOLDER)) / other).unlink()
    same = f"{NAME}-{digest}.zst.age"

    def same_content() -> None:  # a second pusher stored this very file meanwhile
        folder = Path(store.path(FOLDER))
        if folder.is_dir() and not (folder / same).exists():
            (folder / same).write_bytes(b"stored by the other")

    assert archive_file(store, "wal", path, Sealing("zstd", 3, "k", KEY),
                        tick=same_content) == (digest, False)
    assert entries(store) == [same]
    assert (Path(store.path(FOLDER)) / same).read_bytes() == b"stored by the other"


def test_local_files_answer_as_fsspecs_local_file_system(tmp_path: Path) -> None:
    import fsspec

    (tmp_path / "tier" / "b1").mkdir(parents=True)
    (tmp_path / "tier" / "b1" / "manifest.json").write_text("{}")
    (tmp_path / "tier" / "top").write_bytes(b"12345")
    ours, theirs = LocalFiles(), fsspec.filesystem("file")
    for path in (tmp_path / "tier", tmp_path / "tier" / "top", tmp_path / "tier" / "b1"):
        assert sorted(ours.ls(str(path))) == sorted(theirs.ls(str(path), detail=False))
        mine = {e["name"]: (e["type"], e["size"]) for e in ours.ls(str(path), detail=True)}
        fss = {e["name"]: (e["type"], e["size"]) for e in theirs.ls(str(path), detail=True)}
        assert {k: v for k, v in mine.items() if v[0] == "file"} == \
            {k: v for k, v in fss.items() if v[0] == "file"}
        assert {k for k, v in mine.items() if v[0] == "directory"} == \
            {k for k, v in fss.items() if v[0] == "directory"}
    with pytest.raises(FileNotFoundError):
        ours.ls(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        theirs.ls(str(tmp_path / "missing"))
    top = str(tmp_path / "tier" / "top")
    assert ours.size(top) == theirs.size(top) == 5
    assert ours.modified(top) == theirs.modified(top)
    assert ours.exists(top) and not ours.exists(str(tmp_path / "missing"))
    ours.rm(str(tmp_path / "tier" / "b1"), recursive=True)
    assert not (tmp_path / "tier" / "b1").exists()
