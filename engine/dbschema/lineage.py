"""Which reports and backup tiers depend on a table or column: what a schema change touches."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING

from engine.dbschema.pgnames import split_name
from engine.definitions.glossary import closure
from engine.definitions.models.backup import RestoreDrillTier
from engine.definitions.project import Project
from engine.errors import UsageError
from engine.validation.rules.backup_rules import tier_tables

if TYPE_CHECKING:
    from engine.validation.sqltypes import SqlAnalysis


@dataclass(frozen=True)
class Dependent:
    """A job that depends on the target, and how."""

    job: str
    how: str


def parse_target(project: Project, target: str) -> tuple[str, str, str | None]:
    """Check `schema.table[.column]` against the declared schema."""
    try:
        parts = split_name(target)
    except ValueError:
        parts = []
    if len(parts) not in (2, 3):
        raise UsageError(f"'{target}' is not schema.table or schema.table.column")
    schema, table = parts[0], parts[1]
    column = parts[2] if len(parts) == 3 else None
    catalog = project.catalog
    if not catalog.has_table(schema, table):
        known = [f"{s}.{t}" for s, tables in catalog.tables.items() for t in tables]
        close = get_close_matches(f"{schema}.{table}", known, n=1)
        raise UsageError(f"unknown table {schema}.{table}" +
                         (f"; did you mean {close[0]}?" if close else ""))
    if column is not None and column not in catalog.columns(schema, table):
        close = get_close_matches(column, list(catalog.columns(schema, table)), n=1)
        raise UsageError(f"unknown column {schema}.{table}.{column}" +
                         (f"; did you mean {close[0]}?" if close else ""))
    return schema, table, column


def _reads(analysis: SqlAnalysis, schema: str, table: str, column: str | None) -> bool:
    if column is None:
        return (schema, table) in analysis.tables
    return (schema, table, column) in analysis.columns


def _term_users(project: Project, term: str) -> list[Dependent]:
    found = []
    for report_id, loaded in sorted(project.reports.items()):
        depends = {n: list(t.model.uses) for n, t in project.terms.items()}
        if term in closure(loaded.model.uses, depends):
            how = "reads it" if term in loaded.model.uses else "reads it through another term"
            found.append(Dependent(f"report/{report_id}", how))
    return found


def impact(project: Project, target: str) -> list[Dependent]:
    """Every glossary term, report and backup tier that reads, returns or holds `target`
    (`schema.table[.column]`, or `glossary/<term>`: the reports that read the term)."""
    if target.startswith("glossary/"):
        term = target.removeprefix("glossary/")
        if term not in project.terms:
            close = get_close_matches(term, list(project.terms), n=1)
            raise UsageError(f"unknown glossary term '{term}'" +
                             (f"; did you mean glossary/{close[0]}?" if close else ""))
        return _term_users(project, term)
    schema, table, column = parse_target(project, target)
    found: list[Dependent] = []
    terms = sorted(t for t, a in project.term_analyses.items()
                   if _reads(a, schema, table, column))
    found.extend(Dependent(f"glossary/{t}", "reads the " + ("column" if column else "table"))
                 for t in terms)
    for report_id, analysis in sorted(project.analyses.items()):
        via = [t for t in project.reports[report_id].model.uses if t in terms]
        through = f" (through glossary {', '.join(via)})" if via else ""
        if column is None:
            if (schema, table) in analysis.tables:
                found.append(Dependent(f"report/{report_id}", f"reads the table{through}"))
            continue
        ref = (schema, table, column)
        outputs = sorted(name for name, refs in analysis.exposed.items() if ref in refs)
        if outputs:
            found.append(Dependent(f"report/{report_id}", f"returns it as "
                                   f"{', '.join(repr(o) for o in outputs)}{through}"))
        elif ref in analysis.columns:
            found.append(Dependent(f"report/{report_id}", f"reads the column{through}"))
    holders = []
    for tier_id, loaded in sorted(project.backups.items()):
        if (schema, table) in tier_tables(project, loaded.model):
            holders.append(tier_id)
            found.append(Dependent(f"backup/{tier_id}", f"backs it up ({loaded.model.kind})"))
    for tier_id, loaded in sorted(project.backups.items()):
        if isinstance(loaded.model, RestoreDrillTier):
            drilled = sorted(set(loaded.model.tiers) & set(holders))
            if drilled:
                found.append(Dependent(f"backup/{tier_id}", f"restores it in drills of "
                                       f"{', '.join(drilled)}"))
    return found
