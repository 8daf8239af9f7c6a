"""The errors a user can cause, one hierarchy, rendered once at the CLI edge."""

from __future__ import annotations


class MarketopsError(Exception):
    """marketops failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DefinitionError(MarketopsError):
    """The definitions are invalid; run `marketops validate` for every problem."""


class UsageError(MarketopsError):
    """The command was called with arguments that cannot work."""


class DatabaseError(MarketopsError):
    """The database could not be reached or refused a statement."""


class EmbeddedServerError(MarketopsError):
    """The embedded PostgreSQL server could not be started or stopped."""


class SchemaDriftError(MarketopsError):
    """The live database differs from the declared schema in a way apply cannot fix."""


class JobError(MarketopsError):
    """A job failed in a way retrying will not fix."""


class TransientError(MarketopsError):
    """A job failed for a reason that may pass (connection lost, server restarting)."""


class BackupError(MarketopsError):
    """A backup, restore or verification failed; nothing incomplete was published."""
