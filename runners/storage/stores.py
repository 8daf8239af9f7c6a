"""Destinations (file:// straight on the OS, s3:// through fsspec): write under a temporary
name, publish last.

On file:// a file is written as `.<name>.partial` and renamed when complete; on s3:// an object
only appears when its (multipart) upload completes. A backup is listed only once its
manifest.json exists, and the manifest is always the last file written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from engine.errors import BackupError, TransientError
from runners.storage.localfs import LocalFiles


@dataclass(frozen=True)
class StoreSpec:
    """A destination resolved from settings (secrets already read from the environment)."""

    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)


def _fail(spec: StoreSpec, action: str, exc: BaseException) -> BackupError:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BackupError(f"destination '{spec.name}' is full while {action}; free space or "
                           "tighten its retention (the partial file was removed)")
    if isinstance(exc, PermissionError):
        return BackupError(f"destination '{spec.name}' refused {action}: permission denied")
    text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if "Could not connect" in text or "EndpointConnectionError" in type(exc).__name__:
        return TransientError(f"destination '{spec.name}' unreachable while {action}")  # type: ignore[return-value]
    return BackupError(f"destination '{spec.name}' failed while {action}: {text}")


def _advance(amount: int, unit: str) -> None:
    progress = _progress()
    if progress is not None:
        progress.advance(amount, unit)


class _Counting:
    """A file whose reads or writes count towards the open progress step (`read` or
    `written`); everything else is the file's own."""

    def __init__(self, handle: Any, unit: str) -> None:
        self._handle = handle
        self._unit = unit

    def write(self, data: bytes) -> int:
        written = self._handle.write(data)
        _advance(len(data), self._unit)
        return int(written) if written is not None else len(data)

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._handle.read(size)
        _advance(len(data), self._unit)
        return data

    def readinto(self, buffer: Any) -> int:
        count = int(self._handle.readinto(buffer))
        _advance(count, self._unit)
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._handle)


def _progress() -> Any:
    """runners.service.progress once anything imported it: no step is open before (so
    archive_command, counting nothing, never loads it)."""
    return sys.modules.get("runners.service.progress")


def _counted(handle: Any, unit: str) -> Any:
    progress = _progress()
    return _Counting(handle, unit) if progress is not None and progress.counting(unit) \
        else handle


