"""The errors a user can cause, one hierarchy, rendered once at the CLI edge."""

from __future__ import annotations


class MarketopsError(Exception):
    """marketops failed."""

    # The CLI's exit status for this kind of failure (README, "Exit codes"): scripts can
    # tell a usage mistake (2), a damaged backup (3) and an unreachable server (4) apart.
    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class DefinitionError(MarketopsError):
    """The definitions are invalid; run `marketops validate` for every problem."""

    exit_code = 2


class UsageError(MarketopsError):
    """The command was called with arguments that cannot work."""

    exit_code = 2


class UnknownTarget(UsageError):
    """The target asked for is not declared under `targets:` in marketops.yaml."""


class DatabaseError(MarketopsError):
    """The database could not be reached or refused a statement."""

    exit_code = 4


class EmbeddedServerError(MarketopsError):
    """The embedded PostgreSQL server could not be started or stopped."""


class SchemaDriftError(MarketopsError):
    """The live database differs from the declared schema in a way apply cannot fix."""


class JobError(MarketopsError):
    """A job failed in a way retrying will not fix."""


class TransientError(MarketopsError):
    """A job failed for a reason that may pass (connection lost, server restarting)."""

    exit_code = 4


class LeaseLost(MarketopsError):
    """This worker no longer holds the run (another took it over); it stopped."""


class BackupError(MarketopsError):
    """A backup, restore or verification failed; nothing incomplete was published."""


class DamagedBackupError(BackupError):
    """A stored backup file is damaged: missing, or not what its manifest says."""

    exit_code = 3


class WrongKeyError(BackupError):
    """The key given is not the one the backup was encrypted with."""

    exit_code = 2
