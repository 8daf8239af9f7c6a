"""The handler of logical tiers (pg_dump of the whole database, or of some schemas)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.app.tiers.backup import take_logical
from engine.app.tiers.handler import CatalogHandler
from engine.app.tiers.restore import restore_database, smoke_check
from engine.backups.policy import DrillResult
from engine.definitions.models.backup import LogicalFullTier, LogicalSchemasTier, SmokeQuery
from engine.errors import MarketopsError
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.demo.mailbox import free_port
from runners.postgres.embedded import EmbeddedServer

if TYPE_CHECKING:
    from engine.backups.manifest import Manifest

LogicalTier = LogicalFullTier | LogicalSchemasTier


class LogicalHandler(CatalogHandler[LogicalTier]):
    """Dumps from one snapshot; restored (by a drill) into a scratch cluster of its own."""

    def take(self, root: Path, defs: ValidationResult, job: Job, tier: LogicalTier,
             dsn: str, *, run_id: int | None, now: datetime) -> Manifest:
        return take_logical(root, defs, job, tier, dsn, run_id=run_id)

    def restore(self, root: Path, defs: ValidationResult, tier_id: str, tier: LogicalTier,
                queries: list[SmokeQuery], scratch: Path, database: str, *,
                keep: bool = False) -> DrillResult:
        outcome = DrillResult(tier_id, rto_seconds=tier.rto.total_seconds())
        server = EmbeddedServer(scratch / f"{tier_id}-cluster", free_port(), "postgres")
        server.start()  # a scratch cluster: the drill never loads the production server
        try:
            started = time.monotonic()
            done = restore_database(root, defs, tier_id, "drill",
                                    server_dsn=server.dsn("postgres"))
            outcome.seconds = time.monotonic() - started
            outcome.backup_id = done.backup_id
            outcome.tables_checked = done.tables
            schemas = set(tier.schemas) if isinstance(tier, LogicalSchemasTier) else None
            outcome.smoke, outcome.problems = smoke_check(done.dsn, queries, schemas, defs)
            outcome.checked = f"{done.tables} tables match"
        except MarketopsError as exc:
            outcome.problems.append(str(exc))
        finally:
            server.stop()
        return outcome
