"""The watcher process of runners/storage/guard.py, run as `python -I watcher.py`.

Standard library only, and no import of marketops: it must start in milliseconds and work
whatever state the project is in. It reads lines from its parent until end of file, which
is the parent's end, however it ended:

    +dir PATH   a staging directory to remove if the parent dies holding it
    -dir PATH   released (removed by the parent, or kept on purpose)
    +pid PID    a tool the parent started (pg_dump, pg_basebackup), leader of its own process
                group, to kill with it, workers included (pg_dump -j forks them)

At end of file the tools still running are killed, and the directories still held removed.
A group is only killed while its leader is the same process (its start time in /proc is
compared); if the leader is gone, only the members of its group with its name are.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time


def _stat(pid: int) -> tuple[str, list[str]] | None:
    """(name, the fields after it) of /proc/PID/stat; None when there is no such pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            head, _, rest = stat.read().rpartition(")")
    except OSError:
        return None
    return head.partition("(")[2], rest.split()


def started(pid: int) -> str | None:
    """The process's name and start time (clock ticks after boot); None for no such pid."""
    found = _stat(pid)
    if found is None or len(found[1]) <= 19:
        return None
    return f"{found[0]} {found[1][19]}"  # proc(5) field 22; the list starts at field 3


def _kill_group(leader: int, since: str) -> None:
    if started(leader) == since:
        targets = [leader]
    else:  # the leader ended: its workers, if any, still carry its name and group
        name = since.rpartition(" ")[0]
        targets = []
        for entry in os.listdir("/proc"):
            found = _stat(int(entry)) if entry.isdigit() else None
            if found is not None and found[0] == name and found[1][2] == str(leader):
                targets.append(int(entry))  # field 5: the process group
    for pid in targets:
        try:
            os.killpg(leader, signal.SIGKILL) if pid == leader else os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def main() -> None:
    # A Ctrl-C meant for marketops must not stop the one thing that cleans up after it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    directories: set[str] = set()
    tools: dict[int, str] = {}
    for line in sys.stdin:
        verb, _, argument = line.rstrip("\n").partition(" ")
        if verb == "+dir":
            directories.add(argument)
        elif verb == "-dir":
            directories.discard(argument)
        elif verb == "+pid" and argument.isdigit():
            tools = {p: s for p, s in tools.items() if started(p) == s}  # forget the ended
            if (since := started(int(argument))) is not None:
                tools[int(argument)] = since
    for pid, since in tools.items():
        _kill_group(pid, since)
    deadline = time.monotonic() + 5  # a killed tool may still be creating files for a moment
    while directories and time.monotonic() < deadline:
        for directory in list(directories):
            shutil.rmtree(directory, ignore_errors=True)
            if not os.path.lexists(directory):
                directories.discard(directory)
        if directories:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
