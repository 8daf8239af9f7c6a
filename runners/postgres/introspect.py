"""Read a live database's schemas into the same models the YAML declares (`schema pull`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.dbschema import ddl
from engine.dbschema.pgnames import qualified
from engine.dbschema.pgtypes import parse_type
from engine.definitions.models.schema import (
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
from runners.postgres.connection import Connection, query

IGNORED_SCHEMAS = ("information_schema", "marketops", "pg_toast")
_ON_DELETE = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null",
              "d": "set default"}

_SCHEMAS = """
select n.nspname, pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace')
from pg_namespace n
where n.nspname !~ '^pg_' and n.nspname <> all(%s)
order by 1
"""
# Objects an extension created come with it: CREATE EXTENSION makes them, not the YAML.
_NOT_EXTENSION = """not exists (select 1 from pg_depend e where e.classid = {catalog}::regclass
                               and e.objid = {oid} and e.deptype = 'e')"""
_TABLES = f"""
select c.oid, n.nspname, c.relname, obj_description(c.oid, 'pg_class'), c.relkind,
       case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end,
       case when c.relispartition then (select quote_ident(pn.nspname) || '.' ||
            quote_ident(pc.relname) from pg_inherits i join pg_class pc on pc.oid = i.inhparent
            join pg_namespace pn on pn.oid = pc.relnamespace where i.inhrelid = c.oid) end,
       pg_get_expr(c.relpartbound, c.oid),
       case when c.relkind in ('v', 'm') then pg_get_viewdef(c.oid, true) end
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm') and n.nspname = any(%s)
  and {_NOT_EXTENSION.format(catalog="'pg_class'", oid="c.oid")}
order by n.nspname, c.relname
"""
_TRIGGERS = """
select n.nspname, c.relname, t.tgname from pg_trigger t
join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
where not t.tgisinternal and t.tgparentid = 0 and n.nspname = any(%s) order by 1, 2, 3
"""
_OTHER_TYPES = f"""
select n.nspname, t.typname, case t.typtype when 'c' then 'composite' when 'r' then 'range'
       else 'base' end
from pg_type t join pg_namespace n on n.oid = t.typnamespace
left join pg_class c on c.oid = t.typrelid
where n.nspname = any(%s) and (t.typtype = 'r' or (t.typtype = 'c' and c.relkind = 'c')
      or (t.typtype = 'b' and t.typelem = 0 and t.typarray <> 0))
  and {_NOT_EXTENSION.format(catalog="'pg_type'", oid="t.oid")}
order by 1, 2
"""
_EXTENSIONS = """
select n.nspname, e.extname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
where e.extname <> 'plpgsql' and n.nspname = any(%s) order by 1, 2
"""
_TYPES = f"""
select n.nspname, t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
       t.typdefault, obj_description(t.oid, 'pg_type'),
       array(select e.enumlabel::text from pg_enum e where e.enumtypid = t.oid
             order by e.enumsortorder),
       array(select array[c.conname::text, pg_get_constraintdef(c.oid)] from pg_constraint c
             where c.contypid = t.oid and c.contype = 'c' order by c.conname)
from pg_type t join pg_namespace n on n.oid = t.typnamespace
where t.typtype in ('e', 'd') and n.nspname = any(%s)
  and {_NOT_EXTENSION.format(catalog="'pg_type'", oid="t.oid")}
order by 1, 2
"""
_SEQUENCES = f"""
select n.nspname, c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement,
       s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       (select quote_ident(t.relname) || '.' || quote_ident(a.attname) from pg_depend d
        join pg_class t on t.oid = d.refobjid
        join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
        where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'a'
          and d.refclassid = 'pg_class'::regclass)
from pg_sequence s join pg_class c on c.oid = s.seqrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s)
  and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass
                  and d.objid = c.oid and d.deptype = 'i')
  and {_NOT_EXTENSION.format(catalog="'pg_class'", oid="c.oid")}
order by 1, 2
"""
_FUNCTIONS = f"""
select n.nspname, quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid)
       || ')', p.prokind, p.provolatile, p.prosecdef,
       case when p.prokind <> 'a' then pg_get_functiondef(p.oid) end,
       case when p.prokind = 'a' then
           'CREATE AGGREGATE ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) ||
           '(' || pg_get_function_identity_arguments(p.oid) || ') (SFUNC = ' ||
           a.aggtransfn::regproc::text || ', STYPE = ' || format_type(a.aggtranstype, null) ||
           coalesce(', FINALFUNC = ' || nullif(a.aggfinalfn, 0)::regproc::text, '') ||
           coalesce(', INITCOND = ' || quote_literal(a.agginitval), '') || ')' end
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
left join pg_aggregate a on a.aggfnoid = p.oid
where n.nspname = any(%s) and p.prokind in ('f', 'p', 'a')
  and (p.prokind <> 'a' or a.aggkind = 'n')
  and {_NOT_EXTENSION.format(catalog="'pg_proc'", oid="p.oid")}
