"""Glossary terms put in front of the SQL that reads them, as CTEs, with positions kept.

The expanded text is

    WITH
    <term> AS (
    <the term's own lines>
    ),
    ...
    <the report's own lines>

where a report that starts with its own WITH has that keyword replaced in place by a comma
and spaces, so every line and column of the report's SQL keeps its place after the prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.definitions.project import ReportSql, TermSpan
from engine.definitions.yamlsource import SourceDoc

# Whitespace and comments before the first keyword, then WITH [RECURSIVE].
_LEAD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_WITH = re.compile(r"with\b(\s+recursive\b)?", re.IGNORECASE)


@dataclass(frozen=True)
class TermSource:
    """A term's own SQL and the YAML it is declared in."""

    sql: ReportSql
    doc: SourceDoc


class TermCycle(ValueError):
    """Terms that use each other in a circle."""


def closure(uses: Sequence[str], depends: Mapping[str, Sequence[str]]) -> list[str]:
    """`uses` and everything they use, each after what it reads; unknown names are left out.

    Raises TermCycle naming the circle."""
    ordered: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in ordered or name not in depends:
            return
        if name in visiting:
            circle = [*visiting[visiting.index(name):], name]
            raise TermCycle(" -> ".join(circle))
        visiting.append(name)
        for other in depends[name]:
            visit(other)
        visiting.pop()
        ordered.append(name)

    for name in uses:
        visit(name)
    return ordered


def _body(text: str) -> str:
    return text.rstrip().rstrip(";").rstrip()


def expand(own: ReportSql, terms: Sequence[tuple[str, TermSource]]) -> ReportSql:
    """`own` with `terms` (in order) in front as CTEs; `own` itself when there are none."""
    if not terms:
        return own
    text = own.text
    lead = _LEAD.match(text)
    start = lead.end() if lead else 0
    with_ = _WITH.match(text, start)
    recursive = bool(with_ and with_.group(1))
    if with_:
        # Same length, newlines kept: the report's columns stay where they were.
        blanked = re.sub(r"[^\n]", " ", with_.group(0))
        text = text[:start] + "," + blanked[1:] + text[with_.end():]
    lines = ["WITH RECURSIVE" if recursive else "WITH"]
    spans: list[TermSpan] = []
    for index, (name, source) in enumerate(terms):
        body = _body(source.sql.text)
        lines.append(f"{name} AS (")
        spans.append(TermSpan(name, len(lines) + 1, body.count("\n") + 1, source.sql,
                              source.doc))
        lines.append(body)
        lines.append(")," if index < len(terms) - 1 else ")")
    prefix = "\n".join(lines)
    return ReportSql(f"{prefix}\n{text}", own.file, prefix.count("\n") + 1, tuple(spans),
                     own.text)
