"""The backups of a tier at its destination: complete ones (with a manifest) and leftovers."""

from __future__ import annotations

from dataclasses import dataclass

from engine.backups.manifest import MANIFEST, Manifest
from runners.storage.stores import Store


@dataclass(frozen=True)
class BackupCatalog:
    """Complete backups oldest first, and folders without a manifest (never restorable)."""

    complete: list[Manifest]
    incomplete: list[str]
    damaged: list[str]

    def latest(self) -> Manifest | None:
        return self.complete[-1] if self.complete else None

    def get(self, backup_id: str) -> Manifest | None:
        return next((m for m in self.complete if m.backup_id == backup_id), None)

    def chain(self, backup_id: str) -> list[Manifest]:
        """The full backup and incrementals a backup needs, oldest first."""
        chain: list[Manifest] = []
        current = self.get(backup_id)
        while current is not None:
            chain.insert(0, current)
            current = self.get(current.parent_id) if current.parent_id else None
        return chain


def read_catalog(store: Store, tier: str) -> BackupCatalog:
    """Every backup folder of `tier`, read through its manifest."""
    complete, incomplete, damaged = [], [], []
    for backup_id in store.list(tier):
        name = f"{tier}/{backup_id}/{MANIFEST}"
        if not store.exists(name):
            incomplete.append(backup_id)
            continue
        try:
            manifest = Manifest.from_json(store.get_bytes(name))
        except (ValueError, KeyError, TypeError):
            damaged.append(backup_id)
            continue
        if manifest.backup_id != backup_id:  # moved or swapped by hand: not trustworthy
            damaged.append(backup_id)
            continue
        complete.append(manifest)
    complete.sort(key=lambda m: (m.started_at, m.backup_id))
    return BackupCatalog(complete, incomplete, damaged)
