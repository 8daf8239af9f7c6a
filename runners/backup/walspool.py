"""Asynchronous WAL archiving through a spool directory, after pgBackRest's archive-async
(src/command/archive/push/push.c): archive_command waits for its file's "stored" marker,
starting the background pusher when none runs; the pusher reads ahead in
pg_wal/archive_status and stores ready files, a few at once, with the same push as the
synchronous path (runners.backup.wal), leaving a marker after each is durably stored.

Spool layout (one per WAL tier):

    out/<name>.ok     marker: the file's sha256 and archive, written only once it is stored
    out/<name>.error  why the pusher could not store it (archive_command prints it, fails)
    out/global.error  why the pusher could not run at all
    pusher.lock       flock held by the running pusher: a dead pusher holds nothing
    pusher.pid        its pid, for `status`
    pusher.beat       its mtime: when the pusher last made progress (a file read from or
                      stored, or nothing to do); older than STALL_AFTER while the lock is
                      held, the pusher is hung (SIGSTOP, a wedged thread): archive_command
                      kills it and stores its own file itself
    pusher.log        what it stored and what failed
    state.json        the pg_wal directory it reads (for `status`, run elsewhere)

Crash safety: a marker is written (fsynced, renamed) after the store confirmed the file; a
pusher killed before that leaves no marker and the file is pushed again, which is a no-op
for the same content and a refusal for a different one (runners.backup.wal.push). So is a
hung pusher that wakes up after archive_command stored its file itself: its copy is checked
against what is archived before it is published.

Light on purpose: archive_command imports this module on every call; the storage layer is
loaded by the pusher only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from engine.backups.walqueue import (
    STALL_AFTER,
    Marker,
    QueueState,
    next_to_store,
    parse_marker,
    proves_stored,
    ready_names,
    spent,
    stalled,
)
from engine.errors import BackupError
from engine.masking import mask

if TYPE_CHECKING:
    from concurrent.futures import Future

OK = ".ok"
ERROR = ".error"
GLOBAL = "global"
POLL = 0.05  # seconds between the pusher's looks at archive_status while idle or busy
IDLE_EXIT = 10.0  # the pusher ends after this long with nothing to store


def spool_dir(root: Path, tier: str) -> Path:
    """Where a WAL tier's spool is kept: under the repository, next to its cache."""
    return root.resolve() / ".marketops" / "spool" / tier


