"""The background WAL pusher of asynchronous archiving, started detached by archive_command
(engine.app.walpush) when none runs:
`python -m engine.app.walpusher --root R --pg-wal D --spool S [--target T]`.

It stores the ready WAL files of pg_wal D with the archive's compiled settings
(runners.cache.archive), `process_max` at once, and stops when idle, after an error, or when
the settings change (runners.backup.walspool.run_pusher). It never prints: what it does goes
to the spool's pusher.log, its errors to the spool where archive_command reads them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runners.cache.archive import ArchiveConfig


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    target = None
    if len(args) == 8 and args[6] == "--target":
        target = args.pop(7)
        args.pop(6)
    if len(args) != 6 or args[0::2] != ["--root", "--pg-wal", "--spool"]:
        print("usage: python -m engine.app.walpusher --root DIR --pg-wal DIR --spool DIR "
              "[--target NAME]", file=sys.stderr)
        return 2
    root, pg_wal, spool_path = (Path(a).resolve() for a in args[1::2])
    from engine.errors import MarketopsError
    from runners.backup.walspool import GLOBAL, Spool, run_pusher, spool_dir
    from runners.cache import archive

    spool = Spool(spool_path)
    fingerprint = archive.fingerprint(root)
    config = archive.read(root, target)
    if config is None or config.process_max <= 0 or spool_path != (
            Path(config.spool) if config.spool else spool_dir(root, config.tier)).resolve():
        # Changed since archive_command read them: its next call reads them again.
        spool.create()
        spool.write_error(GLOBAL, "the WAL archive's settings changed while archive_command "
                          "waited; PostgreSQL's next call uses the new ones")
        return 1
    try:
        store_one = _storer(config)
    except MarketopsError as exc:
        spool.create()
        spool.write_error(GLOBAL, str(exc))
        return exc.exit_code
    spool.create()
    with spool.log_path.open("a", encoding="utf-8") as log:
        run_pusher(spool, pg_wal, store_one, config.archive, config.process_max,
                   lambda: archive.fingerprint(root) == fingerprint, log)
    return 0


def _storer(config: ArchiveConfig) -> Callable[[Path, Callable[[], None]], str]:
    """Store one WAL file as the synchronous path does; the sha256 of what was stored."""
    from engine.masking import remember
    from runners.backup.wal import archive_file
    from runners.cache import archive
    from runners.storage.sealing import Sealing
    from runners.storage.stores import Store, StoreSpec

    key = remember(archive.resolve(config.key_ref, f"keys.{config.key_name}")) \
        if config.key_ref else None
    store = Store(StoreSpec(config.destination, config.url, archive.resolved_options(config)))
    # zstd in the storing thread: its own workers times process_max oversubscribe the cores.
    sealing = Sealing(config.codec, config.level, config.key_name, key,
                      threads=0 if config.process_max > 1 else 2)
    return lambda path, tick: archive_file(store, config.tier, path, sealing, tick)[0]


if __name__ == "__main__":
    sys.exit(main())
