"""Drift between the declared schema and a live one (both as models), and the statements
`schema apply` runs to add what is missing. Apply never drops or rewrites: removing or changing
objects is a migration a person writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine import ddl
from engine.models.schema import Column, ForeignKey, Index, SchemaFile, Table
from engine.pgtypes import parse_type

_CAST = re.compile(r"::[a-z_ ]+(\(\d+(,\s*\d+)?\))?(\[\])*")
_QUOTED_NUMBER = re.compile(r"'(-?\d+(\.\d+)?)'")


def normalize_expression(text: str | None) -> str | None:
    """An SQL expression in a comparable form: no casts, no outer parentheses, lowercase."""
    if text is None:
        return None
    value = " ".join(text.strip().lower().split())
    value = _CAST.sub("", value)
    value = _QUOTED_NUMBER.sub(r"\1", value)
    while value.startswith("(") and value.endswith(")") and _balanced(value[1:-1]):
        value = value[1:-1].strip()
    return {"current_timestamp": "now()", "transaction_timestamp()": "now()"}.get(value, value)


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


@dataclass(frozen=True)
class Drift:
    """One difference: what, where, as declared and as found live."""

    kind: str
    target: str
    declared: str | None = None
    live: str | None = None

    @property
    def fixable(self) -> bool:
        """Whether `schema apply` creates it (something declared is missing, or a comment)."""
        return self.kind.startswith("missing") or self.kind == "comment"

    def __str__(self) -> str:
        if self.kind.startswith(("missing", "extra")):
            detail = self.declared or self.live
            return f"{self.target}: {self.kind}" + (f" ({detail})" if detail else "")
        return f"{self.target}: {self.kind} differs: declared {self.declared!s}, live {self.live!s}"


def _type_key(column: Column) -> str:
    parsed = parse_type(column.type)
    return f"{parsed.storage_name}{parsed.sql()[len(parsed.name):]}"


def _is_serial(column: Column) -> bool:
    return parse_type(column.type).name in ("smallserial", "serial", "bigserial")


def _column_drift(target: str, mine: Column, live: Column, primary: bool) -> Iterator[Drift]:
    if _type_key(mine) != _type_key(live):
        yield Drift("type", target, parse_type(mine.type).sql(), parse_type(live.type).sql())
    declared_nullable = mine.nullable and not primary
    if declared_nullable != live.nullable:
        yield Drift("nullable", target, str(declared_nullable).lower(),
                    str(live.nullable).lower())
    if mine.identity != live.identity:
        yield Drift("identity", target, str(mine.identity).lower(), str(live.identity).lower())
    serial_default = _is_serial(mine) and (live.default or "").startswith("nextval(")
    if not serial_default and normalize_expression(mine.default) != \
            normalize_expression(live.default):
        yield Drift("default", target, mine.default, live.default)
    if (mine.description or None) != (live.description or None):
        yield Drift("comment", target, mine.description, live.description)


def _fk_key(fk: ForeignKey) -> tuple[object, ...]:
    return (tuple(fk.columns), fk.references.table, tuple(fk.references.columns), fk.on_delete)


def _fk_text(fk: ForeignKey) -> str:
    return (f"({', '.join(fk.columns)}) -> {fk.references.table}"
            f"({', '.join(fk.references.columns)}) on delete {fk.on_delete.value}")


def _index_key(index: Index) -> tuple[object, ...]:
    return (tuple(index.columns), index.unique, index.method, normalize_expression(index.where))


def _index_text(index: Index) -> str:
    where = f" where {index.where}" if index.where else ""
    unique = "unique " if index.unique else ""
    return f"{unique}{index.method.value} ({', '.join(index.columns)}){where}"


def _table_drift(target: str, mine: Table, live: Table) -> Iterator[Drift]:
    for name, column in mine.columns.items():
        if name not in live.columns:
            yield Drift("missing column", f"{target}.{name}", parse_type(column.type).sql())
        else:
            yield from _column_drift(f"{target}.{name}", column, live.columns[name],
                                     name in mine.primary_key)
    for name, column in live.columns.items():
        if name not in mine.columns:
            yield Drift("extra column", f"{target}.{name}", None, parse_type(column.type).sql())
    if mine.primary_key != live.primary_key:
        kind = "missing primary key" if not live.primary_key else "primary key"
        yield Drift(kind, target, ", ".join(mine.primary_key) or None,
                    ", ".join(live.primary_key) or None)
    yield from _set_drift(target, "unique constraint",
                          {tuple(u): ", ".join(u) for u in mine.unique},
                          {tuple(u): ", ".join(u) for u in live.unique})
    yield from _set_drift(target, "foreign key", {_fk_key(f): _fk_text(f) for f in
                                                  mine.foreign_keys},
                          {_fk_key(f): _fk_text(f) for f in live.foreign_keys})
    yield from _set_drift(target, "index", {_index_key(i): _index_text(i) for i in mine.indexes},
                          {_index_key(i): _index_text(i) for i in live.indexes})
    if (mine.description or None) != (live.description or None):
        yield Drift("comment", target, mine.description, live.description)


def _set_drift(target: str, what: str, mine: dict[tuple[object, ...], str],
               live: dict[tuple[object, ...], str]) -> Iterator[Drift]:
    for key, text in mine.items():
        if key not in live:
            yield Drift(f"missing {what}", target, text)
    for key, text in live.items():
        if key not in mine:
            yield Drift(f"extra {what}", target, None, text)


def diff(declared: dict[str, SchemaFile], live: dict[str, SchemaFile]) -> list[Drift]:
    """Every difference between the declared schemas and the live ones."""
    drift: list[Drift] = []
    for name, schema in sorted(declared.items()):
        other = live.get(name)
        if other is None:
            drift.append(Drift("missing schema", name, f"{len(schema.tables)} tables"))
            continue
        if (schema.description or None) != (other.description or None):
            drift.append(Drift("comment", name, schema.description, other.description))
        for table_name, table in schema.tables.items():
            target = f"{name}.{table_name}"
            if table_name not in other.tables:
                drift.append(Drift("missing table", target))
            else:
                drift.extend(_table_drift(target, table, other.tables[table_name]))
        drift.extend(Drift("extra table", f"{name}.{t}") for t in other.tables
                     if t not in schema.tables)
    drift.extend(Drift("extra schema", name) for name in sorted(live) if name not in declared)
    return drift


def apply_statements(declared: dict[str, SchemaFile], live: dict[str, SchemaFile]) -> list[str]:
    """What to run so that everything declared exists: create missing schemas, tables, columns,
    keys, foreign keys and indexes, and set comments. Nothing is dropped or altered."""
    creates: list[str] = []
    constraints: list[str] = []
    comments: list[str] = []
    for name, schema in sorted(declared.items()):
        other = live.get(name)
        if other is None:
            creates.append(f"CREATE SCHEMA {ddl.ident(name)};")
        if other is None or (schema.description or None) != (other.description or None):
            comments.append(ddl.comment_schema(schema))
        for table_name, table in schema.tables.items():
            existing = other.tables.get(table_name) if other else None
            creates.extend(_table_statements(name, table_name, table, existing))
            constraints.extend(_fk_and_index_statements(name, table_name, table, existing))
            comments.extend(_comment_statements(name, table_name, table, existing))
    return creates + constraints + comments


def _table_statements(schema: str, name: str, table: Table, live: Table | None) -> list[str]:
    if live is None:
        return [ddl.create_table(schema, name, table)]
    statements = []
    table_sql = ddl.qualified(schema, name)
    for column_name, column in table.columns.items():
        if column_name not in live.columns:
            statements.append(f"ALTER TABLE {table_sql} ADD COLUMN "
                              f"{ddl.column_sql(column_name, column, False)};")
    if table.primary_key and not live.primary_key:
        statements.append(f"ALTER TABLE {table_sql} ADD CONSTRAINT "
                          f"{ddl.ident(ddl.pk_name(name))} PRIMARY KEY "
                          f"({', '.join(ddl.ident(c) for c in table.primary_key)});")
    live_unique = {tuple(u) for u in live.unique}
    for unique in table.unique:
        if tuple(unique) not in live_unique:
            statements.append(f"ALTER TABLE {table_sql} ADD CONSTRAINT "
                              f"{ddl.ident(ddl.unique_name(name, unique))} UNIQUE "
                              f"({', '.join(ddl.ident(c) for c in unique)});")
    return statements


def _fk_and_index_statements(schema: str, name: str, table: Table, live: Table | None
                             ) -> list[str]:
    live_fks = {_fk_key(f) for f in live.foreign_keys} if live else set()
    live_indexes = {_index_key(i) for i in live.indexes} if live else set()
    statements = [ddl.add_foreign_key(schema, name, fk) for fk in table.foreign_keys
                  if _fk_key(fk) not in live_fks]
    statements.extend(ddl.create_index(schema, name, index) for index in table.indexes
                      if _index_key(index) not in live_indexes)
    return statements


def _comment_statements(schema: str, name: str, table: Table, live: Table | None) -> list[str]:
    statements = []
    if (table.description or None) != ((live.description if live else None) or None):
        statements.append(ddl.comment_table(schema, name, table.description))
    for column_name, column in table.columns.items():
        live_column = live.columns.get(column_name) if live else None
        current = live_column.description if live_column else None
        if (column.description or None) != (current or None):
            statements.append(ddl.comment_column(schema, name, column_name, column.description))
    return statements