class Spool:
    """One WAL tier's spool directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.out = directory / "out"
        self.lock_path = directory / "pusher.lock"
        self.pid_path = directory / "pusher.pid"
        self.log_path = directory / "pusher.log"
        self.beat_path = directory / "pusher.beat"
        self.state_path = directory / "state.json"

    def create(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot create the WAL spool {self.out}: {exc.strerror}; "
                              "archive_command runs as the server's user, who must be able "
                              "to write it") from None

    # Markers and errors

    def read_marker(self, name: str) -> Marker | None:
        try:
            return parse_marker((self.out / f"{name}{OK}").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def write_marker(self, marker: Marker) -> None:
        _write_durably(self.out / f"{marker.name}{OK}", marker.render())

    def drop_marker(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.out / f"{name}{OK}").unlink()

    def stored(self) -> set[str]:
        """Names with a marker."""
        try:
            return {e[: -len(OK)] for e in os.listdir(self.out) if e.endswith(OK)}
        except FileNotFoundError:
            return set()

    def write_error(self, name: str, message: str) -> None:
        _write_durably(self.out / f"{name}{ERROR}", mask(message).replace("\n", " ") + "\n")

    def error_for(self, name: str) -> str | None:
        """The pusher's error for `name`, or the one that stopped it altogether."""
        for candidate in (name, GLOBAL):
            with contextlib.suppress(OSError):
                return (self.out / f"{candidate}{ERROR}").read_text(encoding="utf-8").strip()
        return None

    def errors(self) -> list[str]:
        found = []
        with contextlib.suppress(OSError):
            for entry in sorted(os.listdir(self.out)):
                if entry.endswith(ERROR):
                    with contextlib.suppress(OSError):
                        text = (self.out / entry).read_text(encoding="utf-8").strip()
                        found.append(f"{entry[: -len(ERROR)]}: {text}")
        return found

    def clear_errors(self, name: str) -> None:
        for candidate in (name, GLOBAL):
            with contextlib.suppress(FileNotFoundError):
                (self.out / f"{candidate}{ERROR}").unlink()

    # The pusher's liveness

    def pusher_pid(self) -> int | None:
        """The running pusher's pid (it holds the lock), or None when none runs."""
        try:
            handle = self.lock_path.open("rb")
        except OSError:
            return None
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return None
                try:
                    return int(self.pid_path.read_text(encoding="ascii").strip() or 0) or -1
                except (OSError, ValueError):
                    return -1  # running, its pid file not written yet
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None

    @contextlib.contextmanager
    def pusher_lock(self) -> Iterator[bool]:
        """Hold the pusher's lock for the block; False when another pusher holds it."""
        handle = self.lock_path.open("ab")
        try:
            # A foreground's probe holds a shared lock for microseconds: try a while.
            for _ in range(40):
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    time.sleep(0.025)
            else:
                yield False
                return
            _write_durably(self.pid_path, f"{os.getpid()}\n", sync=False)
            try:
                yield True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    self.pid_path.unlink()
        finally:
            handle.close()

    def beat(self, when: float) -> None:
        """Record that the pusher made progress at `when` (seconds since the epoch)."""
        try:
            os.utime(self.beat_path, (when, when))
        except FileNotFoundError:
            self.beat_path.touch()
            os.utime(self.beat_path, (when, when))

    def progress_age(self, now: float) -> float | None:
        """Seconds since the pusher's last progress; None when it never recorded any."""
        try:
            return now - self.beat_path.stat().st_mtime
        except OSError:
            return None

    def stop_hung(self, pid: int) -> bool:
        """SIGKILL the hung pusher `pid` (SIGTERM waits for a stopped process; SIGKILL does
        not) and wait a little for its lock to go; False when `pid` is not a WAL pusher."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            command = b""
        if b"engine.app.walpusher" not in command:
            return False  # not ours (gone, or its pid reused): nothing to kill
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 2.0
        while self.pusher_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        return True

    def write_state(self, pg_wal: Path) -> None:
        _write_durably(self.state_path, json.dumps({"pg_wal": str(pg_wal)}) + "\n",
                       sync=False)

    def pg_wal(self) -> Path | None:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = data.get("pg_wal") if isinstance(data, dict) else None
        return Path(value) if isinstance(value, str) else None

    def queue_state(self) -> QueueState:
        """The queue as `status` shows it."""
        stored = self.stored()
        ready: list[str] | None = None
        pg_wal = self.pg_wal()
        if pg_wal is not None:
            with contextlib.suppress(OSError):
                ready = ready_names(os.listdir(pg_wal / "archive_status"))
        ahead = len(stored) if ready is None else len(stored & set(ready))
        return QueueState(None if ready is None else len(ready), ahead, self.errors(),
                          self.pusher_pid(), self.progress_age(time.time()))


def _write_durably(path: Path, text: str, *, sync: bool = True) -> None:
    """Write `text` to `path` whole or not at all (a temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
        if sync:
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def sha256_of(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None


def spawn(module: str, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start the pusher (`python -m module args`) detached: a session of its own, output
    to its log."""
    with log_path.open("ab") as log:
        try:
            return subprocess.Popen([sys.executable, "-m", module, *args],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, close_fds=True, cwd="/")
        except OSError as exc:
            raise BackupError(f"cannot start the WAL pusher: {exc.strerror}") from None


def await_stored(spool: Spool, path: Path, archive: str, timeout: float,
                 start_pusher: Callable[[], subprocess.Popen[bytes]],
                 stall_after: float = STALL_AFTER) -> bool | None:
    """archive_command in async mode: return once `path` is stored in `archive` (True when
    it was stored ahead, before this call). Starts the pusher when none runs (again if it
    dies meanwhile); a BackupError for the pusher's error or after `timeout` seconds. None
    when the running pusher is hung (no progress for `stall_after` seconds): it is killed,
    and the caller stores `path` itself (the next call starts a new pusher)."""
    name = path.name
    digest = sha256_of(path)
    marker = spool.read_marker(name)
    if proves_stored(marker, name, digest, archive):
        return True
    if marker is not None:
        # Another content or archive (an old cluster's spool, changed settings): it proves
        # nothing for this file, and left in place would keep the pusher from storing it.
        spool.drop_marker(name)
    spool.create()
    child: subprocess.Popen[bytes] | None = None
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        if spool.pusher_pid() is None and (child is None or child.poll() is not None):
            if proves_stored(spool.read_marker(name), name, digest, archive):
                return False
            # Errors a finished pusher left: this call is the retry PostgreSQL makes.
            spool.clear_errors(name)
            child = start_pusher()
        if proves_stored(spool.read_marker(name), name, digest, archive):
            return False
        problem = spool.error_for(name)
        if problem is not None:
            raise BackupError(problem)
        pid = spool.pusher_pid()
        age = spool.progress_age(time.time()) if pid is not None and pid > 0 else None
        if pid is not None and pid > 0 and stalled(age, stall_after):
            killed = spool.stop_hung(pid)
            _say(spool, f"{name}: the pusher (pid {pid}) made no progress for {age:.0f}s: "
                 f"{'killed' if killed else 'not a WAL pusher, left alone'}; "
                 "archive_command stores the file itself")
            return None
        if time.monotonic() > deadline:
            raise BackupError(f"{name} was not stored by the WAL pusher within {timeout:g}s "
                              f"(see {spool.log_path}); PostgreSQL will call again")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _say(spool: Spool, line: str) -> None:
    """A line in the pusher's log from archive_command (best effort: it is a log)."""
    with contextlib.suppress(OSError), spool.log_path.open("a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {mask(line)}\n")


def run_pusher(spool: Spool, pg_wal: Path,
               store_one: Callable[[Path, Callable[[], None]], str], archive: str,
               process_max: int, still_valid: Callable[[], bool],
               log: IO[str] | None = None, idle_exit: float = IDLE_EXIT) -> None:
    """The background pusher: store ready files, `process_max` at once, oldest first,
    until nothing is left to store for `idle_exit` seconds, a file fails (as pgBackRest,
    it stops there; the next archive_command starts a new one), the settings change
    (`still_valid` turns False) or pg_wal goes away. `store_one(path, tick)` returns the
    sha256 of what it stored and calls `tick` as it reads the file: the progress
    archive_command sees in pusher.beat."""

    # Here, not on top: archive_command imports this module and never runs a pool.
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    def say(line: str) -> None:
        if log is not None:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {mask(line)}\n")
            log.flush()

    progress = [time.time()]  # when the pusher last made progress, set by every thread

    def tick() -> None:
        progress[0] = time.time()

    spool.create()
    # Before the lock: a call that sees this pusher's lock must not see the last one's beat.
    spool.beat(progress[0])
    with spool.pusher_lock() as mine:
        if not mine:
            return  # another pusher runs
        spool.beat(time.time())
        beaten = time.monotonic()
        spool.write_state(pg_wal)
        busy: dict[Future[str], str] = {}
        failed = False
        idle_since = checked = time.monotonic()
        with ThreadPoolExecutor(max_workers=process_max) as pool:
            while True:
                ready: list[str] | None
                try:
                    ready = ready_names(os.listdir(pg_wal / "archive_status"))
                except OSError as exc:
                    problem = f"cannot read {pg_wal}/archive_status: {exc.strerror}"
                    spool.write_error(GLOBAL, problem)
                    say(problem)
                    failed = True
                    ready = None
                stored = spool.stored()
                if ready is None:
                    ready = []  # unreadable is not empty: the markers stay
                else:
                    for name in spent(stored, set(ready)):
                        spool.drop_marker(name)
                if not failed:
                    for name in next_to_store(ready, stored, set(busy.values()),
                                              process_max - len(busy)):
                        busy[pool.submit(store_one, pg_wal / name, tick)] = name
                if not busy:
                    tick()  # nothing to do is progress too
                if time.monotonic() - beaten > POLL * 5:
                    spool.beat(progress[0])
                    beaten = time.monotonic()
                if busy:
                    done, _ = wait(busy, timeout=POLL, return_when=FIRST_COMPLETED)
                    for future in done:
                        name = busy.pop(future)
                        try:
                            digest = future.result()
                        except Exception as exc:  # written for its file; none escapes
                            failed = True
                            message = str(exc) if isinstance(exc, BackupError) else \
                                f"{type(exc).__name__}: {exc}"
                            spool.write_error(name, message)
                            say(f"{name}: not stored: {message}")
                        else:
                            spool.write_marker(Marker(name, digest, archive))
                            tick()
                            say(f"{name}: stored")
                    idle_since = time.monotonic()
                    continue
                if failed:
                    say("stopped after an error; the next archive_command starts again")
                    return
                now = time.monotonic()
                if now - idle_since > idle_exit:
                    return
                if now - checked > 1.0:
                    checked = now
                    if not still_valid():
                        say("the archive's settings changed: stopping")
                        return
                time.sleep(POLL)
