"""The audit vault wired to the definitions and the ledger: export runs record the chain head
in the ledger after each batch, and `verify audit` checks the vault against that head.

The head lives outside the vault so that whoever can write the vault cannot also make a
truncated or rewritten chain look whole. When settings declare a key named `audit-anchor`
(`keys: {audit-anchor: ${AUDIT_ANCHOR_KEY}}`), each head also carries an HMAC under it, so
a ledger row edited to match a rewritten vault is caught too; keep that key away from the
vault's and the state database's administrators.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.app.context import database_dsn
from engine.app.roles import backups_dsn
from engine.app.tiers.backup import backup_key, sealing_for, tier_of, tier_store
from engine.app.tiers.handler import TierHandler
from engine.backups.auditchain import Head, sign_head, signature_problem
from engine.backups.freshness import Freshness, backup_freshness
from engine.backups.listing import TierListing, Verified, audit_chain
from engine.definitions.models.backup import AuditVaultTier
from engine.errors import BackupError, UsageError
from engine.runs.ledger import Ledger
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.backup.audit import export_batches, stored_head, verify_chain
from runners.postgres.connection import connect
from runners.storage.catalog import read_catalog

ANCHOR_KEY = "audit-anchor"


def _ledger(dsn: str) -> Ledger:
    ledger = Ledger(lambda: connect(dsn, autocommit=True, application="marketops audit anchor"))
    ledger.migrate()
    return ledger


def anchor_key(defs: ValidationResult) -> str | None:
    """The key that signs chain heads, when settings declare one (its variable must be set)."""
    if ANCHOR_KEY not in defs.project.settings.keys:
        return None
    return backup_key(defs, ANCHOR_KEY)


@dataclass(frozen=True)
class LedgerAnchor:
    """The heads of one vault tier's chains, kept in the ledger (signed when a key is set)."""

    ledger: Ledger
    tier: str
    key: str | None

    def head(self, table: str) -> Head | None:
        head = self.ledger.audit_head(self.tier, table)
        if head is not None and self.key is not None:
            problem = signature_problem(self.key, self.tier, table, head)
            if problem is not None:
                raise BackupError(f"{self.tier}: {table}: {problem}")
        return head

    def record(self, table: str, head: Head) -> None:
        signature = sign_head(self.key, self.tier, table, head) if self.key else None
        self.ledger.record_audit_head(self.tier, table, Head(head.batches, head.last_hash,
                                                             head.last_id, signature))


def state_dsn(root: Path, defs: ValidationResult, primary_dsn: str) -> str:
    """The ledger's database: `databases.state`, else the primary this run reads."""
    if defs.project.settings.databases.state is None:
        return primary_dsn
    return database_dsn(root, defs, "state")


def export_audit(root: Path, defs: ValidationResult, tier_id: str, dsn: str
                 ) -> dict[str, Any]:
    """Append the settled audit rows above the last exported id to the vault, batch by
    batch, recording the chain head in the ledger after each."""
    tier = tier_of(defs, tier_id)
    assert isinstance(tier, AuditVaultTier)
    started = time.monotonic()
    anchor = LedgerAnchor(_ledger(state_dsn(root, defs, dsn)), tier_id, anchor_key(defs))
    # The rows are read as roles.backups; the ledger (which is written) stays the DSN's.
    done = export_batches(backups_dsn(root, defs, dsn), tier_store(root, defs, tier),
                          tier_id, list(tier.tables), sealing_for(defs, tier), anchor,
                          id_column=tier.id_column, batch_rows=tier.batch_rows)
    return {"batches": done.batches, "rows": sum(done.rows.values()),
            "stored_bytes": done.stored_bytes,
            "chain_head": done.head, "seconds": round(time.monotonic() - started, 3)}


