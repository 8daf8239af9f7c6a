"""Rules on schema files: keys, foreign keys, indexes, duplicates."""

from __future__ import annotations

from collections.abc import Iterator

from engine.dbschema.ddl import index_name
from engine.dbschema.pgnames import split_qualified
from engine.dbschema.pgtypes import compatible, parse_type, same_storage
from engine.definitions.models.schema import SchemaFile, Table
from engine.definitions.project import Loaded, Project
from engine.validation.findings import Finding, Severity
from engine.validation.rules import rule


def _tables(project: Project) -> Iterator[tuple[Loaded[SchemaFile], str, Table]]:
    for loaded in project.schemas.values():
        for name, table in loaded.model.tables.items():
            yield loaded, name, table


def _missing_columns(table: Table, columns: list[str]) -> list[str]:
    return [c for c in columns if c not in table.columns]


@rule("schema-primary-key")
def primary_key_on_every_table(project: Project) -> Iterator[Finding]:
    """Every table has a primary key made of its own, non-nullable columns."""
    for loaded, name, table in _tables(project):
        base = ("tables", name)
        if not table.primary_key and not table.partition_of:
            yield Finding(loaded.loc(base, key=True), f"table {loaded.id}.{name} has no primary "
                          "key; add primary_key: [column, ...]", "schema-primary-key")
            continue
        for missing in _missing_columns(table, table.primary_key):
            yield Finding(loaded.loc((*base, "primary_key")), f"primary key column '{missing}' "
                          f"is not a column of {loaded.id}.{name}", "schema-primary-key")
        if len(set(table.primary_key)) != len(table.primary_key):
            yield Finding(loaded.loc((*base, "primary_key")), "primary key lists a column twice",
                          "schema-primary-key")
        for column in table.primary_key:
            spec = table.columns.get(column)
            if spec is not None and spec.nullable and "nullable" in spec.model_fields_set:
                yield Finding(loaded.loc((*base, "columns", column, "nullable")),
                              f"primary key column '{column}' cannot be nullable",
                              "schema-primary-key")


@rule("schema-foreign-key")
def foreign_keys_resolve(project: Project) -> Iterator[Finding]:
    """Foreign keys point at existing, unique columns of a compatible type."""
    for loaded, name, table in _tables(project):
        for index, fk in enumerate(table.foreign_keys):
            path = ("tables", name, "foreign_keys", index)
            for missing in _missing_columns(table, fk.columns):
                yield Finding(loaded.loc((*path, "columns")), f"foreign key column '{missing}' "
                              f"is not a column of {loaded.id}.{name}", "schema-foreign-key")
            target_schema, target_name = split_qualified(fk.references.table)
            schema = project.schemas.get(target_schema)
            target = schema.model.tables.get(target_name) if schema else None
            where = (*path, "references", "table")
            if target is None:
                yield Finding(loaded.loc(where), f"foreign key references unknown table "
                              f"{fk.references.table}", "schema-foreign-key")
                continue
            for missing in _missing_columns(target, fk.references.columns):
                yield Finding(loaded.loc((*path, "references", "columns")),
                              f"foreign key references unknown column "
                              f"{fk.references.table}.{missing}", "schema-foreign-key")
            if len(fk.columns) != len(fk.references.columns):
                yield Finding(loaded.loc((*path, "references", "columns")),
                              f"foreign key has {len(fk.columns)} column(s) but references "
                              f"{len(fk.references.columns)}", "schema-foreign-key")
                continue
            keys = [target.primary_key, *target.unique]
            if sorted(fk.references.columns) not in [sorted(k) for k in keys]:
                yield Finding(loaded.loc((*path, "references", "columns")),
                              f"{fk.references.table}({', '.join(fk.references.columns)}) is "
                              "neither its primary key nor a unique constraint; PostgreSQL "
                              "refuses such a foreign key", "schema-foreign-key")
            yield from _type_findings(loaded, name, table, target, fk.columns,
                                      fk.references.columns, fk.references.table, path)


def _type_findings(loaded: Loaded[SchemaFile], name: str, table: Table, target: Table,
                   columns: list[str], referenced: list[str], target_name: str,
                   path: tuple[str | int, ...]) -> Iterator[Finding]:
    for local, remote in zip(columns, referenced, strict=True):
        if local not in table.columns or remote not in target.columns:
            continue
        mine = parse_type(table.columns[local].type)
        theirs = parse_type(target.columns[remote].type)
        location = loaded.loc(("tables", name, "columns", local, "type"))
        if not compatible(mine, theirs):
            yield Finding(location, f"{name}.{local} is {mine.sql()} but references "
                          f"{target_name}.{remote} of type {theirs.sql()}; use the same type",
                          "schema-foreign-key")
        elif not same_storage(mine, theirs):
            yield Finding(location, f"{name}.{local} is {mine.sql()} but references "
                          f"{target_name}.{remote} of type {theirs.storage_name}; the same type "
                          "avoids casts in joins", "schema-foreign-key", Severity.WARNING)


