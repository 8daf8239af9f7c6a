"""The composition root for backups: tiers from the definitions joined to the runners."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import BackupError, MarketopsError, UsageError
from engine.freshness import Freshness, WalState
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
from engine.walnames import DEFAULT_SEGMENT_SIZE
from engine.wiring import resolve_env, store_for

if TYPE_CHECKING:
    from engine.manifest import Manifest
    from runners.catalog import Catalog
    from runners.codec import Sealing
    from runners.pgtools import Toolset
    from runners.storage import Store

# Every heavy read of one cluster (dumps, base backups) takes this advisory lock on it.
CLUSTER_LOCK = int.from_bytes(hashlib.sha256(b"marketops backup").digest()[:8], "big",
                              signed=True)


def toolset_for(result: ValidationResult) -> Toolset:
    """The PostgreSQL tools backups use: postgres.bin_dir, else the embedded ones."""
    from runners.pgtools import discover
    from runners.postgres import embedded_bin_dir

    configured = result.project.settings.postgres.bin_dir
    return discover(Path(configured) if configured else embedded_bin_dir())


def staging_for(root: Path) -> Path:
    """Local scratch space for dumps and restores before they are sealed or started."""
    return root / "var" / "staging"


def backup_key(result: ValidationResult, name: str) -> str:
    """The value of a key named in settings (from its environment variable)."""
    ref = result.project.settings.keys.get(name)
    if ref is None:
        raise UsageError(f"key '{name}' is not declared under keys: in marketops.yaml")
    return resolve_env(ref, f"keys.{name}")


def sealing_for(result: ValidationResult, tier: BackupTier) -> Sealing:
    """How a tier's files are compressed and encrypted."""
    from runners.codec import Sealing

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
    from runners.catalog import read_catalog

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
    """archive_command for postgresql.conf: this interpreter, this repository."""
    return f'"{sys.executable}" -m engine.cli --root "{root.resolve()}" wal-push "%p"'


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


def _infos(catalog: Catalog) -> list[BackupInfo]:
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
    return plan_retention(_infos(catalog), retention, now or datetime.now(UTC))


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
    from engine.walnames import SEGMENT, parse_segment
    from runners.wal import stored_entries

    try:
        wal_id, wal = wal_tier_for(result, base_tier_id)
    except UsageError:
        return []
    catalog = catalog_of(root, result, base_tier_id)
    cut = wal_cutoff(_infos(catalog), set(plan.keep), wal.pitr_window, now)
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


def run_backup(root: Path, result: ValidationResult, job: Job, primary_dsn: str,
               ledger_note: Any = None) -> dict[str, Any]:
    """Run one slot of a backup tier, then apply its retention."""
    import time

    tier = job.tier
    assert tier is not None
    started = time.monotonic()
    if isinstance(tier, RestoreDrillTier):
        from engine.drill_wiring import run_drill

        return run_drill(root, result, job, primary_dsn)
    if isinstance(tier, AuditVaultTier):
        return export_audit(root, result, job.name, primary_dsn)
    if isinstance(tier, WalArchiveTier):
        return check_wal(root, result, job.name, primary_dsn)
    from runners.database import advisory_lock

    with advisory_lock(primary_dsn, CLUSTER_LOCK, job.id):
        manifest = take_backup(root, result, job, primary_dsn)
        plan = apply_retention(root, result, job.name)
    return BackupRun(manifest, plan, time.monotonic() - started).outputs()


def take_backup(root: Path, result: ValidationResult, job: Job, dsn: str) -> Manifest:
    """One backup of a logical or physical tier (no retention, no lock)."""
    tier = job.tier
    assert tier is not None
    store = tier_store(root, result, tier)
    toolset, sealing, staging = toolset_for(result), sealing_for(result, tier), staging_for(root)
    if isinstance(tier, (LogicalFullTier, LogicalSchemasTier)):
        from runners.logical import LogicalRequest, backup_logical

        excluded = _excluded_data(result, tier)
        schemas = list(tier.schemas) if isinstance(tier, LogicalSchemasTier) else None
        return backup_logical(LogicalRequest(
            job.name, tier.kind, dsn, toolset, store, sealing, staging, schemas=schemas,
            exclude_data=sorted(set(tier.exclude_tables) | set(excluded)),
            jobs=tier.parallel_jobs, definition_hash=job.definition_hash,
            git_commit=job.git_commit))
    if isinstance(tier, PhysicalBaseTier):
        from runners.catalog import read_catalog
        from runners.physical import PhysicalRequest, backup_physical

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


