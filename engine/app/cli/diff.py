"""`marketops diff`: what a change to the definitions does, for reviewing a pull request."""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from engine.app import clock
from engine.app.cli.types import INSTANT
from engine.errors import DefinitionError, MarketopsError

if TYPE_CHECKING:
    from engine.app.context import App
    from engine.backups.retention import BackupInfo
    from engine.definitions.changes import Change, Side
    from engine.definitions.project import Project
    from engine.validation.findings import Finding
    from engine.validation.validate import ValidationResult


def _side(app: App, which: str, value: str | None, scratch: Path) -> tuple[str, Path]:
    """(label, directory) of one side: a directory as it is, or a git revision written out.
    Without a value the base is the merge-base with the default branch and the head is
    the working tree at --root."""
    from runners.service import gittree

    if value is None and which == "head":
        return "working tree", app.root
    if value is not None and Path(value).is_dir():
        return str(value), Path(value).resolve()
    if value is None:
        commit, how = gittree.default_base(app.root)
        label = f"{commit[:10]} ({how})"
    else:
        commit = gittree.resolve(app.root, value)
        label = value if commit.startswith(value) else f"{value} ({commit[:10]})"
    target = scratch / which
    target.mkdir()
    gittree.export(app.root, commit, target)
    return label, target


def _load(app: App, which: str, label: str, directory: Path, read_stored: bool) -> Side:
    """A side's definitions as loaded; a file that does not load at all is an error, since
    what it defines would otherwise show as removed."""
    from engine.definitions.changes import Side, first_error
    from engine.definitions.loader import load_project
    from engine.validation.validate import ValidationResult

    project, findings = load_project(directory)
    problem = first_error(findings)
    if problem is not None:
        raise DefinitionError(f"{which} ({label}): the definitions do not load: {problem}; "
                              "fix them first (marketops validate)")
    errors = _rule_errors(project)
    if errors:
        click.secho(f"warning: {which} ({label}) has {len(errors)} validation error(s), the "
                    f"first: {first_error(errors)}; run marketops validate", fg="yellow",
                    err=True)
    if not read_stored:  # only the base's destinations hold what retention would delete
        return Side(label, project, {}, {t: "the destinations were not read (--simulate)"
                                         for t in project.backups})
    stored, unread = _stored_backups(app.root, ValidationResult(project, []))
    return Side(label, project, stored, unread)


def _rule_errors(project: Project) -> list[Finding]:
    """The validation errors of a loaded project (what `marketops validate` reports), on the
    same project so that its SQL analyses are made once for the rules and the comparison."""
    from engine.validation.rules import all_rules

    errors: list[Finding] = []
    for check in all_rules():
        try:
            errors.extend(f for f in check.func(project) if f.is_error)
        except Exception:  # a broken rule must not hide the comparison
            continue
    return errors


def _stored_backups(root: Path, defs: ValidationResult
                    ) -> tuple[dict[str, list[BackupInfo]], dict[str, str]]:
    """The complete backups at each retained tier's destination, as the base defines it;
    a destination that cannot be read is named with why (the retention is then simulated)."""
    from engine.app.context import local_destination
    from engine.app.tiers.backup import backup_infos, catalog_of
    from engine.definitions.models.backup import RestoreDrillTier, WalArchiveTier
    from engine.masking import describe_error

    stored: dict[str, list[BackupInfo]] = {}
    unread: dict[str, str] = {}
    for tier_id, loaded in sorted(defs.project.backups.items()):
        tier = loaded.model
        if isinstance(tier, WalArchiveTier | RestoreDrillTier):
            continue
        destination = defs.project.settings.destinations.get(tier.destination)
        if destination is None:
            continue
        if destination.url.startswith("file://") and \
                not local_destination(root, defs, tier.destination).is_dir():
            unread[tier_id] = f"destination {tier.destination} is not on this machine"
            continue
        try:
            stored[tier_id] = list(backup_infos(catalog_of(root, defs, tier_id)))
        except (MarketopsError, OSError, ValueError) as exc:
            unread[tier_id] = f"destination {tier.destination} could not be read " \
                f"({describe_error(exc)})"
    return stored, unread


