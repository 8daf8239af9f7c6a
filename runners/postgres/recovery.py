"""Start PostgreSQL on a restored data directory: plain (the backup's own WAL), or recovering
WAL from the archive to a target."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from engine.backups.pitr import RecoveryLog, read_recovery_log
from engine.errors import BackupError, DatabaseError, EmbeddedServerError
from runners.postgres.connection import one_row, probe
from runners.postgres.embedded import EmbeddedServer

_RECOVERY_KEYS = ("restore_command", "recovery_target", "recovery_target_time",
                  "recovery_target_lsn", "recovery_target_name", "recovery_target_xid",
                  "recovery_target_inclusive", "recovery_target_action",
                  "recovery_target_timeline", "archive_mode", "archive_command")


@dataclass(frozen=True)
class Recovered:
    """A running server on a restored directory and its recovery's log."""

    server: EmbeddedServer
    log: RecoveryLog
    seconds: float

    @property
    def recovered_to(self) -> str | None:
        return self.log.reached()


class RecoveryFailed(BackupError):
    """The restored server stopped (or never finished recovering); its log says why."""

    def __init__(self, message: str, log: RecoveryLog, log_file: Path) -> None:
        super().__init__(message)
        self.log = log
        self.log_file = log_file


def _configure(data_dir: Path, restore_command: str | None, targets: dict[str, str]) -> None:
    for stale in ("postmaster.pid", "postmaster.opts", "recovery.signal", "standby.signal",
                  "server.log"):  # the source's log would be mistaken for this recovery's
        (data_dir / stale).unlink(missing_ok=True)
    auto = data_dir / "postgresql.auto.conf"
    kept = [line for line in auto.read_text(encoding="utf-8").splitlines()
            if line.split("=")[0].strip() not in _RECOVERY_KEYS] if auto.exists() else []
    # A restored copy must never archive into the production archive.
    lines = [*kept, "archive_mode = 'off'"]
    if restore_command:
        settings = {"restore_command": restore_command, "recovery_target_timeline": "latest",
                    **targets}
        lines += [f"{name} = '{value.replace(chr(39), chr(39) * 2)}'"
                  for name, value in settings.items()]
        (data_dir / "recovery.signal").write_text("", encoding="utf-8")
    auto.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_restored(data_dir: Path, port: int, database: str, *,
                   restore_command: str | None = None, targets: dict[str, str] | None = None,
                   timeout: float = 600) -> Recovered:
    """Start a server on `data_dir` (recovering through `restore_command` to the recovery
    target `targets` set, else to the end of the archive) and wait until it accepts writes.
    RecoveryFailed when the server stops before that."""
    started = time.monotonic()
    _configure(data_dir, restore_command, targets or {})
    server = EmbeddedServer(data_dir, port, database)
    server.adopt()
    try:
        server.start()
    except EmbeddedServerError as exc:
        if not server.is_running():  # pg_ctl may give up waiting while recovery goes on
            raise _failed(server, f"the restored server did not start: {exc}") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not probe(server.dsn("postgres"), "select pg_is_in_recovery()"):
                break
        except DatabaseError:
            # Refused or cut off: the server is still starting, or recovery ended (FATAL)
            # and it shut down; only the latter is final.
            if not server.is_running():
                raise _failed(server, "the restored server stopped during recovery") from None
        if time.monotonic() > deadline:
            server.stop()
            raise _failed(server, f"recovery did not finish within {timeout:.0f}s")
        time.sleep(0.2)
    return Recovered(server, read_recovery_log(_log(server)), time.monotonic() - started)


def _failed(server: EmbeddedServer, message: str) -> RecoveryFailed:
    log = read_recovery_log(_log(server))
    detail = f": {log.fatal}" if log.fatal else ""
    return RecoveryFailed(f"{message}{detail} (see {server.log_file})", log, server.log_file)


def _log(server: EmbeddedServer) -> str:
    try:
        return server.log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def create_restore_point(dsn: str, name: str) -> tuple[str, datetime, int, str]:
    """pg_create_restore_point on the primary: (its LSN, when, timeline, segment file)."""
    row = one_row(dsn, "select p::text, now(), pg_walfile_name(p) "
                  "from pg_create_restore_point(%s) p", (name,))
    assert row is not None
    segment = str(row[2])
    return str(row[0]), row[1], int(segment[:8], 16), segment
