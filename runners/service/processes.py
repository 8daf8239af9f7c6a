"""What runs under a pid on this host: its start time and command line (from /proc), for
the core to decide whether a run's owner is dead (engine/runs/liveness.py)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from engine.runs.liveness import Process

_PROC = Path("/proc")


def host_name() -> str:
    """This host's name, as worker names (`host:pid`) carry it."""
    return socket.gethostname()


def _boot_time() -> float:
    for line in (_PROC / "stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process(pid: int) -> Process | None:
    """The live process with this pid, or None when there is none (or only a zombie)."""
    if pid <= 0:
        return None
    if not (_PROC / "self").exists():  # not Linux: only existence can be checked
        return _signalled(pid)
    base = _PROC / str(pid)
    try:
        stat = (base / "stat").read_text()
        raw = (base / "cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return _signalled(pid)
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # exited, not yet reaped by its parent
        return None
    started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    command = tuple(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return Process(pid, datetime.fromtimestamp(started, UTC), command)


def _signalled(pid: int) -> Process | None:
    """Without a readable /proc: whether the pid exists at all (start time unknown)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # exists, owned by someone else
    return Process(pid, datetime.min.replace(tzinfo=UTC), ())
