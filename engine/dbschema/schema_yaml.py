"""Schema models written back as YAML in the house style (used by `schema pull`)."""

from __future__ import annotations

import json
import re
from typing import Any

from engine.definitions.models.schema import (
    Check,
    Column,
    Domain,
    EnumType,
    ForeignKey,
    Index,
    SchemaFile,
    Sequence,
    Table,
    View,
)

HEADER = "# yaml-language-server: $schema=../jsonschema/schema.schema.json\n"
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .()/@'-]*$")
_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value: Any) -> str:
    """A value as a YAML scalar that reads back the same, plain when that is safe."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _SPECIAL and not text.endswith(" ") \
            and "'" not in text[:1]:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(items: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {scalar(v) if not isinstance(v, list) else _list(v)}"
                           for k, v in items.items()) + "}"


def _list(values: list[Any]) -> str:
    return "[" + ", ".join(_list(v) if isinstance(v, list) else scalar(v) for v in values) + "]"


def _column(column: Column) -> str:
    items: dict[str, Any] = {"type": column.type}
    if not column.nullable:
        items["nullable"] = False
    if column.identity:
        items["identity"] = column.identity
    if column.generated is not None:
        items["generated"] = column.generated
        if column.virtual:
            items["virtual"] = True
    if column.default is not None:
        items["default"] = column.default
    if column.pii is not None:
        items["pii"] = column.pii.value
    if column.description:
        items["description"] = column.description
    return _flow(items)


def _fk(fk: ForeignKey) -> list[str]:
    lines = [f"      - columns: {_list(fk.columns)}",
             f"        references: {_flow({'table': fk.references.table, 'columns': fk.references.columns})}"]  # noqa: E501
    if fk.on_delete.value != "no action":
        lines.append(f"        on_delete: {fk.on_delete.value}")
    if fk.name:
        lines.append(f"        name: {scalar(fk.name)}")
    return lines


def _index(index: Index) -> str:
    items: dict[str, Any] = {"columns": index.columns}
    if index.unique:
        items["unique"] = True
    if index.method.value != "btree":
        items["method"] = index.method.value
    if index.where:
        items["where"] = index.where
    if index.name:
        items["name"] = index.name
    return f"      - {_flow(items)}"


def _check(check: Check) -> str:
    items: dict[str, Any] = {"expression": check.expression}
    if check.name:
        items["name"] = check.name
    return f"      - {_flow(items)}"


def _table(name: str, table: Table) -> list[str]:
    lines = [f"  {scalar(name)}:"]
    if table.description:
        lines.append(f"    description: {scalar(table.description)}")
    for key in ("partition_by", "partition_of", "partition_bound"):
        value = getattr(table, key)
        if value is not None:
            lines.append(f"    {key}: {scalar(value)}")
    if table.backup_exclude_reason:
        lines.append(f"    backup_exclude_reason: {scalar(table.backup_exclude_reason)}")
    lines.append("    columns:")
    lines.extend(f"      {scalar(c)}: {_column(col)}" for c, col in table.columns.items())
    if table.primary_key:
        lines.append(f"    primary_key: {_list(table.primary_key)}")
    if table.unique:
        lines.append(f"    unique: {_list(table.unique)}")
    if table.foreign_keys:
        lines.append("    foreign_keys:")
        for fk in table.foreign_keys:
            lines.extend(_fk(fk))
    if table.indexes:
        lines.append("    indexes:")
        lines.extend(_index(i) for i in table.indexes)
    if table.checks:
        lines.append("    checks:")
        lines.extend(_check(c) for c in table.checks)
    return lines


def _view(name: str, view: View) -> list[str]:
    lines = [f"  {scalar(name)}:"]
    if view.description:
        lines.append(f"    description: {scalar(view.description)}")
    if view.materialized:
        lines.append("    materialized: true")
    lines.append("    columns:")
    for column_name, column in view.columns.items():
        items: dict[str, Any] = {"type": column.type}
        if column.pii is not None:
            items["pii"] = column.pii.value
        if column.description:
            items["description"] = column.description
        lines.append(f"      {scalar(column_name)}: {_flow(items)}")
    lines.append("    definition: " + _block(view.definition, 6))
    if view.indexes:
        lines.append("    indexes:")
        lines.extend(_index(i) for i in view.indexes)
    return lines


def _block(text: str, indent: int) -> str:
    """A multi-line text as a YAML literal block that reads back exactly."""
    body = text.rstrip("\n")
    if "\n" not in body and len(body) < 80 and text == body:
        return scalar(body)
    if any(line != line.rstrip() for line in body.split("\n")) or body != body.lstrip() \
            or "\t" in body or "\r" in body:
        return json.dumps(text, ensure_ascii=False)
    chomp = "-" if text == body else ("" if text == body + "\n" else None)
    if chomp is None:
        return json.dumps(text, ensure_ascii=False)
    pad = " " * indent
    return f"|{chomp}\n" + "\n".join(pad + line if line else "" for line in body.split("\n"))


def _type(name: str, spec: EnumType | Domain) -> str:
    items: dict[str, Any]
    if isinstance(spec, EnumType):
        items = {"enum": spec.enum}
    else:
        items = {"domain": spec.domain}
        if not spec.nullable:
            items["nullable"] = False
        if spec.default is not None:
            items["default"] = spec.default
    if spec.description:
        items["description"] = spec.description
    text = f"  {scalar(name)}: {_flow(items)}"
    if isinstance(spec, Domain) and spec.checks:
        checks = ", ".join(_flow({"expression": c.expression, **({"name": c.name} if c.name
                                                                 else {})})
                           for c in spec.checks)
        text = text[:-1] + f", checks: [{checks}]}}"
    return text


def _sequence(name: str, sequence: Sequence) -> str:
    items: dict[str, Any] = {"type": sequence.type}
    defaults = Sequence()
    for key in ("start", "increment", "min", "max", "cache", "cycle", "owned_by"):
        value = getattr(sequence, key)
        if value != getattr(defaults, key):
            items[key] = value
    return f"  {scalar(name)}: {_flow(items)}"


def render(schema: SchemaFile) -> str:
    """The YAML text of one schema file."""
    lines = [f"name: {scalar(schema.name)}", f"owner: {scalar(schema.owner)}",
             f"description: {scalar(schema.description)}"]
    if schema.extensions:
        lines.append(f"extensions: {_list(schema.extensions)}")
    if schema.types:
        lines.append("types:")
        lines.extend(_type(n, t) for n, t in schema.types.items())
    if schema.sequences:
        lines.append("sequences:")
        lines.extend(_sequence(n, q) for n, q in schema.sequences.items())
    if schema.functions:
        lines.append("functions:")
        for name, function in schema.functions.items():
            lines.append(f"  {scalar(name)}:")
            if function.volatility != "volatile":
                lines.append(f"    volatility: {function.volatility}")
            if function.security_definer:
                lines.append("    security_definer: true")
            lines.append("    definition: " + _block(function.definition, 6))
    if schema.tables:
        lines.append("tables:")
    for name, table in schema.tables.items():
        lines.extend(_table(name, table))
    if schema.views:
        lines.append("views:")
    for name, view in schema.views.items():
        lines.extend(_view(name, view))
    return HEADER + "\n".join(lines) + "\n"