def _run_changed(app: App, old: Side, new: Side, changes: list[Change], now: datetime,
                 select: tuple[str, ...]) -> list[Change]:
    """For each report whose SQL changed (directly or through the glossary), both versions
    run for the latest slot of the new schedule; their rows compared."""
    from fnmatch import fnmatch

    from engine.app.context import database_dsn
    from engine.app.reporting import report_request
    from engine.definitions.changes import Change, row_differences
    from engine.scheduling.jobs import jobs
    from engine.validation.validate import ValidationResult
    from runners.report.rows import fetch_rows

    subjects = sorted({c.subject for c in changes if c.section == "reports"
                       and c.aspect in ("sql", "glossary") and c.status != "added"})
    subjects = [s for s in subjects if not select or any(fnmatch(s, p) for p in select)]
    results = [ValidationResult(old.project, []), ValidationResult(new.project, [])]
    dsn = database_dsn(app.root, results[1], "reports") if subjects else ""
    found = []
    for subject in subjects:
        before, after = (jobs(r.project).get(subject) for r in results)
        if before is None or after is None or after.schedule is None:
            continue  # disabled on one side: nothing to run
        slot = after.schedule.latest_at_or_before(now)
        if slot is None:
            continue
        rows = [fetch_rows(report_request(app.root, results[0], before, slot, dsn)),
                fetch_rows(report_request(app.root, results[1], after, slot, dsn))]
        timezone = after.schedule.timezone
        found.append(Change("reports", subject, "modified", "run",
                            f"ran both versions for the slot {_when(slot, timezone)}",
                            tuple(row_differences(rows[0], rows[1]))))
    return found


def _when(moment: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


@click.command("diff")
@click.option("--base", "base", default=None, metavar="REV|DIR",
              help="A git revision or a directory; default: the merge-base of HEAD with the "
                   "default branch.")
@click.option("--head", "head", default=None, metavar="REV|DIR",
              help="A git revision or a directory; default: the working tree at --root.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]),
              default="text", show_default=True,
              help="text for a terminal, json for tools, github for a pull-request comment "
                   "(Markdown).")
@click.option("--strict", is_flag=True, help="Exit 1 when any change is dangerous.")
@click.option("--simulate", is_flag=True,
              help="Do not read the destinations: simulate each changed retention over a "
                   "year of its tier's schedule.")
@click.option("--at", "at", type=INSTANT, default=None,
              help="The moment next runs and retention are computed from (ISO 8601); "
                   "default: now.")
@click.option("--run", "run", is_flag=True,
              help="Also run the old and the new SQL of each changed report for its latest "
                   "slot (READ ONLY, on the reports database, within its limits) and compare "
                   "the rows.")
@click.option("--select", "select", multiple=True, metavar="report/ID",
              help="With --run: only these reports (fnmatch patterns, e.g. report/pnl_*).")
@click.pass_obj
def diff(app: App, base: str | None, head: str | None, fmt: str, strict: bool,
         simulate: bool, at: datetime | None, run: bool, select: tuple[str, ...]) -> None:
    """Compare two definition sets and show what the change does: reports (columns,
    tables, schedule with the next runs, recipients and personal data), backup tiers
    (coverage, retention with the stored backups it would delete, RPO/RTO, encryption,
    destination), schema changes with their migrations and dependents, and settings
    (secrets never shown).

    Exits 0, or 1 with --strict when a change is dangerous; 2 on an error.

    \b
    Example:
      marketops diff                                   # merge-base with main .. working tree
      marketops diff --base main --head HEAD --format github > comment.md
      marketops diff --base ../before --head .         # two directories
    """
    from engine.definitions.changes import RENDERERS, compare, dangerous

    now = at or clock.now().replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="marketops-diff-") as scratch:
        base_label, base_dir = _side(app, "base", base, Path(scratch))
        head_label, head_dir = _side(app, "head", head, Path(scratch))
        old = _load(app, "base", base_label, base_dir, read_stored=not simulate)
        new = _load(app, "head", head_label, head_dir, read_stored=False)
    changes = compare(old, new, now)
    if run:
        changes = changes + _run_changed(app, old, new, changes, now, select)
    click.echo(RENDERERS[fmt](changes, f"base {base_label}", f"head {head_label}"), nl=False)
    sys.exit(1 if strict and dangerous(changes) else 0)
