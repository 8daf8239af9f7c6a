"""The composition root for backups: tiers from the definitions joined to the runners."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.app import clock

# toolset_for and backup_key live in the context; named here for the tier modules.
from engine.app.context import backup_key as backup_key
from engine.app.context import store_for
from engine.app.context import toolset_for as toolset_for
from engine.backups.policy import incremental_parent
from engine.backups.retention import BackupInfo, RetentionPlan, plan_retention, wal_cutoff
from engine.backups.walnames import SEGMENT, parse_segment
from engine.definitions.models.backup import (
    BackupTier,
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
    Stored,
    WalArchiveTier,
    stored,
)
from engine.errors import UsageError
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.backup.logical import LogicalRequest, backup_logical
from runners.backup.physical import PhysicalRequest, backup_physical
from runners.backup.wal import stored_entries
from runners.storage.catalog import read_catalog
from runners.storage.sealing import Sealing
from runners.storage.stores import remove_stale_staging

if TYPE_CHECKING:
    from engine.backups.manifest import Manifest
    from engine.runs.ledger import Ledger
    from runners.storage.catalog import BackupCatalog
    from runners.storage.stores import Store

# The kinds whose backups retention removes (the vault's batches pass its plan untouched:
# they are never deleted, and a WAL tier's segments follow its base tier's backups).
RETAINED_KINDS = frozenset({"logical_full", "logical_schemas", "physical_base", "audit_vault"})

# Every heavy read of one cluster (dumps, base backups) takes this advisory lock on it.
CLUSTER_LOCK = int.from_bytes(hashlib.sha256(b"marketops backup").digest()[:8], "big",
                              signed=True)


def staging_for(root: Path) -> Path:
    """Local scratch space for dumps and restores before they are sealed or started."""
    return root / "var" / "staging"


def sealing_for(defs: ValidationResult, tier: Stored) -> Sealing:
    """How a tier's files are compressed and encrypted."""
    encryption = tier.encryption
    key = backup_key(defs, encryption.key) if encryption else None
    return Sealing(tier.compression.codec.value, tier.compression.level,
                   encryption.key if encryption else None, key)


def tier_of(defs: ValidationResult, tier_id: str) -> BackupTier:
    tier = defs.project.backups.get(tier_id)
    if tier is None:
        known = ", ".join(sorted(defs.project.backups))
        raise UsageError(f"no backup tier '{tier_id}' (known: {known})")
    return tier.model


def tier_store(root: Path, defs: ValidationResult, tier: BackupTier) -> Store:
    storing = stored(tier)
    if storing is None:
        raise UsageError("restore drills have no destination of their own")
    return store_for(root, defs, storing.destination)


def catalog_of(root: Path, defs: ValidationResult, tier_id: str) -> BackupCatalog:
    return read_catalog(tier_store(root, defs, tier_of(defs, tier_id)), tier_id)


def wal_tier_for(defs: ValidationResult, base_tier: str | None = None
                 ) -> tuple[str, WalArchiveTier]:
    """The WAL archive tier (of `base_tier`, when given)."""
    found = [(tid, t.model) for tid, t in sorted(defs.project.backups.items())
             if isinstance(t.model, WalArchiveTier)
             and (base_tier is None or t.model.base_tier == base_tier)]
    if not found:
        raise UsageError("no wal_archive tier is declared" + (f" for {base_tier}" if base_tier
                                                              else ""))
    return found[0]


def _target_option(target: str | None) -> str:
    # The target is part of the command: the server runs it with its own environment, in
    # which MARKETOPS_TARGET is not set, and WAL must go on to the target's destination.
    return f' --target "{target}"' if target else ""


def archive_command(root: Path, target: str | None = None) -> str:
    """archive_command for postgresql.conf: this interpreter, this repository, this target,
    through the fast path that reads the compiled archive settings (engine.app.walpush)."""
    return (f'"{sys.executable}" -m engine.app.walpush --root "{root.resolve()}"'
            f'{_target_option(target)} "%p"')


def restore_command(root: Path, target: str | None = None) -> str:
    return (f'"{sys.executable}" -m engine.cli --root "{root.resolve()}"'
            f'{_target_option(target)} wal-fetch "%f" "%p"')


@dataclass(frozen=True)
class BackupRun:
    """One tier run: the backup it produced and what retention removed."""

    manifest: Manifest
    retention: RetentionPlan
    seconds: float

    def outputs(self) -> dict[str, Any]:
        m = self.manifest
        return {"backup_id": m.backup_id, "type": m.backup_type, "parent": m.parent_id,
                "raw_bytes": m.raw_bytes, "stored_bytes": m.stored_bytes,
                "files": len(m.files), "rows": sum(m.row_counts.values()),
                "seconds": round(self.seconds, 3), "deleted": sorted(self.retention.delete)}


def backup_infos(catalog: BackupCatalog) -> list[BackupInfo]:
    return [BackupInfo(m.backup_id, m.finished_at, m.parent_id,
                       m.details.get("start_wal")) for m in catalog.complete]


def retention_plan(root: Path, defs: ValidationResult, tier_id: str,
                   now: datetime | None = None) -> RetentionPlan:
    """What applying the tier's retention now would keep and delete."""
    tier = tier_of(defs, tier_id)
    if tier.kind not in RETAINED_KINDS:
        raise UsageError(f"{tier_id} has no backups of its own to retain")
    storing = stored(tier)
    assert storing is not None
    catalog = catalog_of(root, defs, tier_id)
    return plan_retention(backup_infos(catalog), storing.retention, now or clock.now())


