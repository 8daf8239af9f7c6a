"""The composition root for backups: tiers from the definitions joined to the runners."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

# toolset_for and backup_key live in the context; named here for the tier modules.
from engine.app.context import backup_key as backup_key
from engine.app.context import store_for
from engine.app.context import toolset_for as toolset_for
from engine.backup_listing import TierListing, Verified, archived_at, audit_chain, wal_range
from engine.errors import UsageError
from engine.jobs import Job
from engine.models.backup import (
    AuditVaultTier,
    BackupTier,
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
    RestoreDrillTier,
    WalArchiveTier,
)
from engine.retention import BackupInfo, RetentionPlan, plan_retention, wal_cutoff
from engine.validate import ValidationResult
from engine.walnames import DEFAULT_SEGMENT_SIZE, SEGMENT, parse_segment
from runners.catalog import read_catalog
from runners.codec import Sealing
from runners.logical import LogicalRequest, backup_logical
from runners.physical import PhysicalRequest, backup_physical
from runners.storage import remove_stale_staging
from runners.wal import stored_entries

if TYPE_CHECKING:
    from engine.ledger import Ledger
    from engine.manifest import Manifest
    from runners.catalog import Catalog
    from runners.storage import Store

# Every heavy read of one cluster (dumps, base backups) takes this advisory lock on it.
CLUSTER_LOCK = int.from_bytes(hashlib.sha256(b"marketops backup").digest()[:8], "big",
                              signed=True)


def staging_for(root: Path) -> Path:
    """Local scratch space for dumps and restores before they are sealed or started."""
    return root / "var" / "staging"


def sealing_for(result: ValidationResult, tier: BackupTier) -> Sealing:
    """How a tier's files are compressed and encrypted."""
    compression = getattr(tier, "compression", None)
    encryption = getattr(tier, "encryption", None)
    key = backup_key(result, encryption.key) if encryption else None
    return Sealing(compression.codec.value if compression else "zstd",
                   compression.level if compression else 3,
                   encryption.key if encryption else None, key)


def tier_of(result: ValidationResult, tier_id: str) -> BackupTier:
    tier = result.project.backups.get(tier_id)
    if tier is None:
        known = ", ".join(sorted(result.project.backups))
        raise UsageError(f"no backup tier '{tier_id}' (known: {known})")
    return tier.model


def tier_store(root: Path, result: ValidationResult, tier: BackupTier) -> Store:
    destination = getattr(tier, "destination", None)
    if destination is None:
        raise UsageError("restore drills have no destination of their own")
    return store_for(root, result, destination)


def catalog_of(root: Path, result: ValidationResult, tier_id: str) -> Catalog:
    return read_catalog(tier_store(root, result, tier_of(result, tier_id)), tier_id)


def wal_tier_for(result: ValidationResult, base_tier: str | None = None
                 ) -> tuple[str, WalArchiveTier]:
    """The WAL archive tier (of `base_tier`, when given)."""
    found = [(tid, t.model) for tid, t in sorted(result.project.backups.items())
             if isinstance(t.model, WalArchiveTier)
             and (base_tier is None or t.model.base_tier == base_tier)]
    if not found:
        raise UsageError("no wal_archive tier is declared" + (f" for {base_tier}" if base_tier
                                                              else ""))
    return found[0]


def archive_command(root: Path) -> str:
    """archive_command for postgresql.conf: this interpreter, this repository, through the
    fast path that reads the compiled archive settings (engine.app.walpush)."""
    return f'"{sys.executable}" -m engine.app.walpush --root "{root.resolve()}" "%p"'


def restore_command(root: Path) -> str:
    return f'"{sys.executable}" -m engine.cli --root "{root.resolve()}" wal-fetch "%f" "%p"'


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


def backup_infos(catalog: Catalog) -> list[BackupInfo]:
    return [BackupInfo(m.backup_id, m.finished_at, m.parent_id,
                       m.details.get("start_wal")) for m in catalog.complete]


def retention_plan(root: Path, result: ValidationResult, tier_id: str,
                   now: datetime | None = None) -> RetentionPlan:
    """What applying the tier's retention now would keep and delete."""
    tier = tier_of(result, tier_id)
    retention = getattr(tier, "retention", None)
    if retention is None or isinstance(tier, WalArchiveTier):
        raise UsageError(f"{tier_id} has no backups of its own to retain")
    catalog = catalog_of(root, result, tier_id)
    return plan_retention(backup_infos(catalog), retention, now or datetime.now(UTC))