def export_audit(root: Path, result: ValidationResult, tier_id: str, dsn: str
                 ) -> dict[str, Any]:
    """Append the audit rows above the last exported id to the vault, batch by batch."""
    import time

    from runners.auditvault import export_batches

    tier = tier_of(result, tier_id)
    assert isinstance(tier, AuditVaultTier)
    started = time.monotonic()
    done = export_batches(dsn, tier_store(root, result, tier), tier_id, list(tier.tables),
                          sealing_for(result, tier), id_column=tier.id_column,
                          batch_rows=tier.batch_rows)
    return {"batches": done.batches, "rows": sum(done.rows.values()),
            "stored_bytes": done.stored_bytes,
            "chain_head": done.head, "seconds": round(time.monotonic() - started, 3)}


def wal_definitions(root: Path) -> tuple[ValidationResult, str, WalArchiveTier]:
    """Settings and the WAL tier, loaded without the SQL checks: archive_command runs per
    segment and must start fast, and a broken report or schema file must not stop WAL
    archiving. Only errors in marketops.yaml, or a WAL tier that does not load, stop it."""
    from engine.errors import DefinitionError
    from engine.loader import load_project

    project, findings = load_project(root)
    errors = [f for f in findings if f.severity == "error"]
    blocking = [f for f in errors if f.location.file == "marketops.yaml"]
    if blocking:
        raise DefinitionError(f"{blocking[0].location}: {blocking[0].message}")
    result = ValidationResult(project, [])
    try:
        wal_id, wal = wal_tier_for(result)
    except UsageError:
        backups = [f for f in errors if f.location.file.startswith("definitions/backups/")]
        if backups:
            raise DefinitionError(f"{backups[0].location}: {backups[0].message}") from None
        raise
    return result, wal_id, wal


def wal_push(root: Path, path: Path) -> bool:
    """archive_command: store one WAL file; False when it was archived already."""
    from runners.wal import push

    result, wal_id, wal = wal_definitions(root)
    return push(store_for(root, result, wal.destination), wal_id, path,
                sealing_for(result, wal))


def wal_fetch(root: Path, name: str, target: Path) -> None:
    """restore_command: bring back one WAL file (WalNotFound when the archive lacks it)."""
    from runners.wal import fetch

    result, wal_id, wal = wal_definitions(root)
    key = backup_key(result, wal.encryption.key) if wal.encryption else None
    fetch(store_for(root, result, wal.destination), wal_id, name, target, key)


def wal_settings(root: Path, result: ValidationResult) -> dict[str, str]:
    """The server settings WAL archiving and incremental base backups need."""
    _, wal = wal_tier_for(result)
    return {"wal_level": "replica", "archive_mode": "on",
            "archive_command": archive_command(root),
            "archive_timeout": f"{int(wal.archive_timeout.total_seconds())}s",
            "summarize_wal": "on"}


def configure_archiving(dsn: str, settings: dict[str, str]) -> bool:
    """ALTER SYSTEM the settings and reload; True when a restart is still needed."""
    from runners.database import connect, query

    with connect(dsn, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"alter system set {name} = {_literal(value)}")
        conn.execute("select pg_reload_conf()")
        pending = query(conn, "select count(*) from pg_settings where pending_restart")[0][0]
        live = {str(r[0]): str(r[1]) for r in query(
            conn, "select name, setting from pg_settings where name = any(%s)",
            (["archive_mode", "wal_level"],))}
    return bool(pending) or live.get("archive_mode") != "on" or \
        live.get("wal_level") not in ("replica", "logical")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


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


def prepare_archive_access(root: Path, result: ValidationResult) -> None:
    """Let the embedded server's own user (when we run as root) run archive_command: read
    this repository and write the WAL destination."""
    from runners.postgres import grant_server_access

    wal_id, wal = wal_tier_for(result)
    store = store_for(root, result, wal.destination)
    wal_dir = store.local_path(wal_id)
    grant_server_access(readable=[root.resolve(), Path(sys.executable).resolve().parent],
                        writable=[wal_dir] if wal_dir is not None else [])


def wal_state(root: Path, result: ValidationResult, wal_id: str, dsn: str | None) -> WalState:
    """The archive's contents and (when reachable) the server's archiver."""
    from engine.freshness import WalState
    from runners.wal import archiver_state, stored_names

    tier = tier_of(result, wal_id)
    assert isinstance(tier, WalArchiveTier)
    stored = stored_names(store_for(root, result, tier.destination), wal_id)
    catalog = catalog_of(root, result, tier.base_tier)
    infos = _infos(catalog)
    first = wal_cutoff(infos, {b.backup_id for b in infos}, tier.pitr_window,
                       datetime.now(UTC)) or (infos[0].start_wal if infos else None)
    archiver = None
    if dsn is not None:
        from runners.database import connect

        try:
            with connect(dsn) as conn:
                archiver = archiver_state(conn)
        except MarketopsError:
            archiver = None
    from datetime import timedelta

    return WalState(
        stored, first, archiver.last_archived_wal if archiver else None,
        timedelta(seconds=archiver.last_archived_age_s)
        if archiver and archiver.last_archived_age_s is not None else None,
        archiver.current_wal if archiver else None, archiver.failing if archiver else False,
        archiver.failed_count if archiver else 0, archiver.last_failed_wal if archiver else None,
        archiver.segment_size if archiver else DEFAULT_SEGMENT_SIZE)


