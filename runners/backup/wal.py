"""WAL archiving: archive_command (push) and restore_command (fetch) over a destination.

Each file is stored as `<tier>/<dir>/<name>-<sha256 of the raw bytes>[.zst][.age]`: pushing
the same file twice is a no-op, a different file under the same name is refused loudly
(two clusters sharing one archive), and fetch checks what it restores against the name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, cast

from engine.backups.walnames import HISTORY, SEGMENT, is_wal_name
from engine.errors import BackupError, DamagedBackupError, WrongKeyError
from runners.storage.sealing import CHUNK, EXTENSIONS, Sealing, key_fingerprint, seal, unseal
from runners.storage.stores import Store


class WalNotFound(BackupError):
    """The archive does not hold this WAL file (normal at the end of recovery)."""


def _folder(name: str) -> str:
    if SEGMENT.match(name[:24]) and not HISTORY.match(name):
        return name[:16]  # timeline + log id, as pgBackRest does: folders stay small
    return "history"


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _stored(store: Store, tier: str, name: str) -> list[str]:
    return [n for n in store.list(f"{tier}/{_folder(name)}") if n.split("-", 1)[0] == name]


# In the tier's folder (the only place the server's archive_command may write), skipped by
# every listing of segments.
KEYS = "keys"


def _keys(tier: str) -> str:
    return f"{tier}/{KEYS}"


def wal_folders(store: Store, tier: str) -> list[str]:
    """The tier's folders that hold WAL files."""
    return [folder for folder in store.list(tier) if folder != KEYS]


def record_key(store: Store, tier: str, name: str, key: str) -> None:
    """Record, once per key, the fingerprint of the key the archive is sealed with from
    WAL file `name` on: a fetch can then tell a wrong key from a damaged file."""
    listed = f"{_keys(tier)}/{key_fingerprint(key).removeprefix('sha256:')}"
    if not store.exists(listed):
        store.put_bytes(listed, name.encode())


def key_problem(store: Store, tier: str, name: str, key: str | None,
                message: str) -> BackupError:
    """Why WAL file `name` failed to decrypt: the key given is not the one recorded for it
    (a WrongKeyError), or it is, so the stored file is damaged (a DamagedBackupError);
    `message` as it was for an archive written before keys were recorded."""
    if key is None or "wrong key or damaged file" not in message:
        return BackupError(message)
    recorded = sorted((store.get_bytes(f"{_keys(tier)}/{fp}").decode(), fp)
                      for fp in store.list(_keys(tier)))
    if not recorded:
        return BackupError(f"{name} in the archive ({tier}): {message}")
    # The key in effect for `name`: the last one recorded from a file at or before it.
    sealed_with = ([fp for first, fp in recorded if first <= name] or [recorded[0][1]])[-1]
    given = key_fingerprint(key).removeprefix("sha256:")
    if given == sealed_with:
        return DamagedBackupError(f"{name} in the archive ({tier}) cannot be decrypted "
                                  "although the key matches the fingerprint recorded for it: "
                                  "the stored file is damaged")
    return WrongKeyError(f"wrong key: {name} in the archive ({tier}) was encrypted with the "
                         f"key of fingerprint sha256:{sealed_with[:12]}..., the key given has "
                         f"sha256:{given[:12]}...; set the key the archive was made with")


def push(store: Store, tier: str, path: Path, sealing: Sealing) -> bool:
    """Archive one WAL file; False when the identical file is archived already."""
    return archive_file(store, tier, path, sealing)[1]


def archive_file(store: Store, tier: str, path: Path, sealing: Sealing,
                 tick: Callable[[], None] | None = None) -> tuple[str, bool]:
    """Archive one WAL file: the sha256 of its content, and False when the identical file
    was archived already. `tick` is called as the file's bytes are read (the async
    pusher's proof of progress)."""
    name = path.name
    if not is_wal_name(name):
        raise BackupError(f"{name} is not a WAL file name; archive_command must pass %p")
    folder = f"{tier}/{_folder(name)}"
    suffix = EXTENSIONS[sealing.codec] + (".age" if sealing.key else "")
    existing = _stored(store, tier, name)
    if store.local and not existing:
        # One pass over the segment (hash, compress, encrypt): its name, which carries the
        # digest, is given once it is sealed; the check for a namesake is made again then,
        # under the folder's lock, so two writers of one name cannot both store it.
        if sealing.key:
            record_key(store, tier, name, sealing.key)
        with _source(path, tick) as source, store.staged(folder, name) as staged:
            sealed = seal(source, staged.sink, codec=sealing.codec, level=sealing.level,
                          key=sealing.key, threads=sealing.threads)
            digest = sealed.raw_sha256
            published = staged.publish(
                lambda names: _publish_as(store, tier, name, digest, suffix, names))
        return digest, published is not None
    try:
        digest = _digest(path)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    for stored in existing:
        _check_namesake(store, tier, name, digest, stored)
        return digest, False
    if sealing.key:
        record_key(store, tier, name, sealing.key)
    with _source(path, tick) as source, store.writer(f"{folder}/{name}-{digest}{suffix}") \
            as sink:
        sealed = seal(source, sink, codec=sealing.codec, level=sealing.level, key=sealing.key,
                      threads=sealing.threads)
        if sealed.raw_sha256 != digest:
            # Inside the block: what was written is discarded, never published.
            raise BackupError(f"{name} changed while it was archived")
    return digest, True


def _check_namesake(store: Store, tier: str, name: str, digest: str, stored: str) -> None:
    """Refuse to archive `name` when the archive holds a different file of that name."""
    if stored.split("-", 1)[1].split(".", 1)[0] != digest:
        raise BackupError(f"refusing to archive {name}: a different file of that name is "
                          f"already archived in '{store.spec.name}' ({tier}); is another "
                          "cluster archiving to the same place?")


