from engine.reports.sqlparams import to_pyformat


def test_named_parameters_become_pyformat() -> None:
    sql = "select :a::date, ':a' as s, x % 2 -- :a\nfrom t where y like '%z' and w = :b"
    assert to_pyformat(sql, {"a", "b"}) == (
        "select %(a)s::date, ':a' as s, x %% 2 -- :a\nfrom t where y like '%%z' and w = %(b)s")


def test_unknown_names_are_left_alone() -> None:
    assert to_pyformat("select :a, :b", {"a"}) == "select %(a)s, :b"
