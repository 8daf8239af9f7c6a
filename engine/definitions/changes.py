"""What a change to the definitions does, for the person reviewing it (`marketops diff`).

Two loaded definition sets (base and head) go in, with the clock and what the destinations
hold; a list of consequences comes out, grouped by report, backup tier, schema and settings.
Like SQLMesh's plan, a report changed only through a glossary term it reads is listed as
indirectly modified; like dbt's state:modified sub-selectors, each change names the aspect
it touches (sql, columns, schedule, recipients, retention, ...). Nothing here reads files,
clocks or networks.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from engine.backups.retention import BackupInfo, plan_retention
from engine.dbschema.lineage import impact
from engine.dbschema.schemadiff import Drift, apply_statements
from engine.dbschema.schemadiff import diff as schema_diff
from engine.definitions.glossary import TermCycle, closure
from engine.definitions.models.backup import (
    BackupTier,
    RestoreDrillTier,
    Retention,
    WalArchiveTier,
)
from engine.definitions.models.report import (
    DestinationRecipient,
    EmailRecipient,
    Recipient,
    Report,
    RollingPeriod,
)
from engine.definitions.project import Project
from engine.errors import UsageError
from engine.masking import mask_dsn
from engine.scheduling.periods import calendar_period, rolling_period
from engine.scheduling.schedule import Schedule
from engine.validation.findings import Finding
from engine.validation.rules.backup_rules import DAILY, tier_tables
from engine.validation.rules.common import gap_range, human

SECTIONS = {"reports": "Reports", "backups": "Backup tiers", "schema": "Schema",
            "settings": "Settings"}
NEXT_RUNS = 3
SIMULATED_SPAN = timedelta(days=365)
MAX_DIFF_LINES = 40


@dataclass(frozen=True)
class Change:
    """One consequence of the change, about one subject (a report, tier, table, setting)."""

    section: str  # a key of SECTIONS
    subject: str  # report/<id>, backup/<id>, schema.table, settings.<path>
    status: str  # added | removed | modified | indirect
    aspect: str  # what it touches: sql, columns, schedule, recipients, retention, ...
    summary: str
    details: tuple[str, ...] = ()
    diff: tuple[str, ...] = ()  # a unified diff of SQL, when the SQL changed
    danger: str | None = None  # why a reviewer must look twice, when they must


@dataclass(frozen=True)
class Side:
    """One of the two definition sets compared, as the reviewer knows it."""

    label: str  # "base 1a2b3c4 (merge-base of HEAD and origin/main)"
    project: Project
    # Complete backups stored at each tier's destination, oldest first, when it was read.
    stored: Mapping[str, Sequence[BackupInfo]] = field(default_factory=dict)
    unread: Mapping[str, str] = field(default_factory=dict)  # tier -> why it was not read


def compare(base: Side, head: Side, now: datetime) -> list[Change]:
    """Every consequence of going from `base` to `head`, in section order."""
    changes: list[Change] = []
    changes.extend(_reports(base.project, head.project, now))
    changes.extend(_backups(base, head, now))
    changes.extend(_schema(base.project, head.project))
    changes.extend(_settings(base.project, head.project))
    return changes


ChangeMaker = Callable[..., Change]


def dangerous(changes: Sequence[Change]) -> list[Change]:
    return [c for c in changes if c.danger]


# ---------------------------------------------------------------- shared helpers


def _when(moment: datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")


def _next_runs(cron: str, timezone: str, now: datetime) -> list[datetime]:
    runs: list[datetime] = []
    schedule = Schedule(cron, timezone)
    for slot in schedule.iter_after(now):
        runs.append(slot)
        if len(runs) == NEXT_RUNS:
            break
    return runs


def _runs_line(label: str, cron: str, timezone: str, now: datetime) -> str:
    runs = ", ".join(_when(r, timezone) for r in _next_runs(cron, timezone, now))
    label = f" {label}" if label else ""
    return f"next runs{label} ({timezone}, cron \"{cron}\"): {runs or 'none'}"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """A dumped model as dotted paths to scalars and lists."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flat(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, timedelta):
        return human(value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(", ", ": "), default=_show)
    return str(value)


def _field_changes(old: Any, new: Any, skip: Sequence[str]) -> list[tuple[str, Any, Any]]:
    """(path, before, after) for every dumped field that differs, outside `skip` prefixes."""
    before = _flat(old.model_dump())
    after = _flat(new.model_dump())
    found = []
    for path in sorted(set(before) | set(after)):
        if any(path == s or path.startswith(s + ".") for s in skip):
            continue
        if before.get(path) != after.get(path):
            found.append((path, before.get(path), after.get(path)))
    return found


def _sql_diff(old: str, new: str) -> tuple[str, ...]:
    lines = list(difflib.unified_diff(old.strip().splitlines(), new.strip().splitlines(),
                                      "base", "head", n=1, lineterm=""))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... {len(lines) - MAX_DIFF_LINES} more lines"]
    return tuple(lines)


