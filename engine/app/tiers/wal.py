"""WAL archiving wired to the definitions: archive_command and restore_command, the
server settings they need, and the health of the archive."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.app import clock
from engine.app.context import store_for
from engine.app.roles import backups_dsn
from engine.app.tiers.backup import (
    archive_command,
    backup_infos,
    backup_key,
    catalog_of,
    sealing_for,
    tier_of,
    wal_tier_for,
)
from engine.app.tiers.handler import TierHandler
from engine.backups.freshness import Freshness, WalState, newest_archived, wal_problems
from engine.backups.listing import TierListing, Verified, archived_at, wal_range
from engine.backups.retention import wal_cutoff
from engine.backups.walnames import DEFAULT_SEGMENT_SIZE, SEGMENT
from engine.definitions.models.backup import (
    WalArchiveTier,
)
from engine.errors import BackupError, MarketopsError, UsageError
from engine.runs.ledger import Ledger
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.backup.wal import stored_entries
from runners.storage.verify import Damaged, verify_wal_files

if TYPE_CHECKING:
    from runners.cache.archive import ArchiveConfig


def wal_definitions(root: Path, target: str | None = None
                    ) -> tuple[ValidationResult, str, WalArchiveTier]:
    """Settings and the WAL tier, loaded without the SQL checks: archive_command runs per
    segment and must start fast, and a broken report or schema file must not stop WAL
    archiving. Only errors in marketops.yaml, or a WAL tier that does not load, stop it."""
    from engine.definitions.loader import load_project
    from engine.errors import DefinitionError

    project, findings = load_project(root, target)
    errors = [f for f in findings if f.severity == "error"]
    blocking = [f for f in errors if f.location.file == "marketops.yaml"]
    if blocking:
        raise DefinitionError(f"{blocking[0].location}: {blocking[0].message}")
    defs = ValidationResult(project, [])
    try:
        wal_id, wal = wal_tier_for(defs)
    except UsageError:
        backups = [f for f in errors if f.location.file.startswith("definitions/backups/")]
        if backups:
            raise DefinitionError(f"{backups[0].location}: {backups[0].message}") from None
        raise
    return defs, wal_id, wal


def wal_push(root: Path, path: Path, target: str | None = None) -> bool:
    """archive_command: store one WAL file with the settings of `target`; False when it was
    archived already. Compiles the archive's settings for the fast path
    (engine.app.walpush) on the way."""
    from runners.backup.wal import push
    from runners.cache import archive

    defs, wal_id, wal = wal_definitions(root, target)
    store = store_for(root, defs, wal.destination)
    sealing = sealing_for(defs, wal)
    config = archive_config(root, defs, wal_id, wal)
    # The pusher reads the compiled settings: without them, this segment is stored here.
    if archive.write(root, config) and config.process_max > 0:
        from engine.app.walasync import push_async

        done = push_async(root, config, path)
        if done is not None:
            return done
    return push(store, wal_id, path, sealing)


def archive_config(root: Path, defs: ValidationResult, wal_id: str,
                   wal: WalArchiveTier) -> ArchiveConfig:
    """The WAL tier's settings as the fast path reads them: references, not secrets."""
    from engine.app.context import local_destination
    from runners.cache.archive import ArchiveConfig

    destination = defs.project.settings.destinations.get(wal.destination)
    if destination is None:
        raise UsageError(f"unknown destination '{wal.destination}'")
    url = destination.url
    options: dict[str, object] = {}
    if url.startswith("file://"):
        url = f"file://{local_destination(root, defs, wal.destination)}"
    else:
        if destination.endpoint_url:
            options["endpoint_url"] = destination.endpoint_url
        if destination.region:
            options["client_kwargs"] = {"region_name": destination.region}
        if destination.access_key_id:
            options["key"] = destination.access_key_id
        if destination.secret_access_key:
            options["secret"] = destination.secret_access_key
    compression = wal.compression
    key_name = wal.encryption.key if wal.encryption else None
    key_ref = defs.project.settings.keys.get(key_name) if key_name else None
    if key_name is not None and key_ref is None:
        raise UsageError(f"key '{key_name}' is not declared under keys: in marketops.yaml")
    from runners.backup.walspool import spool_dir

    asynchronous = wal.archive_async
    return ArchiveConfig(wal_id, wal.destination, url, options, compression.codec.value,
                         compression.level, key_name, key_ref,
                         asynchronous.process_max if asynchronous else 0,
                         asynchronous.timeout.total_seconds() if asynchronous else 60.0,
                         str(spool_dir(root, wal_id)), defs.project.target)


