"""Re-read what is stored: a backup's files against the digests in its manifest, and WAL
files against the digest in their stored names."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import BinaryIO

from engine.backups.manifest import Manifest, StoredFile
from engine.backups.walnames import SEGMENT, parse_segment
from engine.errors import BackupError
from runners.backup.wal import key_problem, wal_folders
from runners.storage.sealing import CHUNK, unseal
from runners.storage.stores import Store


class Damaged(str):
    """A problem that is a stored file damaged or missing (exit 3), as opposed to another
    unhealthy state such as a gap or an incomplete backup (exit 1)."""

    def within(self, prefix: str) -> Damaged:
        """The same problem, with what holds the file named in front."""
        return Damaged(f"{prefix}: {self}")


def damaged_files(problems: list[str]) -> list[str]:
    """The problems that are damaged stored files."""
    return [p for p in problems if isinstance(p, Damaged)]


def verify_backup(store: Store, manifest: Manifest) -> list[str]:
    """Problems found (missing file, size or sha256 differing), each a `Damaged`; empty
    when intact."""
    problems: list[str] = []
    for stored in manifest.files:
        name = f"{manifest.tier}/{manifest.backup_id}/{stored.name}"
        digest, size = hashlib.sha256(), 0
        try:
            with store.reader(name) as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except BackupError as exc:
            problems.append(Damaged(f"{name}: {exc}"))
            continue
        if size != stored.stored_size or digest.hexdigest() != stored.stored_sha256:
            problems.append(Damaged(f"{name}: does not match its manifest (size {size:,} vs "
                                    f"{stored.stored_size:,}, sha256 differs): damaged"))
    return problems


def unseal_checked(store: Store, manifest: Manifest, stored: StoredFile, sink: BinaryIO,
                   key: str | None) -> None:
    """Fetch one file of a backup into `sink`, decrypted and decompressed, and refuse it
    when either digest differs from the manifest."""
    if manifest.encrypted_with and key is None:
        raise BackupError(f"{manifest.tier}/{manifest.backup_id} is encrypted with key "
                          f"'{manifest.encrypted_with}', which is not available")
    with store.reader(f"{manifest.tier}/{manifest.backup_id}/{stored.name}") as source:
        got = unseal(source, sink, codec=manifest.codec,
                     key=key if manifest.encrypted_with else None)
    if got.stored_sha256 != stored.stored_sha256 or got.raw_sha256 != stored.raw_sha256:
        raise BackupError(f"{manifest.tier}/{manifest.backup_id}/{stored.name} does not "
                          "match its manifest checksum: the stored copy is damaged")


@dataclass(frozen=True)
class WalCheck:
    """What re-reading a WAL archive found: damaged files by name, and how many were read."""

    problems: list[str]
    checked: int


class _HeadSink:
    """Keeps the first bytes written (a WAL page header), discards the rest."""

    def __init__(self, keep: int) -> None:
        self.keep, self.head = keep, b""

    def write(self, data: bytes) -> int:
        if len(self.head) < self.keep:
            self.head += bytes(data[: self.keep - len(self.head)])
        return len(data)

    def flush(self) -> None:
        return None

    def writable(self) -> bool:
        return True


_LONG_HEADER = struct.Struct("<HHIQI4xQII")  # XLogLongPageHeaderData, little-endian
_XLP_LONG_HEADER = 0x0002


def segment_header_problem(name: str, head: bytes) -> str | None:
    """Why the first page of a WAL segment does not belong under `name` (another timeline
    or position: a file stored under the wrong name); None when it does."""
    if len(head) < _LONG_HEADER.size:
        return "too short for a WAL segment"
    _, info, timeline, pageaddr, _, _, seg_size, _ = _LONG_HEADER.unpack(
        head[: _LONG_HEADER.size])
    if not info & _XLP_LONG_HEADER or seg_size == 0 or seg_size & (seg_size - 1):
        return "does not start with a WAL segment header"
    try:
        segment = parse_segment(name, seg_size)
    except ValueError:
        return f"its header's segment size ({seg_size:,}) does not fit its name"
    if timeline != segment.timeline or pageaddr != segment.number * seg_size:
        return (f"holds timeline {timeline}, position {pageaddr >> 32:X}/{pageaddr & 0xFFFFFFFF:X}"
                ": another segment's contents")
    return None


def wal_entries(store: Store, tier: str) -> list[tuple[str, str]]:
    """(WAL name, stored path) of every file in the archive, oldest name first."""
    entries = [(entry.split("-", 1)[0], f"{tier}/{folder}/{entry}")
               for folder in wal_folders(store, tier) for entry in store.list(f"{tier}/{folder}")]
    return sorted(entries)


NOT_CHECKED = "encrypted, and the key is not available: contents not checked"


def check_wal_file(store: Store, path: str, key: str | None) -> str | None:
    """Re-read one stored WAL file: decrypt, decompress, compare the sha256 of its contents
    with the one in its stored name, and check a segment's header against its name. Why it
    is damaged, or None when it is intact. (restore_command checks the same digest.)"""
    name, _, rest = path.rsplit("/", 1)[-1].partition("-")
    digest, _, suffix = rest.partition(".")
    if len(digest) != 64:
        return "its stored name carries no checksum (not written by marketops wal-push)"
    suffixes = f".{suffix}".split(".")
    codec = "zstd" if "zst" in suffixes else "gzip" if "gz" in suffixes else "none"
    encrypted = "age" in suffixes
    if encrypted and key is None:
        return NOT_CHECKED
    sink = _HeadSink(_LONG_HEADER.size)
    try:
        with store.reader(path) as source:
            got = unseal(source, sink, codec=codec,  # type: ignore[arg-type]
                         key=key if encrypted else None)
    except BackupError as exc:
        return str(key_problem(store, path.rsplit("/", 2)[0], name, key, str(exc)))
    if got.raw_sha256 != digest:
        return "its contents do not match the checksum recorded when it was stored"
    if SEGMENT.match(name):
        return segment_header_problem(name, sink.head)
    return None


def verify_wal_files(store: Store, tier: str, key: str | None) -> WalCheck:
    """Re-read every stored WAL file of `tier`; each damaged one named (a `Damaged`)."""
    problems: list[str] = []
    checked = 0
    seen: set[str] = set()
    for name, path in wal_entries(store, tier):
        if name in seen:
            problems.append(f"{name}: stored more than once ({path})")
        seen.add(name)
        problem = check_wal_file(store, path, key)
        if problem is not None:
            found = f"{name}: {problem} ({store.spec.name}: {path})"
            problems.append(found if problem == NOT_CHECKED else Damaged(found))
        checked += 1
    return WalCheck(problems, checked)
