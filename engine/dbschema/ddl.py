"""PostgreSQL DDL from the declared schema: names, full creation scripts, and the statements
that bring a live database up to the declaration (used by `schema apply`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from engine.dbschema.pgnames import (
    RESERVED,
    ident,
    literal,
    qualified,
    split_name,
    split_qualified,
)
from engine.dbschema.pgtypes import parse_type
from engine.definitions.models.schema import (
    Check,
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

__all__ = ["RESERVED", "ident", "qualified"]


def _limit(name: str) -> str:
    # PostgreSQL truncates names at 63 bytes; keep derived names unique by hashing the rest.
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:54]}_{digest}"


def pk_name(table: str) -> str:
    return _limit(f"{table}_pkey")


def unique_name(table: str, columns: Iterable[str]) -> str:
    return _limit(f"{table}_{'_'.join(columns)}_key")


def fk_name(table: str, fk: ForeignKey) -> str:
    return fk.name or _limit(f"{table}_{'_'.join(fk.columns)}_fkey")


def index_name(table: str, index: Index) -> str:
    return index.name or _limit(f"{table}_{'_'.join(index.columns)}_idx")


def column_sql(name: str, column: Column, primary: bool) -> str:
    parts = [ident(name), parse_type(column.type).sql()]
    if column.identity:
        parts.append(f"GENERATED {'ALWAYS' if column.identity == 'always' else 'BY DEFAULT'} "
                     "AS IDENTITY")
    if column.generated is not None:
        parts.append(f"GENERATED ALWAYS AS ({column.generated}) "
                     f"{'VIRTUAL' if column.virtual else 'STORED'}")
    elif column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    if not column.nullable or primary:
        parts.append("NOT NULL")
    return " ".join(parts)


def _columns(names: Iterable[str]) -> str:
    return ", ".join(ident(n) for n in names)


def check_sql(check: Check) -> str:
    name = f"CONSTRAINT {ident(check.name)} " if check.name else ""
    return f"{name}CHECK ({check.expression})"


def _parent(schema: str, partition_of: str) -> str:
    parts = split_name(partition_of)
    return qualified(*parts) if len(parts) == 2 else qualified(schema, parts[0])


def create_table(schema: str, name: str, table: Table) -> str:
    """CREATE TABLE with its columns, primary key, unique and check constraints."""
    if table.partition_of:
        # A partition takes its columns from its parent; what is its own follows.
        lines = [f"CONSTRAINT {ident(pk_name(name))} PRIMARY KEY "
                 f"({_columns(table.primary_key)})"] if table.primary_key else []
        lines.extend(check_sql(c) for c in table.checks)
        joined = ",\n    ".join(lines)
        body = f" (\n    {joined}\n)" if lines else ""
        bound = table.partition_bound or "DEFAULT"
        sub = f" PARTITION BY {table.partition_by}" if table.partition_by else ""
        return (f"CREATE TABLE {qualified(schema, name)} PARTITION OF "
                f"{_parent(schema, table.partition_of)}{body} {bound}{sub};")
    lines = [column_sql(c, col, c in table.primary_key) for c, col in table.columns.items()]
    if table.primary_key:
        lines.append(f"CONSTRAINT {ident(pk_name(name))} PRIMARY KEY "
                     f"({_columns(table.primary_key)})")
    lines.extend(f"CONSTRAINT {ident(unique_name(name, u))} UNIQUE ({_columns(u)})"
                 for u in table.unique)
    lines.extend(check_sql(c) for c in table.checks)
    body = ",\n    ".join(lines)
    partition = f" PARTITION BY {table.partition_by}" if table.partition_by else ""
    return f"CREATE TABLE {qualified(schema, name)} (\n    {body}\n){partition};"


def add_foreign_key(schema: str, name: str, fk: ForeignKey) -> str:
    target_schema, target_table = split_qualified(fk.references.table)
    on_delete = f" ON DELETE {fk.on_delete.value.upper()}" if fk.on_delete.value != \
        "no action" else ""
    return (f"ALTER TABLE {qualified(schema, name)} ADD CONSTRAINT {ident(fk_name(name, fk))} "
            f"FOREIGN KEY ({_columns(fk.columns)}) REFERENCES "
            f"{qualified(target_schema, target_table)} ({_columns(fk.references.columns)})"
            f"{on_delete};")


def create_index(schema: str, name: str, index: Index) -> str:
    unique = "UNIQUE " if index.unique else ""
    method = f" USING {index.method.value}" if index.method.value != "btree" else ""
    where = f" WHERE {index.where}" if index.where else ""
    return (f"CREATE {unique}INDEX {ident(index_name(name, index))} ON "
            f"{qualified(schema, name)}{method} ({_columns(index.columns)}){where};")


def create_extension(schema: str, extension: str) -> str:
    return f"CREATE EXTENSION IF NOT EXISTS {ident(extension)} WITH SCHEMA {ident(schema)};"


def create_type(schema: str, name: str, spec: EnumType | Domain) -> str:
    if isinstance(spec, EnumType):
        labels = ", ".join(literal(label) for label in spec.enum)
        return f"CREATE TYPE {qualified(schema, name)} AS ENUM ({labels});"
    parts = [f"CREATE DOMAIN {qualified(schema, name)} AS {parse_type(spec.domain).sql()}"]
    if spec.default is not None:
        parts.append(f"DEFAULT {spec.default}")
    if not spec.nullable:
        parts.append("NOT NULL")
    parts.extend(check_sql(c) for c in spec.checks)
    return " ".join(parts) + ";"


def create_sequence(schema: str, name: str, sequence: Sequence) -> str:
    parts = [f"CREATE SEQUENCE {qualified(schema, name)} AS {parse_type(sequence.type).sql()}",
             f"START WITH {sequence.start}", f"INCREMENT BY {sequence.increment}"]
    parts.append(f"MINVALUE {sequence.min}" if sequence.min is not None else "NO MINVALUE")
    parts.append(f"MAXVALUE {sequence.max}" if sequence.max is not None else "NO MAXVALUE")
    parts.append(f"CACHE {sequence.cache}")
    if sequence.cycle:
        parts.append("CYCLE")
    return " ".join(parts) + ";"


def sequence_owner(schema: str, name: str, sequence: Sequence) -> str | None:
    if not sequence.owned_by:
        return None
    table, column = split_name(sequence.owned_by)[-2:]
    return (f"ALTER SEQUENCE {qualified(schema, name)} OWNED BY "
            f"{qualified(schema, table)}.{ident(column)};")


def create_function(function: Function) -> str:
    text = function.definition.strip()
    return text if text.endswith(";") else text + ";"


def create_view(schema: str, name: str, view: View) -> str:
    kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
    body = view.definition.strip().rstrip(";")
    return f"CREATE {kind} {qualified(schema, name)} AS\n{body};"


def comment_view(schema: str, name: str, view: View) -> list[str]:
    kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
    statements = []
    if view.description:
        statements.append(f"COMMENT ON {kind} {qualified(schema, name)} IS "
                          f"{literal(view.description)};")
    statements.extend(comment_column(schema, name, c, col.description)
                      for c, col in view.columns.items() if col.description)
    return statements


def comment_type(schema: str, name: str, spec: EnumType | Domain) -> str | None:
    if not spec.description:
        return None
    kind = "TYPE" if isinstance(spec, EnumType) else "DOMAIN"
    return f"COMMENT ON {kind} {qualified(schema, name)} IS {literal(spec.description)};"


def comment_schema(schema: SchemaFile) -> str:
    return f"COMMENT ON SCHEMA {ident(schema.name)} IS {literal(schema.description)};"


def comment_table(schema: str, name: str, description: str | None) -> str:
    value = literal(description) if description else "NULL"
    return f"COMMENT ON TABLE {qualified(schema, name)} IS {value};"


def comment_column(schema: str, table: str, column: str, description: str | None) -> str:
    value = literal(description) if description else "NULL"
    return f"COMMENT ON COLUMN {qualified(schema, table)}.{ident(column)} IS {value};"


def create_all(schemas: Iterable[SchemaFile]) -> list[str]:
    """Every statement that builds the declared schemas in an empty database, in dependency
    order: schemas, extensions, types, functions, sequences, tables (with keys), partitions,
    foreign keys, indexes, views, comments."""
    from engine.dbschema.schemadiff import apply_statements

    return apply_statements({s.name: s for s in schemas}, {})
