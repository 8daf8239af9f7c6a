"""Restores wired to the definitions: logical tiers into a database, physical tiers (with
WAL, to a point in time) into a started cluster. (Verification: each kind's handler.)"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.app.context import primary_target
from engine.app.tiers.backup import (
    backup_key,
    catalog_of,
    restore_command,
    staging_for,
    tier_of,
    tier_store,
    toolset_for,
    wal_tier_for,
)
from engine.backups.pitr import (
    BaseChoice,
    Mark,
    RecoveryTarget,
    WalRange,
    check_base_fits,
    check_mark_name,
    choose_base,
    explain_early_end,
    first_gap,
    needed_range,
)
from engine.backups.policy import smoke_applies
from engine.backups.walnames import DEFAULT_SEGMENT_SIZE, parse_segment
from engine.definitions.models.backup import (
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
    SmokeQuery,
    WalArchiveTier,
)
from engine.errors import BackupError, MarketopsError, UsageError
from engine.validation.validate import ValidationResult
from runners.backup.logical import restore_logical
from runners.backup.physical import restore_chain
from runners.backup.wal import stored_entries, stored_names, stored_times, wait_for_archiver
from runners.demo.mailbox import free_port
from runners.postgres.connection import (
    count_rows,
    drop_database,
    ensure_database,
    probe,
    rows_returned,
    with_database,
)
from runners.postgres.embedded import EmbeddedServer
from runners.postgres.recovery import RecoveryFailed, create_restore_point, start_restored
from runners.postgres.roles import ensure_roles_exist
from runners.service import progress
from runners.storage.verify import check_wal_file

if TYPE_CHECKING:
    from engine.backups.manifest import Manifest
    from runners.storage.catalog import BackupCatalog


@dataclass(frozen=True)
class DatabaseRestore:
    """A logical restore, checked against its manifest."""

    backup_id: str
    dsn: str
    seconds: float
    tables: int
    skipped_foreign_keys: list[str]


def _pick(catalog: BackupCatalog, tier_id: str, backup_id: str | None) -> Manifest:
    chosen = catalog.get(backup_id) if backup_id else catalog.latest()
    if chosen is None:
        raise BackupError(f"{tier_id} has no complete backup" + (f" {backup_id}" if backup_id
                                                                else "") + " to restore")
    return chosen


def count_mismatches(manifest: Manifest, counts: dict[str, int]) -> list[str]:
    """Tables whose restored row count differs from the manifest's."""
    return [f"{t}: {counts.get(t)} rows restored, {n} in the manifest"
            for t, n in sorted(manifest.row_counts.items()) if counts.get(t) != n]


def restore_database(root: Path, defs: ValidationResult, tier_id: str, database: str, *,
                     backup_id: str | None = None, dsn: str | None = None,
                     server_dsn: str | None = None,
                     keep_on_failure: bool = False) -> DatabaseRestore:
    """Restore a logical backup into `database` and check row counts. A missing database is
    created only once the key is right and every file decrypts, and dropped again when the
    restore fails (kept, and named, with keep_on_failure); an existing (empty) one is left
    as it was found."""
    tier = tier_of(defs, tier_id)
    if not isinstance(tier, (LogicalFullTier, LogicalSchemasTier)):
        raise UsageError(f"{tier_id} is a {tier.kind} tier; --into-database restores logical "
                         "tiers (use --into DIR for physical ones)")
    store = tier_store(root, defs, tier)
    catalog = catalog_of(root, defs, tier_id)
    manifest = _pick(catalog, tier_id, backup_id)
    key = backup_key(defs, manifest.encrypted_with) if manifest.encrypted_with else None
    base = server_dsn or primary_target(root, defs, dsn).dsn
    admin, target = with_database(base, "postgres"), with_database(base, database)
    created = False

    def create() -> bool:
        nonlocal created
        roles = defs.project.settings.roles
        # The dump grants to the roles jobs connect as; a cluster restored into may lack them.
        ensure_roles_exist(admin, [r for r in (roles.reports, roles.backups) if r])
        created = ensure_database(admin, database)
        return created

    try:
        with progress.step(f"restore {tier_id}/{manifest.backup_id}", unit="read"):
            done = restore_logical(store, manifest, key=key, toolset=toolset_for(defs),
                                   target_dsn=target, staging=staging_for(root),
                                   jobs=tier.parallel_jobs, prepare=create)
        wrong = count_mismatches(manifest, count_rows(target, list(manifest.row_counts)))
        if wrong:
            raise BackupError(f"restored {tier_id}/{manifest.backup_id} but row counts "
                              "differ: " + "; ".join(wrong[:5]))
    except MarketopsError as exc:
        if not created:
            raise
        if keep_on_failure:
            raise type(exc)(f"{exc}; kept database {database} as it is "
                            "(--keep-on-failure)") from None
        drop_database(admin, database)
        raise type(exc)(f"{exc}; dropped database {database} (keep it with "
                        "--keep-on-failure)") from None
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
    wal_checked: str = ""


