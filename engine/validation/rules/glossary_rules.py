"""Rules on the glossary: each term's SQL, and reports reading the terms they list."""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.definitions.loader import GLOSSARY_DIR
from engine.definitions.project import Project
from engine.validation.findings import Finding, Severity
from engine.validation.rules import rule


@rule("glossary")
def term_sql_is_valid(project: Project) -> Iterator[Finding]:
    """A term is one read-only SELECT over declared tables, columns and other terms."""
    for term, analysis in project.term_analyses.items():
        loaded = project.terms[term]
        sql = project.term_sql[term]
        for problem in analysis.problems:
            yield Finding(sql.locate(loaded.doc, problem.line, problem.col), problem.message,
                          problem.rule)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.\"]){re.escape(name)}(?![\w\"])", text, re.IGNORECASE) is not None


@rule("glossary")
def reports_read_the_terms_they_list(project: Project) -> Iterator[Finding]:
    """Every term a report lists under `uses` is read by its SQL, and not redefined there."""
    for report_id, loaded in project.reports.items():
        sql = project.report_sql.get(report_id)
        if sql is None or not loaded.model.uses:  # nothing to check: spare a second parse
            continue
        own = sql.own_text
        redefined = project.own_cte_names(own) & set(loaded.model.uses)
        for index, term in enumerate(loaded.model.uses):
            if term in redefined:
                yield Finding(loaded.loc(("uses", index)), f"the SQL defines its own '{term}'; "
                              f"rename that CTE, the glossary term '{term}' is put in front "
                              "under this name", "glossary")
            elif term in project.terms and not _mentions(own, term):
                yield Finding(loaded.loc(("uses", index)), f"uses: the SQL never reads "
                              f"'{term}'; remove it from `uses`", "glossary", Severity.WARNING)


@rule("glossary")
def every_term_is_used(project: Project) -> Iterator[Finding]:
    """A term no report or other term reads is dead text: warn, so it is removed or used."""
    read = {t for r in project.reports.values() for t in r.model.uses}
    read |= {t for term in project.terms.values() for t in term.model.uses}
    for name, loaded in project.terms.items():
        if name not in read:
            yield Finding(loaded.loc(), f"glossary term '{name}' is used by no report; list it "
                          f"under a report's `uses` or remove {GLOSSARY_DIR}/{name}.yaml",
                          "glossary", Severity.WARNING)
