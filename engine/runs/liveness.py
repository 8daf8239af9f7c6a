"""Is the owner of a run (or of a staging directory) dead? Decided from what the ledger and
the operating system say, so a killed worker's run is taken over at once and its plaintext
staging files removed, instead of waiting out a lease that nobody will renew.

Workers are named `host:pid`; staging directories `<label>.<pid>@<host>.run<id>.<random>`.
Only a process on this host can be checked: another host's worker keeps its lease.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# Clocks of the database (the run's start) and of this host differ a little.
CLOCK_SLACK = timedelta(seconds=5)
# A worker beats every third of its lease (engine.execution); two beats missed in a row
# means it stopped, whichever host it runs on.
MISSED_BEATS = 2
_WORKER = re.compile(r"^(?P<host>.+):(?P<pid>\d+)$")
_STAGING = re.compile(r"^(?P<label>[^@/]+)\.(?P<pid>\d+)@(?P<host>[^@/]+)\.run(?P<run>\d*)\."
                      r"(?P<random>[A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class Process:
    """A live process as the operating system reports it."""

    pid: int
    started_at: datetime
    command: tuple[str, ...]


@dataclass(frozen=True)
class StagingOwner:
    """Who made a staging directory, read back from its name."""

    label: str
    pid: int
    host: str
    run_id: int | None


def worker_pid(worker: str | None, host: str) -> int | None:
    """The pid of a worker named `host:pid` on this host; None for another host or a name
    that is not of that form (`--worker NAME`): those cannot be checked from here."""
    match = _WORKER.match(worker or "")
    if not match or match.group("host") != host:
        return None
    return int(match.group("pid"))


def is_marketops_command(command: tuple[str, ...]) -> bool:
    """Whether a command line may be marketops: the `marketops` script, `-m engine.cli`, or
    any Python program (the engine is also used as a library, by tests and benchmarks).
    Only something else entirely (a shell, a server) is certainly not the owner."""
    if not command:
        return True  # a kernel thread or a zombie: unknown, so not assumed dead
    program = command[0].rsplit("/", 1)[-1]
    return program.startswith(("python", "marketops", "pypy")) or any(
        "marketops" in part or part == "engine.cli" for part in command)


def owner_gone(pid: int, process: Process | None, owner_since: datetime | None,
               me: int) -> bool:
    """Whether the process that took a run (or made a directory) at `owner_since` has died:
    no process has its pid, the one that has it started later (the pid was reused), or it
    is not marketops at all. Never ourselves."""
    if pid == me:
        return False
    if process is None:
        return True
    if owner_since is not None and process.started_at > owner_since + CLOCK_SLACK:
        return True
    return not is_marketops_command(process.command)


def dead_worker(worker: str | None, host: str, process: Process | None,
                run_started: datetime | None, me: int) -> bool:
    """Whether a running ledger row's worker is a dead process of this host, so its lease
    can be taken over now; `process` is what runs under the worker's pid (None: nothing)."""
    pid = worker_pid(worker, host)
    return pid is not None and owner_gone(pid, process, run_started, me)


def staging_name(label: str, pid: int, host: str, run_id: int | None) -> str:
    """The prefix of a staging directory (a random part follows): who made it, for which
    run, so a later run can tell a dead run's leftovers from a live one's files."""
    return f"{label.replace('/', '-')}.{pid}@{_safe(host)}.run{run_id or ''}."


def _safe(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", host) or "host"


def staging_owner(name: str) -> StagingOwner | None:
    """The owner a staging directory's name records; None when it is not one of ours."""
    match = _STAGING.match(name)
    if not match:
        return None
    run = match.group("run")
    return StagingOwner(match.group("label"), int(match.group("pid")), match.group("host"),
                        int(run) if run else None)


def stale_staging(owner: StagingOwner, host: str, process: Process | None,
                  made_at: datetime, run_status: str | None, me: int) -> bool:
    """Whether a staging directory is a dead run's leftover, safe to delete. Made on this
    host: when its maker is gone (a live maker keeps it, whatever the ledger says). Made on
    another host sharing the directory: when the ledger records its run as no longer
    running. `made_at` is the directory's creation time, `run_status` the ledger's status of
    its run (None: unknown, or no run)."""
    if owner.host == _safe(host):
        return owner_gone(owner.pid, process, made_at, me)
    return run_status is not None and run_status != "running"


def heartbeat_stopped(heartbeat_at: datetime | None, lease_until: datetime | None,
                      now: datetime) -> bool:
    """Whether a running row's worker stopped beating: more than MISSED_BEATS beats (a third
    of its lease each, the lease read back as lease_until - heartbeat_at) late. All three
    times come from the state database, so no host clock is involved."""
    if heartbeat_at is None or lease_until is None or lease_until <= heartbeat_at:
        return False
    beat = (lease_until - heartbeat_at) / 3
    return now - heartbeat_at > beat * MISSED_BEATS + CLOCK_SLACK


def run_owner_dead(worker: str | None, host: str, process: Process | None,
                   run_started: datetime | None, heartbeat_at: datetime | None,
                   lease_until: datetime | None, now: datetime, me: int) -> bool:
    """Whether a running row can be taken over now rather than after its lease: its worker
    is a dead process of this host, or (another host's, or one named otherwise) its heartbeat
    stopped. A live process of this host is trusted over a late beat (a slow state database
    delays beats, it does not kill the worker)."""
    if worker_pid(worker, host) is not None:
        return dead_worker(worker, host, process, run_started, me)
    return heartbeat_stopped(heartbeat_at, lease_until, now)
