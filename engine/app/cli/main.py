"""The `marketops` command: a thin click layer over functions that tests call directly."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from engine.app import clock
from engine.app.cli.types import INSTANT, complete_job, complete_target
from engine.errors import MarketopsError, UsageError

if TYPE_CHECKING:
    from engine.app.context import App

_DSN_OPTION = click.option(
    "--dsn", envvar="MARKETOPS_DSN", default=None,
    help="Database to use instead of databases.primary in marketops.yaml.")


class _Group(click.Group):
    """Renders marketops errors once, as one red line, unless --debug asks for the traceback.

    The commands of the other cli modules are added the first time one is looked up (or
    all are listed): validate, run before every commit, does not import them."""

    _complete = False

    def _add_the_others(self) -> None:
        if self._complete:
            return
        self._complete = True
        from engine.app.cli.backup import register
        from engine.app.cli.check import check
        from engine.app.cli.diff import diff as diff_command
        from engine.app.cli.preview import register as register_preview
        from engine.app.cli.roles import register as register_roles
        from engine.app.cli.suspend import resume, suspend

        register(self)
        register_roles(self)
        self.add_command(suspend)
        self.add_command(resume)
        self.add_command(check)
        self.add_command(diff_command)
        register_preview(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not self._complete:
            self._add_the_others()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_the_others()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        from engine.masking import mask
        from engine.runs.logs import mask_records

        mask_records()
        try:
            return super().invoke(ctx)
        except MarketopsError as exc:
            if getattr(ctx.obj, "debug", False):
                raise
            click.secho(f"error: {mask(str(exc))}", fg="red", err=True)
            cause = exc.__cause__
            while cause is not None:
                click.secho(f"  caused by: {mask(str(cause))}", fg="red", err=True)
                cause = cause.__cause__
            ctx.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, envvar="MARKETOPS_ROOT",
              help="The definitions repository (marketops.yaml, schema/, definitions/).")
@click.option("--target", envvar="MARKETOPS_TARGET", default=None, metavar="NAME",
              shell_complete=complete_target,
              help="The target of marketops.yaml (dev, prod...) to use; default its "
                   "default_target, else the settings alone.")
@click.option("--debug", is_flag=True, envvar="MARKETOPS_DEBUG",
              help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, root: Path, target: str | None, debug: bool) -> None:
    """marketops: declarative reports and backups for a PostgreSQL marketplace.

    \b
    Example:
      marketops validate            # check every definition, offline
      marketops impact users.accounts.email
      marketops --target prod status
    """
    # Resolved once: tools we start (initdb, pg_dump) run in other working directories.
    # Imported here: the App pulls in every runner, and validate (before every commit) and
    # wal-push (once per WAL segment) must not pay for that.
    how = ("MARKETOPS_TARGET" if ctx.get_parameter_source("target")
           is click.core.ParameterSource.ENVIRONMENT else "--target")
    if ctx.invoked_subcommand in _LIGHT:
        ctx.obj = Invocation(root.resolve(), debug, target or None, how)
        return
    from engine.app.context import App

    ctx.obj = App(root.resolve(), debug=debug, target=target or None, target_from=how)
    ctx.call_on_close(ctx.obj.close)


@dataclass(frozen=True)
class Invocation:
    """What the commands that need no App get: the repository, --debug and the target asked
    for (by `target_from`: --target or MARKETOPS_TARGET)."""

    root: Path
    debug: bool
    target: str | None = None
    target_from: str = "--target"


_LIGHT = frozenset({"validate"})


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, json for tools, github for Actions.")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.option("--no-cache", is_flag=True,
              help="Analyse every SQL again; neither read nor write .marketops/cache/.")
@click.pass_obj
def validate(app: Invocation, fmt: str, strict: bool, no_cache: bool) -> None:
    """Check every definition offline; all problems at once, as file:line:col.

    Exits 0 when valid, 1 when not. The settings are checked alone and as each target of
    marketops.yaml makes them; a finding only one target has starts with its name.

    \b
    Example:
      marketops validate --format github
    """
    if no_cache:
        output, code = _validate(app, fmt, strict, use_cache=False)
    else:
        # Looked up before the loader is imported: an unchanged repository is answered
        # without pydantic, sqlglot or the definition models.
        from runners.cache.runmemo import remember, replay, run_key, tool_fingerprint

        key = run_key({"root": str(app.root), "target": app.target, "how": app.target_from,
                       "format": fmt, "strict": strict, "debug": app.debug},
                      tool_fingerprint())
        saved = replay(app.root, key)
        if saved is not None:
            output, code = saved
        else:
            from engine.definitions.journal import recording

            with recording() as journal:
                output, code = _validate(app, fmt, strict, use_cache=True)
            remember(app.root, key, dict(journal.entries), output, code)
    click.echo(output, nl=False)
    sys.exit(code)


def _validate(app: Invocation, fmt: str, strict: bool, *, use_cache: bool) -> tuple[str, int]:
    """The rendered findings and exit code of a fresh validate; with `use_cache`, the SQL
    analyses memo is read and written too."""
    from engine.validation.output import RENDERERS
    from engine.validation.sqlmemo import SqlMemo
    from engine.validation.validate import validate as run_validation
    from runners.cache.analyses import open_memo, save_memo
    from runners.cache.parallel import prefetch

    # Without the cache the memo lives for this run only: it carries the analyses computed
    # over both cores to the rules.
    memo = open_memo(app.root) if use_cache else SqlMemo({}, "")
    defs = run_validation(app.root, target=app.target, how=app.target_from, every_target=True,
                          debug=app.debug, memo=memo,
                          prepare=lambda project: prefetch(project, memo))
    if use_cache:
        save_memo(app.root, memo)
    return RENDERERS[fmt](defs, strict=strict), 0 if defs.passed(strict=strict) else 1


@cli.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def impact(app: App, target: str, fmt: str) -> None:
    """List the reports and backup tiers that depend on schema.table[.column].

    \b
    Example:
      marketops impact orders.orders.total
    """
    from engine.dbschema.lineage import impact as find_impact
    from engine.definitions.loader import load_project

    project, findings = load_project(app.root)
    if any(f.is_error for f in findings):
        click.secho(f"warning: {len(findings)} definition problem(s) hide some dependents; "
                    "run marketops validate", fg="yellow", err=True)
    dependents = find_impact(project, target)
    if fmt == "json":
        click.echo(json.dumps({"target": target, "dependents": [
            {"job": d.job, "how": d.how} for d in dependents]}, indent=2))
        return
    if not dependents:
        click.echo(f"nothing depends on {target}")
        return
    width = max(len(d.job) for d in dependents)
    for d in dependents:
        click.echo(f"{d.job.ljust(width)}  {d.how}")


@cli.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write into; default <root>/jsonschema.")
@click.option("--check", is_flag=True, help="Exit 1 if the files on disk are out of date.")
@click.pass_obj
def jsonschema(app: App, out: Path | None, check: bool) -> None:
    """Write the JSON Schema of each definition kind, for editor completion.

    \b
    Example:
      marketops jsonschema --check
    """
    from engine.definitions.jsonschema import schema_documents

    directory = out or app.root / "jsonschema"
    stale = []
    for name, text in schema_documents().items():
        path = directory / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check and stale:
        raise UsageError(f"out of date: {', '.join(str(p) for p in stale)}; run "
                         "marketops jsonschema")
    click.echo(f"{'checked' if check else 'wrote'} {directory}"
               f"{'' if check or stale else ' (unchanged)'}")




@cli.command()
@click.option("--from", "start", type=INSTANT, default=None,
              help="Start (exclusive); default: now.")
@click.option("--until", "end", type=INSTANT, default=None,
              help="End (inclusive); default: a day after --from, or with --retention the "
                   "longest retention horizon of the backup tiers shown.")
@click.option("--job", "job_ids", multiple=True, shell_complete=complete_job,
              help="Only this job (repeatable).")
@click.option("--select", "selectors", multiple=True,
              help="dbt-style: tag:finance, kind:backup, report/* (repeatable: any of them).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--retention", is_flag=True,
              help="Also read the destinations and list what each tier's retention would "
                   "delete now (backups, interrupted leftovers, WAL segments).")
@click.option("--all", "every", is_flag=True,
              help="List every WAL health-check slot instead of one line per WAL tier.")
@click.option("--utc", is_flag=True, help="Every time in UTC instead of each job's own zone.")
@click.pass_obj
def plan(app: App, start: Any, end: Any, job_ids: tuple[str, ...], selectors: tuple[str, ...],
         fmt: str, retention: bool, every: bool, utc: bool) -> None:
    """Dry run: every slot that would fire between two times, in order, and what it runs.

    Without --from/--until the window is now .. now + 1 day; with --retention it is now ..
    now + the longest horizon of the retention of the backup tiers (keep_last runs, daily,
    weekly, monthly, max_age), and only those tiers' runs are planned (counted per tier in
    text) unless --job names others.

    \b
    Example:
      marketops plan --from 2026-03-28T00:00Z --until 2026-04-01T00:00Z --job report/pnl_monthly
      marketops plan --retention
    """

    from engine.app.inventory import retention_preview
    from engine.scheduling.jobs import jobs
    from engine.scheduling.planner import plan_payload, plan_text, plan_window

    if len(job_ids) == 1 and not selectors:
        app = app.for_job(job_ids[0])  # one job: check what it reads, not every report
    available = jobs(app.defs.project)
    if any(j not in available for j in job_ids):
        available = jobs(app.as_loaded().defs.project)  # name every job in the error
    now = clock.now()
    if selectors:
        from engine.scheduling.selection import select

        job_ids = (*job_ids, *(j.id for j in select(available, selectors)))
    window = plan_window(available, job_ids, start, end, retention=retention, now=now)
    preview = retention_preview(app.root, app.defs, now, only=job_ids) if retention else {}
    if fmt == "json":
        click.echo(json.dumps(plan_payload(window, preview if retention else None), indent=2))
    else:
        _say_target(app)
        click.echo("\n".join(plan_text(window, preview, utc=utc,
                                        group_checks=not (every or job_ids))))


def _say_target(app: App) -> None:
    """The first line of a text view: which target's settings it shows (none without)."""
    if app.defs.project.target:
        click.echo(f"target: {app.defs.project.target} (marketops.yaml)")


