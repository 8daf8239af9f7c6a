"""What marketops does with a tier, one handler per kind (barman's per-method executors).

Each kind answers the operations it has — run, restore (as a drill does), verify, freshness,
retention, listing — and inherits a clear refusal (or "nothing to do") for those it lacks.
The table of handlers by kind is in engine/app/executor.py.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from engine.app import clock
from engine.app.roles import backups_dsn
from engine.app.tiers.backup import (
    CLUSTER_LOCK,
    BackupRun,
    apply_retention,
    catalog_of,
    prune_wal,
    retention_plan,
    tier_store,
)
from engine.backups.freshness import Freshness, backup_freshness
from engine.backups.listing import TierListing, Verified
from engine.backups.policy import DrillResult, restore_chain_problems
from engine.definitions.models.backup import BackupTier, SmokeQuery, StoringTier
from engine.errors import UsageError
from engine.validation.validate import ValidationResult
from runners.postgres.connection import advisory_lock
from runners.service import progress
from runners.storage.verify import Damaged, verify_backup

if TYPE_CHECKING:
    from engine.backups.manifest import Manifest
    from engine.runs.ledger import Ledger
    from engine.scheduling.jobs import Job

T = TypeVar("T", bound=BackupTier)
S = TypeVar("S", bound=StoringTier)


class TierHandler(Generic[T]):
    """The operations of one tier kind; the defaults are what a kind without one does."""

    # How `marketops demo` words a verification that passed and one that did not.
    verified_words = ("yes", "NO")
    # The order `marketops demo` runs the kinds in: bases first, WAL, then drills.
    demo_order = 1

    def run(self, root: Path, defs: ValidationResult, job: Job, tier: T, primary_dsn: str,
            *, run_id: int | None, ledger: Ledger | None,
            keep_on_failure: bool = False) -> dict[str, Any]:
        """One scheduled run of the tier; its outputs for the ledger."""
        raise UsageError(f"{job.id}: {tier.kind} tiers are not run as scheduled backups")

    def restore(self, root: Path, defs: ValidationResult, tier_id: str, tier: T,
                queries: list[SmokeQuery], scratch: Path, database: str, *,
                keep: bool = False) -> DrillResult:
        """Restore the newest backup into scratch space and check it (a drill's step); with
        `keep`, what a failed restore made is left in scratch for the drill to keep."""
        outcome = DrillResult(tier_id)
        outcome.problems.append(f"{tier.kind} tiers cannot be drilled")
        return outcome

    def verify(self, root: Path, defs: ValidationResult, tier_id: str, tier: T, *,
               every: bool = False, dsn: str | None = None, adopt: bool = False
               ) -> tuple[list[str], list[str]]:
        """(problems, checked): what is stored, re-read against what was recorded."""
        raise UsageError("restore drills have no destination of their own")

    def freshness(self, root: Path, defs: ValidationResult, tier_id: str, tier: T,
                  dsn: str | None, now: datetime) -> Freshness | None:
        """The newest backup against the RPO; None for a kind that has no RPO."""
        return None

    def retention_preview(self, root: Path, defs: ValidationResult, tier_id: str, tier: T,
                          now: datetime) -> dict[str, Any] | None:
        """What retention keeps and would delete now; None for a kind it does not apply to."""
        return None

    def listing(self, root: Path, defs: ValidationResult, tier_id: str, tier: T,
                base: TierListing, drilled: dict[str, Verified]) -> TierListing:
        """What `marketops backups` shows for the tier."""
        raise UsageError(f"{tier_id} is a restore drill: it stores no backups of its own")


class CatalogHandler(TierHandler[S]):
    """Tiers whose backups are folders with a manifest each (logical and physical)."""

    # Physical backups build on their parents: a restore needs the whole chain.
    chained = False

    def take(self, root: Path, defs: ValidationResult, job: Job, tier: S, dsn: str, *,
             run_id: int | None, now: datetime) -> Manifest:
        """One backup of the tier (no retention, no lock)."""
        raise NotImplementedError

    def run(self, root: Path, defs: ValidationResult, job: Job, tier: S, primary_dsn: str,
            *, run_id: int | None, ledger: Ledger | None,
            keep_on_failure: bool = False) -> dict[str, Any]:
        """A backup under the cluster lock, then the tier's retention."""
        started = time.monotonic()
        with advisory_lock(primary_dsn, CLUSTER_LOCK, job.id):
            with progress.step(f"backup {job.name}", unit="written"):
                manifest = self.take(root, defs, job, tier,
                                     backups_dsn(root, defs, primary_dsn), run_id=run_id,
                                     now=clock.now())
            plan = apply_retention(root, defs, job.name)
        return BackupRun(manifest, plan, time.monotonic() - started).outputs()

    def verify(self, root: Path, defs: ValidationResult, tier_id: str, tier: S, *,
               every: bool = False, dsn: str | None = None, adopt: bool = False
               ) -> tuple[list[str], list[str]]:
        catalog = catalog_of(root, defs, tier_id)
        problems = [f"{tier_id}/{b}: incomplete (no manifest)" for b in catalog.incomplete]
        problems += [Damaged(f"{tier_id}/{b}: manifest damaged") for b in catalog.damaged]
        checked: list[str] = []
        chosen = catalog.complete if every else catalog.complete[-1:]
        if not chosen:
            problems.append(f"{tier_id}: no complete backup")
        store = tier_store(root, defs, tier)
        found: dict[str, list[str]] = {}  # backup id -> its problems, each backup read once

        def read(manifest: Manifest) -> list[str]:
            if manifest.backup_id not in found:
                found[manifest.backup_id] = verify_backup(store, manifest)
                problems.extend(found[manifest.backup_id])
            return found[manifest.backup_id]

        for manifest in chosen:
            chain = catalog.chain(manifest.backup_id) if self.chained else [manifest]
            broken = [m.backup_id for m in chain if read(m)]
            verdict = restore_chain_problems(tier_id, manifest.backup_id,
                                             [m.backup_id for m in chain],
                                             chain[0].parent_id, broken)
            if verdict is not None:
                # A backup the chain needs is gone: as for a damaged file, restore another.
                problems.append(Damaged(verdict) if chain[0].parent_id is not None
                                else verdict)
            elif not broken:
                builds = f", with the {len(chain) - 1} backup(s) it builds on" \
                    if len(chain) > 1 else ""
                checked.append(f"{tier_id}/{manifest.backup_id} ({manifest.backup_type}): "
                               f"{sum(len(m.files) for m in chain)} files, "
                               f"{sum(m.stored_bytes for m in chain):,} bytes{builds}")
        return problems, checked

    def freshness(self, root: Path, defs: ValidationResult, tier_id: str, tier: S,
                  dsn: str | None, now: datetime) -> Freshness | None:
        latest = catalog_of(root, defs, tier_id).latest()
        return backup_freshness(tier_id, tier.rpo, latest.backup_id if latest else None,
                                latest.finished_at if latest else None, now)

    def retention_preview(self, root: Path, defs: ValidationResult, tier_id: str, tier: S,
                          now: datetime) -> dict[str, Any] | None:
        plan = retention_plan(root, defs, tier_id, now)
        leftovers = catalog_of(root, defs, tier_id).incomplete
        entry: dict[str, Any] = {"keep": plan.keep, "delete": {
            **plan.delete, **{b: "incomplete (interrupted run)" for b in leftovers}}}
        if self.chained:
            entry["wal_segments"] = prune_wal(root, defs, tier_id, plan, now, dry_run=True)
        return entry

    def listing(self, root: Path, defs: ValidationResult, tier_id: str, tier: S,
                base: TierListing, drilled: dict[str, Verified]) -> TierListing:
        catalog = catalog_of(root, defs, tier_id)
        verified = dict(drilled)
        for m in catalog.complete:
            if m.details.get("verified") and m.backup_id not in verified:
                verified[m.backup_id] = Verified(m.finished_at,
                                                 "at backup: pg_verifybackup, pg_waldump")
        return replace(base, backups=catalog.complete, incomplete=catalog.incomplete,
                       damaged=catalog.damaged, verified=verified)
