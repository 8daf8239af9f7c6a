"""`marketops status` and the status page as an on-call engineer reads them: each job's times
in its own timezone, named, how far from now, how long the last run took, a retrying run as
needing attention, and a link to each run's outputs and error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.runs.ledger import RunRecord
from engine.runs.status import job_status, relative, render_html, render_run, render_text
from engine.scheduling.jobs import Job, jobs
from tests.helpers import BASE, write_project

NOW = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)  # 08:30 in Berlin


def _revenue(tmp_path: Path) -> Job:
    from engine.validation.validate import validate

    root = write_project(tmp_path, dict(BASE))
    found = jobs(validate(root).project)
    return next(j for j in found.values() if j.schedule and j.schedule.timezone ==
                "Europe/Berlin" and j.kind == "report")


def _record(status: str, error: str | None = None, **outputs: object) -> RunRecord:
    slot = datetime(2026, 12, 1, 5, tzinfo=UTC)  # 06:00 Berlin
    return RunRecord(7, "report/daily_revenue", slot, status, 2, "host:1",
                     slot + timedelta(seconds=2), slot + timedelta(seconds=14.4), error,
                     dict(outputs), "schedule")


def test_relative_times_read_as_people_say_them() -> None:
    assert relative(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert relative(NOW + timedelta(hours=3, minutes=2), NOW) == "in 3 h"
    assert relative(NOW - timedelta(days=3), NOW) == "3 d ago"
    assert relative(NOW - timedelta(seconds=20), NOW) == "just now"


def test_status_shows_each_job_in_its_own_zone_named_and_utc_when_asked(tmp_path: Path
                                                                         ) -> None:
    job = _revenue(tmp_path)
    done = _record("succeeded")
    status = job_status(job, True, done, done.finished_at, NOW)
    text = render_text([status], NOW)
    [header, line] = text.splitlines()
    assert header.split()[:3] == ["job", "zone", "last"]
    assert job.id in line and "Europe/Berlin" in line
    assert "2026-12-01 06:00 CET" in line  # the slot, as the YAML's cron says it
    assert "2026-12-02 06:00 CET (in 21 h)" in line  # the next run, 21.5 h ahead
    assert "2026-12-01 06:00 CET (2 h ago)" in line  # the last success
    assert " 12s " in line  # how long it took
    assert "+00:00" not in line
    utc = render_text([status], NOW, utc=True)
    assert "2026-12-01 05:00 UTC" in utc and "CET" not in utc


def test_a_retrying_run_needs_attention_and_links_to_its_error_and_outputs(
        tmp_path: Path) -> None:
    job = _revenue(tmp_path)
    retrying = _record("retrying", "1 delivery failed: email:a@x (Connection refused)")
    status = job_status(job, True, retrying, None, NOW)
    assert not status.healthy and "retrying after attempt 2" in str(status.problem)
    page = render_html([status], "w", NOW)
    assert "1 job(s) need attention." in page and '<tr class="problem">' in page
    assert '<a href="/runs/7">retrying</a>' in page and 'href="/runs/7#error"' in page
    assert "2026-12-01 06:00 CET" in page
    done = _record("succeeded", directory="/srv/reports/daily_revenue/p",
                   files={"daily_revenue.csv": {"bytes": 10}}, rows=3)
    run_page = render_run(done, "Europe/Berlin", NOW)
    assert 'href="file:///srv/reports/daily_revenue/p/daily_revenue.csv"' in run_page
    assert '<pre id="error">none</pre>' in run_page and "rows: 3" in run_page
    failing = render_run(retrying, "Europe/Berlin", NOW)
    assert "Connection refused" in failing and "2026-12-01 06:00 CET" in failing