def compile_archive_config(root: Path, defs: ValidationResult) -> bool:
    """Write the fast path's settings now (wal-setup, serve); False when it cannot."""
    from runners.cache import archive

    try:
        wal_id, wal = wal_tier_for(defs)
    except UsageError:
        return False  # no WAL tier: nothing to archive
    return archive.write(root, archive_config(root, defs, wal_id, wal))


def wal_fetch(root: Path, name: str, into: Path, target: str | None = None) -> None:
    """restore_command: bring back one WAL file (WalNotFound when the archive lacks it)."""
    from runners.backup.wal import fetch

    defs, wal_id, wal = wal_definitions(root, target)
    key = backup_key(defs, wal.encryption.key) if wal.encryption else None
    fetch(store_for(root, defs, wal.destination), wal_id, name, into, key)


def wal_settings(root: Path, defs: ValidationResult) -> dict[str, str]:
    """The server settings WAL archiving and incremental base backups need."""
    _, wal = wal_tier_for(defs)
    return {"wal_level": "replica", "archive_mode": "on",
            "archive_command": archive_command(root, defs.project.target),
            "archive_timeout": f"{int(wal.archive_timeout.total_seconds())}s",
            "summarize_wal": "on"}


def configure_archiving(dsn: str, settings: dict[str, str]) -> bool:
    """ALTER SYSTEM the settings and reload; True when a restart is still needed."""
    from engine.backups.serverchecks import archiving_needs_restart
    from runners.postgres.connection import alter_system

    pending, live = alter_system(dsn, settings, report=["archive_mode", "wal_level"])
    return archiving_needs_restart(pending, live)


def prepare_archive_access(root: Path, defs: ValidationResult) -> None:
    """Let the embedded server's own user (when we run as root) run archive_command: read
    this repository and write the WAL destination."""
    from runners.backup.walspool import spool_dir
    from runners.postgres.embedded import grant_server_access

    wal_id, wal = wal_tier_for(defs)
    store = store_for(root, defs, wal.destination)
    wal_dir = store.local_path(wal_id)
    spool = [spool_dir(root, wal_id)] if wal.archive_async else []
    grant_server_access(readable=[root.resolve(), Path(sys.executable).resolve().parent],
                        writable=([wal_dir] if wal_dir is not None else []) + spool)


def wal_state(root: Path, defs: ValidationResult, wal_id: str, dsn: str | None) -> WalState:
    """The archive's contents and (when reachable) the server's archiver."""
    from datetime import timedelta

    from engine.backups.freshness import WalState
    from runners.backup.wal import archiver_state, ready_wal

    tier = tier_of(defs, wal_id)
    assert isinstance(tier, WalArchiveTier)
    store = store_for(root, defs, tier.destination)
    entries = stored_entries(store, wal_id)
    stored = sorted(entries)
    catalog = catalog_of(root, defs, tier.base_tier)
    infos = backup_infos(catalog)
    now = clock.now()
    first = wal_cutoff(infos, {b.backup_id for b in infos}, tier.pitr_window,
                       now) or (infos[0].start_wal if infos else None)
    archiver, ready = None, None
    if dsn is not None:
        from runners.postgres.connection import connect

        try:
            with connect(dsn) as conn:
                archiver = archiver_state(conn)
        except MarketopsError:
            archiver = None
        if archiver is not None:
            ready = ready_wal(dsn)
    newest = max((n for n in stored if SEGMENT.match(n)), key=lambda n: n[8:], default=None)
    written = store.modified(entries[newest]) if newest else None
    return WalState(
        stored, first, archiver.last_archived_wal if archiver else None,
        timedelta(seconds=archiver.last_archived_age_s)
        if archiver and archiver.last_archived_age_s is not None else None,
        archiver.current_wal if archiver else None, archiver.failing if archiver else False,
        archiver.failed_count if archiver else 0, archiver.last_failed_wal if archiver else None,
        archiver.segment_size if archiver else DEFAULT_SEGMENT_SIZE,
        max(now - written, timedelta(0)) if written else None, ready)


def check_wal(root: Path, defs: ValidationResult, wal_id: str, dsn: str) -> dict[str, Any]:
    """The WAL tier's scheduled check: the server must be able to honour it, the archive must
    have no gap, the archiver must keep up; any problem fails the run (and alerts)."""
    from engine.backups.serverchecks import server_problems
    from runners.backup.physical import server_settings
    from runners.postgres.connection import connect

    tier = tier_of(defs, wal_id)
    assert isinstance(tier, WalArchiveTier)
    with connect(dsn) as conn:
        setup = server_problems(server_settings(conn), incremental=False, archiving=True)
    if setup:
        raise BackupError(f"the server cannot archive WAL for {wal_id}: " + "; ".join(setup))
    problems, checked = verify_wal(root, defs, wal_id, dsn)
    if problems:
        raise BackupError("; ".join(problems))
    state = wal_state(root, defs, wal_id, dsn)
    return {"stored": len(state.stored),
            "last_archived": newest_archived(state)[0] or state.last_archived,
            "checked": checked}