order by 1, 2
"""
_COLUMNS = """
select a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
       col_description(a.attrelid, a.attnum)
from pg_attribute a
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = any(%s) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""
_CONSTRAINTS = """
select c.conrelid, c.contype, c.conname, c.conkey, c.confrelid, c.confkey, c.confdeltype,
       pg_get_constraintdef(c.oid)
from pg_constraint c
where c.conrelid = any(%s) and c.contype in ('p', 'u', 'f', 'c', 'x')
  and c.conparentid = 0 and c.conislocal
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
  and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
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
    # With only pg_catalog on the path, PostgreSQL qualifies every other name it prints
    # (types, defaults, view definitions), so what is pulled means the same anywhere.
    query(conn, "select set_config('search_path', 'pg_catalog', true)")
    schemas = {row[0]: row for row in query(conn, _SCHEMAS, (list(IGNORED_SCHEMAS),))
               if only is None or row[0] in only}
    names_list = list(schemas)
    tables = query(conn, _TABLES, (names_list,))
    oids = [row[0] for row in tables]
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

    found: dict[str, dict[str, Any]] = {name: {"tables": {}, "views": {}, "types": {},
                                               "sequences": {}, "functions": {},
                                               "extensions": []} for name in schemas}
    for oid, schema, table, comment, kind, part_key, parent, bound, view_sql in tables:
        where = f"{schema}.{table}"
        if kind in ("v", "m"):
            _keep(found[schema]["views"], table, View, _view(
                oid, schema, table, columns[oid], indexes[oid], comment, kind == "m",
                view_sql, result.notes), where, result.notes)
            continue
        spec = _table(oid, schema, table, columns[oid], constraints[oid], indexes[oid],
                      target_columns, result.notes)
        spec["description"] = comment
        if part_key:
            spec["partition_by"] = part_key
        if parent:
            spec["partition_of"] = parent.removeprefix(ddl.ident(schema) + ".")
            spec["partition_bound"] = bound
        _keep(found[schema]["tables"], table, Table, spec, where, result.notes)
    for schema, extension in query(conn, _EXTENSIONS, (names_list,)):
        found[schema]["extensions"].append(extension)
    for row in query(conn, _TYPES, (names_list,)):
        _keep(found[row[0]]["types"], row[1], EnumType if row[2] == "e" else Domain,
              _type_spec(row, result.notes), f"{row[0]}.{row[1]}", result.notes)
    for schema, name, *numbers in query(conn, _SEQUENCES, (names_list,)):
        _keep(found[schema]["sequences"], name, Sequence, _sequence(*numbers),
              f"{schema}.{name}", result.notes)
    for schema, signature, _kind, volatility, definer, body, aggregate in query(
            conn, _FUNCTIONS, (names_list,)):
        _keep(found[schema]["functions"], signature, Function, {
            "definition": (body or aggregate or "").strip(),
            "volatility": {"i": "immutable", "s": "stable"}.get(volatility, "volatile"),
            "security_definer": definer}, f"{schema}.{signature}", result.notes)
    for schema, table, trigger in query(conn, _TRIGGERS, (names_list,)):
        result.notes.append(f"{schema}.{table}: trigger {trigger} cannot be described in YAML; "
                            "not pulled (apply will not create it)")
    for schema, name, kind in query(conn, _OTHER_TYPES, (names_list,)):
        result.notes.append(f"{schema}.{name}: {kind} type cannot be described in YAML; not "
                            "pulled (apply will not create it)")
    for name, (_, owner, comment) in schemas.items():
        objects = found[name]
        if not any(objects.values()):
            result.notes.append(f"schema {name} has nothing to pull; skipped")
            continue
        result.schemas[name] = SchemaFile.model_validate({
            "name": name, "owner": owner, "description": comment or "", **objects})
    return result


def _keep(into: dict[str, Any], name: str, model: type[Any], spec: dict[str, Any], where: str,
          notes: list[str]) -> None:
    """Add one pulled object, or a note saying why it cannot be described."""
    try:
        into[name] = model.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"])
        notes.append(f"{where}: cannot be described in YAML ({place}: {first['msg']}); skipped")


def _type_spec(row: tuple[Any, ...], notes: list[str]) -> dict[str, Any]:
    schema, name, kind, base, not_null, default, comment, labels, checks = row
    if kind == "e":
        return {"enum": list(labels), "description": comment}
    return {"domain": _type(base, f"{schema}.{name}", notes), "nullable": not not_null,
            "default": default, "description": comment,
            "checks": [{"name": n, "expression": _check_expression(d)} for n, d in checks]}


def _sequence(type_name: str, start: int, increment: int, low: int, high: int, cache: int,
              cycle: bool, owner: str | None) -> dict[str, Any]:
    limits = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}
    top = limits.get(type_name, limits["bigint"])
    # PostgreSQL stores the implied limits; the YAML keeps only what was chosen.
    default_low, default_high = (1, top) if increment > 0 else (-top - 1, -1)
    return {"type": type_name, "start": start, "increment": increment,
            "min": None if low == default_low else low,
            "max": None if high == default_high else high,
            "cache": cache, "cycle": cycle, "owned_by": owner}


def _check_expression(definition: str) -> str:
    text = definition.strip()
    if text.endswith(" NOT VALID"):
        text = text.removesuffix(" NOT VALID")
    text = text.removeprefix("CHECK ").strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return text


def _view(oid: int, schema: str, name: str, columns: dict[int, tuple[Any, ...]],
          indexes: list[tuple[Any, ...]], comment: str | None, materialized: bool,
          definition: str | None, notes: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"description": comment, "materialized": materialized,
                            "definition": (definition or "").strip(), "columns": {},
                            "indexes": []}
    for row in columns.values():
        column: dict[str, Any] = {"type": _type(row[3], f"{schema}.{name}.{row[2]}", notes)}
        if row[8]:
            column["description"] = row[8]
        spec["columns"][row[2]] = column
    attnames = {num: row[2] for num, row in columns.items()}
    spec["indexes"] = _indexes(schema, name, indexes, attnames, notes)
    return spec


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
        column: dict[str, Any] = {"type": _type(raw_type, where, notes),
                                  "nullable": not not_null}
        if generated:
            column["generated"] = default
            if generated == "v":
                column["virtual"] = True
        elif identity:
            column["identity"] = "always" if identity == "a" else True
        elif default is not None:
            column["default"] = default
        if comment:
            column["description"] = comment
        spec["columns"][name] = column
    spec["checks"] = []
    for _, kind, conname, conkey, confrelid, confkey, deltype, definition in constraints:
        if kind == "x":
            notes.append(f"{schema}.{table}: exclusion constraint {conname} cannot be "
                         "described in YAML; not pulled")
            continue
        if kind == "c":
            spec["checks"].append({"name": conname,
                                   "expression": _check_expression(definition)})
            continue
        cols = [attnames[k] for k in conkey]
        if kind == "p":
            spec["primary_key"] = cols
        elif kind == "u":
            spec["unique"].append(cols)
        else:
            target_schema, target_table, target_names = targets[confrelid]
            fk: dict[str, Any] = {
                "columns": cols, "on_delete": _ON_DELETE.get(deltype, "no action"),
                "references": {"table": qualified(target_schema, target_table),
                               "columns": [target_names[k] for k in confkey]}}
            if conname != ddl.fk_name(table, ForeignKey.model_validate(fk)):
                fk["name"] = conname
            spec["foreign_keys"].append(fk)
    spec["indexes"] = _indexes(schema, table, indexes, attnames, notes)
    return spec


def _indexes(schema: str, table: str, indexes: list[tuple[Any, ...]], attnames: dict[int, str],
             notes: list[str]) -> list[dict[str, Any]]:
    found = []
    for _, name, unique, method, keys, predicate, expressions in indexes:
        if expressions or 0 in keys:
            notes.append(f"{schema}.{table}: expression index {name} cannot be expressed in "
                         "YAML; skipped")
            continue
        if method not in ("btree", "hash", "gin", "gist", "brin", "spgist"):
            notes.append(f"{schema}.{table}: index {name} uses {method}; skipped")
            continue
        index: dict[str, Any] = {"columns": [attnames[k] for k in keys], "unique": unique,
                                 "method": method}
        if predicate:
            index["where"] = predicate
        if name != ddl.index_name(table, Index.model_validate(index)):
            index["name"] = name
        found.append(index)
    return found
