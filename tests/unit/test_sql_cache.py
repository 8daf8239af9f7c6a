"""validate's SQL cache: the same findings as without it, and never a stale answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.validation.output import RENDERERS
from engine.validation.sqlmemo import SqlMemo
from engine.validation.validate import ValidationResult, validate
from runners.cache.analyses import FILE, open_memo, save_memo, tool_fingerprint
from runners.cache.directory import cache_dir
from tests.helpers import REVENUE, write_project
from tests.support.repository import definitions_copy

BROKEN = REVENUE.replace("sum(o.total) as revenue", "sum(o.totl) as revenue")


@pytest.fixture(autouse=True)
def _own_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKETOPS_CACHE_DIR", raising=False)


def cached(root: Path) -> tuple[ValidationResult, SqlMemo]:
    """One validate run as the CLI does it: read the cache, validate, save."""
    memo = open_memo(root)
    defs = validate(root, debug=True, memo=memo)
    assert save_memo(root, memo)
    return defs, memo


def rendered(defs: ValidationResult) -> str:
    return RENDERERS["json"](defs, strict=False) + RENDERERS["text"](defs, strict=False)


def test_cold_and_warm_runs_find_exactly_what_an_uncached_run_finds(tmp_path: Path) -> None:
    root = definitions_copy(tmp_path)
    report = root / "definitions/reports/pnl_monthly.sql"
    report.write_text(report.read_text().replace("p.net_revenue", "p.nosuch_revenue", 1))
    term = root / "definitions/glossary/active_customers.sql"
    term.write_text(term.read_text().replace("count(*)", "count(p.nosuch)", 1))
    plain = validate(root, debug=True)
    assert plain.errors, "the copy must be broken for this test to compare findings"
    cold, first = cached(root)
    warm, second = cached(root)
    assert first.misses > 0 and first.hits == 0
    assert second.misses == 0 and second.hits == first.misses
    assert rendered(cold) == rendered(plain)
    assert rendered(warm) == rendered(plain)


def test_only_the_changed_sql_is_analysed_again(tmp_path: Path) -> None:
    root = definitions_copy(tmp_path)
    _, first = cached(root)
    report = root / "definitions/reports/data_quality.sql"
    report.write_text(report.read_text() + "\n-- reviewed\n")
    result, second = cached(root)
    assert result.findings == []
    assert second.misses == 1
    assert second.hits == first.misses - 1


def test_an_edited_query_is_checked_again_not_answered_from_the_cache(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    assert cached(root)[0].findings == []
    write_project(root, {"definitions/reports/revenue.yaml": BROKEN})
    result, _ = cached(root)
    assert [f.rule for f in result.errors] == ["sql-unknown-column"]
    write_project(root)
    assert cached(root)[0].findings == []


def test_a_schema_change_invalidates_the_analyses_that_read_it(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    assert cached(root)[0].findings == []
    schema = root / "schema/shop.yaml"
    schema.write_text(schema.read_text().replace("      region: {type: text}\n", ""))
    result, memo = cached(root)
    assert memo.hits == 0
    assert [f.rule for f in result.errors] == ["sql-unknown-column"]
    assert "region" in result.errors[0].message


def test_another_checker_version_never_reads_the_entries(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    cached(root)
    path = cache_dir(root) / FILE
    saved = json.loads(path.read_text())
    assert saved["tool"] == tool_fingerprint() and saved["entries"]
    # What an older marketops would have left: right keys for it, wrong answers for us.
    saved["tool"] = "marketops 0.0.1"
    for entry in saved["entries"].values():
        if isinstance(entry, dict):
            entry["problems"] = [["stale", "sql-stale", 1, 1]]
    path.write_text(json.dumps(saved))
    assert open_memo(root).entries == {}
    result, memo = cached(root)
    assert result.findings == [] and memo.hits == 0


def test_keys_depend_on_the_checker_the_catalog_and_the_text(tmp_path: Path) -> None:
    project = validate(write_project(tmp_path)).project
    other = validate(write_project(tmp_path / "other", {
        "schema/shop.yaml": (tmp_path / "schema/shop.yaml").read_text().replace(
            "pii: email", "pii: none")})).project
    memo = SqlMemo({}, "one")
    key = memo.key("analyze", "select 1", project.catalog)
    assert key == SqlMemo({}, "one").key("analyze", "select 1", project.catalog)
    assert key != SqlMemo({}, "two").key("analyze", "select 1", project.catalog)
    assert key != memo.key("analyze", "select 2", project.catalog)
    assert key != memo.key("analyze", "select 1", other.catalog)


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"tool": 1}', "\x00\xff"])
def test_a_corrupt_cache_file_is_an_empty_cache(tmp_path: Path, garbage: str) -> None:
    root = write_project(tmp_path, {"definitions/reports/revenue.yaml": BROKEN})
    expected = rendered(validate(root, debug=True))
    cache_dir(root).mkdir(parents=True)
    (cache_dir(root) / FILE).write_text(garbage, errors="surrogateescape")
    result, memo = cached(root)
    assert rendered(result) == expected and memo.hits == 0
    assert json.loads((cache_dir(root) / FILE).read_text())["tool"] == tool_fingerprint()


def test_a_corrupt_entry_is_computed_again(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"definitions/reports/revenue.yaml": BROKEN})
    expected = rendered(validate(root, debug=True))
    cached(root)
    path = cache_dir(root) / FILE
    saved = json.loads(path.read_text())
    for key in saved["entries"]:
        saved["entries"][key] = {"problems": [["x"]]}
    path.write_text(json.dumps(saved))
    result, memo = cached(root)
    assert rendered(result) == expected
    assert memo.hits == 0 and memo.misses == len(saved["entries"])


def test_an_unwritable_cache_directory_only_means_no_cache(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    root = write_project(tmp_path)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("MARKETOPS_CACHE_DIR", str(blocker / "cache"))
    memo = open_memo(root)
    assert validate(root, memo=memo).findings == []
    assert save_memo(root, memo) is False


def test_the_cache_directory_is_ignored_by_git(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    cached(root)
    assert (root / ".marketops/.gitignore").read_text().splitlines()[-1] == "*"
