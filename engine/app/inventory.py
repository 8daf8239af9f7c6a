"""What every tier holds, each read by its kind's handler: the listing of `marketops backups`,
`marketops verify` (stored files re-read against what was recorded when they were stored) and
the retention preview of `marketops plan --retention`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.app import clock
from engine.app.executor import handler_for
from engine.app.tiers.audit import verify_audit
from engine.app.tiers.backup import tier_of
from engine.backups.listing import TierListing, Verified
from engine.definitions.models.backup import stored
from engine.errors import UsageError
from engine.runs.ledger import Ledger
from engine.validation.validate import ValidationResult


def retention_preview(root: Path, defs: ValidationResult, now: datetime | None = None,
                      only: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """For `marketops plan --retention`: per tier (or those of the jobs `only` names), what
    retention keeps and would delete now, including interrupted leftovers and, for base
    tiers, the WAL segments it would prune."""
    moment = now or clock.now()
    preview: dict[str, dict[str, Any]] = {}
    for tier_id, loaded in sorted(defs.project.backups.items()):
        if only and f"backup/{tier_id}" not in only:
            continue
        entry = handler_for(loaded.model).retention_preview(root, defs, tier_id,
                                                            loaded.model, moment)
        if entry is not None:
            preview[tier_id] = entry
    return preview


def backup_listing(root: Path, defs: ValidationResult, tier_id: str | None = None,
                   ledger: Ledger | None = None) -> list[TierListing]:
    """What `marketops backups` shows for every tier (or one), read from the destinations
    (and, given a ledger, which backups restore drills proved restorable)."""
    tiers = [tier_id] if tier_id else sorted(
        t for t, loaded in defs.project.backups.items() if stored(loaded.model) is not None)
    drilled = _drilled(defs, ledger) if ledger is not None else {}
    listings = []
    for tid in tiers:
        tier = tier_of(defs, tid)
        storing = stored(tier)
        if storing is None:
            raise UsageError(f"{tid} is a restore drill: it stores no backups of its own")
        encryption = storing.encryption
        base = TierListing(tid, tier.kind, storing.destination,
                           encryption.key if encryption else None)
        listings.append(handler_for(tier).listing(root, defs, tid, tier, base,
                                                  drilled.get(tid, {})))
    return listings


def _drilled(defs: ValidationResult, ledger: Ledger) -> dict[str, dict[str, Verified]]:
    """tier -> backup id -> when the newest successful restore drill restored it."""
    found: dict[str, dict[str, Verified]] = {}
    for tid, loaded in sorted(defs.project.backups.items()):
        if loaded.model.kind != "restore_drill":
            continue
        for record in ledger.runs(f"backup/{tid}", limit=50):
            if record.status != "succeeded" or record.finished_at is None:
                continue
            for tier, drill in (record.outputs.get("tiers") or {}).items():
                backup_id = drill.get("backup_id") if isinstance(drill, dict) else None
                if backup_id and backup_id not in found.setdefault(tier, {}):
                    found[tier][backup_id] = Verified(record.finished_at,
                                                      f"restore drill {tid}")
    return found


def verify_tier(root: Path, defs: ValidationResult, what: str, *, every: bool = False,
                dsn: str | None = None, adopt: bool = False) -> tuple[list[str], list[str]]:
    """(problems, checked): the newest backup (or every one) and each backup it builds on,
    re-read against their manifests; `audit` or an audit tier: the vault against the head
    the ledger recorded; a WAL tier: every stored file's contents, and gaps."""
    if what == "audit":
        return verify_audit(root, defs, dsn=dsn, adopt=adopt)
    tier = tier_of(defs, what)
    return handler_for(tier).verify(root, defs, what, tier, every=every, dsn=dsn,
                                    adopt=adopt)
