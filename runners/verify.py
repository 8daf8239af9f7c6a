"""Re-read a stored backup and compare every file with the digests in its manifest."""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from engine.errors import BackupError
from engine.manifest import Manifest, StoredFile
from runners.codec import CHUNK, unseal
from runners.storage import Store


def verify_backup(store: Store, manifest: Manifest) -> list[str]:
    """Problems found (missing file, size or sha256 differing); empty when intact."""
    problems = []
    for stored in manifest.files:
        name = f"{manifest.tier}/{manifest.backup_id}/{stored.name}"
        digest, size = hashlib.sha256(), 0
        try:
            with store.reader(name) as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except BackupError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if size != stored.stored_size or digest.hexdigest() != stored.stored_sha256:
            problems.append(f"{name}: does not match its manifest (size {size:,} vs "
                            f"{stored.stored_size:,}, sha256 differs): damaged")
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
