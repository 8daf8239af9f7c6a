"""--select as dbt users write it, on this repository's own jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.scheduling.jobs import Job, jobs
from engine.scheduling.selection import select
from engine.validation.validate import validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def every() -> dict[str, Job]:
    return jobs(validate(ROOT).project)


def _ids(found: list[Job]) -> list[str]:
    return [j.id for j in found]


def test_kind_tag_glob_union_and_intersection(every: dict[str, Job]) -> None:
    reports = _ids(select(every, ["report/*"]))
    assert reports and all(j.startswith("report/") for j in reports)
    assert len(reports) == sum(1 for j in every.values() if j.kind == "report")
    assert _ids(select(every, ["kind:backup"])) == sorted(j for j in every if
                                                          j.startswith("backup/"))
    assert _ids(select(every, ["kind:wal_archive"])) == ["backup/wal_archive"]
    assert _ids(select(every, ["tag:finance"])) == ["report/pnl_monthly", "report/promo_roi"]
    assert _ids(select(every, ["tag:finance,report/pnl*"])) == ["report/pnl_monthly"]
    assert _ids(select(every, ["tag:finance", "nightly_full"])) == [
        "backup/nightly_full", "report/pnl_monthly", "report/promo_roi"]
    assert len(select(every, [])) == len(every)


def test_a_selector_that_picks_nothing_or_is_unknown_is_one_clear_error(
        every: dict[str, Job]) -> None:
    with pytest.raises(UsageError, match=r"--select tag:nope selects no job"):
        select(every, ["tag:nope"])
    with pytest.raises(UsageError, match=r"unknown method 'owner'"):
        select(every, ["owner:x"])
    with pytest.raises(UsageError, match=r"names no value"):
        select(every, ["tag:"])
