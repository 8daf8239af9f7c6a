"""Drift between the declared schema and a live one (both as models), and the statements
`schema apply` runs to add what is missing. Apply never drops or rewrites: removing or changing
objects is a migration a person writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.dbschema import ddl
from engine.dbschema.pgnames import split_name, split_qualified
from engine.dbschema.pgtypes import parse_type
from engine.definitions.models.schema import (
    Column,
    Domain,
    EnumType,
    ForeignKey,
    Function,
    Index,
    SchemaFile,
    Sequence,
    Table,
    View,
)

_CAST = re.compile(r'::(?:"[^"]+"|[a-z_][a-z0-9_$]*)(?:\.(?:"[^"]+"|[a-z_][a-z0-9_$ ]*))?'
                   r"[a-z_ ]*(\(\d+(,\s*\d+)?\))?(\[\])*")
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
    if _identity(mine) != _identity(live):
        yield Drift("identity", target, _identity(mine), _identity(live))
    if normalize_expression(mine.generated) != normalize_expression(live.generated) or \
            (mine.generated is not None and mine.virtual != live.virtual):
        yield Drift("generated", target, mine.generated, live.generated)
    serial_default = _is_serial(mine) and (live.default or "").startswith("nextval(")
    if not serial_default and normalize_expression(mine.default) != \
            normalize_expression(live.default):
        yield Drift("default", target, mine.default, live.default)
    if (mine.description or None) != (live.description or None):
        yield Drift("comment", target, mine.description, live.description)


def _identity(column: Column) -> str:
    return {True: "by default", False: "none"}.get(column.identity, str(column.identity)) \
        if isinstance(column.identity, bool) else column.identity


def _fk_key(fk: ForeignKey) -> tuple[object, ...]:
    return (tuple(fk.columns), split_qualified(fk.references.table),
            tuple(fk.references.columns), fk.on_delete)


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
    yield from _set_drift(target, "check constraint",
                          {(normalize_expression(c.expression),): c.expression
                           for c in mine.checks},
                          {(normalize_expression(c.expression),): c.expression
                           for c in live.checks})
    for what in ("partition_by", "partition_bound"):
        declared, found = getattr(mine, what), getattr(live, what)
        if normalize_expression(declared) != normalize_expression(found):
            yield Drift(what.replace("_", " "), target, declared, found)
    if _parent(target, mine.partition_of) != _parent(target, live.partition_of):
        yield Drift("partition of", target, mine.partition_of, live.partition_of)
    if (mine.description or None) != (live.description or None):
        yield Drift("comment", target, mine.description, live.description)


def _parent(target: str, partition_of: str | None) -> tuple[str, ...] | None:
    if partition_of is None:
        return None
    parts = split_name(partition_of)
    return tuple(parts) if len(parts) == 2 else (split_name(target)[0], parts[0])


def _set_drift(target: str, what: str, mine: dict[tuple[object, ...], str],
               live: dict[tuple[object, ...], str]) -> Iterator[Drift]:
    for key, text in mine.items():
        if key not in live:
            yield Drift(f"missing {what}", target, text)
    for key, text in live.items():
        if key not in mine:
            yield Drift(f"extra {what}", target, None, text)


def _type_text(spec: EnumType | Domain) -> str:
    if isinstance(spec, EnumType):
        return "enum (" + ", ".join(spec.enum) + ")"
    checks = " ".join(f"check ({normalize_expression(c.expression)})" for c in spec.checks)
    parts = [f"domain over {parse_type(spec.domain).sql()}",
             "not null" if not spec.nullable else "",
             f"default {normalize_expression(spec.default)}" if spec.default else "", checks]
    return " ".join(p for p in parts if p)


def _sequence_text(sequence: Sequence) -> str:
    return (f"{parse_type(sequence.type).sql()} start {sequence.start} increment "
            f"{sequence.increment} min {sequence.min} max {sequence.max} cache "
            f"{sequence.cache}{' cycle' if sequence.cycle else ''}"
            f"{' owned by ' + sequence.owned_by if sequence.owned_by else ''}")


def _serial_sequences(schema: SchemaFile) -> set[str]:
    """Sequences PostgreSQL makes for serial columns: declared by the column's type."""
    names = set()
    for table_name, table in schema.tables.items():
        for column_name, column in table.columns.items():
            if _is_serial(column):
                names.add(f"{table_name}_{column_name}_seq")
    return names


