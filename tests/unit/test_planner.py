"""The planner and `marketops plan --format json`: slots in order, in each job's zone, with
the period and the SQL."""

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from engine.app.cli import cli
from engine.scheduling.jobs import jobs
from engine.scheduling.planner import plan
from tests.helpers import REVENUE, check

NIGHTLY_BERLIN = REVENUE.replace('cron: "0 6 * * *"', 'cron: "30 2 * * *"')


def test_fall_back_day_has_one_slot_and_periods_follow_the_zone(tmp_path: Path) -> None:
    project = check(tmp_path, {"definitions/reports/revenue.yaml": NIGHTLY_BERLIN}).project
    slots = list(plan(jobs(project).values(), datetime(2026, 10, 24, 12, tzinfo=UTC),
                      datetime(2026, 10, 26, 12, tzinfo=UTC)))
    reports = [s.as_dict() for s in slots if s.job.kind == "report"]
    assert [r["slot"] for r in reports] == ["2026-10-25T02:30:00+02:00",
                                            "2026-10-26T02:30:00+01:00"]
    assert reports[1]["period"] == {"start": "2026-10-25T00:00:00+02:00",
                                    "end": "2026-10-26T00:00:00+01:00"}
    assert "sum(o.total) as revenue" in str(reports[0]["action"])


def test_slots_of_several_jobs_are_merged_in_time_order(tmp_path: Path) -> None:
    project = check(tmp_path).project
    slots = list(plan(jobs(project).values(), datetime(2026, 3, 1, tzinfo=UTC),
                      datetime(2026, 3, 4, tzinfo=UTC)))
    times = [s.slot for s in slots]
    assert times == sorted(times)
    assert {s.job.id for s in slots} == {"report/revenue", "backup/nightly"}
    assert len(slots) == 6


def test_plan_json_command(tmp_path: Path) -> None:
    root = check(tmp_path, {"definitions/reports/revenue.yaml": NIGHTLY_BERLIN}).project.root
    result = CliRunner().invoke(cli, ["--root", str(root), "plan", "--from", "2026-03-28T12:00Z",
                                      "--until", "2026-03-30T12:00Z", "--job", "report/revenue",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    # Spring forward: 02:30 does not exist on the 29th; the slot runs right after the jump.
    assert [s["slot"] for s in document["slots"]] == ["2026-03-29T03:00:00+02:00",
                                                      "2026-03-30T02:30:00+02:00"]
    assert document["slots"][0]["slot_utc"] == "2026-03-29T01:00:00+00:00"


def test_plan_rejects_unknown_job_and_reversed_window(tmp_path: Path) -> None:
    root = str(check(tmp_path).project.root)
    unknown = CliRunner().invoke(cli, ["--root", root, "plan", "--from", "2026-01-01",
                                       "--until", "2026-01-02", "--job", "report/nope"])
    assert unknown.exit_code == 2 and "unknown job report/nope" in unknown.output
    reversed_ = CliRunner().invoke(cli, ["--root", root, "plan", "--from", "2026-01-02",
                                         "--until", "2026-01-01"])
    assert reversed_.exit_code == 2 and "--until must be after --from" in reversed_.output


def test_plan_text_lists_what_retention_would_delete_per_tier() -> None:
    from engine.scheduling.planner import PlanWindow, plan_text

    window = PlanWindow(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC), [],
                        summarize=False)
    preview = {"nightly_full": {"keep": ["b3", "b2"], "delete": {"b1": "beyond keep_last 2"}},
               "base_weekly": {"keep": ["f1"], "delete": {},
                               "wal_segments": ["000000010000000000000001",
                                                "000000010000000000000007"],
                               "note": "WAL older than the oldest kept base backup"}}
    assert plan_text(window, preview) == [
        "0 slot(s)",
        "retention nightly_full: keep 2, delete 1",
        "    delete nightly_full/b1: beyond keep_last 2",
        "retention base_weekly: keep 1, delete 0, 2 WAL segment(s) (WAL older than the oldest "
        "kept base backup)",
        "    delete WAL 000000010000000000000001 .. 000000010000000000000007"]
