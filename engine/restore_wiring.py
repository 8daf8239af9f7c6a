"""Restores wired to the definitions: logical tiers into a database, physical tiers (with
WAL, to a point in time) into a started cluster, and verification of what is stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.backup_wiring import (
    backup_key,
    catalog_of,
    restore_command,
    staging_for,
    tier_of,
    tier_store,
    toolset_for,
    wal_tier_for,
)
from engine.errors import BackupError, UsageError
from engine.models.backup import (
    AuditVaultTier,
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
    WalArchiveTier,
)
from engine.validate import ValidationResult
from engine.wal_wiring import verify_wal

if TYPE_CHECKING:
    from engine.manifest import Manifest
    from runners.catalog import Catalog


@dataclass(frozen=True)
class DatabaseRestore:
    """A logical restore, checked against its manifest."""

    backup_id: str
    dsn: str
    seconds: float
    tables: int
    skipped_foreign_keys: list[str]


def _pick(catalog: Catalog, tier_id: str, backup_id: str | None) -> Manifest:
    chosen = catalog.get(backup_id) if backup_id else catalog.latest()
    if chosen is None:
        raise BackupError(f"{tier_id} has no complete backup" + (f" {backup_id}" if backup_id
                                                                else "") + " to restore")
    return chosen


def row_counts(dsn: str, tables: list[str]) -> dict[str, int]:
    from runners.database import connect, query

    with connect(dsn) as conn:
        return {t: int(query(conn, "select count(*) from {}".format(
            ".".join(f'"{p}"' for p in t.split("."))))[0][0]) for t in tables}


def count_mismatches(manifest: Manifest, counts: dict[str, int]) -> list[str]:
    """Tables whose restored row count differs from the manifest's."""
    return [f"{t}: {counts.get(t)} rows restored, {n} in the manifest"
            for t, n in sorted(manifest.row_counts.items()) if counts.get(t) != n]


def restore_database(root: Path, result: ValidationResult, tier_id: str, database: str, *,
                     backup_id: str | None = None, dsn: str | None = None,
                     server_dsn: str | None = None) -> DatabaseRestore:
    """Restore a logical backup into `database` and check row counts. A missing database is
    created only once the key is right and every file decrypts, and dropped again when the
    restore fails; an existing (empty) one is left as it was found."""
    from engine.wiring import primary_target
    from runners.database import drop_database, ensure_database, with_database
    from runners.logical import restore_logical

    tier = tier_of(result, tier_id)
    if not isinstance(tier, (LogicalFullTier, LogicalSchemasTier)):
        raise UsageError(f"{tier_id} is a {tier.kind} tier; --into-database restores logical "
                         "tiers (use --into DIR for physical ones)")
    store = tier_store(root, result, tier)
    catalog = catalog_of(root, result, tier_id)
    manifest = _pick(catalog, tier_id, backup_id)
    key = backup_key(result, manifest.encrypted_with) if manifest.encrypted_with else None
    base = server_dsn or primary_target(root, result, dsn).dsn
    admin, target = with_database(base, "postgres"), with_database(base, database)
    created = False

    def create() -> None:
        nonlocal created
        created = ensure_database(admin, database)

    try:
        done = restore_logical(store, manifest, key=key, toolset=toolset_for(result),
                               target_dsn=target, staging=staging_for(root),
                               jobs=tier.parallel_jobs, prepare=create)
        wrong = count_mismatches(manifest, row_counts(target, list(manifest.row_counts)))
        if wrong:
            raise BackupError(f"restored {tier_id}/{manifest.backup_id} but row counts "
                              "differ: " + "; ".join(wrong[:5]))
    except BaseException:
        if created:
            drop_database(admin, database)
        raise
    return DatabaseRestore(manifest.backup_id, target, done.seconds, len(manifest.row_counts),
                           done.skipped_foreign_keys)


@dataclass(frozen=True)
class ClusterRestore:
    """A physical restore started as a server, and the point it recovered to."""

    backup_id: str
    dsn: str
    data_dir: Path
    recovered_to: str | None
    seconds: float
    chain: list[str]
    stop_command: str = ""