def verify_audit(root: Path, defs: ValidationResult, tier_id: str | None = None, *,
                 dsn: str | None = None, adopt: bool = False) -> tuple[list[str], list[str]]:
    """(problems, checked): every audit vault chain walked (order, previous-hash links,
    manifests, stored rows) and held against the head the ledger recorded. With `adopt`, a
    chain the ledger has no head for (a vault older than the heads) is anchored as it stands,
    and an unsigned head signed once an anchor key is set, after the chain checks out: a
    deliberate act, since it vouches for the vault's newest batch."""
    tiers = [(tid, t.model) for tid, t in sorted(defs.project.backups.items())
             if isinstance(t.model, AuditVaultTier) and tier_id in (None, tid)]
    if not tiers:
        raise UsageError("no audit_vault tier is declared")
    problems: list[str] = []
    checked: list[str] = []
    ledger = _ledger(database_dsn(root, defs, "state", dsn))
    sign: str | None = None
    try:
        sign = anchor_key(defs)
    except UsageError:
        checked.append(f"key '{ANCHOR_KEY}' not available: the chain heads' signatures were "
                       "not checked")
    for tid, tier in tiers:
        key = None
        if tier.encryption:
            try:
                key = backup_key(defs, tier.encryption.key)
            except UsageError:
                checked.append(f"{tid}: key '{tier.encryption.key}' not available: checked "
                               "the chain and stored checksums, not the decrypted rows")
        store = tier_store(root, defs, tier)
        for table in tier.tables:
            head = ledger.audit_head(tid, table)
            # Adopted: a chain without a head, or (once an anchor key is set) an unsigned one.
            adopted = adopt and (head is None or (sign is not None and head.signature is None))
            if adopted and head is None:
                head = stored_head(store, tid, table)
            found, count = verify_chain(store, tid, table, key, head)
            if sign is not None and head is not None and not adopted:
                wrong = signature_problem(sign, tid, table, head)
                found += [f"{table}: {wrong}"] if wrong else []
            problems += [f"{tid}: {p}" for p in found]
            if found:
                continue
            if adopted and head is not None:
                LedgerAnchor(ledger, tid, anchor_key(defs)).record(table, head)
            anchored = "empty" if head is None else \
                f"{'now ' if adopted else ''}anchored at #{head.batches}"
            checked.append(f"{tid}: {table}: {count} batch(es), chain intact, {anchored}")
    return problems, checked


class AuditHandler(TierHandler[AuditVaultTier]):
    """The append-only vault: runs export batches, verification walks the chains against the
    ledger's heads, and retention never deletes (each batch names the previous one's hash)."""

    verified_words = ("chain ok", "BROKEN")

    def run(self, root: Path, defs: ValidationResult, job: Job, tier: AuditVaultTier,
            primary_dsn: str, *, run_id: int | None, ledger: Ledger | None,
            keep_on_failure: bool = False) -> dict[str, Any]:
        return export_audit(root, defs, job.name, primary_dsn)

    def verify(self, root: Path, defs: ValidationResult, tier_id: str, tier: AuditVaultTier,
               *, every: bool = False, dsn: str | None = None, adopt: bool = False
               ) -> tuple[list[str], list[str]]:
        return verify_audit(root, defs, tier_id, dsn=dsn, adopt=adopt)

    def freshness(self, root: Path, defs: ValidationResult, tier_id: str,
                  tier: AuditVaultTier, dsn: str | None, now: datetime) -> Freshness | None:
        store = tier_store(root, defs, tier)
        newest: tuple[str | None, datetime | None] = (None, None)
        for table in tier.tables:
            latest = read_catalog(store, f"{tier_id}/{table}").latest()
            if latest and (newest[1] is None or latest.finished_at > newest[1]):
                newest = (latest.backup_id, latest.finished_at)
        return backup_freshness(tier_id, tier.rpo, *newest, now)

    def retention_preview(self, root: Path, defs: ValidationResult, tier_id: str,
                          tier: AuditVaultTier, now: datetime) -> dict[str, Any] | None:
        return {"keep": {}, "delete": {}, "note": "the audit vault is append-only: batches "
                "are never deleted by marketops"}

    def listing(self, root: Path, defs: ValidationResult, tier_id: str,
                tier: AuditVaultTier, base: TierListing, drilled: dict[str, Verified]
                ) -> TierListing:
        store = tier_store(root, defs, tier)
        chains = []
        for table in tier.tables:
            catalog = read_catalog(store, f"{tier_id}/{table}")
            chains.append(audit_chain(table, catalog.complete, catalog.incomplete,
                                      catalog.damaged))
        return replace(base, chains=chains)
