"""`marketops suspend|resume JOB`: hold a job's schedule in the ledger, as `kubectl patch
cronjob -p '{"spec":{"suspend":true}}'` does, for every replica at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from engine.app.cli.types import complete_job
from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.app.context import App


def _known(app: App, job_id: str) -> None:
    from engine.scheduling.jobs import jobs

    available = jobs(app.defs.project)
    if job_id not in available:
        raise UsageError(f"unknown job {job_id} (jobs: {', '.join(sorted(available))})")


@click.command("suspend")
@click.argument("job_id", metavar="JOB", shell_complete=complete_job)
@click.option("--reason", default=None, help="Why, shown in status and the skipped slots.")
@click.pass_obj
def suspend(app: App, job_id: str, reason: str | None) -> None:
    """Stop running JOB's slots (every replica) until `marketops resume JOB`; its slots in
    between are recorded as skipped. A run already going finishes.

    \b
    Example:
      marketops suspend report/pnl_monthly --reason "ledger migration until Monday"
    """
    import getpass

    from engine.app.context import worker_name

    _known(app, job_id)
    by = f"{getpass.getuser()}@{worker_name().rsplit(':', 1)[0]}"
    if app.ledger.suspend(job_id, reason, by):
        click.echo(f"{job_id} suspended" + (f": {reason}" if reason else "")
                   + f"; `marketops resume {job_id}` schedules it again")
    else:
        click.echo(f"{job_id} was suspended already")


@click.command("resume")
@click.argument("job_id", metavar="JOB", shell_complete=complete_job)
@click.pass_obj
def resume(app: App, job_id: str) -> None:
    """Schedule a suspended JOB again, from its next slot.

    \b
    Example:
      marketops resume report/pnl_monthly
    """
    _known(app, job_id)
    if app.ledger.resume(job_id):
        click.echo(f"{job_id} resumed")
    else:
        click.echo(f"{job_id} was not suspended")
