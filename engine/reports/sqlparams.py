"""Named parameters (:name) rewritten for the driver (%(name)s), leaving casts (::), strings,
quoted names, dollar quotes and comments alone.

A small scanner of PostgreSQL's lexical rules rather than sqlglot's tokenizer: `marketops
run` rewrites one query and should not import sqlglot (a tenth of a second) to do it. The
tests check it against sqlglot's tokens on every query of the repository.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index after the quoted text starting at sql[i] (a doubled quote stays inside)."""
    i += 1
    while i < len(sql):
        char = sql[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _skip_block_comment(sql: str, i: int) -> int:
    depth, i = 1, i + 2  # PostgreSQL's block comments nest
    while i < len(sql) and depth:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _params(sql: str, names: set[str]) -> list[tuple[int, int, str]]:
    found: list[tuple[int, int, str]] = []
    i, size = 0, len(sql)
    while i < size:
        char = sql[i]
        if char == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not (
                sql[i - 2].isalnum() or sql[i - 2] == "_"))
            i = _skip_quoted(sql, i, "'", escaped)
        elif char == '"':
            i = _skip_quoted(sql, i, '"', False)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = size if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif char == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            tag = _DOLLAR.match(sql, i)
            if tag is None:
                i += 1
                continue
            end = sql.find(tag.group(), tag.end())
            i = size if end < 0 else end + len(tag.group())
        elif char == ":":
            if sql.startswith("::", i):
                i += 2
                continue
            name = _NAME.match(sql, i + 1)
            if name is not None and name.group() in names:
                found.append((i, name.end(), f"%({name.group()})s"))
                i = name.end()
            else:
                i += 1
        elif char.isalnum() or char == "_":
            word = _NAME.match(sql, i)
            i = word.end() if word is not None else i + 1
        else:
            i += 1
    return found


def to_pyformat(sql: str, names: set[str]) -> str:
    """`sql` with :name -> %(name)s for each name in `names`, and every literal % doubled."""
    out: list[str] = []
    position = 0
    for start, end, text in _params(sql, names):
        out.append(sql[position:start].replace("%", "%%"))
        out.append(text)
        position = end
    out.append(sql[position:].replace("%", "%%"))
    return "".join(out)
