"""What a server must change before it can honour a physical or WAL tier."""

from __future__ import annotations


def server_problems(settings: dict[str, str], *, incremental: bool, archiving: bool = False
                    ) -> list[str]:
    """Each setting to change, with how (reload or restart), from pg_settings values."""
    problems = []
    if settings.get("wal_level") not in ("replica", "logical"):
        problems.append("set wal_level = replica (restart needed)")
    if int(settings.get("max_wal_senders", "0")) < 2:
        problems.append("set max_wal_senders to at least 2 (restart needed)")
    if incremental and settings.get("summarize_wal") != "on":
        problems.append("set summarize_wal = on for incremental backups (reload is enough)")
    if archiving and settings.get("archive_mode") not in ("on", "always"):
        problems.append("set archive_mode = on (restart needed)")
    command = settings.get("archive_command", "")
    # `marketops wal-push` itself, or its fast path (what `marketops wal-setup` sets).
    if archiving and "wal-push" not in command and "engine.app.walpush" not in command:
        problems.append("set archive_command = 'marketops --root <repo> wal-push %p' "
                        "(reload is enough); `marketops wal-setup` prints the exact lines")
    return problems


def archiving_needs_restart(pending_restart: bool, live: dict[str, str]) -> bool:
    """After ALTER SYSTEM and a reload: whether WAL archiving still waits for a restart (a
    setting is pending one, or archive_mode or wal_level is not live yet)."""
    return pending_restart or live.get("archive_mode") not in ("on", "always") or \
        live.get("wal_level") not in ("replica", "logical")