def check_wal(root: Path, result: ValidationResult, wal_id: str, dsn: str) -> dict[str, Any]:
    """The WAL tier's scheduled check: the server must be able to honour it, the archive must
    have no gap, the archiver must keep up; any problem fails the run (and alerts)."""
    from runners.database import connect
    from runners.physical import server_problems

    tier = tier_of(result, wal_id)
    assert isinstance(tier, WalArchiveTier)
    with connect(dsn) as conn:
        setup = server_problems(conn, incremental=False, archiving=True)
    if setup:
        raise BackupError(f"the server cannot archive WAL for {wal_id}: " + "; ".join(setup))
    problems, checked = verify_wal(root, result, wal_id, dsn)
    if problems:
        raise BackupError("; ".join(problems))
    state = wal_state(root, result, wal_id, dsn)
    return {"stored": len(state.stored), "last_archived": state.last_archived,
            "checked": checked}


def verify_wal(root: Path, result: ValidationResult, wal_id: str,
               dsn: str | None = None) -> tuple[list[str], list[str]]:
    """Missing segments (by name) between the oldest needed base backup and the newest WAL,
    and the archiver's state when the server is reachable."""
    from engine.freshness import wal_problems

    tier = tier_of(result, wal_id)
    assert isinstance(tier, WalArchiveTier)
    state = wal_state(root, result, wal_id, dsn)
    problems, _ = wal_problems(state, tier.rpo)
    checked = [] if problems else [
        f"{wal_id}: {len(state.stored)} WAL file(s) from {state.first_needed or 'the start'} "
        f"on, no gap"]
    return [f"{wal_id}: {p}" for p in problems], checked


def freshness(root: Path, result: ValidationResult, dsn: str | None,
              now: datetime | None = None) -> dict[str, Freshness]:
    """Every backup tier's newest valid backup (or WAL) against its RPO; errors reading a
    destination are reported as the tier's problem."""
    from engine.freshness import Freshness, backup_freshness, wal_problems

    moment = now or datetime.now(UTC)
    out: dict[str, Freshness] = {}
    for tier_id, loaded in sorted(result.project.backups.items()):
        tier = loaded.model
        if isinstance(tier, RestoreDrillTier) or not tier.enabled:
            continue
        try:
            if isinstance(tier, WalArchiveTier):
                state = wal_state(root, result, tier_id, dsn)
                problems, _ = wal_problems(state, tier.rpo)
                age = state.last_archived_age
                out[tier_id] = Freshness(tier_id, tier.rpo, state.last_archived, age,
                                         "; ".join(problems) or None,
                                         f"{len(state.stored)} WAL files")
                continue
            if isinstance(tier, AuditVaultTier):
                newest = _newest_audit_batch(root, result, tier_id, tier)
                out[tier_id] = backup_freshness(tier_id, tier.rpo, *newest, moment)
                continue
            latest = catalog_of(root, result, tier_id).latest()
            out[tier_id] = backup_freshness(tier_id, tier.rpo,
                                            latest.backup_id if latest else None,
                                            latest.finished_at if latest else None, moment)
        except MarketopsError as exc:
            out[tier_id] = Freshness(tier_id, getattr(tier, "rpo", moment - moment), None, None,
                                     f"cannot read its destination: {exc}")
    return out


def _newest_audit_batch(root: Path, result: ValidationResult, tier_id: str,
                        tier: AuditVaultTier) -> tuple[str | None, datetime | None]:
    from runners.catalog import read_catalog

    store = tier_store(root, result, tier)
    newest: tuple[str | None, datetime | None] = (None, None)
    for table in tier.tables:
        latest = read_catalog(store, f"{tier_id}/{table}").latest()
        if latest and (newest[1] is None or latest.finished_at > newest[1]):
            newest = (latest.backup_id, latest.finished_at)
    return newest


class FreshnessCache:
    """Backup freshness for the service's pages, re-read from the destinations at most once
    per `ttl` seconds (listing object storage on every scrape would be slow and costly)."""

    def __init__(self, root: Path, result: Any, dsn: str | None, ttl: float = 60) -> None:
        self.root = root
        self.result = result  # a ValidationResult, or LiveDefinitions (its .result is current)
        self.dsn = dsn
        self.ttl = ttl
        self._value: dict[str, Freshness] = {}
        self._at = float("-inf")

    def __call__(self) -> dict[str, Freshness]:
        import time

        if time.monotonic() - self._at >= self.ttl:
            current = getattr(self.result, "result", self.result)
            self._value = freshness(self.root, current, self.dsn)
            self._at = time.monotonic()
        return self._value


