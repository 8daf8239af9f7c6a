"""Rules on backup tiers: scopes, destinations, coverage, encryption, RPO, PITR, vault, drills."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from engine.definitions.models.backup import (
    AuditVaultTier,
    BackupTier,
    LogicalFullTier,
    LogicalSchemasTier,
    PhysicalBaseTier,
    RestoreDrillTier,
    Retention,
    WalArchiveTier,
    stored,
)
from engine.definitions.project import Loaded, Project
from engine.validation.findings import Finding, Severity
from engine.validation.rules import rule
from engine.validation.rules.common import gap_range, human, unknown_name
from engine.validation.sqltypes import TableRef

# "At least daily" allows for the 25-hour day of a fall-back transition.
DAILY = timedelta(hours=25)
_WHOLE_CLUSTER = (LogicalFullTier, PhysicalBaseTier, WalArchiveTier)


def _all_tables(project: Project) -> set[TableRef]:
    return {(s, t) for s, loaded in project.schemas.items() for t in loaded.model.tables}


def tier_tables(project: Project, tier: BackupTier) -> set[TableRef]:
    """The declared tables a tier holds."""
    if isinstance(tier, _WHOLE_CLUSTER):
        excluded = set(getattr(tier, "exclude_tables", []))
        return {t for t in _all_tables(project) if f"{t[0]}.{t[1]}" not in excluded}
    if isinstance(tier, LogicalSchemasTier):
        excluded = set(tier.exclude_tables)
        return {t for t in _all_tables(project) if t[0] in tier.schemas
                and f"{t[0]}.{t[1]}" not in excluded}
    if isinstance(tier, AuditVaultTier):
        return {(t.split(".")[0], t.split(".")[1]) for t in tier.tables} & _all_tables(project)
    return set()


def _table_exists(project: Project, qualified: str) -> bool:
    schema, table = qualified.split(".")
    loaded = project.schemas.get(schema)
    return loaded is not None and table in loaded.model.tables


@rule("backup-scope")
def scopes_exist(project: Project) -> Iterator[Finding]:
    """Schemas and tables named by a tier are declared."""
    for loaded in project.backups.values():
        tier = loaded.model
        if isinstance(tier, LogicalSchemasTier):
            for i, schema in enumerate(tier.schemas):
                if schema not in project.schemas:
                    yield Finding(loaded.loc(("schemas", i)),
                                  unknown_name("schema", schema, project.schemas, "schema/"),
                                  "backup-scope")
        lists = [("exclude_tables", getattr(tier, "exclude_tables", []))]
        if isinstance(tier, AuditVaultTier):
            lists.append(("tables", tier.tables))
        for key, tables in lists:
            for i, table in enumerate(tables):
                if not _table_exists(project, table):
                    yield Finding(loaded.loc((key, i)), f"unknown table {table}: not declared "
                                  "in schema/", "backup-scope")


@rule("backup-references")
def references_exist(project: Project) -> Iterator[Finding]:
    """Destinations, keys, base tiers and drilled tiers named by a tier exist."""
    settings = project.settings
    for loaded in project.backups.values():
        tier = loaded.model
        storing = stored(tier)
        destination = storing.destination if storing is not None else None
        if destination is not None and destination not in settings.destinations:
            yield Finding(loaded.loc(("destination",)), unknown_name(
                "destination", destination, settings.destinations), "backup-references")
        encryption = storing.encryption if storing is not None else None
        if encryption is not None and encryption.key not in settings.keys:
            yield Finding(loaded.loc(("encryption", "key")), unknown_name(
                "key", encryption.key, settings.keys), "backup-references")
        if isinstance(tier, WalArchiveTier):
            base = project.backups.get(tier.base_tier)
            if base is None:
                yield Finding(loaded.loc(("base_tier",)), unknown_name(
                    "backup tier", tier.base_tier, project.backups, "definitions/backups/"),
                    "backup-references")
            elif not isinstance(base.model, PhysicalBaseTier):
                yield Finding(loaded.loc(("base_tier",)), f"base_tier '{tier.base_tier}' is "
                              f"{base.model.kind}; WAL extends a physical_base tier",
                              "backup-references")
        if isinstance(tier, RestoreDrillTier):
            yield from _drill_references(project, loaded, tier)


def _drill_references(project: Project, loaded: Loaded[BackupTier],
                      tier: RestoreDrillTier) -> Iterator[Finding]:
    for i, target in enumerate(tier.tiers):
        other = project.backups.get(target)
        if other is None:
            yield Finding(loaded.loc(("tiers", i)), unknown_name(
                "backup tier", target, project.backups, "definitions/backups/"),
                "backup-references")
        elif isinstance(other.model, RestoreDrillTier):
            yield Finding(loaded.loc(("tiers", i)), f"'{target}' is itself a restore drill",
                          "backup-references")
    for i, smoke in enumerate(tier.smoke_queries):
        analysis = project.analyze(smoke.sql)
        for problem in analysis.problems:
            yield Finding(loaded.doc.text_loc(("smoke_queries", i, "sql"), problem.line,
                                              problem.col), problem.message, problem.rule)


def _is_daily(tier: BackupTier) -> bool:
    cron = getattr(tier, "cron", None)
    if cron is None:
        return False
    gaps = gap_range(cron, getattr(tier, "timezone", "UTC"))
    return gaps is not None and gaps[1] <= DAILY


@rule("backup-coverage")
def every_table_backed_up_daily(project: Project) -> Iterator[Finding]:
    """Every table is in a tier that runs at least daily, or says why it needs none."""
    covered: set[TableRef] = set()
    for loaded in project.backups.values():
        tier = loaded.model
        if tier.enabled and not isinstance(tier, WalArchiveTier | RestoreDrillTier) \
                and _is_daily(tier):
            covered |= tier_tables(project, tier)
    for schema, schema_file in project.schemas.items():
        for name, table in schema_file.model.tables.items():
            if (schema, name) not in covered and table.backup_exclude_reason is None:
                yield Finding(schema_file.loc(("tables", name), key=True), f"table {schema}.{name} "
                              "is in no backup tier that runs at least daily; add it to one, "
                              "or set backup_exclude_reason", "backup-coverage")


@rule("backup-pii-encryption")
def personal_data_is_encrypted(project: Project) -> Iterator[Finding]:
    """A tier holding personal data is encrypted."""
    pii = project.catalog.pii
    for loaded in project.backups.values():
        tier = loaded.model
        storing = stored(tier)
        if storing is None or storing.encryption is not None:
            continue
        held = sorted(f"{s}.{t}.{c}" for s, t, c in pii if (s, t) in tier_tables(project, tier))
        if held:
            yield Finding(loaded.loc(("kind",)), f"holds personal data ({', '.join(held[:3])}"
                          f"{' ...' if len(held) > 3 else ''}) but is not encrypted; add "
                          "encryption: {key: <name from marketops.yaml keys>}",
                          "backup-pii-encryption")


@rule("backup-rpo")
def schedule_meets_rpo(project: Project) -> Iterator[Finding]:
    """The longest gap between two runs over a year is within the RPO."""
    for loaded in project.backups.values():
        tier = loaded.model
        if isinstance(tier, WalArchiveTier):
            if tier.archive_timeout > tier.rpo:
                yield Finding(loaded.loc(("archive_timeout",)), f"archive_timeout "
                              f"{human(tier.archive_timeout)} exceeds the RPO {human(tier.rpo)}",
                              "backup-rpo")
            continue
        if isinstance(tier, RestoreDrillTier):
            continue
        gaps = gap_range(tier.cron, tier.timezone)
        if gaps is not None and gaps[1] > tier.rpo:
            yield Finding(loaded.loc(("rpo",)), f"the schedule leaves up to {human(gaps[1])} "
                          f"between two backups, more than the RPO of {human(tier.rpo)}",
                          "backup-rpo")


def kept_span(retention: Retention, shortest_gap: timedelta) -> timedelta:
    """How far back the kept backups are guaranteed to reach."""
    spans = [(retention.keep_last - 1) * shortest_gap,
             timedelta(days=max(retention.keep_daily - 1, 0)),
             timedelta(days=7 * max(retention.keep_weekly - 1, 0)),
             timedelta(days=28 * max(retention.keep_monthly - 1, 0))]
    if retention.max_age is not None:
        spans.append(retention.max_age)
    return max(spans)


@rule("backup-pitr")
def wal_covers_pitr_window(project: Project) -> Iterator[Finding]:
    """WAL is kept for the PITR window plus a base-backup interval; base backups reach back too."""
    for loaded in project.backups.values():
        tier = loaded.model
        if not isinstance(tier, WalArchiveTier):
            continue
        base = project.backups.get(tier.base_tier)
        if base is None or not isinstance(base.model, PhysicalBaseTier):
            continue
        gaps = gap_range(base.model.cron, base.model.timezone)
        if gaps is None:
            continue
        needed = tier.pitr_window + gaps[1]
        if tier.retention.max_age is None or tier.retention.max_age < needed:
            kept = human(tier.retention.max_age) if tier.retention.max_age else "unset"
            yield Finding(loaded.loc(("retention",)), f"WAL max_age ({kept}) must be at least "
                          f"the PITR window plus the longest gap between base backups "
                          f"({human(tier.pitr_window)} + {human(gaps[1])} = {human(needed)})",
                          "backup-pitr")
        span = kept_span(base.model.retention, gaps[0])
        if span < tier.pitr_window:
            yield Finding(base.loc(("retention",)), f"keeps base backups for only about "
                          f"{human(span)}, less than the PITR window of "
                          f"{human(tier.pitr_window)} declared by {tier.base_tier and loaded.id}",
                          "backup-pitr")


@rule("backup-audit-vault")
def vault_is_separate(project: Project) -> Iterator[Finding]:
    """The audit vault's destination is used by no other tier, by name or by URL."""
    destinations = project.settings.destinations
    main = {getattr(t.model, "destination", None): t.id for t in project.backups.values()
            if not isinstance(t.model, AuditVaultTier)}
    main.pop(None, None)
    main_urls = {destinations[d].url.rstrip("/"): d for d in main if d in destinations}
    for loaded in project.backups.values():
        tier = loaded.model
        if not isinstance(tier, AuditVaultTier):
            continue
        if tier.destination in main:
            yield Finding(loaded.loc(("destination",)), f"the audit vault must not share "
                          f"destination '{tier.destination}' with tier "
                          f"'{main[tier.destination]}'; use a separate, protected destination",
                          "backup-audit-vault")
        elif tier.destination in destinations:
            url = destinations[tier.destination].url.rstrip("/")
            for other_url, name in main_urls.items():
                if url == other_url or url.startswith(other_url + "/") or \
                        other_url.startswith(url + "/"):
                    yield Finding(loaded.loc(("destination",)), f"destination "
                                  f"'{tier.destination}' points into '{name}' ({other_url}); "
                                  "the vault must be a separate location", "backup-audit-vault")


@rule("backup-incremental")
def incremental_chains_are_bounded(project: Project) -> Iterator[Finding]:
    """An incremental base-backup tier takes a full backup regularly."""
    for loaded in project.backups.values():
        tier = loaded.model
        if isinstance(tier, PhysicalBaseTier) and tier.incremental and tier.full_every is None:
            yield Finding(loaded.loc(("incremental",)), "incremental without full_every: the "
                          "chain to restore grows forever; set full_every (e.g. 7d)",
                          "backup-incremental", Severity.WARNING)
