"""Start PostgreSQL on a restored data directory: plain, or recovering WAL to a target time."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.errors import BackupError, EmbeddedServerError
from runners.database import connect, query
from runners.postgres import EmbeddedServer

_RECOVERY_KEYS = ("restore_command", "recovery_target_time", "recovery_target_action",
                  "recovery_target_timeline", "archive_mode", "archive_command")
_STOPPED = re.compile(r"recovery stopping (?:before|after) (?:commit|abort) of transaction "
                      r"\d+, time (.+)$", re.MULTILINE)
_LAST = re.compile(r"last completed transaction was at log time (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Recovered:
    """A running server on a restored directory and the point it recovered to."""

    server: EmbeddedServer
    recovered_to: str | None
    seconds: float


def _configure(data_dir: Path, restore_command: str | None, target_time: datetime | None) -> None:
    for stale in ("postmaster.pid", "postmaster.opts", "recovery.signal", "standby.signal",
                  "server.log"):  # the source's log would be mistaken for this recovery's
        (data_dir / stale).unlink(missing_ok=True)
    auto = data_dir / "postgresql.auto.conf"
    kept = [line for line in auto.read_text(encoding="utf-8").splitlines()
            if line.split("=")[0].strip() not in _RECOVERY_KEYS] if auto.exists() else []
    # A restored copy must never archive into the production archive.
    lines = [*kept, "archive_mode = 'off'"]
    if restore_command:
        lines.append(f"restore_command = '{restore_command.replace(chr(39), chr(39) * 2)}'")
        lines.append("recovery_target_action = 'promote'")
        lines.append("recovery_target_timeline = 'latest'")
        if target_time is not None:
            lines.append(f"recovery_target_time = '{target_time.isoformat()}'")
        (data_dir / "recovery.signal").write_text("", encoding="utf-8")
    auto.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_restored(data_dir: Path, port: int, database: str, *,
                   restore_command: str | None = None, target_time: datetime | None = None,
                   timeout: float = 600) -> Recovered:
    """Start a server on `data_dir` (recovering to `target_time` through `restore_command`),
    wait until it accepts writes, and say which transaction time it recovered to."""
    started = time.monotonic()
    _configure(data_dir, restore_command, target_time)
    server = EmbeddedServer(data_dir, port, database)
    server.adopt()
    try:
        server.start()
    except EmbeddedServerError as exc:
        log = _log(server)
        if "recovery ended before configured recovery target was reached" in log:
            raise BackupError("the archive does not reach the requested time: recovery ended "
                              "before the target (missing WAL or a time in the future)") from None
        raise BackupError(f"the restored server did not start: {exc}") from None
    deadline = time.monotonic() + timeout
    with connect(server.dsn("postgres"), autocommit=True) as conn:
        while query(conn, "select pg_is_in_recovery()")[0][0]:
            if time.monotonic() > deadline:
                raise BackupError(f"recovery did not finish within {timeout:.0f}s; see "
                                  f"{server.log_file}")
            time.sleep(0.2)
    log = _log(server)
    stopped, last = _STOPPED.findall(log), _LAST.findall(log)
    point = None
    if last:
        point = f"last replayed commit at {last[-1].strip()}"
    if stopped:
        point = f"{point or 'no commit replayed'}; stopped before the commit at " \
            f"{stopped[-1].strip()}"
    return Recovered(server, point, time.monotonic() - started)


def _log(server: EmbeddedServer) -> str:
    try:
        return server.log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
