"""Which reports and backup tiers depend on a table or column: what a schema change touches."""

from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches

from engine.errors import UsageError
from engine.models.backup import RestoreDrillTier
from engine.project import Project
from engine.rules.backup_rules import tier_tables


@dataclass(frozen=True)
class Dependent:
    """A job that depends on the target, and how."""

    job: str
    how: str


def parse_target(project: Project, target: str) -> tuple[str, str, str | None]:
    """Check `schema.table[.column]` against the declared schema."""
    parts = target.split(".")
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


def impact(project: Project, target: str) -> list[Dependent]:
    """Every report and backup tier that reads, returns or holds `target`."""
    schema, table, column = parse_target(project, target)
    found: list[Dependent] = []
    for report_id, analysis in sorted(project.analyses.items()):
        if column is None:
            if (schema, table) in analysis.tables:
                found.append(Dependent(f"report/{report_id}", "reads the table"))
            continue
        ref = (schema, table, column)
        outputs = sorted(name for name, refs in analysis.exposed.items() if ref in refs)
        if outputs:
            found.append(Dependent(f"report/{report_id}",
                                   f"returns it as {', '.join(repr(o) for o in outputs)}"))
        elif ref in analysis.columns:
            found.append(Dependent(f"report/{report_id}", "reads the column"))
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
