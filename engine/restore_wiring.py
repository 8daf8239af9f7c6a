"""Restores wired to the definitions: logical tiers into a database, physical tiers (with
WAL, to a point in time) into a started cluster. (Verification: engine/verify_wiring.py.)"""

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
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
)
from engine.validate import ValidationResult

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
    """Restore a logical backup into `database` (created if missing) and check row counts."""
    from engine.wiring import primary_target
    from runners.database import ensure_database, with_database
    from runners.logical import restore_logical

    tier = tier_of(result, tier_id)
    if not isinstance(tier, (LogicalFullTier, LogicalSchemasTier)):
        raise UsageError(f"{tier_id} is a {tier.kind} tier; --into-database restores logical "
                         "tiers (use --into DIR for physical ones)")
    base = server_dsn or primary_target(root, result, dsn).dsn
    ensure_database(with_database(base, "postgres"), database)
    target = with_database(base, database)
    store = tier_store(root, result, tier)
    catalog = catalog_of(root, result, tier_id)
    manifest = _pick(catalog, tier_id, backup_id)
    key = backup_key(result, manifest.encrypted_with) if manifest.encrypted_with else None
    done = restore_logical(store, manifest, key=key, toolset=toolset_for(result),
                           target_dsn=target, staging=staging_for(root),
                           jobs=tier.parallel_jobs)
    wrong = count_mismatches(manifest, row_counts(target, list(manifest.row_counts)))
    if wrong:
        raise BackupError(f"restored {tier_id}/{manifest.backup_id} but row counts differ: "
                          + "; ".join(wrong[:5]))
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