def ensure_demo_key(root: Path, variable: str = "MARKETOPS_BACKUP_KEY") -> bool:
    """For the demo only: when the key variable is unset, use (or make) var/demo-backup.key.
    True when the demo key is used. Production keys never come from a file we write."""
    import os

    if os.environ.get(variable):
        return False
    from runners.codec import generate_key

    path = root / "var" / "demo-backup.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(generate_key()[0] + "\n", encoding="utf-8")
    os.environ[variable] = path.read_text(encoding="utf-8").strip()
    return True


@dataclass(frozen=True)
class DemoTier:
    """One tier's demo run, as the demo table prints it."""

    tier: str
    kind: str
    status: str
    stored_bytes: int
    seconds: float
    verified: str
    recovery: str
    error: str | None = None


def run_demo_backups(root: Path, result: ValidationResult, target: Any, now: datetime
                     ) -> list[DemoTier]:
    """Configure WAL archiving on the embedded server, run every tier once, then the drill."""
    from engine.wiring import Executor, ledger_for, run_slot

    prepare_archive_access(root, result)
    if configure_archiving(target.dsn, wal_settings(root, result)) and target.server:
        target.server.stop()
        target.server.start()  # archive_mode needs a restart; the server inherits the key
    ledger = ledger_for(target.dsn)
    executor = Executor(root, result, target.dsn, ledger, primary_dsn=target.dsn)
    all_jobs = {j.name: j for j in _jobs(result).values() if j.kind == "backup"}
    order = sorted(all_jobs.values(), key=lambda j: (
        {"physical_base": 0, "restore_drill": 3, "wal_archive": 2}.get(
            j.tier.kind if j.tier else "", 1), j.name))
    found: list[DemoTier] = []
    for job in order:
        tier = job.tier
        assert tier is not None
        if isinstance(tier, WalArchiveTier):
            wait_for_archiver(target.dsn)
            problems, _ = verify_wal(root, result, job.name, target.dsn)
            state = wal_state(root, result, job.name, target.dsn)
            found.append(DemoTier(job.name, tier.kind, "ok" if not problems else "problem",
                                  0, 0.0, f"{len(state.stored)} segments, no gap"
                                  if not problems else problems[0], "-"))
            continue
        assert job.schedule is not None
        slot = job.schedule.latest_at_or_before(now) or now
        outcome = run_slot(ledger, executor, job, slot, "manual")
        if outcome is None:
            continue
        outputs = outcome.outputs or {}
        if isinstance(tier, RestoreDrillTier):
            for tier_id, drilled in (outputs.get("tiers") or {}).items():
                seconds = drilled.get("seconds") or 0.0
                rto = drilled.get("rto_seconds") or 0.0
                smoke = sum(1 for v in (drilled.get("smoke") or {}).values()
                            if str(v).startswith("ok"))
                found.append(DemoTier(f"drill:{tier_id}", "restore_drill", outcome.status, 0,
                                      seconds, f"{drilled.get('checked', '')}, {smoke} smoke ok",
                                      f"{seconds:.1f}s / RTO {rto:.0f}s"))
            if outcome.status != "succeeded":
                found.append(DemoTier(job.name, tier.kind, outcome.status, 0, 0.0, "-", "-",
                                      outcome.error))
            continue
        verified = "-"
        if outcome.status == "succeeded" and not isinstance(tier, AuditVaultTier):
            problems, _ = verify_tier(root, result, job.name)
            verified = "yes" if not problems else "NO"
        elif outcome.status == "succeeded":
            problems, _ = verify_audit(root, result, job.name)
            verified = "chain ok" if not problems else "BROKEN"
        found.append(DemoTier(job.name, tier.kind, outcome.status,
                              int(outputs.get("stored_bytes", 0)),
                              float(outputs.get("seconds", 0.0)), verified, "-",
                              outcome.error))
    return found


def wait_for_archiver(dsn: str, timeout: float = 300) -> bool:
    """Close the current WAL segment and wait until the archiver has stored it."""
    import time

    from runners.database import connect, query

    with connect(dsn, autocommit=True) as conn:
        segment = str(query(conn, "select pg_walfile_name(pg_switch_wal())")[0][0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = query(conn, "select last_archived_wal from pg_stat_archiver")[0]
            if row[0] is not None and str(row[0])[:24] >= segment:
                return True
            time.sleep(0.5)
    return False


def _jobs(result: ValidationResult) -> dict[str, Job]:
    from engine.jobs import jobs

    return jobs(result.project)
