"""Re-read a stored backup and compare every file with the digests in its manifest."""

from __future__ import annotations

import hashlib

from engine.errors import BackupError
from engine.manifest import Manifest
from runners.codec import CHUNK
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
