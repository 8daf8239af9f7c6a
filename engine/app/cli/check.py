"""`marketops check`: the WAL path end to end, as pgBackRest's `check` does it: the server
can archive, a forced segment switch is archived by archive_command, and the segment is in
the archive."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from engine.errors import BackupError

if TYPE_CHECKING:
    from engine.app.context import App


@click.command("check")
@click.option("--dsn", envvar="MARKETOPS_DSN", default=None,
              help="The primary (default: from marketops.yaml).")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds to wait for the archiver.")
@click.pass_obj
def check(app: App, dsn: str | None, timeout: float) -> None:
    """Force a WAL switch on the primary and confirm the segment was archived and stored.
    Exit 0 when it was, 1 when archiving is off, failing or too slow (the reason said).

    \b
    Example:
      marketops check
    """
    import time

    from engine.app.context import primary_target
    from engine.app.tiers.backup import wal_tier_for
    from engine.app.tiers.wal import wal_state
    from engine.backups.serverchecks import server_problems
    from runners.backup.physical import server_settings
    from runners.postgres.connection import connect, query

    defs = app.defs
    wal_id, _ = wal_tier_for(defs)
    primary = primary_target(app.root, defs, dsn).dsn
    with connect(primary, autocommit=True) as conn:
        setup = server_problems(server_settings(conn), incremental=False, archiving=True)
        if setup:
            raise BackupError(f"the primary cannot archive WAL for {wal_id}: "
                              + "; ".join(setup))
        failed_before = int(query(conn, "select failed_count from pg_stat_archiver")[0][0])
        began = time.monotonic()
        # A record first, so that there is a segment to switch out even on an idle server
        # (pgBackRest writes a restore point; a message names nothing a restore could pick).
        lsn = str(query(conn, "select pg_logical_emit_message(false, 'marketops', 'check')"
                        )[0][0])
        segment = str(query(conn, "select pg_walfile_name(pg_switch_wal())")[0][0])
        while True:
            archived, failed, last_failed = query(
                conn, "select last_archived_wal, failed_count, last_failed_wal "
                "from pg_stat_archiver")[0]
            if archived is not None and str(archived)[:24] >= segment:
                break
            if int(failed) > failed_before and last_failed and str(last_failed)[:24] == segment:
                raise BackupError(f"archive_command failed on {segment}; the server's log "
                                  "says why (often: the key variable is not set where "
                                  "PostgreSQL starts)")
            if time.monotonic() - began > timeout:
                raise BackupError(f"{segment} (written at {lsn}) was not archived within "
                                  f"{timeout:.0f}s: check archive_command and the archiver "
                                  "in `marketops status`")
            time.sleep(0.2)
    took = time.monotonic() - began
    if segment not in wal_state(app.root, defs, wal_id, None).stored:
        raise BackupError(f"the server says {segment} was archived, but {wal_id}'s archive "
                          "does not hold it: is archive_command another tool's?")
    click.echo(f"WAL archiving works: {segment} (written at {lsn}) archived in {took:.1f}s "
               f"and stored in {wal_id}")
