"""`marketops preview` and `marketops resend`: look at a report's mail without sending it, and
send a finished slot again on purpose."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.app import clock
from engine.app.cli.types import INSTANT
from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.app.context import App
    from engine.scheduling.jobs import Job


def _report_job(app: App, job_id: str) -> Job:
    from engine.scheduling.jobs import jobs as all_jobs

    available = {k: v for k, v in all_jobs(app.defs.project).items() if v.kind == "report"}
    job = available.get(job_id)
    if job is None:
        raise UsageError(f"unknown report {job_id} (reports: {', '.join(sorted(available))})")
    return job


def _slot(job: Job, at: Any) -> Any:

    from engine.app.context import latest_slot

    return latest_slot(job, at or clock.now())


@click.command()
@click.argument("job_id", metavar="REPORT")
@click.option("--at", type=INSTANT, default=None,
              help="The slot at (or latest before) this time; default: the latest slot.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write into; default <root>/preview/<id>.")
@click.option("--open", "open_it", is_flag=True, help="Open the mail's HTML in a browser.")
@click.pass_obj
def preview(app: App, job_id: str, at: Any, out: Path | None, open_it: bool) -> None:
    """Render a report's outputs and its mail (.eml and .html) into a folder, without
    delivering anything or touching the ledger.

    \b
    Example:
      marketops preview report/pnl_monthly --at 2026-12-01T06:00+01:00 --open
    """
    from engine.app.reporting import preview as render_preview

    job = _report_job(app, job_id)
    slot = _slot(job, at)
    folder = out or app.root / "preview" / job.name
    files = render_preview(app.root, app.defs, job, slot, app.dsn("reports"), folder)
    local = slot.astimezone(job.schedule.tz) if job.schedule else slot
    click.echo(f"{job_id} slot {local.isoformat()}: previewed, nothing sent")
    for path in files:
        click.echo(f"  {path}")
    page = next(p for p in files if p.name.endswith(".mail.html"))
    if open_it:
        import webbrowser

        if not webbrowser.open(page.resolve().as_uri()):
            click.echo(f"no browser found; open {page}", err=True)


@click.command()
@click.argument("job_id", metavar="REPORT")
@click.option("--at", type=INSTANT, required=True, help="The slot at (or latest before) this "
              "time; it must have run.")
@click.option("--to", "addresses", multiple=True, help="Send to this address instead of the "
              "report's email recipients (repeatable).")
@click.option("--by", "asked_by", default=None, envvar="USER",
              help="Who asks for it, recorded in the ledger; default: $USER.")
@click.pass_obj
def resend(app: App, job_id: str, at: Any, addresses: tuple[str, ...],
           asked_by: str | None) -> None:
    """Send a finished slot's archived outputs again, recorded in the ledger with who asked
    and when. Scheduled delivery stays exactly once; this is the explicit exception.

    \b
    Example:
      marketops resend report/pnl_monthly --at 2026-12-01T06:00+01:00 --to cfo@corp.example
    """

    from engine.app.reporting import resend as send_again

    job = _report_job(app, job_id)
    slot = _slot(job, at)
    statuses = send_again(app.defs, app.ledger, job, slot, list(addresses),
                          asked_by or "unknown", clock.now())
    local = slot.astimezone(job.schedule.tz) if job.schedule else slot
    click.echo(f"{job_id} slot {local.isoformat()}: resent")
    for key, state in statuses.items():
        click.echo(f"  {key}: {state}")
    sys.exit(0 if all(s == "sent" for s in statuses.values()) else 1)


def register(group: click.Group) -> None:
    """Add preview and resend to the `marketops` group."""
    group.add_command(preview)
    group.add_command(resend)
