"""Hostile or unlucky definitions through `marketops validate` in a subprocess: each exits 1
within seconds with one line at the place of the problem (no traceback, no hang, no 'valid')."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REVENUE, write_project

MARKETOPS = shutil.which("marketops", path=str(Path(sys.executable).parent)) or "marketops"
REPORT = "definitions/reports/revenue.yaml"
# Generous for a loaded 2-core machine; the cases that used to hang or stall took minutes.
SECONDS = 20.0


def _validate(root: Path) -> tuple[list[str], float]:
    started = time.monotonic()
    result = subprocess.run([MARKETOPS, "--root", str(root), "validate"], capture_output=True,
                            text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "internal" not in result.stdout, result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    return errors, elapsed


def _one_error(root: Path, where: str, *words: str) -> str:
    errors, elapsed = _validate(root)
    assert len(errors) == 1, errors
    assert errors[0].startswith(where + ": error: "), errors
    for word in words:
        assert word in errors[0], errors
    assert elapsed < SECONDS, elapsed
    return errors[0]


def _has_error(root: Path, where: str, *words: str) -> None:
    """An error at `where` with `words`; others may follow from it (a tier that did not load
    leaves its tables without a backup)."""
    errors, elapsed = _validate(root)
    assert [e for e in errors if e.startswith(where + ": error: ")
            and all(w in e for w in words)], errors
    assert elapsed < SECONDS, elapsed


def _with_sql_file(root: Path, sql: str | bytes) -> Path:
    head = REVENUE.split("sql: |")[0]
    (root / REPORT).write_text(head + "sql_file: revenue.sql\nrecipients:\n"
                               "  - email: finance@corp.example\n", encoding="utf-8")
    path = root / "definitions/reports/revenue.sql"
    if isinstance(sql, bytes):
        path.write_bytes(sql)
    else:
        path.write_text(sql, encoding="utf-8")
    return path


SQL_FILE_LINE = REVENUE.split("sql: |")[0].count("\n") + 1  # where `sql_file:` is written


def test_a_yaml_file_above_the_cap(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).write_text(REVENUE + "#" + "x" * (1024 * 1024) + "\n")
    _one_error(tmp_path, f"{REPORT}:1:1", "larger than 1 MiB")


def test_a_yaml_file_that_is_a_fifo(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).unlink()
    os.mkfifo(tmp_path / REPORT)
    _one_error(tmp_path, f"{REPORT}:1:1", "not a regular file")


def test_a_yaml_file_that_is_dev_zero(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).unlink()
    (tmp_path / REPORT).symlink_to("/dev/zero")
    _one_error(tmp_path, f"{REPORT}:1:1", "not a regular file")


def test_a_yaml_file_that_is_a_symlink_loop(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).unlink()
    (tmp_path / REPORT).symlink_to(tmp_path / REPORT)
    _one_error(tmp_path, f"{REPORT}:1:1", "symlink loop")


def test_settings_as_a_symlink_loop_are_not_taken_as_missing(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / "marketops.yaml").unlink()
    (tmp_path / "marketops.yaml").symlink_to("marketops.yaml")
    _has_error(tmp_path, "marketops.yaml:1:1", "symlink loop")


@pytest.mark.parametrize("folder", ["definitions/reports", "definitions/backups", "schema",
                                    "definitions/glossary", "definitions"])
def test_a_definitions_folder_that_is_a_file(tmp_path: Path, folder: str) -> None:
    write_project(tmp_path)
    shutil.rmtree(tmp_path / folder, ignore_errors=True)
    (tmp_path / folder).write_text("reports: []\n")
    errors, _ = _validate(tmp_path)
    assert f"{folder}:1:1: error: {folder} is a file, expected a folder [yaml-file]" \
        in errors, errors


def test_a_definitions_folder_that_is_a_symlink_loop(tmp_path: Path) -> None:
    write_project(tmp_path)
    shutil.rmtree(tmp_path / "definitions/backups")
    (tmp_path / "definitions/backups").symlink_to("backups")
    errors, _ = _validate(tmp_path)
    assert "definitions/backups:1:1: error: definitions/backups is a symlink loop or a broken " \
        "link, expected a folder [yaml-file]" in errors, errors


def test_sql_file_that_is_a_fifo_dev_zero_or_loop(tmp_path: Path) -> None:
    write_project(tmp_path)
    sql = _with_sql_file(tmp_path, "select 1 as n")
    sql.unlink()
    os.mkfifo(sql)
    _one_error(tmp_path, f"{REPORT}:{SQL_FILE_LINE}:11", "sql_file 'revenue.sql'",
               "not a regular file")
    sql.unlink()
    sql.symlink_to("/dev/zero")
    _one_error(tmp_path, f"{REPORT}:{SQL_FILE_LINE}:11", "not a regular file")
    sql.unlink()
    sql.symlink_to(sql)
    _one_error(tmp_path, f"{REPORT}:{SQL_FILE_LINE}:11", "symlink loop")


def test_sql_file_above_the_cap(tmp_path: Path) -> None:
    write_project(tmp_path)
    _with_sql_file(tmp_path, "select 1 as n\n" + "-- " + "x" * (1024 * 1024) + "\n")
    _one_error(tmp_path, "definitions/reports/revenue.sql:1:1", "larger than 1 MiB")


def test_nul_in_a_sql_file_at_its_line(tmp_path: Path) -> None:
    write_project(tmp_path)
    _with_sql_file(tmp_path, "select o.id\nfrom shop.orders o\nwhere o.id = 1\x00\n")
    _one_error(tmp_path, "definitions/reports/revenue.sql:3:15", "NUL")


@pytest.mark.parametrize(("char", "name"), [("\x00", "U+0000 (NUL)"), ("\x07", "U+0007"),
                                            ("\x1b", "U+001B")])
def test_control_characters_in_yaml_at_their_line(tmp_path: Path, char: str,
                                                  name: str) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).write_text(REVENUE.replace("Revenue per region.",
                                                   f"Revenue{char} per region."))
    line = _one_error(tmp_path, f"{REPORT}:2:21", name)
    assert "tab" not in line


def test_deeply_nested_sql_is_refused_at_the_sql_file(tmp_path: Path) -> None:
    write_project(tmp_path)
    depth = 20_000
    _with_sql_file(tmp_path, "select o.id,\n  " + "(" * depth + "1" + ")" * depth +
                   " as x\nfrom shop.orders o\n")
    _one_error(tmp_path, "definitions/reports/revenue.sql:2:35", "more than 32 deep")


def test_deeply_nested_inline_sql_is_refused_in_the_yaml(tmp_path: Path) -> None:
    write_project(tmp_path)
    deep = "(" * 40 + "1" + ")" * 40
    (tmp_path / REPORT).write_text(REVENUE.replace("select c.region,",
                                                   f"select {deep} as x, c.region,"))
    # The SQL starts on line 8 at column 3; the 33rd parenthesis is 32 characters on.
    _one_error(tmp_path, f"{REPORT}:8:42", "more than 32 deep")


@pytest.mark.parametrize("branches", [2_000, 5_000])
def test_many_union_branches_are_refused_quickly(tmp_path: Path, branches: int) -> None:
    write_project(tmp_path)
    _with_sql_file(tmp_path, "\nunion all\n".join(
        f"select o.id, o.total from shop.orders o where o.id = {i}" for i in range(branches)))
    # The 200th UNION is on line 400 (a branch and its UNION ALL take two lines each).
    _one_error(tmp_path, "definitions/reports/revenue.sql:400:1", "more than 200 queries")


def test_up_to_200_union_branches_pass(tmp_path: Path) -> None:
    write_project(tmp_path)
    _with_sql_file(tmp_path, "\nunion all\n".join(
        f"select o.id, o.total from shop.orders o where o.id = {i}" for i in range(200)))
    result = subprocess.run([MARKETOPS, "--root", str(tmp_path), "validate"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("key", "value", "words"), [
    ("rpo", "99999999999999999999d", "at most 36500d"),
    ("rpo", "36501d", "at most 36500d"),
    ("rto", "1" * 5000 + "s", "at most 36500d"),
])
def test_huge_durations(tmp_path: Path, key: str, value: str, words: str) -> None:
    write_project(tmp_path)
    path = tmp_path / "definitions/backups/nightly.yaml"
    text = path.read_text()
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith(f"{key}:"))
    path.write_text(text.replace(f"{key}: ", f"{key}: {value} #", 1))
    _has_error(tmp_path, f"definitions/backups/nightly.yaml:{line}:{len(key) + 3}", words)


def test_zero_statement_timeout_and_rolling_period(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).write_text(REVENUE + "limits: {statement_timeout: 0s}\n")
    _one_error(tmp_path, f"{REPORT}:15:29", "0s", "no limit")
    (tmp_path / REPORT).write_text(REVENUE.replace("period: previous_day",
                                                   "period: {rolling: 0s}"))
    _one_error(tmp_path, f"{REPORT}:6:19", "0s covers no time")


def test_an_echoed_value_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / REPORT).write_text(REVENUE.replace(
        "owner: finance@corp.example", 'owner: "finance@corp.example\\nerror: forged"'))
    line = _one_error(tmp_path, f"{REPORT}:3:8", "is not a valid email address")
    assert "finance@corp.example\\nerror: forged" in line


def test_huge_retention_counts(tmp_path: Path) -> None:
    write_project(tmp_path)
    path = tmp_path / "definitions/backups/nightly.yaml"
    path.write_text(path.read_text() + "retention: {keep_daily: 99999999999999999999}\n")
    _has_error(tmp_path, "definitions/backups/nightly.yaml:9:25", "keep_daily",
               "less than or equal to 36500")


@pytest.mark.parametrize("target", ["../../../../../../../etc/passwd", "/etc/passwd",
                                    "link.sql"])
def test_sql_file_outside_the_project_is_not_read(tmp_path: Path, target: str) -> None:
    write_project(tmp_path)
    _with_sql_file(tmp_path, "select 1 as n").unlink()
    (tmp_path / "definitions/reports/link.sql").symlink_to("/etc/passwd")
    (tmp_path / REPORT).write_text((tmp_path / REPORT).read_text().replace(
        "sql_file: revenue.sql", f"sql_file: {target}"))
    line = _one_error(tmp_path, f"{REPORT}:{SQL_FILE_LINE}:11", f"sql_file '{target}' leads "
                      "to /etc/passwd, outside the project")
    assert "root:" not in line  # nothing of the file is quoted


def test_a_sql_file_elsewhere_inside_the_project_is_read(tmp_path: Path) -> None:
    write_project(tmp_path)
    _with_sql_file(tmp_path, "select 1 as n").unlink()
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql/revenue.sql").write_text("select 1 as n, nope(")
    (tmp_path / REPORT).write_text((tmp_path / REPORT).read_text().replace(
        "sql_file: revenue.sql", "sql_file: ../../sql/revenue.sql"))
    _has_error(tmp_path, "sql/revenue.sql:1:20", "does not parse")  # read, not refused


def test_a_definition_linked_from_outside_the_project_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write_project(root)
    (tmp_path / "elsewhere.yaml").write_text((root / REPORT).read_text())
    (root / "definitions/reports/copied.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    _one_error(root, "definitions/reports/copied.yaml:1:1",
               f"is a link to {tmp_path / 'elsewhere.yaml'}, outside the project")