def _view_drift(target: str, mine: View, live: View) -> Iterator[Drift]:
    if mine.materialized != live.materialized:
        yield Drift("materialized", target, str(mine.materialized).lower(),
                    str(live.materialized).lower())
    declared = [(n, parse_type(c.type).sql()) for n, c in mine.columns.items()]
    found = [(n, parse_type(c.type).sql()) for n, c in live.columns.items()]
    if declared != found:
        yield Drift("columns", target, ", ".join(f"{n} {t}" for n, t in declared),
                    ", ".join(f"{n} {t}" for n, t in found))
    if _definition(mine.definition) != _definition(live.definition):
        yield Drift("definition", target, " ".join(mine.definition.split()),
                    " ".join(live.definition.split()))
    yield from _set_drift(target, "index", {_index_key(i): _index_text(i) for i in mine.indexes},
                          {_index_key(i): _index_text(i) for i in live.indexes})
    if (mine.description or None) != (live.description or None):
        yield Drift("comment", target, mine.description, live.description)
    for name, column in mine.columns.items():
        other = live.columns.get(name)
        if other is not None and (column.description or None) != (other.description or None):
            yield Drift("comment", f"{target}.{name}", column.description, other.description)


def _definition(text: str) -> str:
    return " ".join(text.strip().rstrip(";").lower().split())


def _schema_objects_drift(name: str, schema: SchemaFile, other: SchemaFile) -> Iterator[Drift]:
    for extension in schema.extensions:
        if extension not in other.extensions:
            yield Drift("missing extension", f"{name}.{extension}")
    for extension in other.extensions:
        if extension not in schema.extensions:
            yield Drift("extra extension", f"{name}.{extension}")
    yield from _named_drift(name, "type", {n: _type_text(t) for n, t in schema.types.items()},
                            {n: _type_text(t) for n, t in other.types.items()})
    serial = _serial_sequences(schema)
    yield from _named_drift(name, "sequence",
                            {n: _sequence_text(q) for n, q in schema.sequences.items()},
                            {n: _sequence_text(q) for n, q in other.sequences.items()
                             if n not in serial or n in schema.sequences})
    yield from _named_drift(
        name, "function",
        {n: f"{f.volatility}{' security definer' if f.security_definer else ''} "
            f"{_definition(f.definition)}" for n, f in schema.functions.items()},
        {n: f"{f.volatility}{' security definer' if f.security_definer else ''} "
            f"{_definition(f.definition)}" for n, f in other.functions.items()}, brief=True)
    for view_name, view in schema.views.items():
        if view_name not in other.views:
            yield Drift("missing view", f"{name}.{view_name}")
        else:
            yield from _view_drift(f"{name}.{view_name}", view, other.views[view_name])
    for view_name in other.views:
        if view_name not in schema.views:
            yield Drift("extra view", f"{name}.{view_name}")


def _named_drift(schema: str, what: str, mine: dict[str, str], live: dict[str, str],
                 brief: bool = False) -> Iterator[Drift]:
    for name, text in mine.items():
        target = f"{schema}.{name}"
        if name not in live:
            yield Drift(f"missing {what}", target, None if brief else text)
        elif live[name] != text:
            yield Drift(what, target, text, live[name])
    for name, text in live.items():
        if name not in mine:
            yield Drift(f"extra {what}", f"{schema}.{name}", None, None if brief else text)


def needs_migration(drift: list[Drift]) -> list[Drift]:
    """The differences `schema apply` leaves for a migration: all but what is live and not
    declared (left alone: apply never drops)."""
    return [d for d in drift if not d.kind.startswith("extra")]


