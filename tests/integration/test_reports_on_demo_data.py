"""Every report of the repository runs on the demo data for its latest period and returns
rows: read-only, within its limits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from engine.ddl import create_all
from engine.jobs import jobs
from engine.validate import validate
from runners.database import execute_script
from runners.demodata import generate
from runners.report import run_report
from tests.support.reports import request_for

UNTIL = date(2026, 11, 1)


def test_all_fifteen_reports_return_rows(repo_root: Path, new_database: Callable[..., str],
                                         tmp_path: Path) -> None:
    result = validate(repo_root)
    assert result.passed()
    project = result.project
    dsn = new_database()
    execute_script(dsn, create_all(s.model for s in project.schemas.values()))
    generate(dsn, [f"{s}.{t}" for s, loaded in project.schemas.items()
                   for t in loaded.model.tables], scale=0.005, seed=11, until=UNTIL)
    reports = {j: job for j, job in jobs(project).items() if job.kind == "report"}
    assert len(reports) == 15
    at = datetime(2026, 10, 31, 23, tzinfo=UTC)
    empty = []
    for job_id, job in sorted(reports.items()):
        assert job.schedule is not None and job.report is not None and job.sql is not None
        slot = job.schedule.latest_at_or_before(at)
        assert slot is not None
        done = run_report(request_for(job, slot, dsn, tmp_path / job.name))
        if done.rows == 0:
            empty.append(job_id)
        assert (tmp_path / job.name / "manifest.json").exists()
    assert empty == []
