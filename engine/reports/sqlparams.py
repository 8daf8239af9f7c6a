"""Named parameters (:name) rewritten for the driver (%(name)s), using sqlglot's tokenizer so
that casts (::), strings and comments are left alone."""

from __future__ import annotations

import sqlglot


def to_pyformat(sql: str, names: set[str]) -> str:
    """`sql` with :name -> %(name)s for each name in `names`, and every literal % doubled."""
    tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(sql)
    replacements: list[tuple[int, int, str]] = []
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        if token.token_type == sqlglot.TokenType.COLON and following is not None \
                and following.text in names and following.start == token.end + 1:
            replacements.append((token.start, following.end + 1, f"%({following.text})s"))
    out: list[str] = []
    position = 0
    for start, end, text in replacements:
        out.append(sql[position:start].replace("%", "%%"))
        out.append(text)
        position = end
    out.append(sql[position:].replace("%", "%%"))
    return "".join(out)
