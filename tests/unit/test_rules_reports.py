"""Report rules: SQL, parameters, outputs, cadence, recipients and personal data."""

from pathlib import Path

import pytest

from engine.validation.findings import Severity
from tests.helpers import REVENUE, by_rule, check, line_of, where

REPORT = "definitions/reports/revenue.yaml"


def _report(old: str, new: str) -> str:
    assert old in REVENUE
    return REVENUE.replace(old, new)


def _sql(sql_lines: str) -> str:
    head = REVENUE.split("sql: |\n")[0]
    tail = REVENUE.split("recipients:\n")[1]
    body = "".join(f"  {line}\n" for line in sql_lines.strip().splitlines())
    return f"{head}sql: |\n{body}recipients:\n{tail}"


@pytest.mark.parametrize(("sql", "needle", "rule"), [
    ("delete from shop.orders", "DELETE writes", "sql-read-only"),
    ("select o.id from shop.orders o for update", "locks rows", "sql-read-only"),
    ("with d as (delete from shop.orders returning id) select id from d", "DELETE writes",
     "sql-read-only"),
    ("select pg_read_file('/etc/passwd') as f", "reads server files", "sql-read-only"),
    ("select o.id from shop.orders o\nwhere o.id in (select nextval('s'))", "writes a sequence",
     "sql-read-only"),
    ("select * from dblink('host=x', 'select 1') as t(a int)", "reaches another server",
     "sql-read-only"),
    ("select lo_export(1, '/tmp/x') as x", "large objects", "sql-read-only"),
    ("select * into shop.copy from shop.orders", "creates a table", "sql-read-only"),
    ("copy shop.orders to '/tmp/o.csv'", "COPY", "sql-read-only"),
    ("set statement_timeout = 0", "SET changes settings", "sql-read-only"),
    ("select public.wipe() as w", "user-defined functions", "sql-read-only"),
    ("select o.id from otherdb.shop.orders o", "names another database", "sql-read-only"),
    ("select set_config('a.b', 'c', false) as x", "changes settings", "sql-read-only"),
    ("select query_to_xml('delete from shop.orders', true, true, '') as x", "dynamic SQL",
     "sql-read-only"),
    ("select 1 as a; select 2 as b", "exactly one statement", "sql-single-statement"),
    ("select from where", "does not parse", "sql-syntax"),
    ("select o.id from shop.ordres o", "did you mean shop.orders?", "sql-unknown-table"),
    ("select o.id from orders o", "not in any schema on the search_path", "sql-unknown-table"),
    ("select o.nope from shop.orders o", "unknown column shop.orders.nope", "sql-unknown-column"),
    ("select nope from shop.orders", "unknown column 'nope'", "sql-unknown-column"),
    ("select id from shop.orders o join shop.customers c on c.id = o.customer_id",
     "ambiguous", "sql-ambiguous-column"),
    ("select o.id from shop.orders o where o.id = $1", "positional", "sql-parameters"),
])
def test_sql_violations(tmp_path: Path, sql: str, needle: str, rule: str) -> None:
    report = _sql(sql)
    result = check(tmp_path, {REPORT: report})
    found = by_rule(result, rule)
    assert found, [f.message for f in result.findings]
    assert any(needle in f.message for f in found), [f.message for f in found]
    first_sql_line = line_of(report, "sql: |") + 1
    assert all(f.location.file == REPORT and f.location.line >= first_sql_line for f in found)


def test_sql_error_points_at_the_line_inside_the_block(tmp_path: Path) -> None:
    report = _sql("select o.id,\n       o.bogus\nfrom shop.orders o")
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "sql-unknown-column")
    assert where(finding) == f"{REPORT}:{line_of(report, 'o.bogus')}"
    assert finding.location.col == line_of_col(report, "bogus")


def line_of_col(text: str, needle: str) -> int:
    for line in text.splitlines():
        if needle in line:
            return line.index(needle) + 1
    raise AssertionError(needle)


def test_sql_file_errors_point_into_the_sql_file(tmp_path: Path) -> None:
    report = REVENUE.split("sql: |")[0] + "sql_file: revenue.sql\nrecipients:\n" + \
        REVENUE.split("recipients:\n")[1]
    sql = "select o.id\nfrom shop.orders o\nwhere o.placed_at >= :period_strat\n"
    result = check(tmp_path, {REPORT: report, "definitions/reports/revenue.sql": sql})
    [finding] = by_rule(result, "sql-parameters")
    assert where(finding) == "definitions/reports/revenue.sql:3"
    assert "did you mean :period_start?" in finding.message


def test_missing_sql_file(tmp_path: Path) -> None:
    report = REVENUE.split("sql: |")[0] + "sql_file: nowhere.sql\nrecipients:\n" + \
        REVENUE.split("recipients:\n")[1]
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "sql-file")
    assert where(finding) == f"{REPORT}:{line_of(report, 'nowhere.sql')}"


def test_both_sql_and_sql_file_is_an_error(tmp_path: Path) -> None:
    report = _report("sql: |", "sql_file: x.sql\nsql: |")
    result = check(tmp_path, {REPORT: report})
    assert any("exactly one of `sql`" in f.message for f in by_rule(result, "model"))


def test_declared_params_are_provided_and_unused_ones_warn(tmp_path: Path) -> None:
    report = _report("group by c.region", "  and o.total > :min_total\n  group by c.region")
    report = report.replace("recipients:", "params: {min_total: 10, unused: 1}\nrecipients:")
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "sql-parameters")
    assert finding.severity is Severity.WARNING and "'unused'" in finding.message
    assert finding.location.line == line_of(report, "params:")


