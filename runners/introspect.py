"""Read a live database's schemas into the same models the YAML declares (`schema pull`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from engine import ddl
from engine.models.schema import ForeignKey, Index, SchemaFile
from engine.pgtypes import parse_type
from runners.database import Connection, query

IGNORED_SCHEMAS = ("information_schema", "marketops", "pg_toast")
_ON_DELETE = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null",
              "d": "set default"}

_SCHEMAS = """
select n.nspname, pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace')
from pg_namespace n
where n.nspname !~ '^pg_' and n.nspname <> all(%s)
order by 1
"""
_TABLES = """
select c.oid, n.nspname, c.relname, obj_description(c.oid, 'pg_class')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition and n.nspname = any(%s)
order by n.nspname, c.relname
"""
_COLUMNS = """
select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity <> '', a.attgenerated <> '',
       col_description(a.attrelid, a.attnum)
from pg_attribute a
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = any(%s) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""
_CONSTRAINTS = """
select c.conrelid, c.contype, c.conname, c.conkey, c.confrelid, c.confkey, c.confdeltype
from pg_constraint c
where c.conrelid = any(%s) and c.contype in ('p', 'u', 'f')
order by c.conrelid, c.contype, c.conname
"""
_INDEXES = """
select i.indrelid, ic.relname, i.indisunique, am.amname, i.indkey::int2[],
       pg_get_expr(i.indpred, i.indrelid), i.indexprs is not null
from pg_index i
join pg_class ic on ic.oid = i.indexrelid
join pg_am am on am.oid = ic.relam
where i.indrelid = any(%s)
  and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid
                  and k.contype in ('p', 'u', 'x'))
order by i.indrelid, ic.relname
"""


@dataclass
class Pulled:
    """The live schemas, and what could not be expressed in YAML."""

    schemas: dict[str, SchemaFile] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _type(raw: str, where: str, notes: list[str]) -> str:
    try:
        return parse_type(raw).sql()
    except ValueError:
        notes.append(f"{where}: type '{raw}' is not supported by marketops; pulled as text")
        return "text"


def pull(conn: Connection, only: list[str] | None = None) -> Pulled:
    """Introspect every user schema (or `only` those) into SchemaFile models."""
    result = Pulled()
    schemas = {row[0]: row for row in query(conn, _SCHEMAS, (list(IGNORED_SCHEMAS),))
               if only is None or row[0] in only}
    tables = query(conn, _TABLES, (list(schemas),))
    oids = [row[0] for row in tables]
    names = {row[0]: (row[1], row[2]) for row in tables}
    columns: dict[int, dict[int, tuple[Any, ...]]] = defaultdict(dict)
    for row in query(conn, _COLUMNS, (oids,)):
        columns[row[0]][row[1]] = row
    constraints: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in query(conn, _CONSTRAINTS, (oids,)):
        constraints[row[0]].append(row)
    indexes: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in query(conn, _INDEXES, (oids,)):
        indexes[row[0]].append(row)
    target_columns = _referenced_columns(conn, constraints)

    by_schema: dict[str, dict[str, Any]] = {name: {} for name in schemas}
    for oid, (schema, table) in names.items():
        by_schema[schema][table] = _table(oid, schema, table, columns[oid], constraints[oid],
                                          indexes[oid], target_columns, result.notes)
        by_schema[schema][table]["description"] = next(
            (row[3] for row in tables if row[0] == oid), None)
    for name, (_, owner, comment) in schemas.items():
        if not by_schema[name]:
            result.notes.append(f"schema {name} has no tables; skipped")
            continue
        result.schemas[name] = SchemaFile.model_validate({
            "name": name, "owner": owner, "description": comment or "",
            "tables": by_schema[name]})
    return result


def _referenced_columns(conn: Connection, constraints: dict[int, list[tuple[Any, ...]]]
                        ) -> dict[int, tuple[str, str, dict[int, str]]]:
    targets = sorted({row[4] for rows in constraints.values() for row in rows if row[1] == "f"})
    found: dict[int, tuple[str, str, dict[int, str]]] = {}
    if not targets:
        return found
    rows = query(conn, """
        select c.oid, n.nspname, c.relname, a.attnum, a.attname
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where c.oid = any(%s)""", (targets,))
    for oid, schema, table, attnum, attname in rows:
        found.setdefault(oid, (schema, table, {}))[2][attnum] = attname
    return found


def _table(oid: int, schema: str, table: str, columns: dict[int, tuple[Any, ...]],
           constraints: list[tuple[Any, ...]], indexes: list[tuple[Any, ...]],
           targets: dict[int, tuple[str, str, dict[int, str]]], notes: list[str]
           ) -> dict[str, Any]:
    attnames = {num: row[2] for num, row in columns.items()}
    spec: dict[str, Any] = {"columns": {}, "primary_key": [], "unique": [], "foreign_keys": [],
                            "indexes": []}
    for row in columns.values():
        _, _, name, raw_type, not_null, default, identity, generated, comment = row
        where = f"{schema}.{table}.{name}"
        if generated:
            notes.append(f"{where}: generated column pulled as a plain column")
            default = None
        column: dict[str, Any] = {"type": _type(raw_type, where, notes),
                                  "nullable": not not_null}
        if identity:
            column["identity"] = True
        elif default is not None:
            column["default"] = default
        if comment:
            column["description"] = comment
        spec["columns"][name] = column
    for _, kind, conname, conkey, confrelid, confkey, deltype in constraints:
        cols = [attnames[k] for k in conkey]
        if kind == "p":
            spec["primary_key"] = cols
        elif kind == "u":
            spec["unique"].append(cols)
        else:
            target_schema, target_table, target_names = targets[confrelid]
            fk: dict[str, Any] = {
                "columns": cols, "on_delete": _ON_DELETE.get(deltype, "no action"),
                "references": {"table": f"{target_schema}.{target_table}",
                               "columns": [target_names[k] for k in confkey]}}
            if conname != ddl.fk_name(table, ForeignKey.model_validate(fk)):
                fk["name"] = conname
            spec["foreign_keys"].append(fk)
    for _, name, unique, method, keys, predicate, expressions in indexes:
        if expressions or 0 in keys:
            notes.append(f"{schema}.{table}: expression index {name} cannot be expressed in "
                         "YAML; skipped")
            continue
        index: dict[str, Any] = {"columns": [attnames[k] for k in keys], "unique": unique,
                                 "method": method}
        if predicate:
            index["where"] = predicate
        if name != ddl.index_name(table, Index.model_validate(index)):
            index["name"] = name
        spec["indexes"].append(index)
    return spec
