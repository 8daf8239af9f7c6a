"""`marketops verify` wired to the definitions: stored files re-read against what was
recorded when they were stored; a backup checked with the whole chain a restore of it needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from engine.app.context import store_for
from engine.app.tiers.audit import verify_audit
from engine.app.tiers.backup import backup_key, catalog_of, tier_of, tier_store
from engine.app.tiers.wal import verify_wal
from engine.errors import UsageError
from engine.models.backup import AuditVaultTier, PhysicalBaseTier, WalArchiveTier
from engine.validate import ValidationResult
from runners.verify import Damaged, verify_backup, verify_wal_files

if TYPE_CHECKING:
    from engine.manifest import Manifest
    from runners.storage import Store


def verify_tier(root: Path, result: ValidationResult, what: str, *, every: bool = False,
                dsn: str | None = None, adopt: bool = False) -> tuple[list[str], list[str]]:
    """(problems, checked): the newest backup (or every one) and each backup it builds on,
    re-read against their manifests; `audit` or an audit tier: the vault against the head
    the ledger recorded; a WAL tier: every stored file's contents, and gaps. A stored file
    damaged or missing is a `Damaged` problem (exit 3); the others are unhealthy states."""
    if what == "audit":
        return verify_audit(root, result, dsn=dsn, adopt=adopt)
    tier = tier_of(result, what)
    if isinstance(tier, WalArchiveTier):
        return verify_wal_archive(root, result, what)
    if isinstance(tier, AuditVaultTier):
        return verify_audit(root, result, what, dsn=dsn, adopt=adopt)
    catalog = catalog_of(root, result, what)
    problems = [f"{what}/{b}: incomplete (no manifest)" for b in catalog.incomplete]
    problems += [Damaged(f"{what}/{b}: manifest damaged") for b in catalog.damaged]
    checked: list[str] = []
    chosen = catalog.complete if every else catalog.complete[-1:]
    if not chosen:
        problems.append(f"{what}: no complete backup")
    store = tier_store(root, result, tier)
    found: dict[str, list[str]] = {}  # backup id -> its problems, each backup read once

    def read(manifest: Manifest) -> list[str]:
        if manifest.backup_id not in found:
            found[manifest.backup_id] = _read_backup(store, manifest)
            problems.extend(found[manifest.backup_id])
        return found[manifest.backup_id]

    for manifest in chosen:
        chain = catalog.chain(manifest.backup_id) if isinstance(tier, PhysicalBaseTier) \
            else [manifest]
        broken = [m.backup_id for m in chain if read(m)]
        name = f"{what}/{manifest.backup_id}"
        if chain[0].parent_id is not None:
            problems.append(Damaged(f"{name}: cannot be restored: backup "
                                    f"{chain[0].parent_id}, which {chain[0].backup_id} builds "
                                    "on, is missing"))
        elif broken and broken != [manifest.backup_id]:
            problems.append(f"{name}: cannot be restored: "
                            + ", ".join(f"{what}/{b}" for b in broken if b != manifest.backup_id)
                            + " that it builds on " + ("is" if len(broken) == 1 else "are")
                            + " damaged")
        elif not broken:
            builds = f", with the {len(chain) - 1} backup(s) it builds on" \
                if len(chain) > 1 else ""
            checked.append(f"{name} ({manifest.backup_type}): "
                           f"{sum(len(m.files) for m in chain)} files, "
                           f"{sum(m.stored_bytes for m in chain):,} bytes{builds}")
    return problems, checked


def _read_backup(store: Store, manifest: Manifest) -> list[str]:
    return verify_backup(store, manifest)


def verify_wal_archive(root: Path, result: ValidationResult, wal_id: str
                       ) -> tuple[list[str], list[str]]:
    """Gaps by name (as the scheduled check finds them), then every stored file re-read:
    decrypted, decompressed, its sha256 against the one recorded in its stored name."""
    tier = tier_of(result, wal_id)
    assert isinstance(tier, WalArchiveTier)
    problems, checked = verify_wal(root, result, wal_id)
    key = None
    if tier.encryption is not None:
        try:
            key = backup_key(result, tier.encryption.key)
        except UsageError as exc:
            return [*problems, f"{wal_id}: contents not checked: {exc}"], checked
    found = verify_wal_files(store_for(root, result, tier.destination), wal_id, key)
    problems += [p.within(wal_id) if isinstance(p, Damaged) else f"{wal_id}: {p}"
                 for p in found.problems]
    if not found.problems:
        checked.append(f"{wal_id}: {found.checked} WAL file(s) re-read, each matches the "
                       "checksum recorded when it was stored")
    return problems, checked