def smoke_check(dsn: str, queries: list[SmokeQuery], schemas: set[str] | None,
                defs: ValidationResult) -> tuple[dict[str, str], list[str]]:
    """Each smoke query the restore can answer (it holds every schema the query reads), run
    on it: (outcome per query, problems)."""
    outcome: dict[str, str] = {}
    problems: list[str] = []
    for smoke in queries:
        reads = {t[0] for t in defs.project.analyze(smoke.sql).tables}
        if not smoke_applies(reads, schemas):
            continue  # this tier does not hold what the query reads
        try:
            found = rows_returned(dsn, smoke.sql)
        except MarketopsError as exc:
            outcome[smoke.name] = "failed"
            problems.append(f"smoke query {smoke.name} failed: {exc}")
            continue
        if found < smoke.min_rows:
            outcome[smoke.name] = "failed"
            problems.append(f"smoke query {smoke.name} returned {found} row(s), "
                            f"expected at least {smoke.min_rows}")
        else:
            outcome[smoke.name] = f"ok ({found} rows)"
    return outcome, problems


def _marks(wal_id: str) -> str:
    # Beside the tier's folder, not in it: nothing that lists WAL segments sees them.
    return f"{wal_id}.marks"


def find_mark(root: Path, defs: ValidationResult, wal_id: str, name: str) -> Mark | None:
    """The restore point `marketops mark` recorded under this name, if any."""
    wal = tier_of(defs, wal_id)
    store = tier_store(root, defs, wal)
    if not store.exists(f"{_marks(wal_id)}/{name}.json"):
        return None
    try:
        return Mark.from_json(store.get_bytes(f"{_marks(wal_id)}/{name}.json"))
    except (ValueError, KeyError, TypeError):
        raise BackupError(f"the record of restore point '{name}' in {wal_id} is damaged") \
            from None


def mark_names(root: Path, defs: ValidationResult, wal_id: str) -> list[str]:
    store = tier_store(root, defs, tier_of(defs, wal_id))
    return [n.removesuffix(".json") for n in store.list(_marks(wal_id)) if n.endswith(".json")]


def create_mark(root: Path, defs: ValidationResult, name: str, *, dsn: str | None = None,
                timeout: float = 300) -> Mark:
    """A named restore point on the primary, its segment switched out and archived, recorded
    next to the WAL archive so that restores can find the base backup that precedes it."""
    name = check_mark_name(name)
    wal_id, wal = wal_tier_for(defs)
    if find_mark(root, defs, wal_id, name) is not None:
        raise UsageError(f"restore point '{name}' exists already in {wal_id}; recovery would "
                         "stop at the first one of that name: choose another name")
    primary = primary_target(root, defs, dsn).dsn
    if probe(primary, "select current_setting('archive_mode')") == "off":
        raise BackupError("archive_mode is off on the primary: a restore point would never "
                          "reach the archive (marketops wal-setup --apply)")
    lsn, when, timeline, segment = create_restore_point(primary, name)
    mark = Mark(name, lsn, when, timeline, segment)
    tier_store(root, defs, wal).put_bytes(f"{_marks(wal_id)}/{name}.json", mark.to_json())
    if not wait_for_archiver(primary, timeout):
        raise BackupError(f"restore point '{name}' is at {lsn} in {segment}, but the archiver "
                          f"did not store that segment within {timeout:.0f}s; check "
                          "`marketops status` and archive_command")
    return mark


def _base_choices(catalog: BackupCatalog) -> list[BaseChoice]:
    return [BaseChoice(m.backup_id, m.finished_at, m.details.get("stop_lsn"))
            for m in catalog.complete]


