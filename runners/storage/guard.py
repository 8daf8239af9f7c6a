"""Cleanup that outlives a killed marketops: staging and the tools writing into it.

Staging holds the plaintext of encrypted tiers while a dump or a restore runs. A process
killed outright (SIGKILL, the OOM killer) runs no `finally`, so the cleanup lives in another
process: one watcher per marketops process (runners/storage/watcher.py), in a session of its
own so a Ctrl-C to the terminal does not reach it, told over a pipe which directories and
tools to clean up. When the pipe closes, whatever is still held is removed and killed. If
the watcher cannot run, the next run of any tier (and `serve` at start) still removes a dead
run's leftovers (stores.remove_stale_staging).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

_WATCHER = Path(__file__).with_name("watcher.py")
_lock = threading.Lock()
_pipe: IO[bytes] | None = None
_watcher: subprocess.Popen[bytes] | None = None


def protect(directory: Path) -> None:
    """Remove `directory` if this process dies before `release`."""
    _say(f"+dir {directory.resolve()}")


def release(directory: Path) -> None:
    """No longer remove `directory` at this process's death (removed, or kept on purpose)."""
    _say(f"-dir {directory.resolve()}")


def watch(process: subprocess.Popen[str]) -> None:
    """Kill `process` if this process dies while it runs."""
    _say(f"+pid {process.pid}")


def _say(line: str) -> None:
    global _pipe, _watcher
    if "\n" in line:
        return  # a path with a newline cannot be said; the next run's sweep covers it
    with _lock:
        if _watcher is None or _watcher.poll() is not None:
            try:
                _watcher = subprocess.Popen([sys.executable, "-I", str(_WATCHER)],
                                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
            except OSError:
                _watcher, _pipe = None, None
                return
            _pipe = _watcher.stdin
        assert _pipe is not None
        try:
            _pipe.write(line.encode() + b"\n")
            _pipe.flush()
        except OSError:
            _watcher = None  # it died: a new one is started for the next line
