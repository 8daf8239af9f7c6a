"""Running a declared report in tests the way the engine does: its SQL, parameters and timezone."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from engine.definitions.project import Project
from engine.reports.sqlparams import to_pyformat
from engine.scheduling.jobs import Job, jobs
from runners.report.query import ReportRequest, ReportResult, run_report


def request_for(job: Job, slot: datetime, dsn: str, out_dir: Path) -> ReportRequest:
    """The request a run of `job` for `slot` sends the runner (CSV only, no psql)."""
    assert job.report is not None and job.sql is not None
    params = job.parameters(slot)
    return ReportRequest(job.name, dsn, to_pyformat(job.sql, set(params)), params,
                         job.report.limits.statement_timeout, job.report.limits.max_rows,
                         out_dir, job.report.timezone)


def run_declared(project: Project, dsn: str, report: str, at: datetime,
                 out_dir: Path) -> ReportResult:
    """Run report `report` for its latest slot at or before `at`."""
    job = jobs(project)[f"report/{report}"]
    assert job.schedule is not None
    slot = job.schedule.latest_at_or_before(at)
    assert slot is not None, f"report/{report} has no slot before {at}"
    return run_report(request_for(job, slot, dsn, out_dir))


def declared_rows(project: Project, dsn: str, report: str, at: datetime,
                  out_dir: Path) -> list[dict[str, str]]:
    """The CSV rows of report `report` for its latest slot at or before `at`."""
    done = run_declared(project, dsn, report, at, out_dir / report)
    with (done.directory / f"{report}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
