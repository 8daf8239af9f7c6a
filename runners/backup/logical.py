"""Logical tiers: pg_dump (directory format, parallel) from one exported snapshot, sealed
file by file into a destination; restores through pg_restore, into a scratch or empty database.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.backups.manifest import MANIFEST, Manifest, StoredFile, new_backup_id
from engine.errors import BackupError, DamagedBackupError, WrongKeyError
from runners.postgres.connection import connect, database_name, query
from runners.postgres.tools import PgDump, PgRestore
from runners.postgres.toolset import Toolset, check_server, tool_failure
from runners.storage.growing import POLL_SECONDS, GrowingFile
from runners.storage.sealing import (
    EXTENSIONS,
    Discard,
    Sealing,
    as_is,
    copy_rows,
    identity,
    key_fingerprint,
    seal,
)
from runners.storage.stores import Store, scratch, staged_backup
from runners.storage.verify import unseal_checked

_SYSTEM = ("pg_catalog", "information_schema", "pg_toast")
# pg_dump --verbose, parallel mode: a worker wrote an item (its <id>.dat file is closed).
_FINISHED = re.compile(r"pg_dump: finished item (\d+) ")
_DATA_FILE = re.compile(r"^(\d+)\.dat$")  # a table's COPY data, uncompressed by pg_dump
_PROBLEM = re.compile(r"pg_dump: (error|warning|detail|hint): ")


@dataclass(frozen=True)
class LogicalRequest:
    """One logical backup of a tier: the whole database, or some schemas of it."""

    tier: str
    kind: str
    dsn: str
    toolset: Toolset
    store: Store
    sealing: Sealing
    staging: Path
    schemas: list[str] | None = None
    exclude_data: list[str] = field(default_factory=list)
    jobs: int = 2
    definition_hash: str = ""
    git_commit: str | None = None
    run_id: int | None = None  # the ledger's run: names the staging directory


def _tables(conn: object, schemas: list[str] | None) -> list[tuple[str, str]]:
    rows = query(conn,  # type: ignore[arg-type]
                 "select n.nspname, c.relname from pg_class c join pg_namespace n on "
                 "n.oid = c.relnamespace where c.relkind in ('r', 'p') and not c.relispartition"
                 " and n.nspname <> all(%s) and n.nspname not like 'pg_temp%%' and "
                 "(%s::text[] is null or n.nspname = any(%s)) order by 1, 2",
                 (list(_SYSTEM), schemas, schemas))
    return [(str(r[0]), str(r[1])) for r in rows]


def _external_foreign_keys(conn: object, schemas: list[str]) -> dict[str, str]:
    """Foreign keys inside the scope that point at tables outside it (skipped in scratch)."""
    rows = query(conn,  # type: ignore[arg-type]
                 "select n.nspname, c.relname, k.conname, fn.nspname from pg_constraint k "
                 "join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = "
                 "c.relnamespace join pg_class f on f.oid = k.confrelid join pg_namespace fn "
                 "on fn.oid = f.relnamespace where k.contype = 'f' and n.nspname = any(%s) "
                 "and fn.nspname <> all(%s) order by 1, 2, 3", (schemas, schemas))
    return {f"{r[0]}.{r[1]}.{r[2]}": str(r[3]) for r in rows}


def _compress_flag(toolset: Toolset, sealing: Sealing) -> tuple[str, str]:
    """pg_dump's --compress and the codec left to the storage layer."""
    if sealing.codec != "none" and sealing.codec in toolset.compression:
        return PgDump.compress_option(sealing.codec, sealing.level), "none"
    return PgDump.compress_option(None), sealing.codec


