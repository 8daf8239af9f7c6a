"""run/backfill check what the job reads: its own problems stop it, others are warnings."""

from __future__ import annotations

from pathlib import Path

from engine.definitions.scope import validate_job
from engine.validation.sqlmemo import SqlMemo
from tests.helpers import NIGHTLY, REVENUE, write_project

BROKEN_SQL = REVENUE.replace("sum(o.total) as revenue", "sum(o.totl) as revenue")
OTHER = "definitions/reports/other.yaml"


def test_a_broken_unrelated_report_does_not_stop_a_healthy_one(tmp_path: Path) -> None:
    root = write_project(tmp_path, {OTHER: BROKEN_SQL})
    memo = SqlMemo({}, "test")
    checked = validate_job(root, "report/revenue", memo=memo)
    assert checked.passed()
    # The other report's SQL was not analysed at all: one analysis, the job's own.
    assert checked.elsewhere == []
    assert memo.misses == 1
    assert list(checked.defs.project.reports) == ["revenue"]


def test_the_unrelated_reports_broken_yaml_is_a_warning(tmp_path: Path) -> None:
    root = write_project(tmp_path, {OTHER: REVENUE.replace("cron:", "cronn:")})
    checked = validate_job(root, "report/revenue")
    assert checked.passed()
    assert [f.location.file for f in checked.elsewhere] == [OTHER]


def test_the_jobs_own_sql_stops_it(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"definitions/reports/revenue.yaml": BROKEN_SQL,
                                    OTHER: REVENUE})
    checked = validate_job(root, "report/revenue")
    assert not checked.passed()
    assert [f.rule for f in checked.defs.errors] == ["sql-unknown-column"]
    assert validate_job(root, "report/other").passed()


def test_the_jobs_own_broken_yaml_stops_it(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"definitions/reports/revenue.yaml":
                                    REVENUE.replace("cron:", "cronn:")})
    checked = validate_job(root, "report/revenue")
    assert not checked.passed()
    assert {f.location.file for f in checked.defs.errors} == {
        "definitions/reports/revenue.yaml"}


def test_settings_and_schema_problems_stop_every_job(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    shop = root / "schema/shop.yaml"
    shop.write_text(shop.read_text().replace("    primary_key: [id]\n", "", 1))
    for job in ("report/revenue", "backup/nightly"):
        checked = validate_job(root, job)
        assert not checked.passed(), job
        assert {f.location.file for f in checked.defs.errors} == {"schema/shop.yaml"}


def test_a_backup_ignores_reports_and_a_report_ignores_backup_rules(tmp_path: Path) -> None:
    root = write_project(tmp_path, {OTHER: BROKEN_SQL, "definitions/reports/revenue.yaml":
                                    BROKEN_SQL})
    assert validate_job(root, "backup/nightly").passed()
    # Weekly: every table lacks a daily backup, a finding placed on the schema file.
    weekly = NIGHTLY.replace('cron: "0 1 * * *"', 'cron: "0 1 * * 0"').replace("26h", "8d")
    root = write_project(tmp_path / "second", {"definitions/backups/nightly.yaml": weekly})
    report = validate_job(root, "report/revenue")
    assert report.passed()
    assert {(f.location.file, f.rule) for f in report.elsewhere} == {
        ("schema/shop.yaml", "backup-coverage")}
    assert not validate_job(root, "backup/nightly").passed()


def test_checking_one_job_keeps_the_other_cached_analyses(tmp_path: Path) -> None:
    from engine.validation.validate import validate
    from runners.cache.analyses import open_memo, save_memo

    root = write_project(tmp_path, {OTHER: REVENUE.replace("c.region,", "c.region, 1 as one,")})
    memo = open_memo(root)
    validate(root, memo=memo)
    assert save_memo(root, memo)
    saved = len(memo.used)
    write_project(root, {"definitions/reports/revenue.yaml": REVENUE.replace(
        "sum(o.total)", "sum(o.total) + 0")})
    job = open_memo(root)
    assert validate_job(root, "report/revenue", memo=job).passed()
    assert job.misses == 1
    assert save_memo(root, job, prune=False)
    again = open_memo(root)
    validate(root, memo=again)
    assert again.misses == 0 and again.hits == saved


def test_plan_of_one_job_warns_about_a_broken_unrelated_report(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.app.cli.main import cli

    root = str(write_project(tmp_path, {OTHER: REVENUE.replace("cron:", "cronn:")}))
    args = ["--root", root, "plan", "--from", "2026-03-28T12:00Z", "--until",
            "2026-03-30T12:00Z", "--format", "json"]
    assert CliRunner().invoke(cli, args).exit_code == 2  # every job: the definitions count
    one = CliRunner().invoke(cli, [*args, "--job", "report/revenue"])
    assert one.exit_code == 0, one.output
    assert "warning: 1 definition error(s) in what report/revenue does not read, first: " \
        f"{OTHER}:" in one.stderr
    broken = CliRunner().invoke(cli, [*args, "--job", "report/other"])
    assert broken.exit_code == 2 and f"{OTHER}:" in broken.output
