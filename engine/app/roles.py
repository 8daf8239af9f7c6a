"""The least-privilege roles as the root applies them: `marketops roles apply`, and the
embedded server's roles kept current before its reports run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.app.context import embedded_server
from engine.dbschema.roles import RoleSpec, RoleState, backup_role, report_reads, report_role
from engine.validation.validate import ValidationResult
from runners.postgres.connection import as_user, database_name
from runners.postgres.roles import apply_roles

_APPLIED: set[tuple[str, frozenset[tuple[str, str]]]] = set()


def role_specs(defs: ValidationResult, dsn: str) -> list[Callable[[RoleState], RoleSpec]]:
    """The roles the settings name, each built once the server's version is known."""
    project = defs.project
    roles = project.settings.roles
    database = database_name(dsn)
    specs: list[Callable[[RoleState], RoleSpec]] = []
    if roles.reports is not None:
        name = roles.reports
        specs.append(lambda _state: report_role(project, name, database))
    if roles.backups is not None:
        backups = roles.backups
        specs.append(lambda state: backup_role(project, backups, database,
                                               state.server_version, state.relations))
    return specs


def apply(defs: ValidationResult, dsn: str, dry_run: bool = False
          ) -> list[tuple[str, list[str]]]:
    """Create or update every role the settings name, connecting through `dsn` (a role
    that may create roles and grant on the declared tables); the statements, per role."""
    return apply_roles(dsn, role_specs(defs, dsn), dry_run)


def reports_dsn(root: Path, defs: ValidationResult, dsn: str) -> str:
    """The DSN reports connect with: as `roles.reports` when set. On the embedded server
    (marketops's own) the roles are applied first whenever what the reports read changed;
    elsewhere `marketops roles apply` does it, as `schema apply` does the schema."""
    return _as_role(root, defs, dsn, defs.project.settings.roles.reports)


def backups_dsn(root: Path, defs: ValidationResult, dsn: str) -> str:
    """The DSN pg_dump and pg_basebackup connect with: as `roles.backups` when set (applied
    first on the embedded server, as for reports)."""
    return _as_role(root, defs, dsn, defs.project.settings.roles.backups)


def _as_role(root: Path, defs: ValidationResult, dsn: str, role: str | None) -> str:
    if role is None:
        return dsn
    if dsn == embedded_server(root, defs).dsn():
        key = (dsn, frozenset(report_reads(defs.project)))
        if key not in _APPLIED:
            apply(defs, dsn)
            _APPLIED.add(key)
    return as_user(dsn, role)
