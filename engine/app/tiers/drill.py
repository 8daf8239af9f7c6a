"""Restore drills: restore the latest backup of each tier under drill into a scratch cluster,
check it against its manifest, run the smoke queries, time it against the tier's RTO."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.app.tiers.backup import staging_for, tier_of, wal_tier_for
from engine.app.tiers.restore import restore_database, restore_point_in_time
from engine.app.tiers.wal import verify_wal
from engine.errors import BackupError, MarketopsError, UsageError
from engine.jobs import Job
from engine.models.backup import (
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
    RestoreDrillTier,
    SmokeQuery,
)
from engine.validate import ValidationResult


@dataclass
class DrillResult:
    """One tier's drill: what was restored, how long it took, what failed."""

    tier: str
    backup_id: str | None = None
    seconds: float | None = None
    rto_seconds: float = 0
    tables_checked: int = 0
    checked: str = ""
    smoke: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def within_rto(self) -> bool:
        return self.seconds is not None and self.seconds <= self.rto_seconds


def _smoke(dsn: str, queries: list[SmokeQuery], schemas: set[str] | None,
           result: ValidationResult) -> tuple[dict[str, str], list[str]]:
    from runners.database import connect, query

    outcome: dict[str, str] = {}
    problems: list[str] = []
    for smoke in queries:
        needed = {t[0] for t in result.project.analyze(smoke.sql).tables}
        if schemas is not None and not needed <= schemas:
            continue  # this tier does not hold what the query reads
        try:
            with connect(dsn) as conn:
                rows = query(conn, smoke.sql)
        except MarketopsError as exc:
            outcome[smoke.name] = "failed"
            problems.append(f"smoke query {smoke.name} failed: {exc}")
            continue
        if len(rows) < smoke.min_rows:
            outcome[smoke.name] = "failed"
            problems.append(f"smoke query {smoke.name} returned {len(rows)} row(s), "
                            f"expected at least {smoke.min_rows}")
        else:
            outcome[smoke.name] = f"ok ({len(rows)} rows)"
    return outcome, problems


def drill_tier(root: Path, result: ValidationResult, tier_id: str, queries: list[SmokeQuery],
               scratch: Path, database: str) -> DrillResult:
    """Restore one tier's latest backup into scratch space and check it."""
    from runners.database import with_database
    from runners.mailbox import free_port
    from runners.postgres import EmbeddedServer

    tier = tier_of(result, tier_id)
    rto = None if isinstance(tier, RestoreDrillTier) else tier.rto
    outcome = DrillResult(tier_id, rto_seconds=rto.total_seconds() if rto else 0)
    if isinstance(tier, (LogicalFullTier, LogicalSchemasTier)):
        server = EmbeddedServer(scratch / f"{tier_id}-cluster", free_port(), "postgres")
        server.start()  # a scratch cluster: the drill never loads the production server
        try:
            started = time.monotonic()
            done = restore_database(root, result, tier_id, "drill",
                                    server_dsn=server.dsn("postgres"))
            outcome.seconds = time.monotonic() - started
            outcome.backup_id = done.backup_id
            outcome.tables_checked = done.tables
            schemas = set(tier.schemas) if isinstance(tier, LogicalSchemasTier) else None
            outcome.smoke, outcome.problems = _smoke(done.dsn, queries, schemas, result)
            outcome.checked = f"{done.tables} tables match"
        except MarketopsError as exc:
            outcome.problems.append(str(exc))
        finally:
            server.stop()
    elif isinstance(tier, PhysicalBaseTier):
        directory = scratch / f"{tier_id}-pitr"
        try:
            started = time.monotonic()
            has_wal = True
            try:
                wal_id, _ = wal_tier_for(result, tier_id)
            except UsageError:
                has_wal = False
            if has_wal:
                outcome.problems += verify_wal(root, result, wal_id)[0]
            # With WAL: recover to the end of the archive, as a real disaster would.
            done_c = restore_point_in_time(root, result, tier_id, directory)
            outcome.seconds = time.monotonic() - started
            outcome.backup_id = done_c.backup_id
            outcome.smoke, problems = _smoke(with_database(done_c.dsn, database), queries,
                                             None, result)
            outcome.problems += problems
            outcome.checked = ("WAL replayed to " + (done_c.recovered_to or "backup end")
                               if has_wal else "started")
        except MarketopsError as exc:
            outcome.problems.append(str(exc))
        finally:
            if (directory / "PG_VERSION").exists():
                EmbeddedServer(directory, 1).stop()
    else:
        outcome.problems.append(f"{tier.kind} tiers cannot be drilled")
    if outcome.seconds is not None and not outcome.within_rto:
        outcome.problems.append(f"recovery took {outcome.seconds:.1f}s, over the RTO of "
                                f"{outcome.rto_seconds:.0f}s")
    return outcome


def run_drill(root: Path, result: ValidationResult, job: Job, primary_dsn: str
              ) -> dict[str, Any]:
    """Drill every tier the job names; fail (and alert the owner) if any check fails."""
    tier = job.tier
    assert isinstance(tier, RestoreDrillTier)
    staging = staging_for(root)
    staging.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="drill-", dir=staging))
    try:
        from runners.database import database_name

        results = [drill_tier(root, result, tier_id, list(tier.smoke_queries), scratch,
                              database_name(primary_dsn)) for tier_id in tier.tiers]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    outputs: dict[str, Any] = {"tiers": {r.tier: {**asdict(r), "within_rto": r.within_rto}
                                         for r in results}}
    failed = [f"{r.tier}: {p}" for r in results for p in r.problems]
    if failed:
        raise BackupError("restore drill failed: " + "; ".join(failed[:4]))
    return outputs