def backup_logical(request: LogicalRequest) -> Manifest:
    """Dump, count rows in the same snapshot, seal every file, then write the manifest."""
    started = datetime.now(UTC)
    backup_id = new_backup_id(started)
    prefix = f"{request.tier}/{backup_id}"
    with staged_backup(request.store, prefix, request.staging, request.run_id) as work:
        with connect(request.dsn, application=f"marketops backup {request.tier}") as conn:
            version = int(query(conn, "show server_version_num")[0][0])
            problem = check_server(request.toolset, version)
            if problem:
                raise BackupError(problem)
            conn.execute("begin isolation level repeatable read read only")
            snapshot = str(query(conn, "select pg_export_snapshot()")[0][0])
            database = str(query(conn, "select current_database()")[0][0])
            tables = _tables(conn, request.schemas)
            if request.schemas is not None:
                missing = set(request.schemas) - {s for s, _ in tables} - _schemas(conn)
                if missing:
                    raise BackupError(f"schema(s) {', '.join(sorted(missing))} do not exist "
                                      f"in {database}")
            excluded = set(request.exclude_data)
            external = _external_foreign_keys(conn, request.schemas) if request.schemas else {}
            compress, codec = _compress_flag(request.toolset, request.sealing)
            # pg_dump names each table's data file as a worker finishes it: sealing starts
            # then, while pg_dump goes on with the next tables (one pass, overlapped).
            dump = request.toolset.program(PgDump).directory_dump(
                request.dsn, work / "dump", jobs=request.jobs, snapshot=snapshot,
                compress=compress, schemas=request.schemas or [],
                exclude_data=excluded).start()
            # A failed store (a full disk, say) stops pg_dump at once, not at its end.
            sealer = _DumpSealer(request.store, prefix, work / "dump", codec, request.sealing,
                                 on_failure=dump.kill, jobs=request.jobs)
            listener = _Listener(dump, sealer)
            counts: dict[str, int] = {}
            try:
                if codec == "none" and compress != PgDump.compress_option(None):
                    # pg_dump compresses itself: count in the exported snapshot, beside it.
                    counts = {f"{s}.{t}": int(query(
                        conn, f'select count(*) from "{s}"."{t}"')[0][0])
                        for s, t in tables if f"{s}.{t}" not in excluded}
                listener.join()
                dump.wait()
            except BaseException:
                dump.kill()
                dump.wait()
                sealer.abandon()
                raise
            conn.rollback()
        if dump.returncode != 0:
            sealer.abandon()
            failure = sealer.failure()
            if failure is not None:
                raise failure
            raise BackupError(tool_failure("pg_dump", subprocess.CompletedProcess(
                dump.args, dump.returncode, "", listener.problems())))
        try:
            data_files = _table_data_files(request.toolset, work / "dump") if not counts else {}
            files, lines = sealer.finish()
        except BaseException:
            sealer.abandon()
            raise
        if not counts:
            # Otherwise the rows are counted in the dump itself, as it is read for sealing:
            # exactly what the snapshot held, at no extra pass over the database.
            counts = {table: lines.get(name, 0) for name, table in data_files.items()}
            counts.update({f"{s}.{t}": 0 for s, t in tables
                           if f"{s}.{t}" not in counts and f"{s}.{t}" not in excluded})
        manifest = Manifest(
            tier=request.tier, kind=request.kind, backup_id=backup_id, started_at=started,
            finished_at=datetime.now(UTC), codec=codec, encrypted_with=request.sealing.key_name,
            files=files, backup_type="dump", row_counts=counts,
            server_version=str(version), tool_version=".".join(map(str, request.toolset.version)),
            database=database, definition_hash=request.definition_hash,
            git_commit=request.git_commit,
            details={"snapshot": snapshot, "schemas": request.schemas, "format": "directory",
                     **({"key_fingerprint": key_fingerprint(request.sealing.key)}
                        if request.sealing.key else {}),
                     "dump_compression": compress.split("=", 1)[1],
                     "excluded_data": sorted(excluded), "external_foreign_keys": external})
        request.store.put_bytes(f"{prefix}/{MANIFEST}", manifest.to_json())
        return manifest


def _schemas(conn: object) -> set[str]:
    return {str(r[0]) for r in query(conn, "select nspname from pg_namespace")}  # type: ignore[arg-type]


def _table_data_files(toolset: Toolset, dump: Path) -> dict[str, str]:
    """`<dump id>.dat` -> schema.table, from the dump's table of contents."""
    done = toolset.program(PgRestore).table_of_contents(dump).run()
    if done.returncode != 0:
        raise BackupError(tool_failure("pg_restore --list", done))
    found = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if " TABLE DATA " in line and len(parts) >= 7 and parts[0].endswith(";"):
            found[f"{parts[0].rstrip(';')}.dat"] = f"{parts[5]}.{parts[6]}"
    return found


