"""How fresh every backup tier is, for `marketops status`, /status and /metrics."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.app import clock
from engine.app.executor import handler_for
from engine.backups.freshness import Freshness
from engine.definitions.models.backup import stored
from engine.errors import MarketopsError
from engine.validation.validate import ValidationResult


def freshness(root: Path, defs: ValidationResult, dsn: str | None,
              now: datetime | None = None) -> dict[str, Freshness]:
    """Every backup tier's newest valid backup (or WAL) against its RPO; errors reading a
    destination are reported as the tier's problem."""
    moment = now or clock.now()
    out: dict[str, Freshness] = {}
    for tier_id, loaded in sorted(defs.project.backups.items()):
        tier = loaded.model
        storing = stored(tier)
        if storing is None or not tier.enabled:
            continue
        try:
            found = handler_for(tier).freshness(root, defs, tier_id, tier, dsn, moment)
        except MarketopsError as exc:
            found = Freshness(tier_id, storing.rpo, None, None,
                              f"cannot read its destination: {exc}")
        if found is not None:
            out[tier_id] = found
    return out


class FreshnessCache:
    """Backup freshness for the service's pages, re-read from the destinations at most once
    per `ttl` seconds (listing object storage on every scrape would be slow and costly)."""

    def __init__(self, root: Path, defs: Any, dsn: str | None, ttl: float = 60) -> None:
        self.root = root
        self.defs = defs  # a ValidationResult, or LiveDefinitions (its .defs is current)
        self.dsn = dsn
        self.ttl = ttl
        self._value: dict[str, Freshness] = {}
        self._at = float("-inf")

    def __call__(self) -> dict[str, Freshness]:
        if time.monotonic() - self._at >= self.ttl:
            current = getattr(self.defs, "defs", self.defs)
            self._value = freshness(self.root, current, self.dsn)
            self._at = time.monotonic()
        return self._value