def retention_preview(root: Path, result: ValidationResult, now: datetime | None = None
                      ) -> dict[str, dict[str, Any]]:
    """For `marketops plan --retention`: per tier, what retention keeps and would delete now,
    including interrupted leftovers and, for base tiers, the WAL segments it would prune."""
    moment = now or datetime.now(UTC)
    preview: dict[str, dict[str, Any]] = {}
    for tier_id, loaded in sorted(result.project.backups.items()):
        tier = loaded.model
        if isinstance(tier, (WalArchiveTier, RestoreDrillTier)):
            continue
        if isinstance(tier, AuditVaultTier):
            preview[tier_id] = {"keep": {}, "delete": {}, "note": "the audit vault is "
                                "append-only: batches are never deleted by marketops"}
            continue
        plan = retention_plan(root, result, tier_id, moment)
        leftovers = catalog_of(root, result, tier_id).incomplete
        entry: dict[str, Any] = {"keep": plan.keep, "delete": {
            **plan.delete, **{b: "incomplete (interrupted run)" for b in leftovers}}}
        if isinstance(tier, PhysicalBaseTier):
            entry["wal_segments"] = prune_wal(root, result, tier_id, plan, moment, dry_run=True)
        preview[tier_id] = entry
    return preview


def apply_retention(root: Path, result: ValidationResult, tier_id: str,
                    now: datetime | None = None) -> RetentionPlan:
    """Delete what the tier's retention does not keep; then WAL no kept base needs."""
    moment = now or datetime.now(UTC)
    plan = retention_plan(root, result, tier_id, moment)
    store = tier_store(root, result, tier_of(result, tier_id))
    # Called under the cluster lock, right after a successful backup: no other backup of
    # this tier can be in flight, so a folder without a manifest is an interrupted run's.
    leftovers = catalog_of(root, result, tier_id).incomplete
    plan = RetentionPlan(plan.keep, {**plan.delete, **{b: "incomplete (interrupted run)"
                                                       for b in leftovers}})
    for backup_id in sorted(plan.delete):
        store.remove(f"{tier_id}/{backup_id}")
    tier = tier_of(result, tier_id)
    if isinstance(tier, PhysicalBaseTier):
        prune_wal(root, result, tier_id, plan, moment)
    return plan


def prune_wal(root: Path, result: ValidationResult, base_tier_id: str, plan: RetentionPlan,
              now: datetime, *, dry_run: bool = False) -> list[str]:
    """Remove archived segments older than the PITR window's base backup needs (or, with
    dry_run, only name them)."""
    try:
        wal_id, wal = wal_tier_for(result, base_tier_id)
    except UsageError:
        return []
    catalog = catalog_of(root, result, base_tier_id)
    cut = wal_cutoff(backup_infos(catalog), set(plan.keep), wal.pitr_window, now)
    if cut is None:
        return []
    first = parse_segment(cut)
    store = store_for(root, result, wal.destination)
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


def take_backup(root: Path, result: ValidationResult, job: Job, dsn: str, *,
                run_id: int | None = None) -> Manifest:
    """One backup of a logical or physical tier (no retention, no lock)."""
    tier = job.tier
    assert tier is not None
    store = tier_store(root, result, tier)
    toolset, sealing, staging = toolset_for(result), sealing_for(result, tier), staging_for(root)
    if isinstance(tier, (LogicalFullTier, LogicalSchemasTier)):
        excluded = _excluded_data(result, tier)
        schemas = list(tier.schemas) if isinstance(tier, LogicalSchemasTier) else None
        return backup_logical(LogicalRequest(
            job.name, tier.kind, dsn, toolset, store, sealing, staging, schemas=schemas,
            exclude_data=sorted(set(tier.exclude_tables) | set(excluded)),
            jobs=tier.parallel_jobs, definition_hash=job.definition_hash,
            git_commit=job.git_commit, run_id=run_id))
    if isinstance(tier, PhysicalBaseTier):
        parent = _incremental_parent(tier, read_catalog(store, job.name))
        return backup_physical(PhysicalRequest(
            job.name, dsn, toolset, store, sealing, staging, parent=parent, verify=tier.verify,
            definition_hash=job.definition_hash, git_commit=job.git_commit))
    raise UsageError(f"{job.id}: {tier.kind} tiers are not run as scheduled backups")


