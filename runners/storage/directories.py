"""Whole directories published at once: written in a staging directory beside the target,
then renamed into place, so that readers see the old directory or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from runners.storage.stores import Store


@contextmanager
def staged_directory(final: Path, before_publish: Callable[[], None] = lambda: None
                     ) -> Iterator[Path]:
    """A fresh directory that replaces `final` if the block completes, and is removed if not
    (nor when `before_publish` raises: a run that lost its lease publishes nothing)."""
    staging = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    created = [p for p in [staging, *staging.parents] if not p.exists()]
    staging.mkdir(parents=True)
    try:
        yield staging
        before_publish()
        _replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in created[1:]:  # a failed first run leaves no empty reports/<id>/
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def _replace(staging: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)


def copy_directory(source: Path, final: Path,
                   before_publish: Callable[[], None] = lambda: None) -> None:
    """Copy `source` to `final` (replacing it) as one change; nothing when they are one."""
    if final.resolve() == source.resolve():
        return
    with staged_directory(final, before_publish) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)


def upload_directory(source: Path, store: Store, prefix: str, last: str,
                     before_each: Callable[[], None] = lambda: None) -> None:
    """Copy the files of `source` under `prefix`, the file named `last` after all others (a
    copy is complete once it is there), `before_each` called before each file: a stale
    writer must not overwrite the files a newer copy's `last` describes."""
    for file in sorted(source.iterdir(), key=lambda p: (p.name == last, p.name)):
        before_each()
        with file.open("rb") as data, store.writer(f"{prefix}/{file.name}") as sink:
            shutil.copyfileobj(data, sink)
