"""Physical tiers: pg_basebackup -Ft (full or incremental, with a manifest), pg_verifybackup
after each; stored as base.tar, pg_wal.tar and backup_manifest, each sealed; restores combine
a chain with pg_combinebackup.

pg_basebackup compresses the tars itself (base.tar.zst, ...) when it has the tier's codec and
pg_verifybackup can read the result; otherwise the engine compresses them as it stores them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar, cast

from engine.backups.manifest import MANIFEST, Manifest, StoredFile, new_backup_id
from engine.backups.serverchecks import server_problems
from engine.backups.walnames import segment_of_lsn
from engine.errors import BackupError
from runners.backup.logical import check_key, damaged_file
from runners.postgres.connection import connect, query
from runners.postgres.embedded import embedded_bin_dir
from runners.postgres.tools import Command, PgBaseBackup, PgCombineBackup, PgVerifyBackup, PgWalDump
from runners.postgres.toolset import Toolset, check_server, discover, tool_failure
from runners.storage.growing import GrowingFile
from runners.storage.sealing import (
    EXTENSIONS,
    Discard,
    Sealing,
    as_is,
    decompressing,
    key_fingerprint,
    seal,
)
from runners.storage.stores import Store, scratch, staged_backup
from runners.storage.verify import unseal_checked

DATA = "base.tar"
WAL_TAR = "pg_wal.tar"
PG_MANIFEST = "backup_manifest"
# pg_verifybackup reads tar-format backups from PostgreSQL 18 on, older servers' included.
TAR_VERIFY_FROM = 18
# In the manifest's details: the codec pg_basebackup compressed the tars with, if any.
TAR_CODEC = "tar_compression"
_SEAL_NICENESS = 10
T = TypeVar("T")


@dataclass(frozen=True)
class PhysicalRequest:
    """One base backup of a cluster; `parent` makes it incremental."""

    tier: str
    dsn: str
    toolset: Toolset
    store: Store
    sealing: Sealing
    staging: Path
    parent: Manifest | None = None
    verify: bool = True
    definition_hash: str = ""
    git_commit: str | None = None


def server_settings(conn: object) -> dict[str, str]:
    """The settings backup and WAL tiers depend on, as the server has them now."""
    return {str(r[0]): str(r[1]) for r in query(
        conn, "select name, setting from pg_settings where name = any(%s)",  # type: ignore[arg-type]
        (["wal_level", "summarize_wal", "max_wal_senders", "archive_mode", "archive_command"],))}


def _wal_range(pg_manifest: Path) -> dict[str, object]:
    ranges = json.loads(pg_manifest.read_text(encoding="utf-8"))["WAL-Ranges"]
    first, last = ranges[0], ranges[-1]
    timeline = int(first["Timeline"])
    return {"timeline": timeline, "start_lsn": first["Start-LSN"], "stop_lsn": last["End-LSN"],
            "start_wal": segment_of_lsn(timeline, first["Start-LSN"]).name,
            "stop_wal": segment_of_lsn(int(last["Timeline"]), last["End-LSN"]).name}


def backup_physical(request: PhysicalRequest) -> Manifest:
    """Take, verify and store one base backup; the manifest is written last."""
    started = datetime.now(UTC)
    backup_id = new_backup_id(started)
    prefix = f"{request.tier}/{backup_id}"
    with staged_backup(request.store, prefix, request.staging) as work:
        with connect(request.dsn, autocommit=True) as conn:
            version = int(query(conn, "show server_version_num")[0][0])
            problem = check_server(request.toolset, version, physical=True)
            problems = server_problems(server_settings(conn),
                                       incremental=request.parent is not None)
            segment_size = int(query(conn, "select setting::bigint from pg_settings where "
                                           "name = 'wal_segment_size'")[0][0])
        if problem:
            raise BackupError(problem)
        if problems:
            raise BackupError(f"the server cannot honour tier {request.tier}: "
                              + "; ".join(problems))
        # CRC32C (PostgreSQL's default) catches a damaged copy; the digests verify and the
        # drills re-check are our own SHA-256 of each stored file. A SHA-256 backup manifest
        # would do that work twice, slowly where the tools lack OpenSSL (the embedded wheel:
        # pg_basebackup -Ft and pg_verifybackup -n of 8.8 GB, median of 3: 79 s with SHA-256,
        # 15 s with CRC32C).
        verifier = _tar_verifier(request.toolset) if request.verify else None
        native = tool_compression(request.sealing, request.toolset, verifier)
        tar_codec = request.sealing.codec if native else "none"
        if native is not None:
            # The tool's output is stored as it is (encrypted, when the tier is).
            request = replace(request, sealing=replace(request.sealing, codec="none"))
        parent_manifest = None
        if request.parent is not None:
            parent_manifest = work / "parent_manifest"
            _fetch_file(request.store, request.parent, PG_MANIFEST, parent_manifest,
                        request.sealing.key)
        command = request.toolset.program(PgBaseBackup).tar_backup(
            request.dsn, work / "base", label=f"marketops {prefix}", compress=native,
            incremental=parent_manifest)
        files, wal = _take(request, prefix, work, command, tar_codec, verifier)
        manifest = Manifest(
            tier=request.tier, kind="physical_base", backup_id=backup_id, started_at=started,
            finished_at=datetime.now(UTC), codec=request.sealing.codec,
            encrypted_with=request.sealing.key_name, files=files,
            backup_type="incremental" if request.parent else "full",
            parent_id=request.parent.backup_id if request.parent else None,
            server_version=str(version),
            tool_version=".".join(map(str, request.toolset.version)),
            details={**wal, "segment_size": segment_size, "verified": request.verify,
                     TAR_CODEC: tar_codec,
                     # So that a restore tells a wrong key from a damaged file.
                     **({"key_fingerprint": key_fingerprint(request.sealing.key)}
                        if request.sealing.key else {})},
            definition_hash=request.definition_hash, git_commit=request.git_commit)
        request.store.put_bytes(f"{prefix}/{MANIFEST}", manifest.to_json())
        return manifest


def tool_compression(sealing: Sealing, toolset: Toolset, verifier: Toolset | None
                     ) -> str | None:
    """pg_basebackup's --compress for the tier's codec, when it has the codec and the
    verifier (None: no verification) can read what it writes; None: the engine compresses."""
    codec, level = sealing.codec, sealing.level
    if codec not in toolset.basebackup_compression:
        return None
    if verifier is not None and codec not in verifier.compression:
        return None
    return PgBaseBackup.compress_option(codec, level, sealing.threads)


def _take(request: PhysicalRequest, prefix: str, work: Path, command: Command, tar_codec: str,
          verifier_tools: Toolset | None) -> tuple[list[StoredFile], dict[str, object]]:
    """pg_basebackup -Ft, base.tar sealed while it is written (one pass over the data), then
    verified: pg_verifybackup on the tar, and pg_waldump over the backup's WAL range (the
    check pg_verifybackup makes on plain backups only). `tar_codec` is the tool's own
    compression of the tars; `verifier_tools` None skips the verification."""
    target = work / "base"
    data = DATA + EXTENSIONS[tar_codec]
    process = command.start()
    source = GrowingFile(target / data, lambda: process.poll() is not None)
    # Stored as it is on a local destination, base.tar is only hashed as it grows and moved
    # in once verified: no second copy of the data.
    in_place = as_is(request.sealing.codec, request.sealing.key) and request.store.local

    def seal_data() -> StoredFile:
        if not in_place:
            return _seal_stream(request, prefix, cast(BinaryIO, source), data)
        hashed = seal(cast(BinaryIO, source), Discard(), codec="none")  # type: ignore[arg-type]
        os.fsync(source.fileno())  # to disk while pg_verifybackup runs, not after it
        return StoredFile(data, hashed.raw_size, hashed.raw_sha256, hashed.raw_size,
                          hashed.raw_sha256)

    # A failed store (a full disk, say) stops pg_basebackup at once, not at its end.
    sealing = _Yielding(seal_data, on_failure=process.kill)
    verifier: subprocess.Popen[str] | None = None
    try:
        _, stderr = process.communicate()
        if process.returncode != 0:
            failure = sealing.failure()
            if failure is not None:
                raise failure
            raise BackupError(tool_failure("pg_basebackup", subprocess.CompletedProcess(
                process.args, process.returncode, "", stderr)))
        # Before 16, pg_basebackup compresses the WAL tar with gzip only (else not at all).
        wal_tar = next(p.name for p in target.iterdir() if p.name.startswith(WAL_TAR))
        extra = sorted(p.name for p in target.iterdir()
                       if p.name not in (data, wal_tar, PG_MANIFEST))
        if extra:
            raise BackupError(f"the cluster has tablespaces ({', '.join(extra)}); physical "
                              "tiers back up clusters that keep everything in the data "
                              "directory")
        manifest_path = target / PG_MANIFEST
        if verifier_tools is not None:
            # The copy is complete: verify it while the sealing catches up.
            verify = verifier_tools.program(PgVerifyBackup).verify(target, parse_wal=False)
            verifier = verify.start()
        files = [_seal_path(request, prefix, manifest_path, PG_MANIFEST), sealing.result(),
                 _seal_path(request, prefix, target / wal_tar, wal_tar)]
        if verifier_tools is not None:
            _parse_wal(request.toolset, target / wal_tar, work / "wal", manifest_path)
    except BaseException:
        for child in (process, verifier):
            if child is not None and child.poll() is None:
                child.kill()
                child.communicate()
        try:
            sealing.result()  # ends at the (killed) tool's end of file; nothing lands later
        except BaseException:
            pass
        raise
    finally:
        source.close()
    _finish_verifier(verifier)
    if in_place:
        request.store.place(target / data, f"{prefix}/{data}")
    return files, _wal_range(manifest_path)


class _Yielding(Generic[T]):
    """`action` running in a thread of lower CPU priority (it and the compression threads it
    starts): the server and pg_basebackup go first; sealing takes what they leave and catches
    up while pg_verifybackup runs."""

    def __init__(self, action: Callable[[], T], on_failure: Callable[[], None]) -> None:
        self._action, self._on_failure = action, on_failure
        self._outcome: list[T] = []
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="seal", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, _SEAL_NICENESS)  # this thread only, on Linux
            self._outcome.append(self._action())
        except BaseException as exc:
            self._errors.append(exc)
            self._on_failure()

    def failure(self) -> BaseException | None:
        """The error that ended the action, once it has ended with one."""
        return self._errors[0] if self._errors else None

    def result(self) -> T:
        self._thread.join()
        if self._errors:
            raise self._errors[0]
        return self._outcome[0]


def _tar_verifier(toolset: Toolset) -> Toolset:
    """Tools whose pg_verifybackup reads tar backups: these, from 18 on; before, the embedded
    wheel's (18 reads the manifests of 13 and later), so no plain copy is written for it."""
    if toolset.major >= TAR_VERIFY_FROM:
        return toolset
    return discover(embedded_bin_dir())