def verify_wal(root: Path, defs: ValidationResult, wal_id: str,
               dsn: str | None = None) -> tuple[list[str], list[str]]:
    """Missing segments (by name) between the oldest needed base backup and the newest WAL,
    and the archiver's state when the server is reachable."""
    from engine.backups.freshness import wal_problems

    tier = tier_of(defs, wal_id)
    assert isinstance(tier, WalArchiveTier)
    state = wal_state(root, defs, wal_id, dsn)
    problems, _ = wal_problems(state, tier.rpo)
    segments = sorted(name for name in state.stored if SEGMENT.match(name))
    start = state.first_needed or (segments[0] if segments else "the start")
    checked = [] if problems else [
        f"{wal_id}: {len(state.stored)} WAL file(s) from {start} on, no gap"]
    return [f"{wal_id}: {p}" for p in problems], checked


def verify_wal_archive(root: Path, defs: ValidationResult, wal_id: str
                       ) -> tuple[list[str], list[str]]:
    """Gaps by name (as the scheduled check finds them), then every stored file re-read:
    decrypted, decompressed, its sha256 against the one recorded in its stored name."""
    tier = tier_of(defs, wal_id)
    assert isinstance(tier, WalArchiveTier)
    problems, checked = verify_wal(root, defs, wal_id)
    key = None
    if tier.encryption is not None:
        try:
            key = backup_key(defs, tier.encryption.key)
        except UsageError as exc:
            return [*problems, f"{wal_id}: contents not checked: {exc}"], checked
    found = verify_wal_files(store_for(root, defs, tier.destination), wal_id, key)
    problems += [p.within(wal_id) if isinstance(p, Damaged) else f"{wal_id}: {p}"
                 for p in found.problems]
    if not found.problems:
        checked.append(f"{wal_id}: {found.checked} WAL file(s) re-read, each matches the "
                       "checksum recorded when it was stored")
    return problems, checked


class WalHandler(TierHandler[WalArchiveTier]):
    """Continuous archiving: its run is the archive's health check; it is verified file by
    file, fresh while the archiver keeps up, and pruned with its base tier's backups."""

    demo_order = 2

    def run(self, root: Path, defs: ValidationResult, job: Job, tier: WalArchiveTier,
            primary_dsn: str, *, run_id: int | None, ledger: Ledger | None,
            keep_on_failure: bool = False) -> dict[str, Any]:
        return check_wal(root, defs, job.name, backups_dsn(root, defs, primary_dsn))

    def verify(self, root: Path, defs: ValidationResult, tier_id: str, tier: WalArchiveTier,
               *, every: bool = False, dsn: str | None = None, adopt: bool = False
               ) -> tuple[list[str], list[str]]:
        return verify_wal_archive(root, defs, tier_id)

    def freshness(self, root: Path, defs: ValidationResult, tier_id: str,
                  tier: WalArchiveTier, dsn: str | None, now: datetime) -> Freshness | None:
        state = wal_state(root, defs, tier_id, dsn)
        problems, _ = wal_problems(state, tier.rpo)
        queue = None
        if tier.archive_async is not None:
            from runners.backup.walspool import Spool, spool_dir

            queue = Spool(spool_dir(root, tier_id)).queue_state()
        newest, age = newest_archived(state)
        return Freshness(tier_id, tier.rpo, newest or state.last_archived, age,
                         "; ".join(problems) or None, f"{len(state.stored)} WAL files", queue)

    def listing(self, root: Path, defs: ValidationResult, tier_id: str,
                tier: WalArchiveTier, base: TierListing, drilled: dict[str, Verified]
                ) -> TierListing:
        store = store_for(root, defs, tier.destination)
        entries = stored_entries(store, tier_id)
        bases = catalog_of(root, defs, tier.base_tier).complete
        size = int(bases[-1].details.get("segment_size", DEFAULT_SEGMENT_SIZE)) if bases \
            else DEFAULT_SEGMENT_SIZE
        wal = wal_range(bases, list(entries), size)
        if wal.latest_segment in entries:
            wal = archived_at(wal, store.modified(entries[wal.latest_segment]))
        return replace(base, wal=wal)
