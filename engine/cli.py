"""The `marketops` command: a thin click layer over functions that tests call directly."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from engine.errors import MarketopsError, UsageError


class _Group(click.Group):
    """Renders marketops errors once, as one red line, unless --debug asks for the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MarketopsError as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            cause = exc.__cause__
            while cause is not None:
                click.secho(f"  caused by: {cause}", fg="red", err=True)
                cause = cause.__cause__
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, envvar="MARKETOPS_ROOT",
              help="The definitions repository (marketops.yaml, schema/, definitions/).")
@click.option("--debug", is_flag=True, envvar="MARKETOPS_DEBUG",
              help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, root: Path, debug: bool) -> None:
    """marketops: declarative reports and backups for a PostgreSQL marketplace.

    \b
    Example:
      marketops validate            # check every definition, offline
      marketops impact users.accounts.email
    """
    ctx.obj = {"root": root, "debug": debug}


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, json for tools, github for Actions.")
@click.option("--strict", is_flag=True, help="Warnings fail too.")
@click.pass_obj
def validate(obj: dict[str, Any], fmt: str, strict: bool) -> None:
    """Check every definition offline; all problems at once, as file:line:col.

    Exits 0 when valid, 1 when not.

    \b
    Example:
      marketops validate --format github
    """
    from engine.output import RENDERERS
    from engine.validate import validate as run_validation

    result = run_validation(obj["root"], debug=obj["debug"])
    click.echo(RENDERERS[fmt](result, strict=strict), nl=False)
    sys.exit(0 if result.passed(strict=strict) else 1)


@cli.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_obj
def impact(obj: dict[str, Any], target: str, fmt: str) -> None:
    """List the reports and backup tiers that depend on schema.table[.column].

    \b
    Example:
      marketops impact orders.orders.total
    """
    from engine.lineage import impact as find_impact
    from engine.loader import load_project

    project, findings = load_project(obj["root"])
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
def jsonschema(obj: dict[str, Any], out: Path | None, check: bool) -> None:
    """Write the JSON Schema of each definition kind, for editor completion.

    \b
    Example:
      marketops jsonschema --check
    """
    from engine.jsonschema import schema_documents

    directory = out or obj["root"] / "jsonschema"
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
def demo() -> None:
    """Run the whole product on an embedded PostgreSQL with generated data.

    \b
    Example:
      marketops demo
    """
    click.echo("marketops demo is not built yet: it arrives with the marketplace schema and "
               "data generator. Meanwhile: marketops validate")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="marketops")
