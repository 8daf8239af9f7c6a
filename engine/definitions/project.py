"""Everything loaded from a definitions repository, each model with the file it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from engine.definitions.models.backup import BackupTier
from engine.definitions.models.glossary import Term
from engine.definitions.models.report import Report
from engine.definitions.models.schema import SchemaFile
from engine.definitions.models.settings import Settings
from engine.definitions.yamlsource import SourceDoc
from engine.validation.findings import Location

if TYPE_CHECKING:
    # sqlglot is imported where SQL is checked, not where a project is loaded: wal-push
    # loads the project once per WAL segment and needs no SQL.
    from engine.validation.sqlmemo import SqlMemo
    from engine.validation.sqltypes import ColumnRef, DeclaredSchema, SqlAnalysis, TableRef

T = TypeVar("T")


@dataclass(frozen=True)
class Loaded(Generic[T]):
    """A validated model and the YAML it was read from."""

    id: str
    model: T
    doc: SourceDoc

    def loc(self, path: Sequence[str | int] = (), *, key: bool = False) -> Location:
        return self.doc.loc(path, key=key)


@dataclass(frozen=True)
class ReportSql:
    """A query's SQL text and where it lives, to map SQL positions onto files.

    A report's text may start with the glossary terms it uses (`prefix_lines` lines, each
    term's own lines in one of `spans`); positions inside a term map onto the term's file."""

    text: str
    file: str | None = None  # set when the SQL is in its own .sql file
    prefix_lines: int = 0
    spans: tuple[TermSpan, ...] = ()
    written: str | None = None  # the SQL as written, when terms were put in front

    @property
    def own_text(self) -> str:
        """The SQL as written, without the glossary terms in front."""
        return self.text if self.written is None else self.written

    def locate(self, doc: SourceDoc, line: int, col: int) -> Location:
        for span in self.spans:
            if span.first_line <= line < span.first_line + span.lines:
                return span.sql.locate(span.doc, line - span.first_line + 1, col)
        if line <= self.prefix_lines:  # the WITH and parentheses around the terms
            line, col = 1, 1
        else:
            line -= self.prefix_lines
        if self.file is not None:
            return Location(self.file, line, col)
        return doc.text_loc(("sql",), line, col)


@dataclass(frozen=True)
class TermSpan:
    """Where a glossary term's own lines sit in a report's expanded SQL."""

    term: str
    first_line: int  # 1-based, in the expanded text
    lines: int
    sql: ReportSql
    doc: SourceDoc


def build_catalog(schemas: Sequence[SchemaFile], search_path: Sequence[str] = ("public",),
                  safe_functions: Sequence[str] = ()) -> DeclaredSchema:
    """What SQL checks need of the declared schemas: tables and views with their columns, PII
    columns, and the user functions, with those a report may call."""
    from engine.validation.sqltypes import DeclaredSchema

    tables: dict[str, dict[str, dict[str, str]]] = {}
    pii: set[ColumnRef] = set()
    functions: set[str] = set()
    safe: set[str] = set(safe_functions)
    for schema in schemas:
        name = schema.name
        tables[name] = {}
        for table_name, table in schema.tables.items():
            tables[name][table_name] = {c: col.type for c, col in table.columns.items()}
            pii.update((name, table_name, c) for c, col in table.columns.items() if col.pii)
        for view_name, view in schema.views.items():
            tables[name][view_name] = {c: col.type for c, col in view.columns.items()}
            pii.update((name, view_name, c) for c, col in view.columns.items() if col.pii)
        for signature, function in schema.functions.items():
            qualified = f"{name}.{signature.split('(')[0].strip(chr(34))}"
            functions.add(qualified)
            if function.volatility != "volatile" and not function.security_definer:
                safe.add(qualified)
    return DeclaredSchema(tables, frozenset(pii), tuple(search_path), frozenset(safe),
                   frozenset(functions))


@dataclass
class Project:
    """The whole definition set."""

    root: Path
    settings: Settings
    settings_doc: SourceDoc | None
    schemas: dict[str, Loaded[SchemaFile]] = field(default_factory=dict)
    reports: dict[str, Loaded[Report]] = field(default_factory=dict)
    report_sql: dict[str, ReportSql] = field(default_factory=dict)
    terms: dict[str, Loaded[Term]] = field(default_factory=dict)
    term_sql: dict[str, ReportSql] = field(default_factory=dict)  # each with the terms it uses
    backups: dict[str, Loaded[BackupTier]] = field(default_factory=dict)
    # The SQL of reports whose YAML did not load, still checked so one run finds everything.
    unbuilt_sql: dict[str, tuple[ReportSql, SourceDoc]] = field(default_factory=dict)
    target: str | None = None  # the target of marketops.yaml in force, None for none
    # Analyses remembered by content (validate's cache); None: always computed.
    sql_memo: SqlMemo | None = None

    def settings_loc(self, path: Sequence[str | int] = (), *, key: bool = False) -> Location:
        if self.settings_doc is None:
            return Location("marketops.yaml")
        return self.settings_doc.loc(path, key=key)

    def with_settings(self, settings: Settings, doc: SourceDoc,
                      target: str | None) -> Project:
        """This project with another target's settings. The SQL analyses computed so far are
        kept when the settings they depend on (search_path, safe_functions) are the same:
        they are most of what checking a target costs."""
        other = replace(self, settings=settings, settings_doc=doc, target=target)
        mine, theirs = self.settings.reports, settings.reports
        if (mine.search_path, mine.safe_functions) == (theirs.search_path, theirs.safe_functions):
            for name in ("catalog", "view_analyses", "analyses", "term_analyses"):
                if name in self.__dict__:
                    other.__dict__[name] = self.__dict__[name]
        return other

    @cached_property
    def catalog(self) -> DeclaredSchema:
        """The declared tables and their PII columns, as SQL checks need them."""
        return build_catalog([s.model for s in self.schemas.values()],
                             self.settings.reports.search_path,
                             self.settings.reports.safe_functions)

    def analyze(self, sql: str) -> SqlAnalysis:
        """`sql` checked against the catalog (from the memo when it has it)."""
        if self.sql_memo is not None:
            return self.sql_memo.analyze(sql, self.catalog)
        from engine.validation.sqlcheck import analyze

        return analyze(sql, self.catalog)

    def own_cte_names(self, sql: str) -> set[str]:
        """The CTE names `sql` defines itself (from the memo when it has it)."""
        if self.sql_memo is not None:
            return self.sql_memo.own_cte_names(sql)
        from engine.validation.sqlcheck import own_cte_names

        return own_cte_names(sql)

    @cached_property
    def view_analyses(self) -> dict[TableRef, SqlAnalysis]:
        """Each declared view's definition checked as a report would be, computed once."""
        return {(name, view_name): self.analyze(view.definition)
                for name, loaded in self.schemas.items()
                for view_name, view in loaded.model.views.items()}

    def through_views(self, analysis: SqlAnalysis) -> SqlAnalysis:
        """The analysis with what the views it reads read in turn (for impact and PII)."""
        views = self.view_analyses
        if not any(t in views for t in analysis.tables):
            return analysis
        for _ in range(16):  # views over views, to a depth no schema needs
            before = (len(analysis.tables), len(analysis.columns),
                      sum(len(r) for r in analysis.exposed.values()))
            for ref in list(analysis.tables):
                inner = views.get(ref)
                if inner is None:
                    continue
                analysis.tables |= inner.tables
                analysis.columns |= inner.columns
                for refs in analysis.exposed.values():
                    for column in [r for r in refs if (r[0], r[1]) == ref]:
                        refs |= inner.exposed.get(column[2], set())
            after = (len(analysis.tables), len(analysis.columns),
                     sum(len(r) for r in analysis.exposed.values()))
            if after == before:
                break
        return analysis

    @cached_property
    def analyses(self) -> dict[str, SqlAnalysis]:
        """Each report's SQL checked against the catalog, computed once."""
        return {rid: self.through_views(self.analyze(sql.text))
                for rid, sql in self.report_sql.items()}

    @cached_property
    def term_analyses(self) -> dict[str, SqlAnalysis]:
        """Each glossary term's SQL checked on its own (with the terms it uses), once."""
        return {term: self.analyze(sql.text) for term, sql in self.term_sql.items()}
