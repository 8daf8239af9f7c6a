from engine.reports.sqlparams import to_pyformat


def test_named_parameters_become_pyformat() -> None:
    sql = "select :a::date, ':a' as s, x % 2 -- :a\nfrom t where y like '%z' and w = :b"
    assert to_pyformat(sql, {"a", "b"}) == (
        "select %(a)s::date, ':a' as s, x %% 2 -- :a\nfrom t where y like '%%z' and w = %(b)s")


def test_unknown_names_are_left_alone() -> None:
    assert to_pyformat("select :a, :b", {"a"}) == "select %(a)s, :b"


def test_strings_quoted_names_dollar_quotes_and_comments_are_left_alone() -> None:
    sql = ("select :a, E'it\\'s :a', 'x'':a', \"col:a\", $$ :a $$, $t$ :a $t$, "
           "/* :a /* :a */ :a */ :a, arr[1:2], x::a, y\n-- :a\n, :b")
    assert to_pyformat(sql, {"a", "b"}) == (
        "select %(a)s, E'it\\'s :a', 'x'':a', \"col:a\", $$ :a $$, $t$ :a $t$, "
        "/* :a /* :a */ :a */ %(a)s, arr[1:2], x::a, y\n-- :a\n, %(b)s")


def _with_sqlglot(sql: str, names: set[str]) -> str:
    """The rewrite as sqlglot's tokenizer sees the query: the reference."""
    import sqlglot

    tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(sql)
    out, position = [], 0
    for token, following in zip(tokens, [*tokens[1:], None], strict=False):
        if token.token_type == sqlglot.TokenType.COLON and following is not None \
                and following.text in names and following.start == token.end + 1:
            out.append(sql[position:token.start].replace("%", "%%"))
            out.append(f"%({following.text})s")
            position = following.end + 1
    out.append(sql[position:].replace("%", "%%"))
    return "".join(out)


def test_every_query_of_the_repository_is_rewritten_as_sqlglot_reads_it() -> None:
    from pathlib import Path

    from engine.scheduling.jobs import jobs
    from engine.validation.validate import validate

    project = validate(Path(__file__).resolve().parents[2]).project
    checked = 0
    for job in jobs(project).values():
        if job.sql is None or job.report is None:
            continue
        names = {"period_start", "period_end", "slot_time", "timezone", *job.report.params}
        assert to_pyformat(job.sql, names) == _with_sqlglot(job.sql, names), job.id
        checked += 1
    assert checked >= 10