def restore_point_in_time(root: Path, result: ValidationResult, tier_id: str, into: Path, *,
                          backup_id: str | None = None, target_time: datetime | None = None,
                          port: int | None = None, replay_wal: bool = False
                          ) -> ClusterRestore:
    """Rebuild a data directory from the base backup(s) and, given a target time (or
    replay_wal: to the end of the archive), the WAL archive; start PostgreSQL on it."""
    import time

    from runners.mailbox import free_port
    from runners.physical import restore_chain
    from runners.recovery import start_restored

    started = time.monotonic()
    tier = tier_of(result, tier_id)
    if not isinstance(tier, PhysicalBaseTier):
        raise UsageError(f"{tier_id} is a {tier.kind} tier; --into DIR restores physical tiers")
    catalog = catalog_of(root, result, tier_id)
    if backup_id is None and target_time is not None:
        usable = [m for m in catalog.complete if m.finished_at <= target_time]
        if not usable:
            raise BackupError(f"no {tier_id} backup finished before "
                              f"{target_time.isoformat()}: the earliest point is "
                              + (catalog.complete[0].finished_at.isoformat()
                                 if catalog.complete else "none (no backups)"))
        manifest = usable[-1]
    else:
        manifest = _pick(catalog, tier_id, backup_id)
    chain = catalog.chain(manifest.backup_id)
    if not chain or chain[0].backup_type != "full":
        raise BackupError(f"{tier_id}/{manifest.backup_id}: its full backup is missing")
    key = backup_key(result, manifest.encrypted_with) if manifest.encrypted_with else None
    restore_chain(tier_store(root, result, tier), chain, into, key=key,
                  toolset=toolset_for(result), staging=staging_for(root))
    command = None
    if target_time is not None or replay_wal:
        wal_tier_for(result, tier_id)
        command = restore_command(root)
    recovered = start_restored(into, port or free_port(), "postgres",
                               restore_command=command, target_time=target_time)
    return ClusterRestore(manifest.backup_id, recovered.server.dsn("postgres"), into,
                          recovered.recovered_to, time.monotonic() - started,
                          [m.backup_id for m in chain], recovered.server.stop_command())


def verify_tier(root: Path, result: ValidationResult, what: str, *, every: bool = False
                ) -> tuple[list[str], list[str]]:
    """(problems, checked): stored files re-read against their manifests."""
    from runners.verify import verify_backup

    if what == "audit":
        return verify_audit(root, result)
    tier = tier_of(result, what)
    if isinstance(tier, WalArchiveTier):
        return verify_wal(root, result, what)
    if isinstance(tier, AuditVaultTier):
        return verify_audit(root, result, what)
    catalog = catalog_of(root, result, what)
    problems = [f"{what}/{b}: incomplete (no manifest)" for b in catalog.incomplete]
    problems += [f"{what}/{b}: manifest damaged" for b in catalog.damaged]
    checked = []
    chosen = catalog.complete if every else catalog.complete[-1:]
    if not chosen:
        problems.append(f"{what}: no complete backup")
    store = tier_store(root, result, tier)
    for manifest in chosen:
        found = verify_backup(store, manifest)
        problems += found
        if not found:
            checked.append(f"{what}/{manifest.backup_id}: {len(manifest.files)} files, "
                           f"{manifest.stored_bytes:,} bytes")
    return problems, checked


def verify_audit(root: Path, result: ValidationResult, tier_id: str | None = None
                 ) -> tuple[list[str], list[str]]:
    """Walk every audit vault chain: order, previous-hash links, manifests, stored rows."""
    from runners.auditvault import verify_chain

    tiers = [(tid, t.model) for tid, t in sorted(result.project.backups.items())
             if isinstance(t.model, AuditVaultTier) and tier_id in (None, tid)]
    if not tiers:
        raise UsageError("no audit_vault tier is declared")
    problems: list[str] = []
    checked: list[str] = []
    for tid, tier in tiers:
        key = None
        if tier.encryption:
            try:
                key = backup_key(result, tier.encryption.key)
            except UsageError:
                checked.append(f"{tid}: key '{tier.encryption.key}' not available: checked "
                               "the chain and stored checksums, not the decrypted rows")
        store = tier_store(root, result, tier)
        for table in tier.tables:
            found, count = verify_chain(store, tid, table, key)
            problems += [f"{tid}: {p}" for p in found]
            if not found:
                checked.append(f"{tid}: {table}: {count} batch(es), chain intact")
    return problems, checked
