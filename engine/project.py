"""Everything loaded from a definitions repository, each model with the file it came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from engine.findings import Location
from engine.models.backup import BackupTier
from engine.models.report import Report
from engine.models.schema import SchemaFile
from engine.models.settings import Settings
from engine.yamlsource import SourceDoc

if TYPE_CHECKING:
    # sqlglot is imported where SQL is checked, not where a project is loaded: wal-push
    # loads the project once per WAL segment and needs no SQL.
    from engine.sqlcheck import Catalog, ColumnRef, SqlAnalysis

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
    """A report's SQL text and where it lives, to map SQL positions onto files."""

    text: str
    file: str | None = None  # set when the SQL is in its own .sql file

    def locate(self, doc: SourceDoc, line: int, col: int) -> Location:
        if self.file is not None:
            return Location(self.file, line, col)
        return doc.text_loc(("sql",), line, col)


@dataclass
class Project:
    """The whole definition set."""

    root: Path
    settings: Settings
    settings_doc: SourceDoc | None
    schemas: dict[str, Loaded[SchemaFile]] = field(default_factory=dict)
    reports: dict[str, Loaded[Report]] = field(default_factory=dict)
    report_sql: dict[str, ReportSql] = field(default_factory=dict)
    backups: dict[str, Loaded[BackupTier]] = field(default_factory=dict)

    def settings_loc(self, path: Sequence[str | int] = (), *, key: bool = False) -> Location:
        if self.settings_doc is None:
            return Location("marketops.yaml")
        return self.settings_doc.loc(path, key=key)

    @cached_property
    def catalog(self) -> Catalog:
        """The declared tables and their PII columns, as SQL checks need them."""
        from engine.sqlcheck import Catalog

        tables: dict[str, dict[str, dict[str, str]]] = {}
        pii: set[ColumnRef] = set()
        for name, loaded in self.schemas.items():
            tables[name] = {}
            for table_name, table in loaded.model.tables.items():
                tables[name][table_name] = {c: col.type for c, col in table.columns.items()}
                pii.update((name, table_name, c) for c, col in table.columns.items() if col.pii)
        return Catalog(tables, frozenset(pii))

    @cached_property
    def analyses(self) -> dict[str, SqlAnalysis]:
        """Each report's SQL checked against the catalog, computed once."""
        from engine.sqlcheck import analyze

        return {rid: analyze(sql.text, self.catalog) for rid, sql in self.report_sql.items()}