def left_alone(drift: list[Drift]) -> list[Drift]:
    """What is live but not declared: `schema apply` never drops it."""
    return [d for d in drift if d.kind.startswith("extra")]


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
        drift.extend(_schema_objects_drift(name, schema, other))
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
    """What to run so that everything declared exists, in dependency order: schemas,
    extensions, types, functions, sequences, tables and partitions, keys, indexes, views,
    comments. Nothing is dropped or altered, and nothing that exists is created again."""
    empty = SchemaFile(name="_", owner="_", description="")
    head: list[str] = []
    types: list[str] = []
    functions: list[str] = []
    creates: list[str] = []
    partitions: list[tuple[int, str]] = []
    constraints: list[str] = []
    views: list[tuple[str, str, View]] = []
    late: list[str] = []
    comments: list[str] = []
    row_functions: list[str] = []
    relations = [ddl.qualified(n, t) for n, s in declared.items() for t in [*s.tables, *s.views]]
    for name, schema in sorted(declared.items()):
        other = live.get(name)
        have = other or empty
        if other is None:
            head.append(f"CREATE SCHEMA IF NOT EXISTS {ddl.ident(name)};")
        if other is None or (schema.description or None) != (other.description or None):
            comments.append(ddl.comment_schema(schema))
        head.extend(ddl.create_extension(name, e) for e in schema.extensions
                    if e not in have.extensions)
        types.extend(_type_statements(name, schema, have))
        for function_name, function in _functions_in_order(schema):
            if function_name not in have.functions:
                # A function returning or taking a table's row type comes after the table.
                (row_functions if _uses_row_type(function, relations)
                 else functions).append(ddl.create_function(function))
        creates.extend(ddl.create_sequence(name, n, q) for n, q in schema.sequences.items()
                       if n not in have.sequences)
        for table_name, table in schema.tables.items():
            existing = have.tables.get(table_name)
            statements = _table_statements(name, table_name, table, existing)
            if table.partition_of and existing is None:
                partitions.extend((_depth(schema, table_name), s) for s in statements)
            else:
                creates.extend(statements)
            constraints.extend(_fk_and_index_statements(name, table_name, table, existing))
            comments.extend(_comment_statements(name, table_name, table, existing))
        constraints[:0] = [s for n, q in schema.sequences.items() if n not in have.sequences
                           and (s := ddl.sequence_owner(name, n, q)) is not None]
        for view_name, view in schema.views.items():
            if view_name not in have.views:
                views.append((name, view_name, view))
                late.extend(ddl.create_index(name, view_name, i) for i in view.indexes)
                comments.extend(ddl.comment_view(name, view_name, view))
    if functions or row_functions:
        # Function bodies may read tables created later in this script (as pg_dump does).
        head.insert(0, "SET LOCAL check_function_bodies = false;")
    ordered_partitions = [s for _, s in sorted(partitions, key=lambda p: p[0])]
    return (head + types + functions + creates + ordered_partitions + row_functions
            + constraints + [ddl.create_view(s, n, v) for s, n, v in _views_in_order(views)] + late
            + comments)


def _depth(schema: SchemaFile, name: str) -> int:
    depth, current = 0, schema.tables.get(name)
    while current is not None and current.partition_of and depth < 32:
        depth += 1
        current = schema.tables.get(split_name(current.partition_of)[-1])
    return depth


def _type_statements(name: str, schema: SchemaFile, have: SchemaFile) -> list[str]:
    missing = {n: t for n, t in schema.types.items() if n not in have.types}
    enums = [ddl.create_type(name, n, t) for n, t in missing.items() if isinstance(t, EnumType)]
    domains = {n: t for n, t in missing.items() if isinstance(t, Domain)}
    ordered: list[str] = []
    # A domain over another domain comes after it.
    while domains:
        ready = [n for n, t in domains.items()
                 if not any(parse_type(t.domain).name.endswith(ddl.ident(other))
                            for other in domains if other != n)] or list(domains)[:1]
        ordered.extend(ready)
        for n in ready:
            del domains[n]
    statements = enums + [ddl.create_type(name, n, missing[n]) for n in ordered]
    statements.extend(c for n, t in missing.items()
                      if (c := ddl.comment_type(name, n, t)) is not None)
    return statements


def _uses_row_type(function: Function, relations: list[str]) -> bool:
    text = function.definition
    header = text[:text.find(" AS ")] if " AS " in text else text
    return any(re.search(rf"(?<![\w.\"]){re.escape(r)}(?![\w\"])", header) for r in relations)


def _functions_in_order(schema: SchemaFile) -> list[tuple[str, Function]]:
    # Aggregates name their state functions, which must exist first.
    return sorted(schema.functions.items(),
                  key=lambda item: "aggregate" in item[1].definition[:40].lower())


def _views_in_order(views: list[tuple[str, str, View]]) -> list[tuple[str, str, View]]:
    """Views after the views they read (by name in their definition), else as declared."""
    pending = list(views)
    ordered: list[tuple[str, str, View]] = []
    while pending:
        names = {n for _, n, _ in pending}
        ready = [item for item in pending if not any(
            re.search(rf"\b{re.escape(other)}\b", item[2].definition)
            for other in names if other != item[1])] or pending[:1]
        ordered.extend(ready)
        pending = [item for item in pending if item not in ready]
    return ordered


def _table_statements(schema: str, name: str, table: Table, live: Table | None) -> list[str]:
    if live is None:
        return [ddl.create_table(schema, name, table)]
    statements: list[str] = []
    table_sql = ddl.qualified(schema, name)
    live_checks = {normalize_expression(c.expression) for c in live.checks}
    statements.extend(f"ALTER TABLE {table_sql} ADD {ddl.check_sql(c)};" for c in table.checks
                      if normalize_expression(c.expression) not in live_checks)
    for column_name, column in table.columns.items():
        if column_name not in live.columns and not table.partition_of:
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
