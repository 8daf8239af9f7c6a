"""What SQL checks take and give: the catalog of declared tables and a query's analysis.

Apart from engine.validation.sqlcheck so that a validation answered from the cache never
imports sqlglot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot.schema import MappingSchema

ColumnRef = tuple[str, str, str]
TableRef = tuple[str, str]


@dataclass(frozen=True)
class DeclaredSchema:
    """The declared tables: schema -> table -> column -> type, and which columns hold PII."""

    tables: dict[str, dict[str, dict[str, str]]]
    pii: frozenset[ColumnRef] = frozenset()
    search_path: tuple[str, ...] = ("public",)
    # schema.name of user-defined functions: those a report may call, and all declared.
    safe_functions: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    _mapping: MappingSchema | None = field(default=None, compare=False, repr=False)

    def has_table(self, schema: str, table: str) -> bool:
        return table in self.tables.get(schema, {})

    def columns(self, schema: str, table: str) -> dict[str, str]:
        return self.tables.get(schema, {}).get(table, {})

    def schemas_with_table(self, table: str) -> list[str]:
        return sorted(s for s, tables in self.tables.items() if table in tables)

    def mapping(self) -> MappingSchema:
        """sqlglot's view of the catalog, built once (it is costly for 100+ tables)."""
        from sqlglot.schema import MappingSchema

        if self._mapping is None:
            tables: dict[str, object] = dict(self.tables)
            object.__setattr__(self, "_mapping",
                               MappingSchema(tables, dialect="postgres", normalize=False))
        assert self._mapping is not None
        return self._mapping


@dataclass(frozen=True)
class SqlProblem:
    """A problem in the SQL text, at (line, col) within it."""

    message: str
    rule: str
    line: int = 1
    col: int = 1


@dataclass
class SqlAnalysis:
    """What a query reads, needs and returns."""

    problems: list[SqlProblem] = field(default_factory=list)
    tables: set[TableRef] = field(default_factory=set)
    columns: set[ColumnRef] = field(default_factory=set)
    parameters: dict[str, tuple[int, int]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    exposed: dict[str, set[ColumnRef]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems
