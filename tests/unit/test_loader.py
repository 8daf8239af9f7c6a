"""The loader: YAML problems and model errors, all collected, each at file:line:col."""

from pathlib import Path

from engine.definitions.loader import allowed_keys, load_project
from engine.definitions.models.report import Report
from engine.definitions.yamlsource import parse_yaml
from tests.helpers import NIGHTLY, REVENUE, by_rule, check, line_of, where

REPORT = "definitions/reports/revenue.yaml"


def test_positions_of_values_and_keys() -> None:
    doc, findings = parse_yaml("f.yaml", "a:\n  b: [1, 2]\n  c:\n    - x: 1\n")
    assert findings == [] and doc is not None
    assert (doc.loc(("a", "b", 1)).line, doc.loc(("a", "b", 1)).col) == (2, 10)
    assert doc.loc(("a", "c", 0, "x"), key=True).line == 4
    assert doc.loc(("a", "missing", "deeper")).line == 2  # nearest known: the mapping under a


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    report = REVENUE.replace("owner:", "ownr:")
    result = check(tmp_path, {REPORT: report})
    messages = {f.message: f for f in by_rule(result, "model")}
    finding = messages["unknown key 'ownr'; did you mean 'owner'?"]
    assert where(finding) == f"{REPORT}:{line_of(report, 'ownr:')}"
    assert "missing required key 'owner'" not in messages  # one error per misspelling


def test_unknown_nested_key(tmp_path: Path) -> None:
    report = REVENUE + "limits: {statement_timout: 1min}\n"
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "model")
    assert finding.message == "limits: unknown key 'statement_timout'; did you mean " \
        "'statement_timeout'?"
    assert finding.location.line == line_of(report, "limits:")


def test_unknown_key_inside_a_union_member(tmp_path: Path) -> None:
    report = REVENUE.replace("- email: finance@corp.example",
                             "- email: finance@corp.example\n    cc: x")
    result = check(tmp_path, {REPORT: report})
    [finding] = by_rule(result, "model")
    assert finding.location.line == line_of(report, "cc: x")
    assert "unknown key 'cc'" in finding.message


def test_allowed_keys_walks_dicts_lists_and_unions() -> None:
    assert "statement_timeout" in allowed_keys(Report, ["limits"])
    assert "email" in allowed_keys(Report, ["recipients", 0, "email-recipient"])


def test_wrong_types(tmp_path: Path) -> None:
    report = REVENUE.replace("recipients:\n  - email: finance@corp.example\n",
                             "recipients: finance@corp.example\nformats: csv\n")
    result = check(tmp_path, {REPORT: report})
    lines = sorted(f.location.line for f in by_rule(result, "model"))
    assert lines == [line_of(report, "recipients:"), line_of(report, "formats:")]


def test_errors_in_many_files_are_all_reported(tmp_path: Path) -> None:
    result = check(tmp_path, {
        REPORT: REVENUE.replace("owner:", "ownr:"),
        "definitions/backups/nightly.yaml": NIGHTLY.replace("rpo: 26h", "rpo: soon"),
        "schema/broken.yaml": "name: [unclosed\n",
        "definitions/reports/empty.yaml": "",
    })
    files = {f.location.file for f in result.errors}
    assert files >= {REPORT, "definitions/backups/nightly.yaml", "schema/broken.yaml",
                     "definitions/reports/empty.yaml"}


def test_yaml_syntax_error_position(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: "title: x\nowner: [a, b\ncron: x\n"})
    [finding] = by_rule(result, "yaml-syntax")
    assert finding.location.file == REPORT and finding.location.line >= 2


def test_unquoted_star_cron_gets_a_hint(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: REVENUE.replace('"0 6 * * *"', "*/5 * * * *")})
    [finding] = by_rule(result, "yaml-syntax")
    assert 'must be quoted, e.g. cron: "*/5 * * * *"' in finding.message
    assert finding.location.line == line_of(REVENUE, "cron:")


def test_tabs_get_a_hint(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: "title: x\n\towner: y\n"})
    [finding] = by_rule(result, "yaml-syntax")
    assert "tabs" in finding.message