class Store:
    """One destination, addressed by relative names like `tier/backup-id/file`."""

    def __init__(self, spec: StoreSpec) -> None:
        self.spec = spec
        protocol, _, rest = spec.url.partition("://")
        self.local = protocol == "file"
        self.fs: Any
        if self.local:
            self.fs = LocalFiles()
            self.root = rest.rstrip("/") or "/"
        else:
            import fsspec  # here: 75 ms that file:// destinations never need

            self.fs = fsspec.filesystem("s3", **spec.options)
            self.root = rest.strip("/")

    def path(self, name: str) -> str:
        return f"{self.root}/{name}" if name else self.root

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        """A binary file that appears under `name` only if the block completes."""
        final = self.path(name)
        staging = final
        created: list[Path] = []
        if self.local:
            head, _, tail = final.rpartition("/")
            # Per thread too: the WAL pusher stores files from several threads at once.
            staging = f"{head}/.{tail}.partial-{os.getpid()}-{threading.get_ident()}"
            created = _make_dirs(Path(head))
        handle = None
        try:
            handle = self.fs.open(staging, "wb")
            yield _counted(handle, "written")
            if self.local:
                handle.flush()
                os.fsync(handle.fileno())
            handle.close()
            if self.local:
                os.replace(staging, final)
                _sync_entries(Path(final), created)
        except BaseException as exc:
            if handle is not None and self.local:
                # Closing flushes what is buffered: on a full disk that fails again, and the
                # first failure is the one to report.
                with contextlib.suppress(OSError):
                    handle.close()
            elif handle is not None:
                with contextlib.suppress(Exception):
                    handle.discard()  # s3fs: abort the multipart upload, publish nothing
                handle.closed = True  # nothing left to flush when it is collected
            if self.local:
                with contextlib.suppress(OSError):
                    os.unlink(staging)
            if isinstance(exc, OSError):
                raise _fail(self.spec, f"writing {name}", exc) from None
            raise

    @contextlib.contextmanager
    def staged(self, folder: str, label: str) -> Iterator[Staged]:
        """file:// only: a binary file written in `folder` whose name is chosen once it is
        complete (`Staged.publish`), as writer() does it otherwise (fsync, rename, fsync of
        the folder); nothing appears unless published before the block ends."""
        if not self.local:
            raise BackupError(f"destination '{self.spec.name}' cannot name a file after "
                              "writing it")  # a programming error: S3 names up front
        head = self.path(folder)
        staging = f"{head}/.{label}.partial-{os.getpid()}-{threading.get_ident()}"
        try:
            created = _make_dirs(Path(head))
            with open(staging, "wb") as handle:
                staged = Staged(self, handle, Path(staging), created)
                yield staged
        except OSError as exc:
            raise _fail(self.spec, f"writing {folder}/{label}", exc) from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(staging)

    def place(self, path: Path, name: str) -> None:
        """Store a complete local file as it is: renamed into place when the destination is
        on the same file system, copied otherwise."""
        if self.local:
            final = Path(self.path(name))
            created = _make_dirs(final.parent)
            try:
                _sync_file(path)  # the tool that wrote it did not (--no-sync)
                size = path.stat().st_size
                os.replace(path, final)
                _advance(size, "written")
                _sync_entries(final, created)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise _fail(self.spec, f"writing {name}", exc) from None
        with path.open("rb") as source, self.writer(name) as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)

    def put_bytes(self, name: str, data: bytes) -> None:
        with self.writer(name) as handle:
            handle.write(data)

    @contextlib.contextmanager
    def reader(self, name: str) -> Iterator[BinaryIO]:
        try:
            handle = self.fs.open(self.path(name), "rb")
        except FileNotFoundError:
            raise BackupError(f"'{name}' is missing from destination '{self.spec.name}'") \
                from None
        except OSError as exc:
            raise _fail(self.spec, f"reading {name}", exc) from None
        with handle:
            yield _counted(handle, "read")

    def get_bytes(self, name: str) -> bytes:
        with self.reader(name) as handle:
            return handle.read()

    def exists(self, name: str) -> bool:
        try:
            return bool(self.fs.exists(self.path(name)))
        except OSError as exc:
            raise _fail(self.spec, f"looking for {name}", exc) from None

    def list(self, prefix: str) -> list[str]:
        """Names directly under `prefix` (files and folders), without partial files."""
        try:
            entries = self.fs.ls(self.path(prefix), detail=False, refresh=True) \
                if not self.local else self.fs.ls(self.path(prefix), detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _fail(self.spec, f"listing {prefix}", exc) from None
        names = sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        return [n for n in names if not (n.startswith(".") and ".partial" in n)]

    def modified_under(self, prefix: str) -> dict[str, datetime | None]:
        """Files directly under `prefix` and when each was last written (None if unknown)."""
        try:
            entries = self.fs.ls(self.path(prefix), detail=True, **(
                {} if self.local else {"refresh": True}))
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise _fail(self.spec, f"listing {prefix}", exc) from None
        found: dict[str, datetime | None] = {}
        for entry in entries:
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if entry.get("type") == "directory" or (name.startswith(".") and ".partial" in name):
                continue
            when = entry.get("mtime", entry.get("LastModified"))
            if isinstance(when, (int, float)):
                when = datetime.fromtimestamp(when, UTC)
            found[name] = when if isinstance(when, datetime) else None
        return found

    def size(self, name: str) -> int:
        return int(self.fs.size(self.path(name)))

    def modified(self, name: str) -> datetime | None:
        """When the file was last written (stored), None when the destination cannot say."""
        try:
            moment = self.fs.modified(self.path(name))
        except (OSError, NotImplementedError, KeyError):
            return None
        if not isinstance(moment, datetime):
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def remove(self, name: str) -> None:
        """Delete a file or a whole folder (a backup); missing is fine."""
        target = self.path(name)
        try:
            if self.fs.exists(target):
                self.fs.rm(target, recursive=True)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _fail(self.spec, f"removing {name}", exc) from None

    def local_path(self, name: str) -> Path | None:
        """The file's path on disk for a file:// destination."""
        return Path(self.path(name)) if self.local else None


class Staged:
    """A file being written by Store.staged, not yet under its name."""

    def __init__(self, store: Store, handle: BinaryIO, path: Path, created: list[Path]
                 ) -> None:
        self.store = store
        self.handle = handle
        self.sink: BinaryIO = _counted(handle, "written")
        self.path = path
        self.created = created

    def publish(self, choose: Callable[[list[str]], str | None]) -> str | None:
        """Make the file durable, then, holding the folder's lock (every Staged.publish in
        that folder, of any process, waits for it), rename it to the name `choose` picks
        from the folder's names (partial files left out); None: it is dropped. The name
        published, or None."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        folder = self.path.parent
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            # flock on the directory: the choice and the rename are one step for every
            # writer of this folder, so two of them cannot both see it free.
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError as exc:
                # NFS emulates flock with POSIX locks, which a directory cannot take: there
                # the check stays one step before the rename, as on S3.
                if exc.errno not in (errno.EBADF, errno.ENOLCK, errno.EINVAL,
                                     errno.EOPNOTSUPP):
                    raise
            names = [n for n in os.listdir(folder) if not (n.startswith(".") and ".partial" in n)]
            name = choose(sorted(names))
            if name is None:
                return None
            final = folder / name
            os.replace(self.path, final)
            _sync_entries(final, self.created)
            return name
        finally:
            os.close(descriptor)  # releases the lock


def _make_dirs(directory: Path) -> list[Path]:
    """Create `directory` and its missing parents; the ones created, outermost first."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()][::-1]
    directory.mkdir(parents=True, exist_ok=True)
    return missing


def _sync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_entries(final: Path, created: list[Path]) -> None:
    """Make a renamed file's name durable, and the names of the directories made for it: a
    backup (or a WAL segment PostgreSQL then recycles) is only reported stored once it would
    survive a crash of the machine."""
    for directory in {final.parent, *(d.parent for d in created)}:
        _sync_file(directory)


def make_staging(staging: Path, label: str, run_id: int | None = None) -> Path:
    """A new scratch directory under `staging`, named after its maker (label, pid, host, run)
    so that, if this process is killed, a later run can recognise it as a leftover. It is
    removed at this process's death unless handed back with `guard.release`."""
    import secrets

    from engine.runs.liveness import staging_name
    from runners.service.processes import host_name
    from runners.storage import guard

    staging.mkdir(parents=True, exist_ok=True)
    prefix = staging_name(label, os.getpid(), host_name(), run_id)
    while True:
        made = staging / (prefix + secrets.token_hex(4))
        # The watcher is told before the directory exists: a kill at any instant after
        # leaves nothing (guard.py).
        guard.protect(made)
        try:
            made.mkdir(mode=0o700)
            return made
        except FileExistsError:
            guard.release(made)


def remove_stale_staging(staging: Path,
                         run_statuses: Callable[[list[int]], dict[int, str]] | None = None
                         ) -> list[str]:
    """Delete the scratch directories of dead runs (dumps and restores hold plaintext of
    encrypted tiers): those whose maker on this host is gone, or whose run the ledger
    (`run_statuses`) records as no longer running. The names removed."""
    import shutil

    from engine.runs.liveness import staging_owner, stale_staging
    from runners.service.processes import host_name, process

    try:
        entries = sorted(staging.iterdir())
    except FileNotFoundError:
        return []
    owned = [(path, owner) for path in entries
             if path.is_dir() and (owner := staging_owner(path.name)) is not None]
    runs = sorted({o.run_id for _, o in owned if o.run_id is not None})
    statuses = run_statuses(runs) if run_statuses is not None and runs else {}
    host, removed = host_name(), []
    for path, owner in owned:
        try:
            made = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except FileNotFoundError:
            continue  # its owner finished meanwhile
        status = statuses.get(owner.run_id) if owner.run_id is not None else None
        if stale_staging(owner, host, process(owner.pid), made, status, os.getpid()):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


@contextlib.contextmanager
def scratch(staging: Path, label: str, run_id: int | None = None) -> Iterator[Path]:
    """A scratch directory of its own under `staging` (see make_staging) for the block,
    removed with everything in it when the block ends, however it ends."""
    import shutil

    from runners.storage import guard

    work = make_staging(staging, label, run_id)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        guard.release(work)


def tree_size(path: Path) -> int:
    """Bytes the files under `path` take (0 when it does not exist), symlinks not followed."""
    total = 0
    for folder, _, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):  # removed meanwhile (a WAL segment recycled)
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


@contextlib.contextmanager
def staged_backup(store: Store, prefix: str, staging: Path, run_id: int | None = None
                  ) -> Iterator[Path]:
    """A local scratch directory for one backup. If the block fails, whatever it wrote under
    `prefix` at the destination is removed (no manifest was written: it never listed)."""
    with scratch(staging, prefix, run_id) as work:
        try:
            yield work
        except BaseException:
            store.remove(prefix)
            raise
