"""PostgreSQL column types: parsed, normalized to one spelling, grouped into families."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import get_close_matches

# spelling -> (canonical name, family, modifiers allowed: 0, 1 or 2)
_TYPES: dict[str, tuple[str, str, int]] = {}


def _add(canonical: str, family: str, mods: int, *aliases: str) -> None:
    for name in (canonical, *aliases):
        _TYPES[name] = (canonical, family, mods)


_add("smallint", "integer", 0, "int2")
_add("integer", "integer", 0, "int", "int4")
_add("bigint", "integer", 0, "int8")
_add("smallserial", "integer", 0, "serial2")
_add("serial", "integer", 0, "serial4")
_add("bigserial", "integer", 0, "serial8")
_add("numeric", "numeric", 2, "decimal")
_add("real", "float", 0, "float4")
_add("double precision", "float", 0, "float8", "float")
_add("money", "money", 0)
_add("text", "text", 0)
_add("varchar", "text", 1, "character varying")
_add("char", "text", 1, "character", "bpchar")
_add("citext", "text", 0)
_add("bytea", "bytea", 0)
_add("boolean", "boolean", 0, "bool")
_add("date", "date", 0)
_add("time", "time", 1, "time without time zone")
_add("timetz", "timetz", 1, "time with time zone")
_add("timestamp", "timestamp", 1, "timestamp without time zone")
_add("timestamptz", "timestamptz", 1, "timestamp with time zone")
_add("interval", "interval", 1)
_add("uuid", "uuid", 0)
_add("json", "json", 0)
_add("jsonb", "jsonb", 0)
_add("inet", "inet", 0)
_add("cidr", "cidr", 0)
_add("macaddr", "macaddr", 0)
_add("tsvector", "tsvector", 0)
_add("xml", "xml", 0)
_add("point", "point", 0)
_add("bit", "bit", 1)
_add("varbit", "bit", 1, "bit varying")
for _range in ("int4range", "int8range", "numrange", "tsrange", "tstzrange", "daterange"):
    _add(_range, _range, 0)

# Serial types are integers with a sequence; a column referencing one holds the plain integer.
_SERIAL_BASE = {"smallserial": "smallint", "serial": "integer", "bigserial": "bigint"}

_SHAPE = re.compile(r"^\s*([a-z][a-z0-9 ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*"
                    r"((?:\[\s*\]\s*)*)$")


_WORD = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
# A type declared in a schema (enum, domain) or by an extension: schema.name[(mods)][[]...].
_NAMED = re.compile(rf"^\s*({_WORD}\s*\.\s*{_WORD})\s*(\([^()]*\))?\s*((?:\[\s*\]\s*)*)$")
# format_type writes time and timestamp precision before the zone: timestamp(0) with time zone.
_ZONED = re.compile(r"^\s*(time|timestamp)\s*\((\d+)\)\s+(with|without)\s+time\s+zone")


@dataclass(frozen=True)
class PgType:
    """A parsed column type."""

    name: str
    family: str
    modifiers: tuple[int, ...] = ()
    array_dims: int = 0
    typmod: str = ""  # a named type's modifier text, kept as written: vector(3)

    def sql(self) -> str:
        """The type as DDL writes it."""
        mods = f"({','.join(str(m) for m in self.modifiers)})" if self.modifiers else \
            self.typmod
        return f"{self.name}{mods}{'[]' * self.array_dims}"

    @property
    def named(self) -> bool:
        """A type declared in a schema or by an extension, not built in."""
        return self.family.startswith("named:")

    @property
    def storage_name(self) -> str:
        """The type a column referencing this one holds (serials are plain integers)."""
        return _SERIAL_BASE.get(self.name, self.name)


def parse_type(text: str) -> PgType:
    """Parse a PostgreSQL type such as 'numeric(12,2)', 'varchar(255)' or 'text[]'."""
    if text.count("(") != text.count(")"):
        raise ValueError(f"'{text}' has unbalanced parentheses; inside {{flow: mappings}} a "
                         "comma splits the value, so quote it: \"numeric(12,2)\"")
    named = _NAMED.match(text)
    if named:
        name = ".".join(part.strip() for part in _split_dot(named.group(1)))
        typmod = "".join((named.group(2) or "").split()).replace(",", ", ") \
            if named.group(2) else ""
        return PgType(name, f"named:{name}", (), (named.group(3) or "").count("["),
                      typmod.replace(", ", ","))
    zoned = _ZONED.match(text.lower())
    lowered = text.lower()
    if zoned:
        lowered = (f"{zoned.group(1)} {zoned.group(3)} time zone({zoned.group(2)})"
                   f"{lowered[zoned.end():]}")
    match = _SHAPE.match(lowered)
    if not match:
        raise ValueError(f"'{text}' is not a PostgreSQL type")
    spelled, first, second, arrays = match.groups()
    spelled = " ".join(spelled.split())
    known = _TYPES.get(spelled)
    if known is None:
        close = get_close_matches(spelled, list(_TYPES), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown PostgreSQL type '{text}'{hint}")
    canonical, family, allowed = known
    mods = tuple(int(m) for m in (first, second) if m is not None)
    if len(mods) > allowed:
        raise ValueError(f"type '{canonical}' takes {allowed or 'no'} modifier"
                         f"{'s' if allowed != 1 else ''}, got '{text}'")
    if canonical == "numeric" and len(mods) == 2 and mods[1] > mods[0]:
        raise ValueError(f"numeric scale {mods[1]} is larger than its precision {mods[0]}")
    if canonical in ("varchar", "char", "bit", "varbit") and mods and mods[0] < 1:
        raise ValueError(f"length of '{text}' must be at least 1")
    return PgType(canonical, family, mods, arrays.count("["))


def _split_dot(text: str) -> list[str]:
    """Split 'schema.name' at the dot outside quotes."""
    depth_quoted = False
    for index, char in enumerate(text):
        if char == '"':
            depth_quoted = not depth_quoted
        elif char == "." and not depth_quoted:
            return [text[:index], text[index + 1:]]
    return [text]


def compatible(referencing: PgType, referenced: PgType) -> bool:
    """Whether a foreign key column of one type can point at a column of the other."""
    return (referencing.family == referenced.family
            and referencing.array_dims == referenced.array_dims)


def same_storage(a: PgType, b: PgType) -> bool:
    """Exactly the same stored type (ignoring serial sugar)."""
    return a.storage_name == b.storage_name and a.modifiers == b.modifiers and \
        a.array_dims == b.array_dims
