"""file:// destinations straight on the OS: the part of fsspec's local file system that
runners.storage.stores uses, without importing fsspec (75 ms, which archive_command, started
once per WAL segment, would pay for every segment).

Same paths, same answers as fsspec's LocalFileSystem for the calls Store makes: `ls` of a
file is that file, of a missing path a FileNotFoundError; `rm` of a folder removes the tree.
"""

from __future__ import annotations

import os
import shutil
import stat
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast


class LocalFiles:
    """The local file system, addressed by absolute path strings."""

    def open(self, path: str, mode: str) -> BinaryIO:
        return cast(BinaryIO, open(path, mode))

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def ls(self, path: str, detail: bool = False) -> list[Any]:
        if not os.path.isdir(path):
            if not os.path.lexists(path):
                raise FileNotFoundError(path)
            return [self.info(path) if detail else path]
        with os.scandir(path) as entries:
            names = [os.path.join(path, e.name) for e in entries]
        return [self.info(n) for n in names] if detail else names

    def info(self, path: str) -> dict[str, Any]:
        found = os.stat(path, follow_symlinks=False)
        if stat.S_ISLNK(found.st_mode):
            try:
                found = os.stat(path)
            except FileNotFoundError:
                pass  # a dangling link, as fsspec reports it: a link's own stat
        kind = "directory" if stat.S_ISDIR(found.st_mode) else \
            "file" if stat.S_ISREG(found.st_mode) else "other"
        return {"name": path, "size": found.st_size, "type": kind, "mtime": found.st_mtime}

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(os.stat(path).st_mtime, UTC)

    def rm(self, path: str, recursive: bool = False) -> None:
        if os.path.isdir(path) and not os.path.islink(path):
            if not recursive:
                os.rmdir(path)
                return
            shutil.rmtree(path)
        else:
            os.remove(path)
