"""archive_command's fast path: `python -m engine.app.walpush --root R [--target T] %p`.

PostgreSQL starts it once per WAL segment, one after the other, so its start-up bounds how
fast WAL is archived. It reads the archive's compiled settings (runners.cache.archive) and
stores the segment with the same push, checksums and sealing as `marketops wal-push`,
importing neither click, pydantic, sqlglot nor the definitions. When the compiled settings
are missing or older than marketops.yaml or a backup tier, it runs `marketops wal-push`
itself, which compiles them again.

With `archive_async` on the WAL tier, it stores nothing itself: it returns once the
background pusher (engine.app.walpusher, started here when none runs) has stored the
segment, which for a busy server is usually before PostgreSQL asks (runners.backup.walspool).
"""

from __future__ import annotations

import sys
from pathlib import Path


def fast_push(root: Path, path: Path, target: str | None = None) -> bool | None:
    """Push `path` with the settings compiled for `target`; None when there are none to
    trust."""
    from runners.cache import archive

    config = archive.read(root, target)
    if config is None:
        return None
    if config.process_max > 0:
        from engine.app.walasync import push_async

        done = push_async(root, config, path)
        if done is not None:
            return done
    from engine.masking import remember
    from runners.backup.wal import push
    from runners.storage.sealing import Sealing
    from runners.storage.stores import Store, StoreSpec

    key = remember(archive.resolve(config.key_ref, f"keys.{config.key_name}")) \
        if config.key_ref else None
    store = Store(StoreSpec(config.destination, config.url,
                            archive.resolved_options(config)))
    return push(store, config.tier, path, Sealing(config.codec, config.level,
                                                  config.key_name, key))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    target = None
    if len(args) == 5 and args[2] == "--target":
        target = args[3]
        del args[2:4]
    if len(args) != 3 or args[0] != "--root":
        print("usage: python -m engine.app.walpush --root DIR [--target NAME] WAL_PATH",
              file=sys.stderr)
        return 2
    root, path = Path(args[1]).resolve(), Path(args[2])
    from engine.errors import MarketopsError
    from engine.masking import mask

    try:
        pushed = fast_push(root, path, target)
    except MarketopsError as exc:
        print(mask(f"error: wal-push {path.name}: {exc}"), file=sys.stderr)
        return exc.exit_code
    if pushed is not None:
        return 0
    from engine.app.cli.main import cli

    chosen = ["--target", target] if target is not None else []
    cli.main(["--root", str(root), *chosen, "wal-push", str(path)], prog_name="marketops")
    return 0  # not reached: click exits with the command's own code


if __name__ == "__main__":
    code = main()
    # What was stored is fsynced and nothing is left to clean up: skip the interpreter's
    # teardown (tens of ms per segment, paid once per segment by PostgreSQL's archiver).
    sys.stdout.flush()
    sys.stderr.flush()
    import os

    os._exit(code)
