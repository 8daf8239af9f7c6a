"""Backup tiers in status: age of the newest valid backup against the RPO, in text, JSON,
Prometheus metrics and the HTML page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.backups.freshness import Freshness, backup_freshness
from engine.runs.status import as_dict, job_status, render_html, render_metrics, render_text
from engine.scheduling.jobs import Job, jobs
from tests.helpers import BASE, write_project

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _nightly(tmp_path: Path) -> Job:
    from engine.validation.validate import validate

    root = write_project(tmp_path, dict(BASE))
    return jobs(validate(root).project)["backup/nightly"]


def test_a_stale_tier_is_a_problem_everywhere(tmp_path: Path) -> None:
    job = _nightly(tmp_path)
    stale = backup_freshness("nightly", timedelta(hours=26), "b1", NOW - timedelta(hours=30),
                             NOW)
    status = job_status(job, True, None, None, NOW, stale)
    assert not status.healthy and "RPO is 26.0h" in str(status.problem)
    text = render_text([status])
    assert "30.0h / RPO 26.0h" in text
    metrics = render_metrics([status], [], {}, {})
    assert 'marketops_backup_age_seconds{tier="nightly"} 108000' in metrics
    assert 'marketops_backup_rpo_seconds{tier="nightly"} 93600' in metrics
    assert 'marketops_backup_fresh{tier="nightly"} 0' in metrics
    assert as_dict(status)["backup"] == {"newest": "b1", "rpo_seconds": 93600.0,
                                         "age_seconds": 108000.0,
                                         "problem": status.freshness.problem}  # type: ignore[union-attr]
    assert "30.0h / RPO 26.0h" in render_html([status], "w", NOW)


def test_a_fresh_tier_reports_fresh(tmp_path: Path) -> None:
    job = _nightly(tmp_path)
    fresh = Freshness("nightly", timedelta(hours=26), "b2", timedelta(hours=1), None)
    status = job_status(job, True, None, None, NOW, fresh)
    metrics = render_metrics([status], [], {}, {})
    assert 'marketops_backup_fresh{tier="nightly"} 1' in metrics
    assert status.freshness is fresh


def test_asynchronous_archivings_queue_shows_in_text_and_json(tmp_path: Path) -> None:
    from dataclasses import replace

    from engine.backups.walqueue import QueueState

    job = _nightly(tmp_path)
    fresh = backup_freshness("nightly", timedelta(hours=26), "b1", NOW - timedelta(hours=1),
                             NOW)
    plain = job_status(job, True, None, None, NOW, fresh)
    assert "async queue" not in render_text([plain]) and "queue" not in as_dict(plain)["backup"]
    queued = job_status(job, True, None, None, NOW,
                        replace(fresh, queue=QueueState(7, 3, ["X: refused"], 4242)))
    lines = render_text([queued]).splitlines()
    assert lines[2] == ("  async queue: 7 ready, 3 stored ahead, pusher running (pid 4242); "
                        "last error: X: refused")
    assert as_dict(queued)["backup"]["queue"] == {  # type: ignore[index]
        "ready": 7, "stored_ahead": 3, "pusher_pid": 4242, "errors": ["X: refused"],
        "pusher_hung": False}
    hung = job_status(job, True, None, None, NOW,
                      replace(fresh, queue=QueueState(7, 0, [], 4242, progress_age=30.0)))
    assert as_dict(hung)["backup"]["queue"]["pusher_hung"] is True  # type: ignore[index]
    assert "pusher HUNG (pid 4242, no progress for 30s" in render_text([hung])
    metrics = render_metrics([queued], [], {}, {})
    assert 'marketops_wal_async_ready{tier="nightly"} 7' in metrics
    assert 'marketops_wal_async_stored_ahead{tier="nightly"} 3' in metrics
    assert 'marketops_wal_async_pusher_running{tier="nightly"} 1' in metrics
    assert "marketops_wal_async" not in render_metrics([plain], [], {}, {})
    page = render_html([queued], "w1", NOW)
    assert ('<small class="queue">async queue: 7 ready, 3 stored ahead, pusher running '
            '(pid 4242); last error: X: refused</small>') in page
    assert 'class="queue"' not in render_html([plain], "w1", NOW)