def apply_retention(root: Path, defs: ValidationResult, tier_id: str,
                    now: datetime | None = None) -> RetentionPlan:
    """Delete what the tier's retention does not keep; then WAL no kept base needs."""
    moment = now or clock.now()
    plan = retention_plan(root, defs, tier_id, moment)
    store = tier_store(root, defs, tier_of(defs, tier_id))
    # Called under the cluster lock, right after a successful backup: no other backup of
    # this tier can be in flight, so a folder without a manifest is an interrupted run's.
    leftovers = catalog_of(root, defs, tier_id).incomplete
    plan = RetentionPlan(plan.keep, {**plan.delete, **{b: "incomplete (interrupted run)"
                                                       for b in leftovers}})
    for backup_id in sorted(plan.delete):
        store.remove(f"{tier_id}/{backup_id}")
    # Only a physical tier is a WAL tier's base: for the others there is nothing to prune.
    prune_wal(root, defs, tier_id, plan, moment)
    return plan


def prune_wal(root: Path, defs: ValidationResult, base_tier_id: str, plan: RetentionPlan,
              now: datetime, *, dry_run: bool = False) -> list[str]:
    """Remove archived segments older than the PITR window's base backup needs (or, with
    dry_run, only name them)."""
    try:
        wal_id, wal = wal_tier_for(defs, base_tier_id)
    except UsageError:
        return []
    catalog = catalog_of(root, defs, base_tier_id)
    cut = wal_cutoff(backup_infos(catalog), set(plan.keep), wal.pitr_window, now)
    if cut is None:
        return []
    first = parse_segment(cut)
    store = store_for(root, defs, wal.destination)
    removed = []
    for name, path in sorted(stored_entries(store, wal_id).items()):
        if SEGMENT.match(name) and parse_segment(name).number < first.number:
            if not dry_run:
                store.remove(path)
            removed.append(name)
    return removed


def clear_staging(root: Path, ledger: Ledger | None = None) -> list[str]:
    """Remove what killed runs left in the staging directory (dumps and restores there hold
    plaintext of encrypted tiers): every directory whose maker is gone from this host, or
    whose run the ledger no longer records as running. The names removed."""
    return remove_stale_staging(staging_for(root),
                                ledger.statuses_of if ledger is not None else None)


def take_backup(root: Path, defs: ValidationResult, job: Job, dsn: str, *,
                run_id: int | None = None, now: datetime | None = None) -> Manifest:
    """One backup of a logical or physical tier (no retention, no lock)."""
    tier = job.tier
    assert tier is not None
    if isinstance(tier, LogicalFullTier | LogicalSchemasTier):
        return take_logical(root, defs, job, tier, dsn, run_id=run_id)
    if isinstance(tier, PhysicalBaseTier):
        return take_physical(root, defs, job, tier, dsn, now or clock.now())
    raise UsageError(f"{job.id}: {tier.kind} tiers are not run as scheduled backups")


def take_logical(root: Path, defs: ValidationResult, job: Job,
                 tier: LogicalFullTier | LogicalSchemasTier, dsn: str, *,
                 run_id: int | None = None) -> Manifest:
    """One pg_dump of the tier's schemas (all, or the ones it names)."""
    store = tier_store(root, defs, tier)
    schemas = list(tier.schemas) if isinstance(tier, LogicalSchemasTier) else None
    excluded = _excluded_data(defs, schemas)
    return backup_logical(LogicalRequest(
        job.name, tier.kind, dsn, toolset_for(defs), store, sealing_for(defs, tier),
        staging_for(root), schemas=schemas,
        exclude_data=sorted(set(tier.exclude_tables) | set(excluded)),
        jobs=tier.parallel_jobs, definition_hash=job.definition_hash,
        git_commit=job.git_commit, run_id=run_id))


def take_physical(root: Path, defs: ValidationResult, job: Job, tier: PhysicalBaseTier,
                  dsn: str, now: datetime) -> Manifest:
    """One pg_basebackup, incremental on the newest backup unless a full one is due."""
    store = tier_store(root, defs, tier)
    parent = _incremental_parent(tier, read_catalog(store, job.name), now)
    return backup_physical(PhysicalRequest(
        job.name, dsn, toolset_for(defs), store, sealing_for(defs, tier),
        staging_for(root), parent=parent, verify=tier.verify,
        definition_hash=job.definition_hash, git_commit=job.git_commit))


def _excluded_data(defs: ValidationResult, schemas: list[str] | None) -> list[str]:
    """Tables the schema marks as derived (backup_exclude_reason): their data is skipped."""
    out = []
    for schema_name, loaded in defs.project.schemas.items():
        if schemas is not None and schema_name not in schemas:
            continue
        for table_name, table in loaded.model.tables.items():
            if table.backup_exclude_reason:
                out.append(f"{schema_name}.{table_name}")
    return out


def _incremental_parent(tier: PhysicalBaseTier, catalog: BackupCatalog, now: datetime
                        ) -> Manifest | None:
    """The backup to build on, or None when a full backup is due."""
    latest = catalog.complete[-1] if tier.incremental and catalog.complete else None
    full = catalog.chain(latest.backup_id)[0] if latest is not None else None
    parent = incremental_parent(tier.incremental, tier.full_every,
                                latest.backup_id if latest else None,
                                full.started_at if full else None, now)
    return latest if parent is not None else None


