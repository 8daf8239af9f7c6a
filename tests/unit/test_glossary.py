"""Glossary terms: defined once, put in front of the reports that list them, positions kept."""

from __future__ import annotations

from pathlib import Path

from engine.definitions.glossary import TermCycle, TermSource, closure, expand
from engine.definitions.project import ReportSql
from engine.definitions.yamlsource import SourceDoc
from engine.validation.findings import Severity
from tests.helpers import REVENUE, by_rule, check, where

REPORT = "definitions/reports/revenue.yaml"
SALES = """\
description: An order of more than zero, with its customer's region.
sql: |
  select o.id, o.total, o.placed_at, c.region
  from shop.orders o
  join shop.customers c on c.id = o.customer_id
  where o.total > 0
"""
BIG_SALES = """\
description: A sale of 100 or more.
uses: [sales]
sql_file: big_sales.sql
"""


def _report(sql: str, uses: str = "[sales]") -> str:
    head = REVENUE.split("sql: |\n")[0]
    tail = REVENUE.split("recipients:\n")[1]
    body = "".join(f"  {line}\n" for line in sql.strip().splitlines())
    return f"{head}uses: {uses}\nsql: |\n{body}recipients:\n{tail}"


def _doc() -> SourceDoc:
    return SourceDoc("t.yaml", {}, {}, {}, set())  # type: ignore[arg-type]


def test_closure_orders_terms_after_what_they_read() -> None:
    depends = {"a": ["b"], "b": ["c"], "c": [], "d": []}
    assert closure(["a", "d"], depends) == ["c", "b", "a", "d"]
    assert closure(["zz"], depends) == []


def test_closure_names_a_circle() -> None:
    try:
        closure(["a"], {"a": ["b"], "b": ["a"]})
    except TermCycle as exc:
        assert str(exc) == "a -> b -> a"
    else:
        raise AssertionError("no cycle found")


def test_expand_keeps_the_reports_own_lines_and_columns() -> None:
    term = TermSource(ReportSql("select 1 as x\nfrom t;\n", "definitions/glossary/s.sql"),
                      _doc())
    own = ReportSql("-- lead\nWITH w as (select x from s)\nselect x from w", "r.sql")
    expanded = expand(own, [("s", term)])
    lines = expanded.text.splitlines()
    assert lines[:5] == ["WITH", "s AS (", "select 1 as x", "from t", ")"]
    assert lines[5:] == ["-- lead", ",    w as (select x from s)", "select x from w"]
    assert expanded.prefix_lines == 5
    assert expanded.own_text == own.text
    # The report's line 3 col 8 is where it was; term lines map onto the term's file.
    assert str(expanded.locate(_doc(), 8, 8)) == "r.sql:3:8"
    assert str(expanded.locate(_doc(), 4, 6)) == "definitions/glossary/s.sql:2:6"


def test_expand_moves_recursive_to_the_front() -> None:
    term = TermSource(ReportSql("select 1 as x"), _doc())
    own = ReportSql("with recursive r(n) as (select 1 union all select n + 1 from r "
                    "where n < 3) select n from r, s")
    text = expand(own, [("s", term)]).text
    assert text.startswith("WITH RECURSIVE\ns AS (")
    assert "\n,              r(n) as (" in text


def test_a_report_reads_a_term_and_validates(tmp_path: Path) -> None:
    result = check(tmp_path, {
        "definitions/glossary/sales.yaml": SALES,
        REPORT: _report("""
            select s.region, sum(s.total) as revenue
            from sales s
            where s.placed_at >= :period_start and s.placed_at < :period_end
            group by s.region"""),
    })
    assert result.passed(strict=True), [f"{f.location}: {f.message}" for f in result.findings]
    sql = result.project.report_sql["revenue"]
    assert sql.text.startswith("WITH\nsales AS (\nselect o.id")
    analysis = result.project.analyses["revenue"]
    assert ("shop", "orders") in analysis.tables and ("shop", "customers") in analysis.tables


def test_errors_are_located_in_the_term_or_in_the_report(tmp_path: Path) -> None:
    broken = SALES.replace("o.total > 0", "o.totl > 0")
    result = check(tmp_path, {
        "definitions/glossary/sales.yaml": broken,
        "definitions/glossary/big_sales.yaml": BIG_SALES,
        "definitions/glossary/big_sales.sql": "select * from sales where total >= 100\n",
        REPORT: _report("select s.nope from big_sales s", uses="[big_sales]"),
    })
    located = {(where(f), f.rule) for f in result.errors}
    assert ("definitions/glossary/sales.yaml:6", "sql-unknown-column") in located, located
    assert all(not w.startswith(REPORT) for w, _ in located), located
    fixed = check(tmp_path / "b", {
        "definitions/glossary/sales.yaml": SALES,
        "definitions/glossary/big_sales.yaml": BIG_SALES,
        "definitions/glossary/big_sales.sql": "select * from sales where total >= 100\n",
        REPORT: _report("select\n  s.nope from big_sales s", uses="[big_sales]"),
    })
    [error] = fixed.errors
    assert where(error) == f"{REPORT}:10" and "nope" in error.message, error


def test_unknown_unlisted_unused_and_redefined_terms(tmp_path: Path) -> None:
    result = check(tmp_path, {
        "definitions/glossary/sales.yaml": SALES,
        REPORT: _report("select 1 as one", uses="[sale]"),
    })
    [unknown] = [f for f in by_rule(result, "glossary") if f.severity is Severity.ERROR]
    assert unknown.message == "uses: unknown glossary term 'sale'; did you mean 'sales'?"
    assert where(unknown) == f"{REPORT}:7"
    unlisted = check(tmp_path / "u", {
        "definitions/glossary/sales.yaml": SALES,
        REPORT: _report("select s.total from sales s", uses="[]"),
    })
    assert any("'sales' is a glossary term: list it under `uses`" in f.message
               for f in unlisted.errors), [f.message for f in unlisted.findings]
    assert any("used by no report" in f.message and f.severity is Severity.WARNING
               for f in unlisted.findings)
    unread = check(tmp_path / "n", {
        "definitions/glossary/sales.yaml": SALES,
        REPORT: _report("select o.total from shop.orders o"),
    })
    assert [f.message for f in unread.warnings] == [
        "uses: the SQL never reads 'sales'; remove it from `uses`"]
    redefined = check(tmp_path / "r", {
        "definitions/glossary/sales.yaml": SALES,
        REPORT: _report("with sales as (select 1 as total) select total from sales"),
    })
    assert any("defines its own 'sales'" in f.message for f in redefined.errors)


def test_circular_terms_are_one_finding_each(tmp_path: Path) -> None:
    result = check(tmp_path, {
        "definitions/glossary/a.yaml": "description: A thing.\nuses: [b]\nsql: select 1 as x\n",
        "definitions/glossary/b.yaml": "description: B thing.\nuses: [a]\nsql: select 1 as x\n",
        REPORT: _report("select x from a", uses="[a]"),
    })
    circles = [f for f in result.errors if "circle" in f.message]
    assert {where(f) for f in circles} == {"definitions/glossary/a.yaml:2",
                                           "definitions/glossary/b.yaml:2"}
