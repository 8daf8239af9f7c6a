"""`marketops` commands for backups: backups, restore, mark, verify, wal-push, wal-fetch,
wal-setup."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.app.cli.types import INSTANT
from engine.backups.listing import human_size as human_size  # used by the demo table
from engine.errors import MarketopsError, UsageError

if TYPE_CHECKING:
    from engine.app.context import App
    from engine.validation.validate import ValidationResult


@click.command("wal-push")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def wal_push(app: App, path: Path) -> None:
    """archive_command: store one WAL file (compressed, checksummed, encrypted).

    Exit 0 once it is stored (or was already, identically); non-zero otherwise, so that
    PostgreSQL keeps the segment and retries.

    \b
    Example (postgresql.conf):
      archive_command = 'marketops --root /srv/marketops wal-push %p'
    """
    from engine.app.tiers.wal import wal_push as push

    if not path.is_absolute():
        path = Path.cwd() / path  # PostgreSQL runs it in the data directory
    push(app.root, path, app.target)


@click.command("wal-fetch")
@click.argument("name")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def wal_fetch(app: App, name: str, path: Path) -> None:
    """restore_command: bring back one WAL file.

    Exit 1 when the archive does not have it (PostgreSQL then ends recovery or waits);
    exit 255 on a real error (damaged file, wrong key, destination unreachable), which makes
    PostgreSQL stop recovery instead of mistaking it for the end of the archive.

    \b
    Example (postgresql.auto.conf of a restored cluster):
      restore_command = 'marketops --root /srv/marketops wal-fetch %f %p'
    """
    from engine.app.tiers.wal import wal_fetch as fetch
    from runners.backup.wal import WalNotFound

    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        fetch(app.root, name, path, app.target)
    except WalNotFound:
        sys.exit(1)
    except MarketopsError as exc:
        click.secho(f"error: wal-fetch {name}: {exc}", fg="red", err=True)
        sys.exit(255)


@click.command("wal-setup")
@click.option("--apply", "apply_", is_flag=True,
              help="Set them with ALTER SYSTEM on the primary (then restart it if asked).")
@click.pass_obj
def wal_setup(app: App, apply_: bool) -> None:
    """Print (or apply) the server settings WAL archiving and incremental backups need.

    \b
    Example:
      marketops wal-setup --apply
    """
    from engine.app.tiers.wal import compile_archive_config, configure_archiving, wal_settings

    defs = app.defs
    settings = wal_settings(app.root, defs)
    compile_archive_config(app.root, defs)
    if not apply_:
        for name, value in settings.items():
            click.echo(f"{name} = '{value}'")
        return
    target = app.primary(None)
    if target.server is not None:
        from engine.app.tiers.wal import prepare_archive_access

        # Its archive_command runs as the server's user: the repository, the destination and
        # (archive_async) the spool must be open to it before the first segment.
        prepare_archive_access(app.root, defs)
    restart = configure_archiving(target.dsn, settings)
    if restart and target.server is not None:
        target.server.stop()
        target.server.start()
        click.echo("applied; the embedded server was restarted")
    elif restart:
        click.echo("applied; restart PostgreSQL for archive_mode/wal_level to take effect")
    else:
        click.echo("applied (reloaded)")


@click.command("backups")
@click.argument("tier", required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
@click.pass_obj
def backups(app: App, tier: str | None, fmt: str) -> None:
    """List every tier's backups (or one tier's), oldest first, like pgBackRest's info.

    Per backup: full, incremental or dump, start and stop time (and LSN for physical
    tiers), sizes, rows, and when it was last verified (at backup by pg_verifybackup, or by
    a restore drill). The WAL tier shows the earliest and latest recoverable point; the
    audit vault its batches and the state of their hash chain.

    \b
    Examples:
      marketops backups nightly_full
      marketops backups --format json | jq '.tiers[] | {tier, n: (.backups | length)}'
    """
    from engine.app.inventory import backup_listing
    from engine.backups.listing import as_dict, render_text

    defs = app.defs
    listings = backup_listing(app.root, defs, tier, _reachable_ledger(app))
    if fmt == "json":
        click.echo(json.dumps({"tiers": [as_dict(t) for t in listings]}, indent=2))
        return
    click.echo(render_text(listings), nl=False)


def _reachable_ledger(app: App) -> Any:
    """The ledger (for restore drill results) when its database runs; a listing neither
    starts the embedded server nor fails because the state database is away."""
    databases = app.defs.project.settings.databases
    chosen = databases.state or databases.primary
    if chosen.dsn == "embedded" and not app.embedded().is_running():
        return None
    try:
        return app.ledger
    except MarketopsError:
        return None


def recovered_in_zone(defs: ValidationResult, tier_id: str, reached: str | None
                      ) -> str | None:
    """Where recovery stopped, its times (PostgreSQL's log, +00) in the backup tier's own
    zone and named; UTC, named "UTC", for a tier without one."""
    from engine.app.tiers.backup import tier_of
    from engine.backups.pitr import in_zone

    if reached is None:
        return None
    zone = getattr(tier_of(defs, tier_id), "timezone", None) or "UTC"
    return in_zone(reached, zone)


@click.command("restore")
@click.option("--tier", required=True, help="The tier to restore from.")
@click.option("--backup", "backup_id", default=None,
              help="A backup id (default: the newest one that ends before the target).")
@click.option("--target", type=click.Choice(["latest", "immediate"]), default=None,
              help="Physical tiers: latest = replay the WAL archive to its end (the "
                   "default); immediate = stop at the end of the base backup.")
@click.option("--target-time", type=INSTANT, default=None,
              help="Recover to this time (physical tiers), ISO 8601; UTC without an offset.")
@click.option("--target-lsn", default=None, help="Recover to this WAL position, e.g. 0/3000060.")
@click.option("--target-name", default=None,
              help="Recover to a restore point made with `marketops mark NAME`.")
@click.option("--into", "into_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="New data directory (physical tiers).")
@click.option("--keep-on-failure", is_flag=True,
              help="Keep what a failed restore made: the --into directory (and its "
              "server log), or the --into-database database.")
@click.option("--into-database", default=None,
              help="Database to restore a logical tier into (created; must not hold its "
                   "schemas).")
@click.option("--port", type=int, default=None, help="Port for the restored server.")
@click.option("--dsn", envvar="MARKETOPS_DSN", default=None,
              help="Server for --into-database (default: the primary's server).")
@click.pass_obj
def restore(app: App, tier: str, backup_id: str | None, target: str | None,
            target_time: Any, target_lsn: str | None, target_name: str | None,
            into_dir: Path | None, keep_on_failure: bool, into_database: str | None,
            port: int | None, dsn: str | None) -> None:
    """Restore a backup: a logical tier into a database; a physical tier into a new data
    directory, recovered through the WAL archive (to its end unless a target is given) and
    started on a free port. The archive is checked for every segment recovery needs first.

    \b
    Examples:
      marketops restore --tier users_schema --into-database users_check
      marketops restore --tier base_weekly --into /srv/pitr               # to the latest point
      marketops restore --tier base_weekly --target-time 2026-11-25T10:15:00+01:00 --into /srv/pitr
      marketops restore --tier base_weekly --target-name before-migration --into /srv/pitr
    """
    from engine.app.tiers.restore import restore_database, restore_point_in_time
    from engine.backups.pitr import target_from_options

    defs = app.defs
    if into_dir is not None:
        goal = target_from_options(target, target_time, target_lsn, target_name)
        done = restore_point_in_time(app.root, defs, tier, into_dir, backup_id=backup_id,
                                     target=goal, port=port, keep_on_failure=keep_on_failure)
        click.echo(f"restored {tier}/{done.backup_id} into {into_dir} in {done.seconds:.1f}s")
        if done.wal_checked:
            click.echo(f"WAL checked:    {done.wal_checked}")
        reached = recovered_in_zone(defs, tier, done.recovered_to) or goal.describe()
        click.echo(f"recovered to:   {reached}")
        click.echo(f"server running: {done.dsn}")
        click.echo(f"stop it with:   {done.stop_command}")
        return
    if into_database is None:
        raise UsageError("say where: --into-database NAME (logical tiers) or --into DIR "
                         "(physical tiers)")
    given = [flag for flag, value in (("--target", target), ("--target-time", target_time),
                                      ("--target-lsn", target_lsn),
                                      ("--target-name", target_name)) if value is not None]
    if given:
        raise UsageError(f"{given[0]} needs a physical tier and --into DIR")
    logical = restore_database(app.root, defs, tier, into_database, backup_id=backup_id,
                               dsn=dsn, keep_on_failure=keep_on_failure)
    click.echo(f"restored {tier}/{logical.backup_id} into database {into_database} in "
               f"{logical.seconds:.1f}s; {logical.tables} tables, row counts match the manifest")
    for fk in logical.skipped_foreign_keys:
        click.echo(f"  skipped foreign key {fk} (its target schema is not in this database)")


@click.command("mark")
@click.argument("name")
@click.option("--dsn", envvar="MARKETOPS_DSN", default=None, help="The primary (default: "
              "from marketops.yaml).")
@click.pass_obj
def mark(app: App, name: str, dsn: str | None) -> None:
    """Make a named restore point on the primary (pg_create_restore_point), switch its WAL
    segment out and wait until it is archived; `restore --target-name NAME` recovers to it.

    \b
    Example:
      marketops mark before-migration-42
    """
    from engine.app.tiers.restore import create_mark

    made = create_mark(app.root, app.defs, name, dsn=dsn)
    click.echo(f"restore point '{made.name}' at LSN {made.lsn} ({made.time.isoformat()}), "
               f"archived in {made.segment}")
    click.echo(f"recover to it with: marketops restore --tier <physical tier> --target-name "
               f"{made.name} --into DIR")


@click.command("verify")
@click.argument("what")
@click.option("--all", "every", is_flag=True, help="Every backup, not only the latest.")
@click.option("--dsn", envvar="MARKETOPS_DSN", default=None,
              help="Database holding the ledger, for `audit` (default: settings).")
@click.option("--adopt", is_flag=True,
              help="audit: record the head of a vault chain the ledger has none for (a vault "
                   "older than the heads), once the chain checks out.")
@click.pass_obj
def verify(app: App, what: str, every: bool, dsn: str | None, adopt: bool) -> None:
    """Re-read stored files and check them against what was recorded when they were stored.

    A backup is checked with every backup it builds on (a physical incremental: its full
    and the incrementals between); a WAL tier: each stored file decrypted, decompressed and
    compared with its recorded checksum, and the archive for gaps; `audit` (or an audit
    tier): the vault's hash chain, against the head the ledger recorded after each run.

    Exit 0 when everything checks out, 3 when a stored file is damaged or missing (named,
    with its backup), 1 for other problems (a gap, an incomplete backup, a broken audit chain).

    \b
    Examples:
      marketops verify nightly_full --all
      marketops verify wal_archive
      marketops verify audit
    """
    from engine.app.inventory import verify_tier

    defs = app.defs
    problems, checked = verify_tier(app.root, defs, what, every=every, dsn=dsn,
                                    adopt=adopt)
    for line in checked:
        click.echo(f"ok      {line}")
    for line in problems:
        click.secho(f"FAILED  {line}", fg="red")
    from engine.errors import DamagedBackupError
    from runners.storage.verify import damaged_files

    if damaged := damaged_files(problems):
        raise DamagedBackupError(f"{what}: {len(damaged)} stored file(s) damaged or missing "
                                 "(named above); restore from another backup")
    sys.exit(1 if problems else 0)


@click.command("keygen")
def keygen() -> None:
    """Print a new age key for encrypted tiers: put the secret in MARKETOPS_BACKUP_KEY (or
    the variable your keys: entry names) and keep a copy where restores can get it.

    \b
    Example:
      export MARKETOPS_BACKUP_KEY=$(marketops keygen | head -1)
    """
    from runners.storage.sealing import generate_key

    secret, public = generate_key()
    click.echo(secret)
    click.echo(f"# public recipient: {public}", err=True)


def register(group: click.Group) -> None:
    """Add the backup commands to the `marketops` group."""
    for command in (wal_push, wal_fetch, wal_setup, backups, restore, mark, verify,
                    keygen):
        group.add_command(command)