def test_chart_and_alert_columns_must_be_outputs(tmp_path: Path) -> None:
    report = REVENUE + ("chart: {x: region, y: [revenu]}\n"
                        "alerts:\n  - {name: low, column: total, op: '<', value: 5}\n")
    result = check(tmp_path, {REPORT: report})
    found = by_rule(result, "report-output-columns")
    assert [f.location.line for f in found] == [line_of(report, "chart:"),
                                                line_of(report, "column: total")]
    assert "did you mean 'revenue'?" in found[0].message


def test_period_reported_twice_is_an_error(tmp_path: Path) -> None:
    report = _report("period: previous_day", "period: previous_week")
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "report-period-cadence")
    assert finding.severity is Severity.ERROR
    assert where(finding) == f"{REPORT}:{line_of(report, 'cron:')}"


def test_period_with_holes_is_a_warning(tmp_path: Path) -> None:
    report = _report('cron: "0 6 * * *"', 'cron: "0 6 * * 1"')
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "report-period-cadence")
    assert finding.severity is Severity.WARNING
    assert finding.location.line == line_of(report, "period:")


@pytest.mark.parametrize("cron, period", [("0 6 * * 1", "previous_week"),
                                          ("0 6 1 * *", "previous_month"),
                                          ("0 6 2 1,4,7,10 *", "previous_quarter"),
                                          ("0 * * * *", "{rolling: 1h}"),
                                          ("0 6 * * *", "{rolling: 28d}")])
def test_matching_periods_pass(tmp_path: Path, cron: str, period: str) -> None:
    report = _report('cron: "0 6 * * *"', f'cron: "{cron}"').replace(
        "period: previous_day", f"period: {period}")
    result = check(tmp_path, {REPORT: report})
    assert by_rule(result, "report-period-cadence") == []


def test_invalid_cron_and_timezone(tmp_path: Path) -> None:
    report = _report('cron: "0 6 * * *"', 'cron: "0 25 * * *"').replace(
        "Europe/Berlin", "Europe/Berln")
    result = check(tmp_path, {REPORT: report})
    found = by_rule(result, "model")
    assert [f.location.line for f in found] == [line_of(report, "cron:"),
                                                line_of(report, "timezone:")]
    assert "did you mean 'Europe/Berlin'?" in found[1].message


def test_recipients_must_exist(tmp_path: Path) -> None:
    report = REVENUE + "  - webhook: opz\n  - destination: nowhere\n"
    result = check(tmp_path, {REPORT: report})
    found = by_rule(result, "report-recipients")
    assert [f.location.line for f in found] == [line_of(report, "opz"),
                                                line_of(report, "nowhere")]
    assert "did you mean 'ops'?" in found[0].message


def test_bad_email_recipient(tmp_path: Path) -> None:
    report = _report("- email: finance@corp.example", "- email: finance-at-corp")
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "model")
    assert finding.location.line == line_of(report, "finance-at-corp")


def test_pii_output_must_be_declared(tmp_path: Path) -> None:
    report = _sql("select c.email, count(*) as orders\nfrom shop.orders o\n"
                  "join shop.customers c on c.id = o.customer_id\ngroup by c.email")
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "report-pii")
    assert where(finding) == f"{REPORT}:{line_of(report, 'sql: |')}"
    assert "shop.customers.email (as 'email')" in finding.message


def test_pii_through_a_cte_is_traced(tmp_path: Path) -> None:
    report = _sql("with x as (select c.email as who from shop.customers c)\nselect x.who from x")
    result = check(tmp_path, {REPORT: report})
    assert len(by_rule(result, "report-pii")) == 1


def test_counting_pii_is_not_exposing_it(tmp_path: Path) -> None:
    report = _sql("select count(distinct c.email) as buyers from shop.customers c")
    result = check(tmp_path, {REPORT: report})
    assert by_rule(result, "report-pii") == []


def test_pii_report_goes_only_to_internal_recipients(tmp_path: Path) -> None:
    report = _sql("select c.email from shop.customers c").replace(
        "recipients:", "contains_pii: true\nrecipients:") + (
        "  - email: partner@outside.example\n  - webhook: ops\n  - webhook: trusted\n")
    result = check(tmp_path, {REPORT: report})
    found = by_rule(result, "report-pii")
    assert [f.location.line for f in found] == [line_of(report, "outside.example"),
                                                line_of(report, "webhook: ops")]


def test_declared_columns_must_be_outputs_and_well_formed(tmp_path: Path) -> None:
    report = REVENUE + ("columns:\n"
                        "  revenue: {label: Revenue, format: {currency: EUR}, key: true}\n"
                        "  revenu: {label: Typo}\n")
    found = by_rule(check(tmp_path, {REPORT: report}), "report-output-columns")
    assert [f.location.line for f in found] == [line_of(report, "  revenu: {label: Typo}")]
    assert "did you mean" in found[0].message or "revenue" in found[0].message
    bad = REVENUE + "columns:\n  revenue: {format: {currency: euro}}\n"
    result = check(tmp_path / "bad", {REPORT: bad})
    assert not result.passed()
    assert any(f.location.line == line_of(bad, "  revenue:") for f in result.errors), \
        [(f.location.line, f.message) for f in result.errors]


def test_chart_series_must_be_an_output_and_plot_one_column(tmp_path: Path) -> None:
    report = REVENUE + "chart: {x: region, series: regoin, y: [revenue]}\n"
    found = by_rule(check(tmp_path, {REPORT: report}), "report-output-columns")
    assert [f.location.line for f in found] == [line_of(report, "chart:")]
    assert "regoin" in found[0].message
    two = REVENUE + "chart: {x: region, series: region, y: [revenue, revenue]}\n"
    result = check(tmp_path / "two", {REPORT: two})
    assert any("exactly one y" in f.message and f.location.line == line_of(two, "chart:")
               for f in result.errors), [(f.location.line, f.message) for f in result.errors]
