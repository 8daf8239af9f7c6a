"""Who is told what: report recipients after thresholds fire, attach or link, failure alert
targets and the WAL check's one alert per problem; /healthz staleness; drift to migrate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.dbschema.schemadiff import Drift, left_alone, needs_migration
from engine.reports.delivery_plan import (
    alert_again,
    attach_files,
    failure_alert_targets,
    report_recipients,
)
from engine.runs.service import loop_stalled


def test_fired_thresholds_add_their_recipients_once_in_declared_order() -> None:
    notify = {"low": ["cfo", "ops"], "high": ["ceo"], "zero": ["ops", "cto"]}
    assert report_recipients(["team", "ops"], notify, set()) == ["team", "ops"]
    assert report_recipients(["team", "ops"], notify, {"low"}) == ["team", "ops", "cfo"]
    assert report_recipients(["team"], notify, ("zero", "low")) == ["team", "cfo", "ops", "cto"]


def test_a_threshold_name_is_matched_whole_not_as_a_prefix() -> None:
    # Parsing "name: message" strings matched "low" against "low_margin: ..." too.
    assert report_recipients(["team"], {"low": ["cfo"]}, {"low_margin"}) == ["team"]


def test_files_are_attached_when_they_fit_in_a_message() -> None:
    assert attach_files(10_000, 10_000)
    assert not attach_files(10_001, 10_000)
    assert attach_files(0, 0)


def test_failure_alerts_go_to_the_owner_by_mail_and_to_the_alert_webhook() -> None:
    assert failure_alert_targets("a@x.io", email_owners=True, smtp=True, webhook="chat") == [
        "email:a@x.io", "webhook:chat"]
    assert failure_alert_targets("a@x.io", email_owners=True, smtp=False, webhook=None) == []
    assert failure_alert_targets("a@x.io", email_owners=False, smtp=True, webhook="c") == [
        "webhook:c"]


def test_a_wal_check_failing_for_the_same_reason_alerts_once() -> None:
    assert alert_again("wal_archive", None, None, "gap at 0001")
    assert alert_again("wal_archive", "succeeded", None, "gap at 0001")
    assert not alert_again("wal_archive", "failed", "gap at 0001", "gap at 0001")
    assert alert_again("wal_archive", "failed", "gap at 0001", "archiver failing")
    # Any other job alerts every failure, the same reason or not.
    assert alert_again("logical_full", "failed", "boom", "boom")
    assert alert_again(None, "failed", "boom", "boom")


def test_healthz_is_stale_after_five_ticks_and_at_least_ten_seconds() -> None:
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    assert loop_stalled(None, now, 1.0)
    assert not loop_stalled(now - timedelta(seconds=9.9), now, 1.0)
    assert loop_stalled(now - timedelta(seconds=10), now, 1.0)
    assert not loop_stalled(now - timedelta(seconds=24), now, 5.0)
    assert loop_stalled(now - timedelta(seconds=25), now, 5.0)


def test_drift_needing_a_migration_is_all_but_what_is_live_and_undeclared() -> None:
    drift = [Drift("extra table", "s.t"), Drift("missing column", "s.u.c"),
             Drift("type", "s.u.d", "int", "text"), Drift("extra index", "s.i")]
    assert [d.target for d in needs_migration(drift)] == ["s.u.c", "s.u.d"]
    assert [d.target for d in left_alone(drift)] == ["s.t", "s.i"]
    assert needs_migration([]) == []
