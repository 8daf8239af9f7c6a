"""A backup tier declared in `definitions/backups/<id>.yaml`."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal, Protocol

from pydantic import Discriminator, Field, field_validator

from engine.definitions.models.base import (
    ArchiveTimeout,
    CronExpr,
    Duration,
    EmailAddress,
    Identifier,
    Model,
    Name,
    PushWait,
    RunPolicy,
    TimeZoneName,
)

QualifiedTable = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$",
                                      description="schema.table")]


class Retention(Model):
    """What to keep; applied only after a successful backup, never deleting the newest valid one."""

    keep_last: int = Field(7, ge=1, le=10_000, description="Always keep this many newest backups.")
    keep_daily: int = Field(0, ge=0, le=36_500,
                            description="Keep the newest backup of each of N days.")
    keep_weekly: int = Field(0, ge=0, le=5_200,
                             description="Keep the newest backup of each of N weeks.")
    keep_monthly: int = Field(0, ge=0, le=1_200, description="Keep the newest of each of N months.")
    max_age: Duration | None = Field(None, description="Delete older backups (subject to the "
                                     "keep rules). For WAL, how long segments are kept.")


class Codec(StrEnum):
    ZSTD = "zstd"
    GZIP = "gzip"
    NONE = "none"


class Compression(Model):
    """How files are compressed (zstd in the engine when the PostgreSQL tools lack it)."""

    codec: Codec = Codec.ZSTD
    level: int = Field(3, ge=0, le=19)


class Encryption(Model):
    """Client-side encryption with a key named in settings (`keys:`)."""

    key: Name


class _Tier(Model):
    title: str = Field(min_length=3)
    description: str | None = None
    owner: EmailAddress = Field(description="Who answers for it; failures alert them.")
    enabled: bool = True
    run: RunPolicy = Field(default_factory=RunPolicy)


class _ScheduledTier(_Tier):
    cron: CronExpr
    timezone: TimeZoneName = "UTC"
    destination: Name = Field(description="A destination named in settings.")
    retention: Retention = Field(default_factory=Retention)
    encryption: Encryption | None = None
    compression: Compression = Field(default_factory=Compression)
    rpo: Duration = Field(description="Most data, in time, the business accepts to lose.")
    rto: Duration = Field(description="Longest acceptable time to restore; drills measure it.")
    verify: bool = Field(True, description="Check checksums and row counts after each backup.")


class LogicalFullTier(_ScheduledTier):
    """pg_dump of the whole database (directory format, parallel, one snapshot)."""

    kind: Literal["logical_full"]
    exclude_tables: list[QualifiedTable] = Field(default_factory=list)
    parallel_jobs: int = Field(2, ge=1, le=64)


class LogicalSchemasTier(_ScheduledTier):
    """pg_dump of some schemas, dumped together from one snapshot so they agree."""

    kind: Literal["logical_schemas"]
    schemas: list[Identifier] = Field(min_length=1)
    exclude_tables: list[QualifiedTable] = Field(default_factory=list)
    parallel_jobs: int = Field(2, ge=1, le=64)


class PhysicalBaseTier(_ScheduledTier):
    """pg_basebackup of the cluster, optionally incremental (PostgreSQL 17+)."""

    kind: Literal["physical_base"]
    incremental: bool = Field(False, description="Incremental against the previous backup "
                              "(needs summarize_wal = on).")
    full_every: Duration | None = Field(None, description="With incremental: a full backup "
                                        "at least this often.")


class AsyncArchiving(Model):
    """archive_command acknowledges a segment only once stored, while a background pusher
    stores the next ready segments ahead of PostgreSQL's serial calls (as pgBackRest's
    archive-async and process-max)."""

    process_max: int = Field(2, ge=1, le=32, description="Segments stored at once by the "
                             "background pusher.")
    timeout: PushWait = Field(timedelta(seconds=60), description="How long one "
                                    "archive_command waits for its segment to be stored "
                                    "before it fails (PostgreSQL then retries it).")


class WalArchiveTier(_Tier):
    """Continuous WAL archiving (archive_command = marketops wal-push) for PITR."""

    kind: Literal["wal_archive"]
    destination: Name
    base_tier: Identifier = Field(description="The physical_base tier these WAL files extend.")
    pitr_window: Duration = Field(description="How far back a point-in-time recovery can go.")
    archive_timeout: ArchiveTimeout = Field(timedelta(seconds=60), description="Force a segment "
                                      "switch at least this often; bounds the RPO.")
    retention: Retention = Field(default_factory=lambda: Retention(max_age=timedelta(days=8)))
    encryption: Encryption | None = None
    compression: Compression = Field(default_factory=Compression)
    archive_async: AsyncArchiving | None = Field(None, description="Asynchronous, parallel "
                                                 "archiving through a spool; off when absent.")
    rpo: Duration
    rto: Duration
    check_cron: CronExpr = Field("*/5 * * * *", description="How often the service checks "
                                 "the archive (gaps, lag, a failing or stalled archiver); a "
                                 "problem alerts the owner once, when it starts.")


class AuditVaultTier(_ScheduledTier):
    """Copies audit tables to a separate, protected destination (the audit vault)."""

    kind: Literal["audit_vault"]
    tables: list[QualifiedTable] = Field(min_length=1)
    id_column: Identifier = Field("id", description="Ever-increasing key rows are exported by.")
    batch_rows: int = Field(100_000, ge=1, description="Most rows per batch file.")

    @field_validator("retention")
    @classmethod
    def _append_only(cls, value: Retention) -> Retention:
        raise ValueError("the audit vault is append-only: its batches are never deleted (each "
                         "names the previous one's hash); remove retention, protect the "
                         "destination with object lock or permissions instead")


class SmokeQuery(Model):
    """A query run against the restored database; it must return at least `min_rows` rows."""

    name: Identifier
    sql: str
    min_rows: int = Field(1, ge=0)


class RestoreDrillTier(_Tier):
    """Scheduled test restores of other tiers, measuring recovery time against their RTO."""

    kind: Literal["restore_drill"]
    cron: CronExpr
    timezone: TimeZoneName = "UTC"
    tiers: list[Identifier] = Field(min_length=1, description="Tiers whose latest backup is "
                                    "restored and checked.")
    smoke_queries: list[SmokeQuery] = Field(default_factory=list)


BackupTier = Annotated[
    LogicalFullTier | LogicalSchemasTier | PhysicalBaseTier | WalArchiveTier | AuditVaultTier
    | RestoreDrillTier,
    Discriminator("kind"),
]

# Every kind but the restore drill stores files of its own.
StoringTier = LogicalFullTier | LogicalSchemasTier | PhysicalBaseTier | WalArchiveTier \
    | AuditVaultTier


class Stored(Protocol):
    """The fields every tier that stores files shares: where, how sealed, kept how long, and
    the recovery targets it answers for."""

    @property
    def kind(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def destination(self) -> str: ...
    @property
    def retention(self) -> Retention: ...
    @property
    def encryption(self) -> Encryption | None: ...
    @property
    def compression(self) -> Compression: ...
    @property
    def rpo(self) -> timedelta: ...
    @property
    def rto(self) -> timedelta: ...


def stored(tier: BackupTier) -> StoringTier | None:
    """The tier as one that stores files, or None for a restore drill (it only restores)."""
    return None if isinstance(tier, RestoreDrillTier) else tier
