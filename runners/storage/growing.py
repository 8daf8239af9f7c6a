"""Reading a file while a tool is still writing it, so sealing runs beside the tool."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from runners.storage.sealing import CHUNK

POLL_SECONDS = 0.05


class GrowingFile(io.RawIOBase):
    """A file being appended to, read as it grows and to its end once `finished()` says the
    writer is done with it (the writer only appends: every byte read is final)."""

    def __init__(self, path: Path, finished: Callable[[], bool]) -> None:
        self.path, self.finished = path, finished
        self._handle: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        while True:
            # Taken before reading: an empty read after the writer finished is the true end,
            # an empty read before it only means "not written yet".
            finished = self.finished()
            if self._handle is None and self.path.exists():
                self._handle = self.path.open("rb", buffering=0)
            if self._handle is not None:
                data = self._handle.read(size if size and size > 0 else CHUNK)
                if data or finished:
                    return data or b""
            elif finished:
                return b""
            time.sleep(POLL_SECONDS)

    def fileno(self) -> int:
        if self._handle is None:
            raise OSError(f"{self.path} was never written")
        return self._handle.fileno()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        super().close()