def _parse_wal(toolset: Toolset, wal_tar: Path, directory: Path, pg_manifest: Path) -> None:
    """Read every WAL record the backup needs with pg_waldump, range by range."""
    directory.mkdir()
    with wal_tar.open("rb") as source, _open_tar(source, _codec_of(wal_tar.name)) as archive:
        archive.extractall(directory, filter="data")
    for span in json.loads(pg_manifest.read_text(encoding="utf-8"))["WAL-Ranges"]:
        done = toolset.program(PgWalDump).check_range(directory, span["Timeline"],
                                                span["Start-LSN"], span["End-LSN"]).run()
        if done.returncode != 0:
            raise BackupError("the base backup's WAL does not parse: "
                              + tool_failure("pg_waldump", done))


def _codec_of(tar_name: str) -> str:
    """The compression pg_basebackup gave a tar, as its name says (base.tar.zst: zstd)."""
    return next((codec for codec, ext in EXTENSIONS.items()
                 if ext and tar_name.endswith(f".tar{ext}")), "none")


def _open_tar(source: BinaryIO, codec: str) -> tarfile.TarFile:
    """A tar read as a stream, through the decompressor of the tool that wrote it."""
    return tarfile.open(fileobj=decompressing(source, codec), mode="r|")


def _finish_verifier(verifier: subprocess.Popen[str] | None) -> None:
    if verifier is None:
        return
    _, stderr = verifier.communicate()
    if verifier.returncode != 0:
        raise BackupError(tool_failure("pg_verifybackup", subprocess.CompletedProcess(
            verifier.args, verifier.returncode, "", stderr)))