def _publish_as(store: Store, tier: str, name: str, digest: str, suffix: str,
                names: list[str]) -> str | None:
    """The name to publish a freshly sealed `name` under, None when the identical file is
    there already; a BackupError for a different one."""
    for stored in names:
        if stored.split("-", 1)[0] == name:
            _check_namesake(store, tier, name, digest, stored)
            return None
    return f"{name}-{digest}{suffix}"


class _Ticking:
    """A file whose every read calls `tick`."""

    def __init__(self, handle: BinaryIO, tick: Callable[[], None]) -> None:
        self.handle = handle
        self.tick = tick

    def read(self, size: int = -1) -> bytes:
        self.tick()
        return self.handle.read(size)


@contextlib.contextmanager
def _source(path: Path, tick: Callable[[], None] | None) -> Iterator[BinaryIO]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        yield cast(BinaryIO, _Ticking(handle, tick)) if tick is not None else handle


def fetch(store: Store, tier: str, name: str, target: Path, key: str | None) -> None:
    """Restore one WAL file to `target` (written under a temporary name, then renamed)."""
    found = _stored(store, tier, name)
    if not found:
        raise WalNotFound(f"{name} is not in the archive")
    stored = found[0]
    digest, _, suffix = stored.split("-", 1)[1].partition(".")
    codec = "zstd" if ".zst" in f".{suffix}" else "gzip" if ".gz" in f".{suffix}" else "none"
    encrypted = suffix.endswith("age")
    partial = target.with_name(f".{target.name}.marketops-{os.getpid()}")
    try:
        with store.reader(f"{tier}/{_folder(name)}/{stored}") as source, \
                partial.open("wb") as sink:
            try:
                got = unseal(source, sink, codec=codec, key=key if encrypted else None)
            except BackupError as exc:
                raise key_problem(store, tier, name, key, str(exc)) from None
        if got.raw_sha256 != digest:
            raise BackupError(f"{name} in the archive does not match its checksum: damaged")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def stored_times(store: Store, tier: str) -> dict[str, datetime | None]:
    """Name of every archived WAL file -> when it was stored (None when the destination
    does not say)."""
    times: dict[str, datetime | None] = {}
    for folder in wal_folders(store, tier):
        for entry, when in store.modified_under(f"{tier}/{folder}").items():
            times[entry.split("-", 1)[0]] = when
    return times


def stored_names(store: Store, tier: str) -> list[str]:
    """Names of every archived WAL file (without digest and suffix), sorted."""
    names = []
    for folder in wal_folders(store, tier):
        for entry in store.list(f"{tier}/{folder}"):
            names.append(entry.split("-", 1)[0])
    return sorted(names)


def stored_entries(store: Store, tier: str) -> dict[str, str]:
    """WAL name -> its stored file path under the destination."""
    entries = {}
    for folder in wal_folders(store, tier):
        for entry in store.list(f"{tier}/{folder}"):
            entries[entry.split("-", 1)[0]] = f"{tier}/{folder}/{entry}"
    return entries


@dataclass(frozen=True)
class ArchiverState:
    """pg_stat_archiver and the current WAL position of a server."""

    archive_mode: str
    archive_command: str
    last_archived_wal: str | None
    last_archived_age_s: float | None
    failed_count: int
    last_failed_wal: str | None
    failing: bool
    current_wal: str
    segment_size: int
    timeline: int


def archiver_state(conn: object) -> ArchiverState:
    """Read the archiver's progress from the server."""
    from runners.postgres.connection import query

    row = query(conn, "select current_setting('archive_mode'), "  # type: ignore[arg-type]
                "current_setting('archive_command'), last_archived_wal, "
                "extract(epoch from now() - last_archived_time), failed_count, "
                "last_failed_wal, coalesce(last_failed_time > coalesce(last_archived_time, "
                "'-infinity'), false), pg_walfile_name(pg_current_wal_lsn()), "
                "(select setting::bigint from pg_settings where name = 'wal_segment_size'), "
                "(select timeline_id from pg_control_checkpoint()) from pg_stat_archiver")[0]
    return ArchiverState(str(row[0]), str(row[1]), row[2], float(row[3])
                         if row[3] is not None else None, int(row[4]), row[5], bool(row[6]),
                         str(row[7]), int(row[8]), int(row[9]))


def ready_wal(dsn: str) -> list[str] | None:
    """The WAL files the server still waits to archive (archive_status/*.ready, read through
    SQL so it works on a server elsewhere); None when this role may not list them (it
    needs pg_monitor), rather than an error in the server's log at every look."""
    from engine.backups.walqueue import ready_names
    from engine.errors import MarketopsError
    from runners.postgres.connection import probe

    try:
        if not probe(dsn, "select has_function_privilege('pg_ls_archive_statusdir()', "
                          "'execute')"):
            return None
        names = probe(dsn, "select coalesce(array_agg(name), '{}') "
                           "from pg_ls_archive_statusdir()")
    except MarketopsError:
        return None
    return ready_names(str(n) for n in names or [])


def wait_for_archiver(dsn: str, timeout: float = 300) -> bool:
    """Close the current WAL segment and wait until the archiver has stored it."""
    from runners.postgres.connection import (  # not on wal-push's path: psycopg is slow
        connect,
        query,
    )

    with connect(dsn, autocommit=True) as conn:
        segment = str(query(conn, "select pg_walfile_name(pg_switch_wal())")[0][0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = query(conn, "select last_archived_wal from pg_stat_archiver")[0]
            if row[0] is not None and str(row[0])[:24] >= segment:
                return True
            time.sleep(0.5)
    return False