def _listing(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ---------------------------------------------------------------- reports


def _recipient_name(recipient: Recipient) -> str:
    if isinstance(recipient, EmailRecipient):
        return recipient.email
    if isinstance(recipient, DestinationRecipient):
        return f"destination {recipient.destination}" + (
            f":{recipient.path}" if recipient.path else "")
    return f"webhook {recipient.webhook}"


def _recipients(report: Report) -> dict[str, Recipient]:
    found = {_recipient_name(r): r for r in report.recipients}
    for alert in report.alerts:
        for recipient in alert.notify:
            found.setdefault(f"{_recipient_name(recipient)} (alert {alert.name})", recipient)
    return found


def _domain(recipient: Recipient) -> str | None:
    if isinstance(recipient, EmailRecipient):
        return recipient.email.rsplit("@", 1)[1].lower()
    return None


def _pii_columns(project: Project, report_id: str) -> list[str]:
    analysis = project.analyses.get(report_id)
    if analysis is None:
        return []
    pii = project.catalog.pii
    return sorted({name for name, refs in analysis.exposed.items() if refs & pii})


def _holds_pii(project: Project, report_id: str) -> bool:
    return bool(_pii_columns(project, report_id)) or project.reports[report_id].model.contains_pii


def _period_name(report: Report) -> str:
    if isinstance(report.period, RollingPeriod):
        return f"rolling {human(report.period.rolling)}"
    return report.period.value.replace("_", " ")


def _first_period(report: Report, now: datetime) -> str:
    runs = _next_runs(report.cron, report.timezone, now)
    if not runs:
        return "no run"
    tz = ZoneInfo(report.timezone)
    period = rolling_period(report.period.rolling, runs[0], tz) \
        if isinstance(report.period, RollingPeriod) else calendar_period(report.period, runs[0], tz)
    return (f"the run at {_when(runs[0], report.timezone)} covers "
            f"{_when(period.start, report.timezone)} .. {_when(period.end, report.timezone)}")


def _terms_used(project: Project, report: Report) -> list[str]:
    depends = {n: list(t.model.uses) for n, t in project.terms.items()}
    try:
        return closure(report.uses, depends)
    except TermCycle:
        return list(report.uses)


def _reports(base: Project, head: Project, now: datetime) -> Iterator[Change]:
    for report_id in sorted(set(base.reports) | set(head.reports)):
        subject = f"report/{report_id}"
        if report_id not in base.reports:
            yield from _new_report(head, report_id, now)
        elif report_id not in head.reports:
            old = base.reports[report_id].model
            yield Change("reports", subject, "removed", "removed",
                         f"removed: \"{old.title}\" stops; "
                         f"{_listing(sorted(_recipients(old)))} no longer receive it")
        else:
            yield from _changed_report(base, head, report_id, now)


def _new_report(head: Project, report_id: str, now: datetime) -> Iterator[Change]:
    report = head.reports[report_id].model
    recipients = sorted(_recipients(report))
    pii = _pii_columns(head, report_id)
    analysis = head.analyses.get(report_id)
    details = [_runs_line("", report.cron, report.timezone, now),
               f"period: {_period_name(report)}; {_first_period(report, now)}",
               f"columns: {_listing(analysis.outputs if analysis else [], 20)}",
               f"recipients: {_listing(recipients, 20)}"]
    danger = None
    if pii or report.contains_pii:
        domains = sorted({d for r in _recipients(report).values() if (d := _domain(r))})
        details.append(f"personal data ({_listing(pii) or 'declared contains_pii'}) goes to "
                       f"{_listing(recipients, 20)}")
        if domains:
            danger = f"sends personal data to {_listing(domains)}"
    yield Change("reports", f"report/{report_id}", "added", "added",
                 f"new report \"{report.title}\" to {len(recipients)} recipient(s)",
                 tuple(details), danger=danger)


_REPORT_HANDLED = ("cron", "timezone", "period", "sql", "sql_file", "uses", "recipients",
                   "alerts", "title", "description")


def _changed_report(base: Project, head: Project, report_id: str,
                    now: datetime) -> Iterator[Change]:
    old = base.reports[report_id].model
    new = head.reports[report_id].model
    subject = f"report/{report_id}"

    def change(aspect: str, summary: str, details: Sequence[str] = (),
               diff: Sequence[str] = (), danger: str | None = None,
               status: str = "modified") -> Change:
        return Change("reports", subject, status, aspect, summary, tuple(details), tuple(diff),
                      danger)

    old_sql, new_sql = base.report_sql.get(report_id), head.report_sql.get(report_id)
    own_changed = old_sql is not None and new_sql is not None and \
        " ".join(old_sql.own_text.split()) != " ".join(new_sql.own_text.split())
    terms = [t for t in _terms_used(head, new)
             if t in base.term_sql and t in head.term_sql
             and base.term_sql[t].own_text != head.term_sql[t].own_text]
    if own_changed:
        assert old_sql is not None and new_sql is not None
        yield change("sql", "SQL changed", diff=_sql_diff(old_sql.own_text, new_sql.own_text))
    if terms:
        yield change("glossary", f"reads changed glossary term(s) {', '.join(terms)}",
                     status="modified" if own_changed else "indirect")
    if old.uses != new.uses:
        added = sorted(set(new.uses) - set(old.uses))
        gone = sorted(set(old.uses) - set(new.uses))
        yield change("glossary", "glossary terms: " + "; ".join(
            p for p in (f"+ {', '.join(added)}" if added else "",
                        f"- {', '.join(gone)}" if gone else "") if p))
    yield from _output_changes(base, head, report_id, change)
    if (old.cron, old.timezone) != (new.cron, new.timezone):
        yield change("schedule", f"schedule: \"{old.cron}\" {old.timezone} -> "
                     f"\"{new.cron}\" {new.timezone}",
                     [_runs_line("before", old.cron, old.timezone, now),
                      _runs_line("after", new.cron, new.timezone, now)])
    if old.period != new.period:
        yield change("period", f"period: {_period_name(old)} -> {_period_name(new)}",
                     [f"before: {_first_period(old, now)}", f"after: {_first_period(new, now)}"])
    yield from _recipient_changes(base, head, report_id, change)
    for alert_change in _alert_changes(old, new):
        yield change("alerts", alert_change)
    for path, before, after in _field_changes(old, new, _REPORT_HANDLED):
        aspect = path.split(".")[0]
        summary = f"{path}: {_show(before)} -> {_show(after)}"
        if path == "enabled":
            summary = "disabled: stops running" if not after else "enabled: starts running"
            if not after:
                summary += f"; {_listing(sorted(_recipients(old)))} no longer receive it"
        yield change(aspect, summary)
    if old.title != new.title:
        yield change("title", f"title: \"{old.title}\" -> \"{new.title}\"")


def _output_changes(base: Project, head: Project, report_id: str,
                    change: ChangeMaker) -> Iterator[Change]:
    old = base.analyses.get(report_id)
    new = head.analyses.get(report_id)
    if old is None or new is None:
        return
    removed = [c for c in old.outputs if c not in new.outputs]
    added = [c for c in new.outputs if c not in old.outputs]
    renamed: list[tuple[str, str]] = []
    for column in list(removed):  # the same source columns under a new name
        sources = old.exposed.get(column)
        match = next((a for a in added if sources and new.exposed.get(a) == sources), None)
        if match is not None:
            renamed.append((column, match))
            removed.remove(column)
            added.remove(match)
    if len(removed) == len(added) == 1 and \
            old.outputs.index(removed[0]) == new.outputs.index(added[0]):
        renamed.append((removed.pop(), added.pop()))  # one name swapped in place
    parts = [*(f"+ {c}" for c in added), *(f"- {c}" for c in removed),
             *(f"{a} renamed {b}" for a, b in renamed)]
    if parts:
        breaking = [c for c in removed] + [a for a, _ in renamed]
        details = [f"readers of {', '.join(breaking)} (sheets, scripts) break"] if breaking \
            else []
        yield change("columns", f"output columns: {', '.join(parts)}", details)
    elif old.outputs != new.outputs:
        yield change("columns", f"output columns reordered: {', '.join(new.outputs)}")
    read_old = {f"{s}.{t}" for s, t in old.tables}
    read_new = {f"{s}.{t}" for s, t in new.tables}
    if read_old != read_new:
        yield change("tables", "tables read: " + "; ".join(p for p in (
            f"+ {', '.join(sorted(read_new - read_old))}" if read_new - read_old else "",
            f"- {', '.join(sorted(read_old - read_new))}" if read_old - read_new else "") if p))
    pii_old, pii_new = _pii_columns(base, report_id), _pii_columns(head, report_id)
    newly = sorted(set(pii_new) - set(pii_old))
    if newly:
        yield change("pii", f"now returns personal data: {', '.join(newly)}",
                     [f"to {_listing(sorted(_recipients(head.reports[report_id].model)), 20)}"],
                     danger="returns personal data it did not return before")


def _recipient_changes(base: Project, head: Project, report_id: str,
                       change: ChangeMaker) -> Iterator[Change]:
    old = _recipients(base.reports[report_id].model)
    new = _recipients(head.reports[report_id].model)
    added = sorted(set(new) - set(old))
    gone = sorted(set(old) - set(new))
    if gone:
        yield change("recipients", f"recipients removed: {', '.join(gone)} stop receiving it")
    if not added:
        return
    pii = _holds_pii(head, report_id)
    if not pii:
        yield change("recipients", f"recipients added: {', '.join(added)}")
        return
    known = {d for r in old.values() if (d := _domain(r))} if _holds_pii(base, report_id) \
        else set()
    columns = _pii_columns(head, report_id)
    what = f"personal data ({_listing(columns)})" if columns else "personal data (contains_pii)"
    for name in added:
        domain = _domain(new[name])
        if domain is not None and domain not in known:
            yield change("recipients", f"recipient added: {name}: {what} reaches a new domain "
                         f"{domain}", danger=f"personal data to a new domain {domain}")
        else:
            yield change("recipients", f"recipient added: {name}: {what} reaches a new "
                         "recipient")


def _alert_changes(old: Report, new: Report) -> Iterator[str]:
    def text(alert: Any) -> str:
        return f"{alert.column} {alert.op.value} {alert.value:g} ({alert.when})"

    before = {a.name: a for a in old.alerts}
    after = {a.name: a for a in new.alerts}
    for name in sorted(set(before) | set(after)):
        if name not in before:
            yield f"alert {name} added: {text(after[name])}"
        elif name not in after:
            yield f"alert {name} removed (was {text(before[name])})"
        elif before[name] != after[name]:
            if text(before[name]) != text(after[name]):
                yield f"alert {name}: {text(before[name])} -> {text(after[name])}"
            else:
                yield f"alert {name}: message or notify changed"


# ---------------------------------------------------------------- backup tiers


def _daily(tier: BackupTier) -> bool:
    cron = getattr(tier, "cron", None)
    if cron is None or not tier.enabled or isinstance(tier, WalArchiveTier | RestoreDrillTier):
        return False
    gaps = gap_range(cron, getattr(tier, "timezone", "UTC"))
    return gaps is not None and gaps[1] <= DAILY


def _covered_daily(project: Project) -> set[tuple[str, str]]:
    covered: set[tuple[str, str]] = set()
    for loaded in project.backups.values():
        if _daily(loaded.model):
            covered |= tier_tables(project, loaded.model)
    return covered


_TIER_HANDLED = ("cron", "timezone", "retention", "encryption", "destination", "rpo", "rto",
                 "title", "description")


def _backups(base: Side, head: Side, now: datetime) -> Iterator[Change]:
    old_project, new_project = base.project, head.project
    for tier_id in sorted(set(old_project.backups) | set(new_project.backups)):
        subject = f"backup/{tier_id}"
        old = old_project.backups.get(tier_id)
        new = new_project.backups.get(tier_id)
        if old is None:
            assert new is not None
            tables = tier_tables(new_project, new.model)
            yield Change("backups", subject, "added", "added",
                         f"new {new.model.kind} tier \"{new.model.title}\""
                         + (f" holding {len(tables)} table(s)" if tables else ""),
                         _tier_runs(new.model, "", now), danger=_pii_unencrypted(
                             new_project, new.model))
            continue
        if new is None:
            stored = len(base.stored.get(tier_id, ()))
            yield Change("backups", subject, "removed", "removed",
                         f"removed: no more {old.model.kind} backups"
                         + (f"; its {stored} stored backup(s) are no longer listed, pruned or "
                            "drilled" if stored else ""))
            continue
        yield from _changed_tier(base, head, tier_id, now)
    covered_old = _covered_daily(old_project)
    covered_new = _covered_daily(new_project)
    existing = {(s, t) for s, loaded in new_project.schemas.items()
                for t, table in loaded.model.tables.items() if table.backup_exclude_reason is None}
    lost = sorted(f"{s}.{t}" for s, t in (covered_old - covered_new) & existing)
    if lost:
        yield Change("backups", "coverage", "modified", "coverage",
                     f"{len(lost)} table(s) left in no daily tier: {_listing(lost)}",
                     danger=f"{_listing(lost, 3)} no longer backed up at least daily")


def _tier_runs(tier: BackupTier, label: str, now: datetime) -> tuple[str, ...]:
    cron = getattr(tier, "cron", None)
    if cron is None:
        return ()
    return (_runs_line(label, cron, getattr(tier, "timezone", "UTC"), now),)


def _pii_unencrypted(project: Project, tier: BackupTier) -> str | None:
    if isinstance(tier, RestoreDrillTier) or getattr(tier, "encryption", None) is not None:
        return None
    tables = tier_tables(project, tier)
    held = sorted(f"{s}.{t}.{c}" for s, t, c in project.catalog.pii if (s, t) in tables)
    if held:
        return f"holds personal data ({_listing(held, 3)}) unencrypted"
    return None


def _changed_tier(base: Side, head: Side, tier_id: str, now: datetime) -> Iterator[Change]:
    old = base.project.backups[tier_id].model
    new = head.project.backups[tier_id].model
    subject = f"backup/{tier_id}"

    def change(aspect: str, summary: str, details: Sequence[str] = (),
               danger: str | None = None) -> Change:
        return Change("backups", subject, "modified", aspect, summary, tuple(details),
                      danger=danger)

    old_tables = tier_tables(base.project, old)
    new_tables = tier_tables(head.project, new)
    entering = sorted(f"{s}.{t}" for s, t in new_tables - old_tables)
    leaving = sorted(f"{s}.{t}" for s, t in old_tables - new_tables)
    if entering:
        yield change("scope", f"tables entering: {_listing(entering)}")
    if leaving:
        yield change("scope", f"tables leaving: {_listing(leaving)}")
    old_cron, new_cron = getattr(old, "cron", None), getattr(new, "cron", None)
    old_tz, new_tz = getattr(old, "timezone", "UTC"), getattr(new, "timezone", "UTC")
    if old_cron and new_cron and (old_cron, old_tz) != (new_cron, new_tz):
        gaps = gap_range(new_cron, new_tz)
        yield change("schedule", f"schedule: \"{old_cron}\" {old_tz} -> \"{new_cron}\" {new_tz}",
                     [_runs_line("before", old_cron, old_tz, now),
                      _runs_line("after", new_cron, new_tz, now),
                      *([f"longest gap between two runs over a year: {human(gaps[1])}"]
                        if gaps else [])])
    old_retention = getattr(old, "retention", None)
    new_retention = getattr(new, "retention", None)
    if old_retention is not None and new_retention is not None and \
            old_retention != new_retention:
        yield _retention_change(base, tier_id, old, old_retention, new_retention, now, change)
    for what in ("rpo", "rto"):
        before, after = getattr(old, what, None), getattr(new, what, None)
        if before != after and before is not None and after is not None:
            yield change(what, f"{what.upper()}: {human(before)} -> {human(after)}")
    old_key = getattr(old, "encryption", None)
    new_key = getattr(new, "encryption", None)
    if old_key != new_key:
        if new_key is None:
            yield change("encryption", f"encryption turned off (was key {old_key.key})"
                         if old_key else "encryption turned off",
                         ["new backups are stored in the clear at the destination"],
                         danger="encryption turned off")
        elif old_key is None:
            yield change("encryption", f"encryption turned on (key {new_key.key})")
        else:
            yield change("encryption", f"encryption key: {old_key.key} -> {new_key.key}",
                         [f"restoring backups made before needs the key {old_key.key}"])
    unencrypted = _pii_unencrypted(head.project, new)
    if unencrypted and (old_key is not None or _pii_unencrypted(base.project, old) is None):
        yield change("encryption", unencrypted, danger=unencrypted)
    old_dest, new_dest = getattr(old, "destination", None), getattr(new, "destination", None)
    if old_dest != new_dest:
        stored = len(base.stored.get(tier_id, ()))
        where = _urls(base.project, head.project, old_dest, new_dest)
        yield change("destination", f"destination: {old_dest} -> {new_dest} ({where})",
                     [f"the {stored} backup(s) stored at {old_dest} are no longer listed, "
                      "pruned or restored from" if stored else
                      f"backups stored at {old_dest} are no longer listed, pruned or "
                      "restored from", "the first backup at the new destination is a full one"])
    for path, before, after in _field_changes(old, new, _TIER_HANDLED):
        summary = f"{path}: {_show(before)} -> {_show(after)}"
        if path == "enabled":
            summary = "disabled: stops running" if not after else "enabled: starts running"
        yield change(path.split(".")[0], summary)


def _urls(base: Project, head: Project, old: str | None, new: str | None) -> str:
    def url(project: Project, name: str | None) -> str:
        destination = project.settings.destinations.get(name or "")
        return mask_dsn(destination.url) if destination else "undeclared"

    return f"{url(base, old)} -> {url(head, new)}"


def _retention_text(retention: Retention) -> str:
    parts = [f"keep_last {retention.keep_last}"]
    parts.extend(f"{name} {getattr(retention, name)}"
                 for name in ("keep_daily", "keep_weekly", "keep_monthly")
                 if getattr(retention, name))
    if retention.max_age is not None:
        parts.append(f"max_age {human(retention.max_age)}")
    return ", ".join(parts)


def _retention_change(base: Side, tier_id: str, old: BackupTier, before: Retention,
                      after: Retention, now: datetime, change: ChangeMaker) -> Change:
    summary = f"retention: {_retention_text(before)} -> {_retention_text(after)}"
    timezone = getattr(old, "timezone", "UTC")
    if isinstance(old, WalArchiveTier):
        shorter = (after.max_age or timedelta(0)) < (before.max_age or timedelta(0))
        return change("retention", summary, ["WAL segments are kept for max_age"],
                      danger="WAL is kept for a shorter time" if shorter else None)
    stored = list(base.stored.get(tier_id, ()))
    if stored:
        old_plan = plan_retention(stored, before, now)
        new_plan = plan_retention(stored, after, now)
        finished = {b.backup_id: b.finished_at for b in stored}
        deleted = sorted(set(new_plan.delete) - set(old_plan.delete))
        spared = sorted(set(old_plan.delete) - set(new_plan.delete))
        details = [f"of the {len(stored)} backup(s) stored now, the new policy keeps "
                   f"{len(new_plan.keep)} (the old keeps {len(old_plan.keep)})"]
        details.extend(f"deletes {tier_id}/{b} (finished {_when(finished[b], timezone)})"
                       for b in deleted)
        details.extend(f"keeps {tier_id}/{b}, which the old policy deletes" for b in spared)
        return change("retention", summary, details, danger=(
            f"deletes {len(deleted)} stored backup(s)" if deleted else None))
    cron = getattr(old, "cron", None)
    why = base.unread.get(tier_id, "no stored backups were found")
    if cron is None:
        return change("retention", summary, [why])
    slots = Schedule(cron, timezone).between(now - SIMULATED_SPAN, now)
    simulated = [BackupInfo(f"run-{i}", s) for i, s in enumerate(slots)]
    kept: list[tuple[int, datetime]] = []
    for policy in (before, after):
        plan = plan_retention(simulated, policy, now)
        times = [b.finished_at for b in simulated if b.backup_id in plan.keep]
        kept.append((len(times), min(times) if times else now))
    details = [f"{why}; simulated over a year of the schedule ({len(slots)} runs):",
               *(f"{label} policy keeps {count} backup(s), the oldest from "
                 f"{_when(oldest, timezone)} ({_ago(now - oldest)})"
                 for label, (count, oldest) in zip(("the old", "the new"), kept, strict=True))]
    shrinks = kept[1][1] > kept[0][1]
    return change("retention", summary, details, danger=(
        f"the oldest backup kept goes from {_ago(now - kept[0][1])} to {_ago(now - kept[1][1])}"
        if shrinks else None))


def _ago(delta: timedelta) -> str:
    hours = round(delta.total_seconds() / 3600)
    return f"{hours} hours ago" if hours < 48 else f"{round(hours / 24)} days ago"


# ---------------------------------------------------------------- schema


def _migration(drift: Drift) -> str | None:
    """The statement a person writes for a change `schema apply` does not make."""
    parts = drift.target.split(".")
    table = ".".join(parts[:2])
    column = parts[2] if len(parts) > 2 else None
    if drift.kind == "extra table":
        return f"DROP TABLE {drift.target};"
    if drift.kind == "extra schema":
        return f"DROP SCHEMA {drift.target};"
    if drift.kind == "extra column" and column:
        return f"ALTER TABLE {table} DROP COLUMN {column};"
    if drift.kind == "type" and column:
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {drift.declared} " \
            f"USING {column}::{drift.declared};"
    if drift.kind == "nullable" and column:
        return f"ALTER TABLE {table} ALTER COLUMN {column} " + (
            "DROP NOT NULL;" if drift.declared == "true" else "SET NOT NULL;")
    if drift.kind == "default" and column:
        return f"ALTER TABLE {table} ALTER COLUMN {column} " + (
            f"SET DEFAULT {drift.declared};" if drift.declared else "DROP DEFAULT;")
    return None


def _drift_text(drift: Drift) -> str:
    if drift.kind.startswith("missing"):
        what = drift.kind.removeprefix("missing ")
        return f"{what} added" + (f" ({drift.declared})" if drift.declared else "")
    if drift.kind.startswith("extra"):
        what = drift.kind.removeprefix("extra ")
        return f"{what} removed" + (f" (was {drift.live})" if drift.live else "")
    return f"{drift.kind}: {drift.live} -> {drift.declared}"


def _dependents(project: Project, target: str) -> list[str]:
    parts = target.split(".")
    if len(parts) not in (2, 3):
        return []
    try:
        return [d.job for d in impact(project, ".".join(parts))]
    except UsageError:  # a table or column the project does not declare: nothing reads it
        return []


def _schema(base: Project, head: Project) -> Iterator[Change]:
    old = {n: s.model for n, s in base.schemas.items()}
    new = {n: s.model for n, s in head.schemas.items()}
    drifts = schema_diff(new, old)  # declared = head, live = base: what head adds or changes
    statements = apply_statements(new, old) if any(d.fixable for d in drifts) else []
    applied = False
    for drift in drifts:
        if drift.kind == "comment":
            continue
        parts = drift.target.split(".")
        subject = ".".join(parts[:2])
        removed = drift.kind.startswith("extra")
        affected = _dependents(base if removed or not drift.fixable else head, drift.target)
        details = [f"affects {_listing(affected, 12)}"] if affected and not \
            drift.kind.startswith("missing table") else []
        danger = None
        if drift.fixable:
            details.append("marketops schema apply makes it")
            applied = True
        else:
            migration = _migration(drift)
            details.append(f"needs a migration: {migration}" if migration else
                           "needs a migration for a person to write")
            if removed:
                danger = f"drops {drift.kind.removeprefix('extra ')} {drift.target} with its data"
            elif drift.kind == "type" and affected:
                danger = f"retypes {drift.target}, which {len(affected)} job(s) read"
        whole = drift.kind.endswith(("table", "schema"))  # not a part of a table
        status = "modified" if not whole else "added" if drift.fixable else "removed"
        yield Change("schema", subject, status, drift.kind.split()[-1],
                     f"{drift.target}: {_drift_text(drift)}", tuple(details), danger=danger)
    yield from _pii_tags(base, head)
    if applied and statements:
        yield Change("schema", "schema apply", "modified", "migration",
                     f"marketops schema apply runs {len(statements)} statement(s)",
                     tuple(s.splitlines()[0] for s in statements[:12]))


def _pii_tags(base: Project, head: Project) -> Iterator[Change]:
    old = base.catalog.pii
    new = head.catalog.pii
    for ref in sorted(new - old):
        if ref[2] in base.catalog.columns(ref[0], ref[1]):
            target = ".".join(ref)
            yield Change("schema", f"{ref[0]}.{ref[1]}", "modified", "pii",
                         f"{target}: now personal data", tuple(
                             [f"affects {_listing(_dependents(head, target), 12)}"]
                             if _dependents(head, target) else []))
    for ref in sorted(old - new):
        if ref[2] in head.catalog.columns(ref[0], ref[1]):
            yield Change("schema", f"{ref[0]}.{ref[1]}", "modified", "pii",
                         f"{'.'.join(ref)}: no longer personal data",
                         ("reports may then send it to any domain, tiers may store it "
                          "unencrypted",), danger=f"{'.'.join(ref)} loses its pii tag")


# ---------------------------------------------------------------- settings

def _secret(path: str) -> bool:
    """Whether a settings path holds a secret (or its reference): never shown."""
    parts = path.split(".")
    return parts[0] == "keys" or (parts[0] == "webhooks" and parts[-1] == "url") or \
        parts[-1] in ("password", "access_key_id", "secret_access_key")


def _settings(base: Project, head: Project) -> Iterator[Change]:
    old = _flat(base.settings.model_dump(mode="json"))
    new = _flat(head.settings.model_dump(mode="json"))
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        subject = "settings." + ".".join(path.split(".")[:2])
        danger = None
        details: list[str] = []
        if _secret(path):
            summary = f"{path}: " + ("added" if before is None else "removed" if after is None
                                     else "changed") + " (a secret: not shown)"
        elif path.endswith("dsn"):
            summary = f"{path}: {mask_dsn(_show(before))} -> {mask_dsn(_show(after))}"
        else:
            summary = f"{path}: {_show(before)} -> {_show(after)}"
        if path == "reports.pii_allowed_domains":
            added = sorted(set(after or []) - set(before or []))
            if added:
                danger = f"personal data may now go to {', '.join(added)}"
        if path.startswith("webhooks.") and path.endswith(".allow_pii") and after:
            danger = f"webhook {path.split('.')[1]} may now receive personal data"
        if path.startswith("destinations."):
            name = path.split(".")[1]
            users = [f"backup/{t}" for t, loaded in sorted(head.backups.items())
                     if getattr(loaded.model, "destination", None) == name]
            if users:
                details.append(f"used by {_listing(users)}")
        yield Change("settings", subject, "modified", path.split(".")[0], summary,
                     tuple(details), danger=danger)


# ---------------------------------------------------------------- rendering


def _subjects(changes: Sequence[Change], section: str) -> list[tuple[str, list[Change]]]:
    grouped: dict[str, list[Change]] = {}
    for c in changes:
        if c.section == section:
            grouped.setdefault(c.subject, []).append(c)
    return list(grouped.items())


def _status(items: Sequence[Change]) -> str:
    statuses = {c.status for c in items}
    for status in ("added", "removed"):
        if statuses == {status}:
            return status
    return "indirect" if statuses == {"indirect"} else "modified"


_SUMMARIES = ("coverage", "schema apply")
_MARK = {"added": "+", "removed": "-", "modified": "~", "indirect": ">"}


def headline(changes: Sequence[Change]) -> str:
    # Coverage and the apply script sum up others: not counted as tiers or tables.
    counted = {key: [s for s, _ in _subjects(changes, key) if s not in _SUMMARIES]
               for key in SECTIONS}
    counts = [f"{len(counted[key])} {title.lower()}" for key, title in SECTIONS.items()
              if counted[key]]
    risky = len(dangerous(changes))
    if not changes:
        return "no changes"
    return f"changed: {', '.join(counts)}; {risky} dangerous"


def render_text(changes: Sequence[Change], base: str, head: str) -> str:
    """For a terminal: a summary, the dangerous changes, then every change by section."""
    lines = [f"marketops diff: {base} -> {head}", headline(changes)]
    risky = dangerous(changes)
    if risky:
        lines.append("")
        lines.append("Dangerous:")
        lines.extend(f"  ! {c.subject}: {c.danger}" for c in risky)
    for key, title in SECTIONS.items():
        subjects = _subjects(changes, key)
        if not subjects:
            continue
        lines.extend(["", title])
        for subject, items in subjects:
            status = _status(items)
            lines.append(f"  {_MARK[status]} {subject}" + (
                " (indirectly, through the glossary)" if status == "indirect" else ""))
            for c in items:
                flag = "!" if c.danger else " "
                lines.append(f"    {flag} {c.summary}")
                lines.extend(f"        {d}" for d in c.details)
                lines.extend(f"        | {d}" for d in c.diff)
    return "\n".join(lines) + "\n"


# What can start emphasis, code, links, HTML, entities or table cells anywhere in a line (our
# text never starts one, so list and heading markers need no escaping).
_MD_SPECIAL = str.maketrans({ch: f"\\{ch}" for ch in "\\`*_[]<>|~&"})


def _md(text: str) -> str:
    """Text that Markdown shows as written (no emphasis, links, HTML or tables)."""
    return text.translate(_MD_SPECIAL)


def _code(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(changes: Sequence[Change], base: str, head: str) -> str:
    """A pull-request comment (GitHub-flavoured Markdown)."""
    lines = ["### marketops diff", "", f"{_md(base)} → {_md(head)}", "",
             f"**{_md(headline(changes))}**"]
    risky = dangerous(changes)
    if risky:
        lines.extend(["", "> [!CAUTION]", f"> **{len(risky)} dangerous change(s)**"])
        lines.extend(f"> - {_code(c.subject)}: {_md(c.danger or '')}" for c in risky)
    for key, title in SECTIONS.items():
        subjects = _subjects(changes, key)
        if not subjects:
            continue
        lines.extend(["", f"#### {title}", ""])
        for subject, items in subjects:
            status = _status(items)
            label = {"indirect": "indirectly modified, through the glossary"}.get(status, status)
            lines.append(f"- {_code(subject)} ({label})")
            for c in items:
                if c.danger == c.summary:
                    lines.append(f"  - ⚠️ **dangerous: {_md(c.danger)}**")
                else:
                    flag = f"⚠️ **dangerous: {_md(c.danger)}** — " if c.danger else ""
                    lines.append(f"  - {flag}{_md(c.summary)}")
                lines.extend(f"    - {_md(d)}" for d in c.details)
                if c.diff:
                    lines.extend(["", "    <details><summary>SQL diff</summary>", "",
                                  "    ```diff", *(f"    {d}" for d in c.diff), "    ```", "",
                                  "    </details>", ""])
    return "\n".join(lines) + "\n"


def render_json(changes: Sequence[Change], base: str, head: str) -> str:
    return json.dumps({"base": base, "head": head, "summary": headline(changes),
                       "dangerous": len(dangerous(changes)),
                       "changes": [asdict(c) for c in changes]}, indent=2) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "github": render_markdown}


def first_error(findings: Sequence[Finding]) -> str | None:
    """The first error of a side's validation, as one line."""
    for finding in findings:
        if finding.is_error:
            return f"{finding.location}: {finding.message} [{finding.rule}]"
    return None


def row_differences(before: tuple[Sequence[str], Sequence[Sequence[Any]]],
                    after: tuple[Sequence[str], Sequence[Sequence[Any]]]) -> list[str]:
    """What running the old and the new SQL for the same slot returned, as SQLMesh's table
    diff shows it: row counts, rows only on one side, and the sums of numeric columns."""
    (old_columns, old_rows), (new_columns, new_rows) = before, after
    lines = [f"rows: {len(old_rows)} -> {len(new_rows)}"]
    shared = [c for c in new_columns if c in old_columns]
    if shared:
        def keyed(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
            index = [list(columns).index(c) for c in shared]
            return [tuple(row[i] for i in index) for row in rows]

        old_keyed, new_keyed = keyed(old_columns, old_rows), keyed(new_columns, new_rows)
        remaining = list(new_keyed)
        only_old = 0
        for row in old_keyed:
            if row in remaining:
                remaining.remove(row)
            else:
                only_old += 1
        lines.append(f"on {', '.join(shared)}: {len(old_keyed) - only_old} row(s) alike, "
                     f"{only_old} only before, {len(remaining)} only after")
    for column in shared:
        i, j = list(old_columns).index(column), list(new_columns).index(column)
        values = [r[i] for r in old_rows], [r[j] for r in new_rows]
        if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool)
               for side in values for v in side if v is not None):
            total = [sum((Decimal(str(v)) for v in side if v is not None), Decimal(0))
                     for side in values]
            if any(side for side in values) and total[0] != total[1]:
                lines.append(f"sum of {column}: {total[0]} -> {total[1]}")
    return lines
