"""The inputs a load of the definitions reads, noted by the loader as it reads them, so that a
later run can tell cheaply whether any of them changed (validate's whole-run memo, like dbt's
partial parsing that keeps each project file's checksum).

An input is observed *before* the loader uses it: an edit made while a run reads the file
leaves an observation of the old content, so the next run sees a change and recomputes.
Observations are plain JSON values (lists, strings, integers, None) so that they compare
equal after a round trip through the memo file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

Observation = list[object] | str

# More than the loader's own limits (1 MiB): a file over them reads the same "too large"
# finding whatever its content past that point.
_HASHED_BYTES = 4 * 1024 * 1024


class Journal:
    """What one load observed: "d:<folder>" and "f:<path>" keys to their observations."""

    def __init__(self) -> None:
        self.entries: dict[str, Observation] = {}


_active: list[Journal] = []


@contextmanager
def recording() -> Iterator[Journal]:
    """Note every input the loader reads inside the block in the journal yielded."""
    journal = Journal()
    _active.append(journal)
    try:
        yield journal
    finally:
        _active.remove(journal)


def note_dir(path: Path) -> None:
    """The loader is about to list the folder `path`."""
    for journal in _active:
        journal.entries.setdefault(f"d:{path}", observe_dir(str(path)))


def note_file(path: Path) -> None:
    """The loader is about to look at (stat, resolve or read) the file `path`."""
    for journal in _active:
        journal.entries.setdefault(f"f:{path}", observe_file(str(path)))


def observe_dir(path: str) -> Observation:
    """The folder's sorted names, or what it is instead."""
    try:
        names: list[object] = [*sorted(os.listdir(path))]
    except FileNotFoundError:
        return "absent"
    except NotADirectoryError:
        return "not a folder"
    except OSError as exc:
        return f"error {exc.errno}"
    return names


def observe_file(path: str) -> Observation:
    """Where the path leads, what the link says, and the content (or the error, or the kind
    of file when not a regular one): everything the loader's checks of a path depend on."""
    real = os.path.realpath(path)
    link = os.readlink(path) if os.path.islink(path) else None
    try:
        info = os.stat(path)
    except OSError as exc:
        return [real, link, "error", exc.errno]
    if not stat.S_ISREG(info.st_mode):
        return [real, link, "mode", stat.S_IFMT(info.st_mode)]
    try:
        # O_NONBLOCK: a file swapped for a FIFO since the stat cannot hang the run.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            digest = hashlib.sha256(handle.read(_HASHED_BYTES)).hexdigest()
    except OSError as exc:
        return [real, link, "error", exc.errno]
    return [real, link, info.st_size, digest]


def unchanged(entries: dict[str, object]) -> bool:
    """True when every input noted in `entries` (a Journal's, read back) is as it was."""
    for key, seen in entries.items():
        kind, _, path = key.partition(":")
        if kind == "d":
            now = observe_dir(path)
        elif kind == "f":
            now = observe_file(path)
        else:
            return False
        if now != seen:
            return False
    return True