@cli.command("run")
@click.argument("job_id", metavar="[JOB]", required=False, shell_complete=complete_job)
@click.option("--at", type=INSTANT, default=None,
              help="Run the slot at (or latest before) this time; default: the latest slot.")
@click.option("--select", "selectors", multiple=True,
              help="Instead of JOB, each job these pick (dbt-style: tag:finance, kind:backup, "
                   "report/*), one after the other.")
@_DSN_OPTION
@click.option("--keep-on-failure", is_flag=True,
              help="Drills: keep a failed drill's restored copies (under var/kept), named.")
@click.pass_obj
def run_job(app: App, job_id: str | None, at: Any, selectors: tuple[str, ...],
            dsn: str | None, keep_on_failure: bool) -> None:
    """Run one job now, for one slot, recorded in the ledger. Exit 1 if it fails.

    The same slot always covers the same period, so running it again, now or in a year,
    produces the same output.

    \b
    Examples:
      marketops run report/pnl_monthly --at 2026-03-01T06:00+01:00
      marketops run --select tag:finance
    """

    from engine.app.running import run_now

    sys.exit(0 if run_now(app, job_id, selectors, at, dsn, click.echo,
                          keep_on_failure=keep_on_failure) else 1)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="MARKETOPS_HTTP_HOST",
              help="Address of the health/metrics/status endpoint.")