def test_empty_file(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: "# only a comment\n"})
    [finding] = by_rule(result, "yaml-empty")
    assert where(finding) == f"{REPORT}:1"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: "- a\n- b\n"})
    [finding] = by_rule(result, "model")
    assert "expected a mapping" in finding.message


def test_two_documents(tmp_path: Path) -> None:
    result = check(tmp_path, {REPORT: REVENUE + "---\ntitle: again\n"})
    [finding] = by_rule(result, "yaml-syntax")
    assert "one YAML document" in finding.message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    root = tmp_path
    check(root)
    (root / REPORT).write_bytes(b"title: caf\xe9\nowner: x\n")
    _project, findings = load_project(root)
    [finding] = findings
    assert (finding.rule, finding.location.line, finding.location.col) == ("yaml-encoding", 1, 11)
    assert "0xe9" in finding.message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    check(tmp_path)
    (tmp_path / "definitions/reports/weird.yaml").mkdir()
    _, findings = load_project(tmp_path)
    assert [(f.location.file, f.rule) for f in findings] == [
        ("definitions/reports/weird.yaml", "yaml-file")]


def test_bad_file_name(tmp_path: Path) -> None:
    result = check(tmp_path, {"definitions/reports/Daily-Revenue.yaml": REVENUE})
    [finding] = by_rule(result, "file-name")
    assert finding.location.file == "definitions/reports/Daily-Revenue.yaml"


def test_same_id_twice(tmp_path: Path) -> None:
    result = check(tmp_path, {"definitions/reports/revenue.yml": REVENUE})
    [finding] = by_rule(result, "duplicate-id")
    assert "revenue" in finding.message


def test_recursive_alias_and_alias_bombs_do_not_hang() -> None:
    _, findings = parse_yaml("f.yaml", "a: &x [*x]\n")
    assert findings and findings[0].rule == "yaml-syntax"
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
        f"*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
    _, findings = parse_yaml("f.yaml", bomb)
    assert findings and "too many values" in findings[0].message


def test_env_references_stay_unresolved(tmp_path: Path, monkeypatch: object) -> None:
    result = check(tmp_path)
    assert result.project.settings.keys["k1"] == "${BACKUP_KEY}"


def test_comma_in_a_flow_mapping_gets_a_hint(tmp_path: Path) -> None:
    from tests.helpers import SHOP

    shop = SHOP.replace("region: {type: text}", "region: {type: text, description: north, south}")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "model")
    assert "unknown key 'south'" in finding.message
    assert "a comma ends the value" in finding.message


def test_a_broken_report_still_has_its_sql_checked(tmp_path: Path) -> None:
    """A structural error (a misspelt key, even sql_file's own) does not hide the SQL's."""
    report = REVENUE.replace("owner:", "ownr:").replace("sum(o.total)", "sum(o.totl)")
    result = check(tmp_path, {"definitions/reports/revenue.yaml": report})
    messages = [f.message for f in result.findings]
    assert "unknown key 'ownr'; did you mean 'owner'?" in messages
    assert "missing required key 'owner'" not in messages  # one error per misspelling
    assert "unknown column shop.orders.totl; did you mean total?" in messages
    filed = REVENUE.split("sql: |")[0] + "sql_flie: revenue.sql\n" + \
        REVENUE.split("group by c.region\n")[1]
    sql = "select o.nope, x.id from shop.orders o join shop.nowhere x on x.id = o.id\n"
    result = check(tmp_path, {"definitions/reports/revenue.yaml": filed,
                              "definitions/reports/revenue.sql": sql})
    found = sorted(f"{f.location.file}:{f.location.line}: {f.message}" for f in result.findings)
    assert found == sorted([
        f"definitions/reports/revenue.yaml:{line_of(filed, 'sql_flie')}: unknown key "
        "'sql_flie'; did you mean 'sql_file'?",
        "definitions/reports/revenue.sql:1: unknown table shop.nowhere: not declared in "
        "schema/shop.yaml",
        "definitions/reports/revenue.sql:1: unknown column shop.orders.nope"]), found