class _DumpSealer:
    """Seals a dump's files beside pg_dump: each table's data file from the moment it appears
    (read as it grows, complete once pg_dump reports the item finished), the table of contents
    and the rest once pg_dump is done."""

    def __init__(self, store: Store, prefix: str, directory: Path, codec: str,
                 sealing: Sealing, on_failure: Callable[[], None] = lambda: None, *,
                 jobs: int = 2) -> None:
        self.store, self.prefix, self.directory = store, prefix, directory
        self._on_failure = on_failure
        self._failures: list[BaseException] = []
        self.codec, self.sealing = codec, sealing
        self.suffix = EXTENSIONS[codec] + (".age" if sealing.key else "")
        self._as_is = as_is(codec, sealing.key) and store.local
        # Hashing and compressing release the GIL; one thread per file pg_dump may be
        # writing at once, and at least two to use both cores.
        self._pool = ThreadPoolExecutor(max_workers=max(2, jobs), thread_name_prefix="seal")
        self._started: dict[Path, Future[tuple[StoredFile, str, int]]] = {}
        self._written: dict[str, threading.Event] = {}
        self._ended = threading.Event()  # pg_dump is gone: every file is as complete as it gets
        self._lock = threading.Lock()
        # Without parallel jobs pg_dump reports no finished items: seal after it ends.
        self._watcher = threading.Thread(target=self._watch, name="dump-watch", daemon=True)
        if jobs > 1:
            self._watcher.start()

    def written(self, dump_id: str) -> None:
        """pg_dump finished the item with this dump id: its data file(s) are complete."""
        self._event(dump_id).set()
        for path in self.directory.glob(f"{dump_id}.dat*"):
            self._start(path)

    def _event(self, dump_id: str) -> threading.Event:
        with self._lock:
            return self._written.setdefault(dump_id, threading.Event())

    def _watch(self) -> None:
        while not self._ended.wait(POLL_SECONDS):
            try:
                names = os.listdir(self.directory)
            except FileNotFoundError:  # pg_dump has not created it yet
                continue
            for name in names:
                if _DATA_FILE.match(name):
                    self._start(self.directory / name)

    def _start(self, path: Path) -> None:
        with self._lock:
            if path not in self._started:
                self._started[path] = self._pool.submit(self._one, path)

    def _one(self, path: Path) -> tuple[StoredFile, str, int]:
        try:
            return self._seal(path)
        except BaseException as exc:
            self._failures.append(exc)
            self._on_failure()
            raise

    def failure(self) -> BaseException | None:
        """The first error a file's sealing ended with, if any has."""
        return self._failures[0] if self._failures else None

    def _seal(self, path: Path) -> tuple[StoredFile, str, int]:
        relative = path.relative_to(self.directory).as_posix()
        name = f"{self.prefix}/{relative}{self.suffix}"
        data = _DATA_FILE.match(path.name)
        written = self._event(data.group(1)) if data else None

        def finished() -> bool:
            return written is None or written.is_set() or self._ended.is_set()

        with GrowingFile(path, finished) as source:
            rows = data is not None  # a table's COPY data: its rows are counted as it is read
            if self._as_is:  # hashed as it grows, then moved (or copied) in once complete
                sealed = seal(source, Discard(), codec="none",  # type: ignore[arg-type]
                              count_lines=rows)
                self.store.place(path, name)
            else:
                with self.store.writer(name) as sink:
                    sealed = seal(source, sink, codec=self.codec,  # type: ignore[arg-type]
                                  level=self.sealing.level, key=self.sealing.key,
                                  threads=self.sealing.threads, count_lines=rows)
                # Sealed and closed by pg_dump: its plaintext leaves the disk now, not at the
                # end of the whole dump (toc.dat, still read for the row counts, is last).
                path.unlink(missing_ok=True)
        return StoredFile(relative + self.suffix, sealed.raw_size, sealed.raw_sha256,
                          sealed.stored_size, sealed.stored_sha256), relative, \
            copy_rows(sealed.raw_lines, sealed.raw_tail)

    def _end(self) -> None:
        self._ended.set()
        if self._watcher.is_alive():
            self._watcher.join()

    def finish(self) -> tuple[list[StoredFile], dict[str, int]]:
        """Seal what is left (largest first) and wait: the stored files, and the rows of each
        COPY data file by its name in the dump."""
        self._end()
        rest = sorted((p for p in self.directory.rglob("*")
                       if p.is_file() and p not in self._started),
                      key=lambda p: -p.stat().st_size)
        for path in rest:
            self._start(path)
        done = sorted((future.result() for future in self._started.values()),
                      key=lambda item: item[1])
        self._pool.shutdown()
        return [f for f, _, _ in done], {relative: rows for _, relative, rows in done}

    def abandon(self) -> None:
        """Stop: files not started are dropped; those being written finish before we return,
        so nothing lands at the destination after the failed backup is cleared."""
        self._end()
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Listener(threading.Thread):
    """Reads pg_dump's --verbose output: hands finished items to the sealer, keeps the
    lines that say what went wrong."""

    def __init__(self, dump: subprocess.Popen[str], sealer: _DumpSealer) -> None:
        super().__init__(name="pg_dump-listener", daemon=True)
        self.dump, self.sealer = dump, sealer
        self._problems: list[str] = []
        self.start()

    def run(self) -> None:
        assert self.dump.stderr is not None
        with self.dump.stderr:
            for line in self.dump.stderr:
                finished = _FINISHED.match(line)
                if finished:
                    self.sealer.written(finished.group(1))
                elif not line.startswith("pg_dump: ") or _PROBLEM.match(line):
                    self._problems.append(line)

    def problems(self) -> str:
        return "".join(self._problems[-20:])