@click.option("--port", type=int, default=8086, show_default=True, envvar="MARKETOPS_HTTP_PORT",
              help="Port of the endpoint; 0 picks a free one.")
@click.option("--tick", type=float, default=1.0, show_default=True,
              help="Longest sleep between two looks at the schedule, in seconds.")
@click.option("--worker", default=None, envvar="MARKETOPS_WORKER",
              help="Name of this replica; default host:pid.")
@click.option("--shutdown-grace", type=float, default=30.0, show_default=True,
              help="Seconds running jobs get to finish after SIGTERM.")
@click.option("--max-reports", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Reports running at once on this replica.")
@click.option("--max-backups", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Backups running at once on this replica (reports never starve them).")
@click.option("--lease", type=float, default=30.0, show_default=True,
              help="Seconds a run stays ours without a heartbeat; a dead replica's runs are "
              "taken over after this.")
@click.pass_obj
def serve(app: App, host: str, port: int, tick: float, worker: str | None,
          shutdown_grace: float, max_reports: int, max_backups: int, lease: float) -> None:
    """Run the schedule as a service until SIGTERM, with /healthz, /metrics and /status.

    Several replicas may run against the same state database: each slot runs once.

    \b
    Example:
      marketops serve --port 8086 &  curl -s localhost:8086/status.json
    """
    from engine.app.service import ServeOptions
    from engine.app.service import serve as run_service

    run_service(app, ServeOptions(host=host, port=port, tick=tick, worker=worker,
                                  shutdown_grace=shutdown_grace, max_reports=max_reports,
                                  max_backups=max_backups, lease=lease))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--utc", is_flag=True, help="Every time in UTC instead of each job's own zone.")
@click.option("--select", "selectors", multiple=True,
              help="dbt-style: tag:finance, kind:backup, report/* (repeatable: any of them).")
@click.pass_obj
def status(app: App, fmt: str, utc: bool, selectors: tuple[str, ...]) -> None:
    """Last and next run of every job, in each job's own timezone (named) and how long ago
    or ahead; exit 1 when any scheduled job is late, failing or retrying.

    \b
    Example:
      marketops status --format json
    """

    from engine.app.context import statuses
    from engine.app.executor import JobDispatcher
    from engine.app.health import freshness
    from engine.runs.status import as_dict, render_text

    defs = app.defs
    ledger = app.ledger
    executor = JobDispatcher(app.root, defs, "")
    fresh = freshness(app.root, defs, app.dsn("primary"))
    found = statuses(defs, ledger, executor.supports, clock.now(), fresh)
    if selectors:
        from engine.scheduling.jobs import jobs as all_jobs
        from engine.scheduling.selection import select

        chosen = {j.id for j in select(all_jobs(defs.project), selectors)}
        found = [s for s in found if s.job in chosen]
    if fmt == "json":
        click.echo(json.dumps([as_dict(s) for s in found], indent=2))
    else:
        _say_target(app)
        click.echo(render_text(found, clock.now(), utc=utc), nl=False)
    sys.exit(0 if all(s.healthy for s in found) else 1)


@cli.command()
@click.argument("job_id", metavar="[JOB]", required=False, shell_complete=complete_job)
@click.option("--from", "start", type=INSTANT, required=True, help="Start (exclusive).")
@click.option("--until", "end", type=INSTANT, required=True, help="End (inclusive).")
@click.option("--select", "selectors", multiple=True,
              help="Instead of JOB, each report these pick (dbt-style: tag:finance, "
                   "report/*), one after the other.")
@click.pass_obj
def backfill(app: App, job_id: str | None, start: Any, end: Any,
             selectors: tuple[str, ...]) -> None:
    """Run every slot of a past range, oldest first; each run is idempotent on its slot.

    Slots already succeeded are run again (same period, same output). Exit 1 if any failed.

    \b
    Examples:
      marketops backfill report/pnl_monthly --from 2026-02-01T00:00Z --until 2026-03-01T00:00Z
      marketops backfill --select tag:finance --from 2026-01-01T00:00Z --until 2026-03-01T00:00Z
    """
    from engine.app.running import backfill as run_backfill

    sys.exit(0 if run_backfill(app, job_id, selectors, start, end, click.echo) else 1)


@cli.group()
def db() -> None:
    """The embedded PostgreSQL 18 server (used when a DSN says `embedded`).

    \b
    Example:
      marketops db start && psql "$(marketops db dsn)"
    """


def _server(app: App) -> Any:
    return app.as_loaded().embedded()


@db.command("start")
@click.pass_obj
def db_start(app: App) -> None:
    """Start the embedded server (or reuse it when it runs already).

    \b
    Example:
      marketops db start
    """
    from runners.postgres.connection import ensure_database

    server, started = app.as_loaded().start_embedded()
    ensure_database(server.dsn("postgres"), server.database)
    click.echo(f"{'started' if started else 'already running'}: {server.dsn()}")
    click.echo(f"data: {server.data_dir}  log: {server.log_file}")
    click.echo(f'connect: psql "{server.dsn()}"')


@db.command("stop")
@click.pass_obj
def db_stop(app: App) -> None:
    """Stop the embedded server cleanly.

    \b
    Example:
      marketops db stop
    """
    server = _server(app)
    click.echo("stopped" if server.stop() else "not running")


@db.command("status")
@click.pass_obj
def db_status(app: App) -> None:
    """Say whether the embedded server runs; exit 1 when it does not.

    \b
    Example:
      marketops db status
    """
    server = _server(app)
    running = server.is_running()
    click.echo(f"{'running' if running else 'not running'}: {server.dsn()} ({server.data_dir})")
    sys.exit(0 if running else 1)


@db.command("dsn")
@click.pass_obj
def db_dsn(app: App) -> None:
    """Print the embedded server's DSN.

    \b
    Example:
      psql "$(marketops db dsn)"
    """
    click.echo(_server(app).dsn())


@cli.group()
def schema() -> None:
    """The declared schema against real databases: DDL, apply, pull, diff.

    \b
    Example:
      marketops schema diff
    """


@schema.command("ddl")
@click.pass_obj
def schema_ddl(app: App) -> None:
    """Print the DDL that creates the declared schemas in an empty database.

    \b
    Example:
      marketops schema ddl > marketplace.sql
    """
    from engine.dbschema.ddl import create_all

    defs = app.defs
    statements = create_all(s.model for s in defs.project.schemas.values())
    click.echo("\n\n".join(statements))


def _live(dsn: str, names: list[str] | None = None) -> Any:
    from runners.postgres.connection import connect
    from runners.postgres.introspect import pull

    with connect(dsn) as conn:
        return pull(conn, names)


@schema.command("apply")
@_DSN_OPTION
@click.pass_obj
def schema_apply(app: App, dsn: str | None) -> None:
    """Create what is declared but missing, in one transaction; never drops or alters.

    Applying twice changes nothing. Exit 1 if drift remains that needs a migration.

    \b
    Example:
      marketops schema apply --dsn postgresql://app@db.internal/shop
    """
    from engine.dbschema.schemadiff import apply_statements, diff, left_alone, needs_migration
    from runners.postgres.connection import execute_script, mask_dsn

    defs = app.defs
    target = app.primary(dsn)
    declared = {name: s.model for name, s in defs.project.schemas.items()}
    live = _live(target.dsn, list(declared))
    statements = apply_statements(declared, live.schemas)
    if statements:
        execute_script(target.dsn, statements)
    click.echo(f"applied {len(statements)} statement(s) to {mask_dsn(target.dsn)}")
    drift = diff(declared, _live(target.dsn, list(declared)).schemas)
    conflicts = needs_migration(drift)
    for item in left_alone(drift):
        click.echo(f"  left alone (not declared): {item}")
    for item in conflicts:
        click.echo(f"  needs a migration: {item}")
    sys.exit(1 if conflicts else 0)


@schema.command("pull")
@_DSN_OPTION
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the YAML files; default <root>/schema.")
@click.option("--schema", "names", multiple=True, help="Only these schemas (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_obj
def schema_pull(app: App, dsn: str | None, out: Path | None,
                names: tuple[str, ...], force: bool) -> None:
    """Write schema YAML from a live database, to adopt marketops on an existing one.

    \b
    Example:
      marketops schema pull --dsn postgresql://app@db.internal/shop --out schema/
    """
    from engine.dbschema.schema_yaml import render

    target = app.as_loaded().primary(dsn)
    pulled = _live(target.dsn, list(names) or None)
    directory = out or app.root / "schema"
    existing = [directory / f"{n}.yaml" for n in pulled.schemas
                if (directory / f"{n}.yaml").exists()]
    if existing and not force:
        raise UsageError(f"{len(existing)} file(s) exist, e.g. {existing[0]}; use --force to "
                         "overwrite (pii tags and descriptions there would be lost) or --out")
    directory.mkdir(parents=True, exist_ok=True)
    for name, schema_file in pulled.schemas.items():
        (directory / f"{name}.yaml").write_text(render(schema_file), encoding="utf-8")
    tables = sum(len(s.tables) for s in pulled.schemas.values())
    click.echo(f"wrote {len(pulled.schemas)} schema file(s), {tables} tables, to {directory}")
    for note in pulled.notes:
        click.echo(f"  note: {note}")
    if pulled.schemas:
        click.echo("  next: tag personal data with pii: and set owners, then marketops validate")


@schema.command("diff")
@_DSN_OPTION
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def schema_diff(app: App, dsn: str | None, fmt: str) -> None:
    """Report drift between the YAML and a live database; exit 1 on any drift.

    \b
    Example:
      marketops schema diff --dsn postgresql://app@db.internal/shop
    """
    from engine.dbschema.schemadiff import diff
    from runners.postgres.connection import mask_dsn

    defs = app.defs
    target = app.primary(dsn)
    declared = {name: s.model for name, s in defs.project.schemas.items()}
    drift = diff(declared, _live(target.dsn).schemas)
    if fmt == "json":
        click.echo(json.dumps({"database": mask_dsn(target.dsn), "drift": [
            {"kind": d.kind, "target": d.target, "declared": d.declared, "live": d.live}
            for d in drift]}, indent=2))
    elif drift:
        click.echo(f"{len(drift)} difference(s) between schema/ and {mask_dsn(target.dsn)}:")
        for item in drift:
            click.echo(f"  {item}")
    else:
        click.echo(f"no drift: schema/ matches {mask_dsn(target.dsn)}")
    sys.exit(1 if drift else 0)


def _print_rows(summary: Any) -> None:
    by_schema: dict[str, list[int]] = {}
    for table, rows in summary.rows.items():
        by_schema.setdefault(table.split(".")[0], []).append(rows)
    click.echo(f"{'schema':<12} {'tables':>6} {'rows':>12}")
    for name, counts in sorted(by_schema.items()):
        click.echo(f"{name:<12} {len(counts):>6} {sum(counts):>12,}")
    total = sum(summary.rows.values())
    click.echo(f"{'total':<12} {len(summary.rows):>6} {total:>12,}  "
               f"({summary.seconds:.1f} s, {total / max(summary.seconds, 1e-9):,.0f} rows/s)")


@cli.command("demo-data")
@_DSN_OPTION
@click.option("--scale", type=click.FloatRange(0.0001, 100), default=0.01, show_default=True,
              help="1 = about one million orders.")
@click.option("--seed", type=int, default=42, show_default=True,
              help="The same seed (and --until) gives the same data.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Last day of data (exclusive); default today (UTC).")
@click.pass_obj
def demo_data(app: App, dsn: str | None, scale: float, seed: int,
              until: Any) -> None:
    """Fill every declared table with a year of realistic marketplace data.

    Replaces the rows of the declared tables (applying the schema first where needed).

    \b
    Example:
      marketops demo-data --scale 0.1 --seed 7
    """
    from engine.app.context import demo_data as run_demo_data
    from runners.postgres.connection import mask_dsn

    summary = run_demo_data(app.root, dsn, scale=scale, seed=seed,
                            until=until.date() if until else None)
    click.echo(f"generated demo data in {mask_dsn(summary.dsn)} (scale {scale}, seed {seed})")
    _print_rows(summary)


@cli.command()
@click.option("--scale", type=click.FloatRange(0.0001, 100), default=0.01, show_default=True,
              help="Size of the generated data; 1 = about one million orders.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--port", type=click.IntRange(1024, 65535), default=None,
              envvar="MARKETOPS_EMBEDDED_PORT",
              help="Port of the embedded server; default embedded.port (54329), or a free "
              "one when that is taken. Later commands find the server on it.")
@click.pass_obj
def demo(app: App, scale: float, seed: int, port: int | None) -> None:
    """Run marketops on an embedded PostgreSQL with realistic generated data.

    Starts the embedded server under ./var/ (reusing it if it runs), applies the schema,
    generates the data and says where everything is.

    \b
    Example:
      marketops demo --port 54400
    """
    import os

    from engine.app.context import PORT_VARIABLE
    from engine.app.context import demo_data as run_demo_data

    if port is not None:
        os.environ[PORT_VARIABLE] = str(port)  # for every step, and the tools it starts
    from runners.service import progress

    defs = app.defs
    with progress.step(f"embedded PostgreSQL 18 in {app.embedded().data_dir}") as shown:
        server = app.primary(None).server
        assert server is not None
        shown.summary = f"listening on 127.0.0.1:{server.port}"
    summary = run_demo_data(app.root, "embedded", scale=scale, seed=seed, until=None)
    project = defs.project
    tables = sum(len(s.model.tables) for s in project.schemas.values())
    click.echo(f"schema: {len(project.schemas)} schemas, {tables} tables "
               f"({summary.applied_statements} DDL statements applied)")
    _print_rows(summary)
    from engine.app.cli.roles import print_roles

    print_roles(defs, summary.dsn)

    from engine.app.demo import run_demo_reports

    mailbox = (app.root / "var" / "mailbox").resolve()
    reports = run_demo_reports(app.root, defs, summary.dsn, mailbox, clock.now())
    click.echo(f"{'report':<29}{'period':<25}{'status':<10}{'rows':>7}  {'outputs':<18}"
               "delivered")
    for r in reports:
        sent = sum(1 for v in r.deliveries.values() if v.startswith("sent"))
        click.echo(f"{r.job:<29}{r.period:<25}{r.status:<10}{r.rows:>7,}  "
                   f"{','.join(f for f in r.outputs if f != 'json'):<18}"
                   f"{sent}/{len(r.deliveries)}")
    from engine.app.demo import ensure_demo_key, run_demo_backups

    if ensure_demo_key(app.root):
        click.echo("MARKETOPS_BACKUP_KEY is not set: the demo encrypts with var/demo-backup.key")
    tiers = run_demo_backups(app.root, defs, app.primary(None),
                             clock.now())
    # Drill results are long ("111 tables match, 2 smoke ok"; a PITR drill's replay point
    # runs to 150 characters): the column fits 40, longer ones go on a line of their own.
    def short(text: str) -> str:
        return text if len(text) <= 38 else text.split(":")[0][:38]

    wide = max([22, *(len(short(t.verified)) + 2 for t in tiers)])
    click.echo(f"{'tier':<24}{'kind':<16}{'status':<11}{'size':>10}{'time':>8}  "
               f"{'verified':<{wide}}recovery / RTO")
    for t in tiers:
        from engine.app.cli.backup import human_size

        size = human_size(t.stored_bytes) if t.stored_bytes else "-"
        took = f"{t.seconds:.1f}s" if t.seconds else "-"
        click.echo(f"{t.tier:<24}{t.kind:<16}{t.status:<11}{size:>10}{took:>8}  "
                   f"{short(t.verified):<{wide}}{t.recovery}")
        if short(t.verified) != t.verified:
            click.echo(f"  {t.verified}")
        if t.error:
            click.echo(f"  error: {t.error}")
    archive = defs.project.settings.reports.destination
    if archive:
        from engine.app.context import local_destination

        click.echo(f"report files:   {local_destination(app.root, defs, archive)}")
    click.echo(f"mails (.eml):   {mailbox}")
    from engine.app.cli.backup import human_size
    from runners.storage.stores import tree_size

    click.echo(f"data directory: {server.data_dir}  ({human_size(tree_size(server.data_dir))})")
    click.echo(f'connect:        psql "{server.dsn()}"')
    backups = app.root / "var" / "backups"
    click.echo(f"backups:        {backups}  ({human_size(tree_size(backups))}; "
               "marketops backups)")
    restorable = [t.tier for t in tiers if t.kind.startswith("logical")
                  and t.status == "succeeded"]
    drilled = "users_schema" if "users_schema" in restorable else next(iter(restorable), None)
    ran = [r.job for r in reports if r.status == "succeeded"]
    report = "report/pnl_monthly" if "report/pnl_monthly" in ran else next(iter(ran), None)
    steps = [("marketops status", "last and next run of every job")]
    if report:
        steps.append((f"marketops run {report}", "a report again (mail to var/mailbox)"))
    if drilled:
        database = f"{drilled.removesuffix('_schema')}_check"
        steps.append((f"marketops restore --tier {drilled} --into-database {database}",
                      "a backup into a new database"))
    steps += [("marketops serve", "the schedule; then http://localhost:8086/status"),
              ("marketops db stop", "stop the server; rm -rf var/ frees the disk")]
    click.echo("next:")
    width = max(len(command) for command, _ in steps) + 3
    for command, why in steps:
        click.echo(f"  {command:<{width}}# {why}")


def main() -> None:
    """Console-script entry point."""
    import gc

    try:
        cli(prog_name="marketops")
    finally:
        # The command is done (its App closed, files written, ledger committed): objects
        # are still freed by reference counting and atexit still runs, but the shutdown's
        # collections no longer walk every object the imports built (about 0.2 s a run).
        gc.collect()
        gc.freeze()

