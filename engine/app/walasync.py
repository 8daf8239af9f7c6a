"""archive_command in asynchronous mode, shared by the fast path (engine.app.walpush) and
`marketops wal-push`: wait for the background pusher (engine.app.walpusher) to store the
segment, starting it when none runs (runners.backup.walspool)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runners.cache.archive import ArchiveConfig


def push_async(root: Path, config: ArchiveConfig, path: Path) -> bool | None:
    """Wait for the background pusher to store `path` (True when it was stored ahead of
    this call); None when the caller must store it synchronously: `path` is not a file the
    server waits to archive (no archive_status/<name>.ready beside it), or the pusher is
    hung (alive, no progress: killed; the next call starts a new one)."""
    from runners.backup.walspool import Spool, await_stored, spawn, spool_dir

    pg_wal = path.resolve().parent
    if not (pg_wal / "archive_status" / f"{path.name}.ready").exists():
        return None
    spool = Spool(Path(config.spool) if config.spool else spool_dir(root, config.tier))
    args = ["--root", str(root), "--pg-wal", str(pg_wal), "--spool", str(spool.directory)]
    if config.target is not None:
        args += ["--target", config.target]  # the pusher reads the settings of the same one
    return await_stored(spool, path, config.archive, config.timeout,
                        lambda: spawn("engine.app.walpusher", args, spool.log_path))