def _suffix(sealing: Sealing) -> str:
    return EXTENSIONS[sealing.codec] + (".age" if sealing.key else "")


def _seal_stream(request: PhysicalRequest, prefix: str, source: BinaryIO,
                 name: str) -> StoredFile:
    stored_name = name + _suffix(request.sealing)
    sealing = request.sealing
    with request.store.writer(f"{prefix}/{stored_name}") as sink:
        sealed = seal(source, sink, codec=sealing.codec, level=sealing.level, key=sealing.key,
                      threads=sealing.threads)
    return StoredFile(stored_name, sealed.raw_size, sealed.raw_sha256, sealed.stored_size,
                      sealed.stored_sha256)


def _seal_path(request: PhysicalRequest, prefix: str, path: Path, name: str) -> StoredFile:
    with path.open("rb") as source:
        return _seal_stream(request, prefix, source, name)


def _stored_name(manifest: Manifest, name: str) -> StoredFile:
    for stored in manifest.files:
        if stored.name.split(".")[0] == name.split(".")[0]:
            return stored
    raise BackupError(f"{manifest.tier}/{manifest.backup_id} lacks {name}")


def _fetch_file(store: Store, manifest: Manifest, name: str, target: Path,
                key: str | None) -> None:
    with target.open("wb") as sink:
        unseal_checked(store, manifest, _stored_name(manifest, name), sink, key)