@rule("schema-columns-exist")
def constraint_columns_exist(project: Project) -> Iterator[Finding]:
    """Unique constraints and indexes name existing columns; identity has no default."""
    for loaded, name, table in _tables(project):
        for index, unique in enumerate(table.unique):
            for missing in _missing_columns(table, unique):
                yield Finding(loaded.loc(("tables", name, "unique", index)),
                              f"unique constraint column '{missing}' is not a column of "
                              f"{loaded.id}.{name}", "schema-columns-exist")
        for index, idx in enumerate(table.indexes):
            for missing in _missing_columns(table, idx.columns):
                yield Finding(loaded.loc(("tables", name, "indexes", index, "columns")),
                              f"index column '{missing}' is not a column of "
                              f"{loaded.id}.{name}", "schema-columns-exist")
        for column_name, column in table.columns.items():
            if column.generated is not None and (column.default is not None
                                                 or column.identity):
                yield Finding(loaded.loc(("tables", name, "columns", column_name, "generated")),
                              "a generated column cannot also have a default or identity",
                              "schema-columns-exist")
            if column.identity and column.default is not None:
                yield Finding(loaded.loc(("tables", name, "columns", column_name, "default")),
                              "an identity column cannot also have a default",
                              "schema-columns-exist")
            if column.identity and parse_type(column.type).family != "integer":
                yield Finding(loaded.loc(("tables", name, "columns", column_name, "identity")),
                              "identity columns must be smallint, integer or bigint",
                              "schema-columns-exist")


@rule("schema-duplicates")
def no_duplicates(project: Project) -> Iterator[Finding]:
    """No index, unique constraint or foreign key declared twice (names unique per schema)."""
    for loaded in project.schemas.values():
        names: dict[str, str] = {}
        for name, table in loaded.model.tables.items():
            seen: dict[tuple[object, ...], int] = {}
            for index, idx in enumerate(table.indexes):
                key = ("index", tuple(idx.columns), idx.method, idx.where, idx.unique)
                if key in seen:
                    first = table.indexes[seen[key]]
                    # Two indexes of different names are two objects a live database may well
                    # hold (pulled as they are): wasteful, not wrong. Of one name, apply fails.
                    both_named = index_name(name, idx) != index_name(name, first)
                    yield Finding(loaded.loc(("tables", name, "indexes", index)),
                                  f"index on ({', '.join(idx.columns)}) duplicates index "
                                  f"#{seen[key] + 1} of {name}", "schema-duplicates",
                                  Severity.WARNING if both_named else Severity.ERROR)
                seen.setdefault(key, index)
                if tuple(idx.columns) == tuple(table.primary_key) and idx.where is None:
                    yield Finding(loaded.loc(("tables", name, "indexes", index)),
                                  f"index on ({', '.join(idx.columns)}) duplicates the primary "
                                  "key's index", "schema-duplicates", Severity.WARNING)
            uniques: set[tuple[str, ...]] = set()
            for index, unique in enumerate(table.unique):
                if tuple(sorted(unique)) in uniques:
                    yield Finding(loaded.loc(("tables", name, "unique", index)),
                                  "unique constraint declared twice", "schema-duplicates")
                uniques.add(tuple(sorted(unique)))
            fks: set[tuple[object, ...]] = set()
            for index, fk in enumerate(table.foreign_keys):
                fk_key = (tuple(fk.columns), fk.references.table, tuple(fk.references.columns))
                if fk_key in fks:
                    yield Finding(loaded.loc(("tables", name, "foreign_keys", index)),
                                  "foreign key declared twice", "schema-duplicates")
                fks.add(fk_key)
            for index, idx in enumerate(table.indexes):
                if idx.name is None:
                    continue
                if idx.name in names or idx.name in loaded.model.tables:
                    yield Finding(loaded.loc(("tables", name, "indexes", index, "name")),
                                  f"name '{idx.name}' is already used in schema {loaded.id} "
                                  f"({names.get(idx.name, 'a table')})", "schema-duplicates")
                names[idx.name] = f"index on {name}"


@rule("schema-types")
def named_types_are_declared(project: Project) -> Iterator[Finding]:
    """A column of an enum, domain or extension type names one that is declared."""
    from engine.dbschema.pgnames import split_name

    known: set[tuple[str, str]] = set()
    extended: set[str] = set()
    for loaded in project.schemas.values():
        known.update((loaded.model.name, t) for t in loaded.model.types)
        if loaded.model.extensions:
            extended.add(loaded.model.name)
    for loaded, name, table in _tables(project):
        for column_name, column in table.columns.items():
            parsed = parse_type(column.type)
            if not parsed.named:
                continue
            parts = split_name(parsed.name)
            if len(parts) != 2 or tuple(parts) in known or parts[0] in extended:
                continue
            yield Finding(loaded.loc(("tables", name, "columns", column_name, "type")),
                          f"type {parsed.name} is not declared: add it under types: in "
                          f"schema/{parts[0]}.yaml, or the extension that provides it under "
                          "extensions:", "schema-types")
