"""`marketops roles`: the least-privilege roles reports and backups connect as."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.app.context import App
    from engine.validation.validate import ValidationResult


@click.group()
def roles() -> None:
    """The database roles reports and backups connect as (settings: roles).

    \b
    Example:
      marketops roles apply --dry-run
    """


@roles.command("apply")
@click.option("--dsn", default=None, envvar="MARKETOPS_DSN",
              help="Primary database, as a role that may create roles; default the settings'.")
@click.option("--dry-run", is_flag=True, help="Print the statements, change nothing.")
@click.pass_obj
def roles_apply(app: App, dsn: str | None, dry_run: bool) -> None:
    """Create or update the roles of `roles:` in marketops.yaml, in one transaction.

    The reports role gets SELECT on exactly the tables and views the declared reports read
    (through glossary terms and views), read-only sessions and a statement timeout, and
    nothing else: no write, no other table, no dblink/postgres_fdw (their functions are
    revoked from PUBLIC), no server files or programs. The backups role gets REPLICATION
    and pg_read_all_data. Applying twice changes nothing; run it after changing reports.

    \b
    Example:
      marketops roles apply --dsn postgresql://admin@db.internal/shop
    """
    from engine.app.roles import apply
    from runners.postgres.connection import mask_dsn

    defs = app.defs
    if defs.project.settings.roles.reports is None and \
            defs.project.settings.roles.backups is None:
        raise UsageError("marketops.yaml names no roles: set roles.reports (and "
                         "roles.backups), e.g. roles: {reports: marketops_reports}")
    target = app.primary(dsn)
    done = apply(defs, target.dsn, dry_run)
    verb = "would run" if dry_run else "applied"
    for name, statements in done:
        click.echo(f"role {name}: {verb} {len(statements)} statement(s) on "
                   f"{mask_dsn(target.dsn)}")
        for statement in statements:
            click.echo(f"  {statement};")


def print_roles(defs: ValidationResult, dsn: str) -> None:
    """For the demo: apply the roles and say what reports and backups connect as."""
    from engine.app.roles import apply
    from engine.dbschema.roles import report_reads

    done = dict(apply(defs, dsn))
    roles = defs.project.settings.roles
    if roles.reports:
        click.echo(f"role {roles.reports}: reports connect as it: SELECT on the "
                   f"{len(report_reads(defs.project))} tables and views they read, "
                   f"read-only, no dblink ({len(done.get(roles.reports, []))} statement(s))")
    if roles.backups:
        click.echo(f"role {roles.backups}: pg_dump and pg_basebackup connect as it: "
                   f"REPLICATION, pg_read_all_data ({len(done.get(roles.backups, []))} "
                   "statement(s))")


def register(group: click.Group) -> None:
    """Add `roles` to the `marketops` group."""
    group.add_command(roles)
