"""Restore drills: restore the latest backup of each tier under drill into a scratch cluster,
check it against its manifest, run the smoke queries, time it against the tier's RTO."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from engine.app.tiers.backup import staging_for, tier_of
from engine.app.tiers.handler import TierHandler
from engine.backups.pitr import in_zone
from engine.backups.policy import DrillResult, rto_problem
from engine.definitions.models.backup import BackupTier, RestoreDrillTier, SmokeQuery
from engine.errors import BackupError
from engine.runs.ledger import Ledger
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.postgres.connection import database_name
from runners.service import progress
from runners.storage.guard import release
from runners.storage.stores import make_staging

__all__ = ["DrillHandler", "DrillResult"]


class DrillHandler(TierHandler[RestoreDrillTier]):
    """Runs restore each drilled tier with that tier's own handler (looked up in the table
    this handler is given: the table holds this handler too)."""

    demo_order = 3

    def __init__(self, handler_for: Callable[[BackupTier], TierHandler[Any]]) -> None:
        self.handler_for = handler_for

    def drill_tier(self, root: Path, defs: ValidationResult, tier_id: str,
                   queries: list[SmokeQuery], scratch: Path, database: str,
                   keep: bool = False) -> DrillResult:
        """Restore one tier's latest backup into scratch space and check it."""
        tier = tier_of(defs, tier_id)
        outcome = self.handler_for(tier).restore(root, defs, tier_id, tier, queries,
                                                 scratch, database, keep=keep)
        late = rto_problem(outcome.seconds, outcome.rto_seconds)
        if late is not None:
            outcome.problems.append(late)
        return outcome

    @staticmethod
    def _in_zone(drilled: DrillResult, zone: str) -> DrillResult:
        # The restored server's log times are in its log_timezone (UTC); people read the
        # drill's result (ledger, status, the demo's table) in the drill job's own zone.
        drilled.checked = in_zone(drilled.checked, zone)
        drilled.problems = [in_zone(p, zone) for p in drilled.problems]
        return drilled

    def run(self, root: Path, defs: ValidationResult, job: Job, tier: RestoreDrillTier,
            primary_dsn: str, *, run_id: int | None, ledger: Ledger | None,
            keep_on_failure: bool = False) -> dict[str, Any]:
        """Drill every tier the job names; fail (and alert the owner) if any check fails.
        With keep_on_failure, a failed drill's restored copies are kept under var/kept."""
        # Named after its maker: a killed drill's restored copies are cleared by the next run.
        directory = make_staging(staging_for(root), f"drill-{job.name}", run_id)
        zone = job.schedule.timezone if job.schedule is not None else "UTC"
        kept: Path | None = None
        try:
            results: list[DrillResult] = []
            with progress.step(f"drill {job.name}", total=len(tier.tiers),
                               unit="tiers") as shown:
                for tier_id in tier.tiers:
                    results.append(self._in_zone(self.drill_tier(
                        root, defs, tier_id, list(tier.smoke_queries), directory,
                        database_name(primary_dsn), keep_on_failure), zone))
                    shown.advance()
                shown.summary = (f"{sum(1 for r in results if not r.problems)}/"
                                 f"{len(results)} ok")
            if keep_on_failure and any(r.problems for r in results):
                # Out of staging, which the next run clears of a dead maker's directories.
                kept = root / "var" / "kept" / directory.name
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(directory, kept)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            release(directory)
        outputs: dict[str, Any] = {"tiers": {r.tier: {**asdict(r), "within_rto": r.within_rto}
                                             for r in results}}
        failed = [f"{r.tier}: {p}" for r in results for p in r.problems]
        if failed:
            said = "; ".join(failed[:4])
            if kept is not None:
                said = said.replace(str(directory), str(kept)) + \
                    f"; kept the drill's restored copies in {kept} (--keep-on-failure)"
            raise BackupError("restore drill failed: " + said)
        return outputs