def _check_archive(root: Path, defs: ValidationResult, wal_id: str, manifest: Manifest,
                   target: RecoveryTarget, mark: Mark | None) -> tuple[WalRange | None, str]:
    """Every segment recovery to `target` will read is stored and reads back intact; the
    range checked and how it was described. BackupError names the first one that is not."""
    wal = tier_of(defs, wal_id)
    assert isinstance(wal, WalArchiveTier)
    start = manifest.details.get("start_wal")
    if not start:
        return None, "not checked (the manifest records no start segment)"
    store = tier_store(root, defs, wal)
    times = stored_times(store, wal_id)
    wal_range = needed_range(start, target, mark, times, DEFAULT_SEGMENT_SIZE)
    if wal_range is None:
        return None, "nothing archived after the base backup"
    where = f"{wal_range.first.name}..{wal_range.last.name}"
    missing = first_gap(wal_range, times)
    if missing is not None:
        before = "" if wal_range.bounded else (
            "; recover to a point before it with --target-time or --target-lsn")
        raise BackupError(f"cannot restore {manifest.tier}/{manifest.backup_id} to "
                          f"{target.describe()}: WAL segment {missing} is missing from "
                          f"{wal_id} (recovery needs {where}){before}; nothing was restored")
    key = backup_key(defs, wal.encryption.key) if wal.encryption else None
    names = wal_range.names(times)
    paths = stored_entries(store, wal_id)
    for number in sorted(names):
        for name in names[number]:
            problem = check_wal_file(store, paths[name], key)
            if problem is not None:
                raise BackupError(f"cannot restore {manifest.tier}/{manifest.backup_id} to "
                                  f"{target.describe()}: WAL segment {name} in {wal_id} is "
                                  f"damaged: {problem} (needed for {where}); nothing was "
                                  "restored")
    count = sum(len(v) for v in names.values())
    return wal_range, f"{where}: {count} segment(s), each matches its checksum"


def _discard(into: Path, existed: bool, keep: bool | None) -> str:
    """Stop a server left on a failed restore and remove what the restore wrote. `keep`
    None: the caller (a drill) has no --keep-on-failure to offer."""
    if (into / "PG_VERSION").exists():
        with contextlib.suppress(MarketopsError):
            EmbeddedServer(into, 1).stop()
    if keep:
        return f"kept {into} as it is (--keep-on-failure; its server log: {into}/server.log)"
    if existed:  # the user's own (empty) directory: leave it empty, as it was
        for item in into.iterdir():
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
        return f"emptied {into}" + ("" if keep is None else
                                    " (keep what it holds with --keep-on-failure)")
    shutil.rmtree(into, ignore_errors=True)
    if keep is None:  # a drill: `marketops restore ... --keep-on-failure` keeps such a copy
        return f"removed the drill's copy {into}"
    return f"removed {into} (keep it with --keep-on-failure)"