def read_manifest(store: Store, tier: str, backup_id: str) -> Manifest:
    """The manifest of one backup; a backup without one is incomplete and refused."""
    name = f"{tier}/{backup_id}/{MANIFEST}"
    if not store.exists(name):
        raise BackupError(f"backup {tier}/{backup_id} has no manifest: it is incomplete "
                          "and cannot be restored")
    try:
        return Manifest.from_json(store.get_bytes(name))
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"the manifest of {tier}/{backup_id} is damaged") from None


def check_key(manifest: Manifest, key: str | None) -> bool:
    """Refuse a key that is not the one the backup was encrypted with (the manifest records
    its fingerprint); True when that was checked, so a file that still fails to decrypt is
    damaged, not locked with another key."""
    if not manifest.encrypted_with:
        return False
    where = f"{manifest.tier}/{manifest.backup_id}"
    if key is None:
        raise BackupError(f"{where} is encrypted with key '{manifest.encrypted_with}', which "
                          "is not available")
    identity(key)  # a public recipient alone cannot decrypt: say so before anything else
    recorded = manifest.details.get("key_fingerprint")
    if recorded is None:
        return False  # written before fingerprints were recorded
    given = key_fingerprint(key)
    if given != recorded:
        raise WrongKeyError(f"wrong key: {where} was encrypted with key "
                            f"'{manifest.encrypted_with}' of fingerprint {recorded[:19]}..., "
                            f"the key given has {given[:19]}...; set the key this backup "
                            "was made with")
    return True


def unseal_into(store: Store, manifest: Manifest, directory: Path, key: str | None) -> None:
    """Fetch, decrypt and decompress every file of a backup, checking both digests; two
    files at a time, largest first (decompressing and hashing release the GIL). A file that
    cannot be read back is named, with its backup, in a DamagedBackupError."""
    suffix = EXTENSIONS[manifest.codec] + (".age" if manifest.encrypted_with else "")
    key_checked = check_key(manifest, key)

    def one(stored: StoredFile) -> None:
        target = directory / stored.name.removesuffix(suffix) if suffix else \
            directory / stored.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not suffix and _link_checked(store, manifest, stored, target):
                return
            with target.open("wb") as sink:
                unseal_checked(store, manifest, stored, sink, key)
        except BackupError as exc:  # named here once, whichever layer found the damage
            raise damaged_file(manifest, stored, str(exc), key_checked) from None

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="unseal") as pool:
        for done in [pool.submit(one, stored) for stored in
                     sorted(manifest.files, key=lambda f: -f.stored_size)]:
            done.result()