def _excluded_data(result: ValidationResult, tier: LogicalFullTier | LogicalSchemasTier
                   ) -> list[str]:
    """Tables the schema marks as derived (backup_exclude_reason): their data is skipped."""
    out = []
    for schema_name, loaded in result.project.schemas.items():
        if isinstance(tier, LogicalSchemasTier) and schema_name not in tier.schemas:
            continue
        for table_name, table in loaded.model.tables.items():
            if getattr(table, "backup_exclude_reason", None):
                out.append(f"{schema_name}.{table_name}")
    return out


def _incremental_parent(tier: PhysicalBaseTier, catalog: Catalog) -> Manifest | None:
    """The backup to build on, or None when a full backup is due."""
    if not tier.incremental or not catalog.complete:
        return None
    latest = catalog.complete[-1]
    chain = catalog.chain(latest.backup_id)
    full = chain[0]
    if tier.full_every is not None and datetime.now(UTC) - full.started_at >= tier.full_every:
        return None
    return latest


def backup_listing(root: Path, result: ValidationResult, tier_id: str | None = None,
                   ledger: Ledger | None = None) -> list[TierListing]:
    """What `marketops backups` shows for every tier (or one), read from the destinations
    (and, given a ledger, which backups restore drills proved restorable)."""
    tiers = [tier_id] if tier_id else sorted(
        t for t, loaded in result.project.backups.items()
        if not isinstance(loaded.model, RestoreDrillTier))
    drilled = _drilled(result, ledger) if ledger is not None else {}
    listings = []
    for tid in tiers:
        tier = tier_of(result, tid)
        if isinstance(tier, RestoreDrillTier):
            raise UsageError(f"{tid} is a restore drill: it stores no backups of its own")
        encryption = getattr(tier, "encryption", None)
        base = TierListing(tid, tier.kind, getattr(tier, "destination", None),
                           encryption.key if encryption else None)
        if isinstance(tier, AuditVaultTier):
            listings.append(_vault_listing(root, result, tid, tier, base))
            continue
        if isinstance(tier, WalArchiveTier):
            listings.append(_wal_listing(root, result, tid, tier, base))
            continue
        catalog = catalog_of(root, result, tid)
        verified = dict(drilled.get(tid, {}))
        for m in catalog.complete:
            if m.details.get("verified") and m.backup_id not in verified:
                verified[m.backup_id] = Verified(m.finished_at,
                                                 "at backup: pg_verifybackup, pg_waldump")
        listings.append(replace(base, backups=catalog.complete, incomplete=catalog.incomplete,
                                damaged=catalog.damaged, verified=verified))
    return listings


def _drilled(result: ValidationResult, ledger: Ledger) -> dict[str, dict[str, Verified]]:
    """tier -> backup id -> when the newest successful restore drill restored it."""
    found: dict[str, dict[str, Verified]] = {}
    for tid, loaded in sorted(result.project.backups.items()):
        if not isinstance(loaded.model, RestoreDrillTier):
            continue
        for record in ledger.runs(f"backup/{tid}", limit=50):
            if record.status != "succeeded" or record.finished_at is None:
                continue
            for tier, drill in (record.outputs.get("tiers") or {}).items():
                backup_id = drill.get("backup_id") if isinstance(drill, dict) else None
                if backup_id and backup_id not in found.setdefault(tier, {}):
                    found[tier][backup_id] = Verified(record.finished_at,
                                                      f"restore drill {tid}")
    return found


def _wal_listing(root: Path, result: ValidationResult, tid: str, tier: WalArchiveTier,
                 base: TierListing) -> TierListing:
    store = store_for(root, result, tier.destination)
    entries = stored_entries(store, tid)
    bases = catalog_of(root, result, tier.base_tier).complete
    size = int(bases[-1].details.get("segment_size", DEFAULT_SEGMENT_SIZE)) if bases else \
        DEFAULT_SEGMENT_SIZE
    wal = wal_range(bases, list(entries), size)
    if wal.latest_segment in entries:
        wal = archived_at(wal, store.modified(entries[wal.latest_segment]))
    return replace(base, wal=wal)


def _vault_listing(root: Path, result: ValidationResult, tid: str, tier: AuditVaultTier,
                   base: TierListing) -> TierListing:
    store = tier_store(root, result, tier)
    chains = []
    for table in tier.tables:
        catalog = read_catalog(store, f"{tid}/{table}")
        chains.append(audit_chain(table, catalog.complete, catalog.incomplete,
                                  catalog.damaged))
    return replace(base, chains=chains)
