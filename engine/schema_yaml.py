"""Schema models written back as YAML in the house style (used by `schema pull`)."""

from __future__ import annotations

import json
import re
from typing import Any

from engine.models.schema import Column, ForeignKey, Index, SchemaFile, Table

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
        items["identity"] = True
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
        lines.append(f"        name: {fk.name}")
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


def _table(name: str, table: Table) -> list[str]:
    lines = [f"  {name}:"]
    if table.description:
        lines.append(f"    description: {scalar(table.description)}")
    if table.backup_exclude_reason:
        lines.append(f"    backup_exclude_reason: {scalar(table.backup_exclude_reason)}")
    lines.append("    columns:")
    lines.extend(f"      {c}: {_column(col)}" for c, col in table.columns.items())
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
    return lines


def render(schema: SchemaFile) -> str:
    """The YAML text of one schema file."""
    lines = [f"name: {schema.name}", f"owner: {scalar(schema.owner)}",
             f"description: {scalar(schema.description)}", "tables:"]
    for name, table in schema.tables.items():
        lines.extend(_table(name, table))
    return HEADER + "\n".join(lines) + "\n"
