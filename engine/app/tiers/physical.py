"""The handler of physical tiers (pg_basebackup, optionally incremental, extended by WAL)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.app.tiers.backup import take_physical, wal_tier_for
from engine.app.tiers.handler import CatalogHandler
from engine.app.tiers.restore import restore_point_in_time, smoke_check
from engine.app.tiers.wal import verify_wal
from engine.backups.policy import DrillResult
from engine.definitions.models.backup import PhysicalBaseTier, SmokeQuery
from engine.errors import MarketopsError, UsageError
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.postgres.connection import with_database
from runners.postgres.embedded import EmbeddedServer

if TYPE_CHECKING:
    from engine.backups.manifest import Manifest


class PhysicalHandler(CatalogHandler[PhysicalBaseTier]):
    """Base backups whose incrementals build on their parents (verified and restored as a
    chain); their retention also prunes the WAL no kept base backup needs."""

    chained = True
    demo_order = 0

    def take(self, root: Path, defs: ValidationResult, job: Job, tier: PhysicalBaseTier,
             dsn: str, *, run_id: int | None, now: datetime) -> Manifest:
        return take_physical(root, defs, job, tier, dsn, now)

    def restore(self, root: Path, defs: ValidationResult, tier_id: str,
                tier: PhysicalBaseTier, queries: list[SmokeQuery], scratch: Path,
                database: str, *, keep: bool = False) -> DrillResult:
        outcome = DrillResult(tier_id, rto_seconds=tier.rto.total_seconds())
        directory = scratch / f"{tier_id}-pitr"
        try:
            started = time.monotonic()
            has_wal = True
            try:
                wal_id, _ = wal_tier_for(defs, tier_id)
            except UsageError:
                has_wal = False
            if has_wal:
                outcome.problems += verify_wal(root, defs, wal_id)[0]
            # With WAL: recover to the end of the archive, as a real disaster would.
            done = restore_point_in_time(root, defs, tier_id, directory,
                                         keep_on_failure=True if keep else None)
            outcome.seconds = time.monotonic() - started
            outcome.backup_id = done.backup_id
            outcome.smoke, problems = smoke_check(with_database(done.dsn, database), queries,
                                                  None, defs)
            outcome.problems += problems
            outcome.checked = ("WAL replayed to " + (done.recovered_to or "backup end")
                               if has_wal else "started")
        except MarketopsError as exc:
            outcome.problems.append(str(exc))
        finally:
            if (directory / "PG_VERSION").exists():
                EmbeddedServer(directory, 1).stop()
        return outcome
