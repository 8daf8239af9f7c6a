"""PostgreSQL names as the catalog holds them, and as SQL must write them (quoted when needed)."""

from __future__ import annotations

import re

# PostgreSQL's reserved key words (appendix C): quoted when used as names.
RESERVED = frozenset("""
all analyse analyze and any array as asc asymmetric authorization binary both case cast check
collate collation column concurrently constraint create cross current_catalog current_date
current_role current_schema current_time current_timestamp current_user default deferrable desc
distinct do else end except false fetch for foreign freeze from full grant group having ilike in
initially inner intersect into is isnull join lateral leading left like limit localtime
localtimestamp natural not notnull null offset on only or order outer overlaps placing primary
references returning right select session_user similar some symmetric system_user table
tablesample then to trailing true union unique user using variadic verbose when where window with
""".split())
_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")
_PART = re.compile(r'"((?:[^"]|"")+)"|([^".]+)')
MAX_BYTES = 63


def check_name(value: str) -> str:
    """A name PostgreSQL can hold: 1 to 63 bytes, no NUL or control characters."""
    if not value or len(value.encode()) > MAX_BYTES:
        raise ValueError(f"'{value[:80]}' is not a valid name: 1 to {MAX_BYTES} bytes")
    if any(ord(c) < 32 for c in value):
        raise ValueError(f"{value[:80]!r} is not a valid name: it holds a control character")
    return value


def literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings, PostgreSQL's default since 9.1)."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A name as SQL writes it: bare when PostgreSQL would fold it to itself, else quoted."""
    if _PLAIN.match(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def split_name(text: str) -> list[str]:
    """The parts of a dotted name; quoted parts kept exactly, bare ones as written."""
    parts: list[str] = []
    position = 0
    while position <= len(text):
        match = _PART.match(text, position)
        if match is None:
            raise ValueError(f"'{text[:80]}' is not a dotted name")
        parts.append(match.group(1).replace('""', '"') if match.group(1) is not None
                     else match.group(2).strip())
        position = match.end()
        if position == len(text):
            return parts
        if text[position] != ".":
            raise ValueError(f"'{text[:80]}' is not a dotted name")
        position += 1
    raise ValueError(f"'{text[:80]}' ends with a dot")


def check_qualified(value: str) -> str:
    """`schema.table`, quoting the parts that need it (shop."Order")."""
    try:
        parts = split_name(value)
    except ValueError:
        parts = []
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"'{value[:80]}' is not schema.table (quote mixed-case names: "
                         'shop."Order")')
    for part in parts:
        check_name(part)
    return value


def split_qualified(value: str) -> tuple[str, str]:
    """(schema, table) of a `schema.table` already checked by check_qualified."""
    schema, table = split_name(value)
    return schema, table