def restore_point_in_time(root: Path, defs: ValidationResult, tier_id: str, into: Path, *,
                          backup_id: str | None = None,
                          target: RecoveryTarget | None = None, port: int | None = None,
                          keep_on_failure: bool | None = False) -> ClusterRestore:
    """Rebuild a data directory from the base backup(s), recover it through the WAL archive
    to `target` (default: the end of the archive) and start PostgreSQL on it. The archive is
    checked first; on failure nothing is left in `into` unless keep_on_failure (None: the
    caller offers no way to keep it, so the message suggests none)."""
    started = time.monotonic()
    target = target or RecoveryTarget()
    tier = tier_of(defs, tier_id)
    if not isinstance(tier, PhysicalBaseTier):
        raise UsageError(f"{tier_id} is a {tier.kind} tier; --into DIR restores physical tiers")
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise UsageError(f"{into} is not an empty directory; restore into a new one")
    try:
        wal_id: str | None = wal_tier_for(defs, tier_id)[0]
    except UsageError:
        if target.kind not in ("latest", "immediate"):
            raise UsageError(f"{target.describe()} needs a wal_archive tier for {tier_id}; "
                             "without one a restore reaches the end of the base backup "
                             "only") from None
        wal_id = None
    replay = wal_id is not None and target.replays_archive
    mark = None
    if target.kind == "name":
        assert wal_id is not None and target.name is not None
        mark = find_mark(root, defs, wal_id, target.name)
        if mark is None and backup_id is None:
            known = ", ".join(mark_names(root, defs, wal_id)) or "none"
            raise BackupError(f"no restore point '{target.name}' was recorded by `marketops "
                              f"mark` in {wal_id} (recorded: {known}); for one made another "
                              "way, name the base backup before it with --backup")
    catalog = catalog_of(root, defs, tier_id)
    if backup_id is None:
        manifest = _pick(catalog, tier_id, choose_base(_base_choices(catalog), target, mark,
                                                       tier_id))
    else:
        manifest = _pick(catalog, tier_id, backup_id)
        check_base_fits(manifest.backup_id, manifest.details.get("stop_lsn"),
                        manifest.finished_at, target, mark)
    chain = catalog.chain(manifest.backup_id)
    if not chain or chain[0].backup_type != "full":
        raise BackupError(f"{tier_id}/{manifest.backup_id}: its full backup is missing")
    wal_range, checked = None, ""
    if replay:
        assert wal_id is not None
        wal_range, checked = _check_archive(root, defs, wal_id, manifest, target, mark)
    key = backup_key(defs, manifest.encrypted_with) if manifest.encrypted_with else None
    existed = into.exists()
    try:
        with progress.step(f"restore {tier_id}/{manifest.backup_id}", unit="read"):
            restore_chain(tier_store(root, defs, tier), chain, into, key=key,
                          toolset=toolset_for(defs), staging=staging_for(root),
                          keep=True)  # removed (or kept) below, and said so
    except MarketopsError as exc:
        if not into.exists():  # refused before writing anything (a wrong key)
            raise
        raise type(exc)(f"{exc}; {_discard(into, existed, keep_on_failure)}") from None
    what = f"{tier_id}/{manifest.backup_id} to {target.describe()}"
    replaying = restore_command(root, defs.project.target) if replay else None
    try:
        with progress.step(f"recovery of {tier_id} to {target.describe()}"):
            recovered = start_restored(into, port or free_port(), "postgres",
                                       restore_command=replaying, targets=target.settings())
    except RecoveryFailed as exc:
        reason = str(exc)
        if replay and (exc.log.ended_early or exc.log.not_restored):
            assert wal_id is not None
            reason = explain_early_end(exc.log, target, _stored_names(root, defs, wal_id),
                                       manifest.details.get("start_wal") or "",
                                       DEFAULT_SEGMENT_SIZE)
        else:
            reason = reason.split(" (see ", 1)[0]  # the log is named with the directory
        raise BackupError(f"recovery of {what} failed: {reason}; "
                          f"{_discard(into, existed, keep_on_failure)}") from None
    except BaseException:
        _discard(into, existed, keep_on_failure)
        raise
    short = _short_of_archive(recovered.log.last_restored, wal_range, target)
    if short:
        raise BackupError(f"recovery of {what} failed: {short}; "
                          f"{_discard(into, existed, keep_on_failure)}")
    reached = recovered.recovered_to
    if not replay:
        reached = "the end of the base backup" + ("" if wal_id else f" ({tier_id} has no WAL "
                                                  "archive tier)")
    elif target.kind == "latest":
        reached = "the end of the archive" + (f": {reached}" if reached else "")
    return ClusterRestore(manifest.backup_id, recovered.server.dsn("postgres"), into,
                          reached, time.monotonic() - started, [m.backup_id for m in chain],
                          recovered.server.stop_command(), checked)


def _stored_names(root: Path, defs: ValidationResult, wal_id: str) -> list[str]:
    return stored_names(tier_store(root, defs, tier_of(defs, wal_id)), wal_id)


def _short_of_archive(last_restored: str | None, wal_range: WalRange | None,
                      target: RecoveryTarget) -> str | None:
    """PostgreSQL ends recovery without a target at the first segment the archive does not
    return: if that came before the end the archive was checked to hold, say so rather than
    hand over a server that silently lacks the rest."""
    if target.kind != "latest" or wal_range is None or wal_range.bounded:
        return None
    reached = parse_segment(last_restored).number if last_restored else -1
    if reached >= wal_range.last.number:
        return None
    after = last_restored or "the backup's own WAL"
    return (f"recovery stopped after {after}, before the "
            f"end of the archive at {wal_range.last.name} (was a segment removed or unreadable "
            "meanwhile?)")

