"""validate's whole-run memo: a replayed run prints byte for byte what a fresh one prints, and
any change to an input the loader read (or a corrupt memo) means a fresh run."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.app.cli.main import cli
from engine.validation.output import RENDERERS
from engine.validation.sqlmemo import SqlMemo
from engine.validation.validate import validate
from runners.cache import parallel, runmemo
from runners.cache.directory import cache_dir
from runners.cache.parallel import prefetch
from runners.cache.runmemo import FILE

ROOT = Path(__file__).resolve().parents[2]
# Planted in the memo's saved outputs: seen in a run's output only when it was replayed.
PLANTED = "replayed from the memo\n"


@pytest.fixture(autouse=True)
def _own_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKETOPS_CACHE_DIR", raising=False)
    monkeypatch.delenv("MARKETOPS_TARGET", raising=False)


def repository_copy(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("marketops.yaml", "schema", "definitions"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy(source, target / name)
    return target


def broken_copy(target: Path) -> Path:
    """The repository with errors (SQL naming missing columns) and warnings (a glossary
    term nothing uses)."""
    root = repository_copy(target)
    report = root / "definitions/reports/pnl_monthly.sql"
    report.write_text(report.read_text().replace("p.net_revenue", "p.nosuch_revenue", 1))
    glossary = root / "definitions/glossary"
    shutil.copy(glossary / "purchases.yaml", glossary / "unused_purchases.yaml")
    text = (glossary / "unused_purchases.yaml").read_text()
    (glossary / "unused_purchases.yaml").write_text(text.replace("purchases.sql",
                                                                 "unused_purchases.sql"))
    shutil.copy(glossary / "purchases.sql", glossary / "unused_purchases.sql")
    return root


def run(root: Path, *args: str) -> tuple[str, int]:
    result = CliRunner().invoke(cli, ["--root", str(root), "validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.stdout, result.exit_code


def memo_file(root: Path) -> Path:
    return cache_dir(root) / FILE


def plant(root: Path) -> None:
    """Prefix every saved output with PLANTED, so a replay shows."""
    data = json.loads(memo_file(root).read_text())
    for entry in data["runs"].values():
        entry["output"] = PLANTED + entry["output"]
    memo_file(root).write_text(json.dumps(data))


FLAGS = [("--format", "text"), ("--format", "json"), ("--format", "github"),
         ("--format", "text", "--strict"), ("--format", "github", "--strict")]


@pytest.mark.parametrize("make", [repository_copy, broken_copy],
                         ids=["repository", "broken"])
def test_a_replayed_run_prints_what_a_fresh_run_prints(tmp_path: Path,
                                                        make: Callable[[Path], Path]) -> None:
    root = make(tmp_path)
    for flags in FLAGS:
        fresh = run(root, "--no-cache", *flags)
        first = run(root, *flags)  # computes and saves
        second = run(root, *flags)  # replays
        assert first == fresh, flags
        assert second == fresh, flags
    data = json.loads(memo_file(root).read_text())
    assert len(data["runs"]) == len(FLAGS)
    plant(root)
    for flags in FLAGS:  # every one of those was answered from the memo
        output, code = run(root, *flags)
        assert output.startswith(PLANTED)
        assert (output.removeprefix(PLANTED), code) == run(root, "--no-cache", *flags)
    if make is broken_copy:
        assert run(root, "--no-cache")[1] == 1
        assert '"severity": "warning"' in run(root, "--no-cache", "--format", "json")[0]


def _edit_report_yaml(root: Path) -> None:
    path = root / "definitions/reports/assortment.yaml"
    path.write_text(path.read_text().replace("owner: category-management@",
                                             "owner: nobody@", 1) + "bogus_key: 1\n")


def _edit_sql_file(root: Path) -> None:
    path = root / "definitions/reports/assortment.sql"
    path.write_text(path.read_text().replace("product.categories", "product.nosuch_categories", 1))


def _new_report(root: Path) -> None:
    reports = root / "definitions/reports"
    (reports / "zz_new.yaml").write_text((reports / "assortment.yaml").read_text())


def _removed_report(root: Path) -> None:
    (root / "definitions/reports/assortment.yaml").unlink()


def _removed_sql_file(root: Path) -> None:
    (root / "definitions/reports/assortment.sql").unlink()


def _settings(root: Path) -> None:
    path = root / "marketops.yaml"
    path.write_text(path.read_text() + "\nno_such_setting: 1\n")


def _settings_gone(root: Path) -> None:
    (root / "marketops.yaml").unlink()


def _new_folder(root: Path) -> None:
    shutil.rmtree(root / "definitions/backups")
    (root / "definitions/backups").write_text("a file where a folder should be\n")


def _schema(root: Path) -> None:
    path = sorted((root / "schema").glob("*.yaml"))[0]
    path.write_text(path.read_text() + "\nbogus_key: 1\n")


def _symlink_target(root: Path) -> None:
    reports = root / "definitions/reports"
    sql = (reports / "assortment.sql").read_text()
    (reports / "other.sql").write_text(sql.replace("product.categories",
                                                   "product.nosuch_categories", 1))
    (reports / "link.sql").unlink()
    (reports / "link.sql").symlink_to("other.sql")


def _linked(root: Path) -> None:
    """assortment.yaml reads its SQL through a symlink (link.sql -> assortment.sql)."""
    reports = root / "definitions/reports"
    (reports / "link.sql").symlink_to("assortment.sql")
    path = reports / "assortment.yaml"
    path.write_text(path.read_text().replace("sql_file: assortment.sql", "sql_file: link.sql"))


CHANGES: dict[str, Callable[[Path], None]] = {
    "report yaml edited": _edit_report_yaml,
    "sql_file edited": _edit_sql_file,
    "report added": _new_report,
    "report removed": _removed_report,
    "sql_file removed": _removed_sql_file,
    "marketops.yaml edited": _settings,
    "marketops.yaml removed": _settings_gone,
    "a folder became a file": _new_folder,
    "schema edited": _schema,
    "symlink retargeted": _symlink_target,
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_any_change_to_an_input_is_a_fresh_run(tmp_path: Path, change: str) -> None:
    root = repository_copy(tmp_path)
    _linked(root)
    before = run(root)
    plant(root)
    assert run(root)[0].startswith(PLANTED)  # unchanged: replayed
    CHANGES[change](root)
    after = run(root)
    assert after == run(root, "--no-cache")
    assert after != before, "the change must change the findings for this test to tell"
    assert run(root) == after  # and the new output is what is saved now


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"format": 1, "runs": 3}',
                                     '{"format": 1, "runs": {"x": 1}}', "\x00\xff"])
def test_a_corrupt_memo_is_ignored_and_replaced(tmp_path: Path, garbage: str) -> None:
    root = broken_copy(tmp_path)
    fresh = run(root, "--no-cache")
    run(root)
    for key in json.loads(memo_file(root).read_text())["runs"]:
        if "x" in garbage:
            garbage = garbage.replace('"x"', json.dumps(key))
    memo_file(root).write_text(garbage)
    assert run(root) == fresh
    assert json.loads(memo_file(root).read_text())["format"] == 1
    plant(root)
    assert run(root)[0].startswith(PLANTED)


def test_a_corrupt_entry_is_ignored(tmp_path: Path) -> None:
    root = repository_copy(tmp_path)
    fresh = run(root, "--no-cache")
    run(root)
    data = json.loads(memo_file(root).read_text())
    for entry in data["runs"].values():
        entry["journal"] = {"q:nonsense": []}
        entry["output"] = PLANTED
    memo_file(root).write_text(json.dumps(data))
    assert run(root) == fresh


def test_no_cache_neither_reads_nor_writes_the_memo(tmp_path: Path) -> None:
    root = repository_copy(tmp_path)
    fresh = run(root, "--no-cache")
    assert not memo_file(root).exists()
    run(root)
    plant(root)
    saved = memo_file(root).read_bytes()
    assert run(root, "--no-cache") == fresh
    assert memo_file(root).read_bytes() == saved


def test_an_unwritable_cache_directory_only_means_no_memo(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    root = repository_copy(tmp_path / "repo")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MARKETOPS_CACHE_DIR", str(blocker / "cache"))
    fresh = run(root, "--no-cache")
    assert run(root) == fresh
    assert run(root) == fresh


def test_another_target_or_format_is_its_own_entry(tmp_path: Path) -> None:
    root = repository_copy(tmp_path)
    text, json_ = run(root), run(root, "--format", "json")
    assert text != json_
    assert run(root) == text
    assert run(root, "--format", "json") == json_


def test_the_fingerprint_names_the_libraries_that_decide_a_finding() -> None:
    names = {Path(v).name.removesuffix(".dist-info").rsplit("-", 1)[0].lower()
             for v in runmemo._versions()}
    assert {"pydantic", "pydantic_core", "sqlglot", "croniter", "pyyaml", "tzdata"} <= names


def test_an_edit_to_the_engine_code_is_a_fresh_run(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = repository_copy(tmp_path / "repo")
    code = tmp_path / "engine"
    shutil.copytree(ROOT / "engine/validation", code)
    monkeypatch.setattr(runmemo, "_PACKAGES", (code,))
    run(root)
    plant(root)
    assert run(root)[0].startswith(PLANTED)
    rules = code / "rules/report_rules.py"
    rules.write_text(rules.read_text() + "\n# an edit\n")
    assert not run(root)[0].startswith(PLANTED)


@pytest.mark.parametrize("make", [repository_copy, broken_copy],
                         ids=["repository", "broken"])
def test_analyses_over_two_processes_find_what_one_at_a_time_finds(
        tmp_path: Path, make: Callable[[Path], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Threads left by earlier tests in the same run would make prefetch (rightly) not fork;
    # this test is about what a fork finds, so it sees this process as single-threaded.
    monkeypatch.setattr(parallel.threading, "active_count", lambda: 1)
    root = make(tmp_path)
    one_at_a_time = validate(root, every_target=True)
    memo = SqlMemo({}, "")
    counted: list[int] = []
    both = validate(root, every_target=True, memo=memo,
                    prepare=lambda project: counted.append(prefetch(project, memo)))
    assert counted[0] > 0, "the analyses must have been shared out for this test to tell"
    assert memo.misses == counted[0], "the rules had to compute some SQL the fork left out"
    for render in RENDERERS.values():
        assert render(both, strict=True) == render(one_at_a_time, strict=True)
    assert run(root, "--no-cache", "--format", "json") == (
        RENDERERS["json"](one_at_a_time), 0 if one_at_a_time.passed() else 1)


def test_no_fork_while_another_thread_runs(tmp_path: Path) -> None:
    root = repository_copy(tmp_path)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        memo = SqlMemo({}, "")
        counted: list[int] = []
        found = validate(root, every_target=True, memo=memo,
                         prepare=lambda project: counted.append(prefetch(project, memo)))
    finally:
        stop.set()
        other.join()
    assert counted == [0]
    assert memo.misses > 0, "the rules computed every analysis in this process instead"
    assert RENDERERS["json"](found) == RENDERERS["json"](validate(root, every_target=True))
