"""How fresh every backup tier is, for `marketops status`, /status and /metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.app.tiers.backup import catalog_of, tier_store
from engine.app.tiers.wal import wal_state
from engine.errors import MarketopsError
from engine.freshness import Freshness, backup_freshness, wal_problems
from engine.models.backup import (
    AuditVaultTier,
    RestoreDrillTier,
    WalArchiveTier,
)
from engine.validate import ValidationResult
from runners.catalog import read_catalog


def freshness(root: Path, result: ValidationResult, dsn: str | None,
              now: datetime | None = None) -> dict[str, Freshness]:
    """Every backup tier's newest valid backup (or WAL) against its RPO; errors reading a
    destination are reported as the tier's problem."""
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
        if time.monotonic() - self._at >= self.ttl:
            current = getattr(self.result, "result", self.result)
            self._value = freshness(self.root, current, self.dsn)
            self._at = time.monotonic()
        return self._value
