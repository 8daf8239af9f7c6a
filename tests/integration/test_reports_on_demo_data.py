"""Every report of the repository runs on the demo data for its latest period and returns
rows: read-only, within its limits."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from engine.scheduling.jobs import jobs
from engine.validation.validate import validate
from runners.demo.data import generate
from runners.report.query import run_report
from tests.support.reports import request_for

UNTIL = date(2026, 11, 1)


def test_all_fifteen_reports_return_rows(repo_root: Path, new_database: Callable[..., str],
                                         declared_schema: str, tmp_path: Path) -> None:
    defs = validate(repo_root)
    assert defs.passed()
    project = defs.project
    dsn = new_database(declared_schema)
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


def _trivial(values: list[str]) -> str | None:
    """Why a column's figures say nothing (all empty, all zero, or all alike), or None.

    Alike counts from three rows on: two small counts (the funnel's two variants) agree by
    chance too often to mean anything."""
    def zero(value: str) -> bool:
        try:
            return float(value) == 0
        except ValueError:
            return False
    if all(v == "" for v in values):
        return "empty"
    if all(zero(v) for v in values):
        return "zero"
    if len(values) > 2 and len(set(values)) == 1:
        return "constant"
    return None


# Columns allowed to be zero, empty or constant in the latest period, and why.
TRIVIAL_BY_TRUTH = {
    # The truth: the seeded outside-network story is two nights back, not yesterday.
    ("security_audit", "actions_outside_network"): "no admin acted from outside yesterday",
    # The truth: a rating comes hours after the resolution, so yesterday's tickets are rarely
    # rated by the anchor (midnight UTC).
    ("support_sla", "avg_rating"): "yesterday's tickets are not rated yet",
    ("support_sla", "ratings"): "yesterday's tickets are not rated yet",
    # The truth at the demo's scale: a handful of tickets a day, answered and closed over the
    # next hours and days, so at midnight UTC some days none of yesterday's is answered yet,
    # and every topic may have just one.
    ("support_sla", "tickets"): "a handful of tickets a day",
    ("support_sla", "avg_first_response_minutes"): "yesterday's tickets may all be unanswered",
    ("support_sla", "first_response_within_sla"): "yesterday's tickets may all be unanswered",
    ("support_sla", "closed_within_sla"): "yesterday's tickets are rarely closed yet",
    # The report's SQL: the period's NPS is one figure repeated on every topic row.
    ("support_sla", "nps"): "one figure for the period, on every row",
}

# The truth on a Saturday or Sunday: one or two admins on a weekend shift, and the seeded
# night, do little; whole kinds of action do not happen.
QUIET_WEEKEND = {("security_audit", c) for c in (
    "products_created", "products_deleted", "price_changes", "promo_changes",
    "order_status_changes", "logins_without_mfa", "failed_attempts", "night_actions")}


@pytest.mark.parametrize("anchor", [date(2026, 12, 1), date(2026, 11, 4)])
def test_every_report_shows_real_figures_for_the_demos_latest_period(
        repo_root: Path, new_database: Callable[..., str], declared_schema: str,
        tmp_path: Path, anchor: date) -> None:
    """As `marketops demo` runs them: data up to the anchor (the demo's --until is today), each
    report's latest slot in the morning after it. Fixed anchors (a Tuesday that starts a
    month, a Wednesday) keep the test the same on every day it runs."""
    defs = validate(repo_root)
    assert defs.passed()
    project = defs.project
    dsn = new_database(declared_schema)
    generate(dsn, [f"{s}.{t}" for s, loaded in project.schemas.items()
                   for t in loaded.model.tables], scale=0.01, seed=42, until=anchor)
    at = datetime.combine(anchor, time(10), UTC)
    trivial: dict[tuple[str, str], str] = {}
    for _job_id, job in sorted(jobs(project).items()):
        if job.kind != "report":
            continue
        assert job.schedule is not None
        slot = job.schedule.latest_at_or_before(at)
        assert slot is not None
        done = run_report(request_for(job, slot, dsn, tmp_path / job.name))
        with (done.directory / f"{job.name}.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows, job.name
        for column in rows[0]:
            why = _trivial([row[column] for row in rows])
            period = job.period(slot)
            weekend = period is not None and period.start.weekday() >= 5
            if why is not None and not (weekend and (job.name, column) in QUIET_WEEKEND):
                trivial[(job.name, column)] = why
    assert {k: v for k, v in trivial.items() if k not in TRIVIAL_BY_TRUTH} == {}