def _unpack(store: Store, manifest: Manifest, directory: Path, key: str | None,
            key_checked: bool = False) -> None:
    """Rebuild one backup's directory as pg_basebackup -Fp would have written it: the data
    tar, the WAL tar (tar-format backups) into pg_wal, and the backup_manifest. A file that
    cannot be read back is named, with its backup, in a DamagedBackupError."""
    stored = _stored_name(manifest, DATA)
    try:
        _untar(store, manifest, stored, directory, key)
        wal = [f for f in manifest.files if f.name.split(".")[0] == WAL_TAR.split(".")[0]]
        if wal:
            stored = wal[0]
            _untar(store, manifest, stored, directory / "pg_wal", key)
        if not (directory / PG_MANIFEST).exists():
            stored = _stored_name(manifest, PG_MANIFEST)
            _fetch_file(store, manifest, PG_MANIFEST, directory / PG_MANIFEST, key)
    except BackupError as exc:
        raise damaged_file(manifest, stored, str(exc), key_checked) from None


def _untar(store: Store, manifest: Manifest, stored: StoredFile, directory: Path,
           key: str | None) -> None:
    """Stream one sealed tar into `directory`, checking its digests; a tar pg_basebackup
    compressed itself is stored under its own name (older manifests have no such tars)."""
    codec = "none" if manifest.details.get(TAR_CODEC, "none") == "none" else _codec_of(
        stored.name.removesuffix(".age"))
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def extract() -> None:
        try:
            with os.fdopen(read_fd, "rb") as source, _open_tar(source, codec) as archive:
                archive.extractall(directory, filter="fully_trusted")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=extract, name="untar", daemon=True)
    thread.start()
    try:
        with os.fdopen(write_fd, "wb") as sink:
            unseal_checked(store, manifest, stored, sink, key)
    finally:
        thread.join()
    if errors:
        raise BackupError(f"unpacking {manifest.tier}/{manifest.backup_id} failed: {errors[0]}")


def restore_chain(store: Store, chain: list[Manifest], target: Path, *, key: str | None,
                  toolset: Toolset, staging: Path, keep: bool = False) -> None:
    """Rebuild a data directory from a full backup and its incrementals, oldest first; on
    failure `target` is removed unless `keep`."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; restore into a new directory")
    # Every key checked before anything is unpacked: a wrong key is said as such, at once.
    checked = {m.backup_id: check_key(m, key) for m in chain}
    with scratch(staging, f"restore-{chain[0].tier}") as work:
        try:
            if len(chain) == 1:
                target.mkdir(parents=True, exist_ok=True)
                _unpack(store, chain[0], target, key, checked[chain[0].backup_id])
                return
            parts: list[Path] = []
            for manifest in chain:
                part = work / manifest.backup_id
                part.mkdir()
                _unpack(store, manifest, part, key, checked[manifest.backup_id])
                parts.append(part)
            target.parent.mkdir(parents=True, exist_ok=True)
            done = toolset.program(PgCombineBackup).combine(parts, target).run()
            if done.returncode != 0:
                raise BackupError(tool_failure("pg_combinebackup", done))
        except BaseException:
            if not keep:
                shutil.rmtree(target, ignore_errors=True)
            raise