def damaged_file(manifest: Manifest, stored: StoredFile, message: str, key_checked: bool
                 ) -> DamagedBackupError:
    """One file of a backup that could not be read back, named with its backup; a failed
    decryption under the recorded key's fingerprint is damage, not a wrong key."""
    name = f"{manifest.tier}/{manifest.backup_id}/{stored.name}"
    if "wrong key or damaged file" in message and key_checked:
        message = ("cannot decrypt although the key matches the backup's fingerprint: the "
                   "file is damaged")
    message = message.replace(f"{name} ", "").replace(f"'{name}' ", "")
    return DamagedBackupError(f"{name}: {message}; backup {manifest.tier}/"
                              f"{manifest.backup_id} cannot be restored (try an older one: "
                              "--backup ID, see marketops backups)")


def _link_checked(store: Store, manifest: Manifest, stored: StoredFile, target: Path) -> bool:
    """A file stored as it is, on this file system: hard-linked instead of copied (a link
    outlives a retention that deletes the backup meanwhile), then its digest checked."""
    if not store.local:
        return False
    try:
        os.link(store.path(f"{manifest.tier}/{manifest.backup_id}/{stored.name}"), target)
    except OSError:
        return False
    with target.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if target.stat().st_size != stored.stored_size or digest != stored.stored_sha256:
        raise DamagedBackupError(f"{manifest.tier}/{manifest.backup_id}/{stored.name} does "
                                 "not match its manifest checksum: the stored copy is damaged")
    return True


@dataclass(frozen=True)
class LogicalRestore:
    """What a logical restore did."""

    database_dsn: str
    seconds: float
    skipped_foreign_keys: list[str]


def restore_logical(store: Store, manifest: Manifest, *, key: str | None, toolset: Toolset,
                    target_dsn: str, staging: Path, jobs: int = 2,
                    prepare: Callable[[], bool] = lambda: False) -> LogicalRestore:
    """pg_restore a logical backup into `target_dsn`, which must not hold its schemas yet.
    `prepare` (creating the target database; True if it did) runs only once the key is right
    and every file has been decrypted and checked: a wrong key or a damaged file leaves
    nothing behind."""
    started = time.monotonic()
    check_key(manifest, key)
    with scratch(staging, f"restore-{manifest.tier}") as work:
        unseal_into(store, manifest, work / "dump", key)
        created = prepare()
        schemas = manifest.details.get("schemas") or []
        with connect(target_dsn, autocommit=True) as conn:
            present = _schemas(conn)
            clash = sorted(set(schemas) & present) if schemas else sorted(
                {t.split(".")[0] for t in manifest.row_counts} & present - {"public"})
            if clash:
                raise BackupError(_clash_message(manifest, database_name(target_dsn), clash,
                                                 created))
        external: dict[str, str] = manifest.details.get("external_foreign_keys") or {}
        skipped = sorted(fk for fk, target in external.items() if target not in present)
        listing = _restore_list(toolset, work / "dump", skipped) if skipped else None
        done = toolset.program(PgRestore).restore(work / "dump", target_dsn, jobs=jobs,
                                            use_list=listing).run()
        if done.returncode != 0:
            raise BackupError(tool_failure("pg_restore", done))
        return LogicalRestore(target_dsn, time.monotonic() - started, skipped)


def _clash_message(manifest: Manifest, database: str, clash: list[str], created: bool) -> str:
    what = (f"cannot restore {manifest.tier}/{manifest.backup_id} into database {database}: "
            f"it already has schema(s) {', '.join(clash)}")
    if created:  # a new database copies template1, so the clash came from there
        return (f"{what}, copied from template1 when it was created; drop them from template1 "
                "or restore on another server")
    return f"{what}; restore into a new database (--into-database NAME) or drop them first"


def _restore_list(toolset: Toolset, dump: Path, skipped: list[str]) -> Path:
    """pg_restore's table of contents without the foreign keys whose targets are absent."""
    done = toolset.program(PgRestore).table_of_contents(dump).run()
    if done.returncode != 0:
        raise BackupError(tool_failure("pg_restore --list", done))
    names = {tuple(fk.split(".")) for fk in skipped}
    kept = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if " FK CONSTRAINT " in line and len(parts) >= 8:
            schema, table, constraint = parts[5], parts[6], parts[7]
            if (schema, table, constraint) in names:
                kept.append(";" + line)  # commented out: its target schema is not here
                continue
        kept.append(line)
    listing = dump.parent / "restore.list"
    listing.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return listing
