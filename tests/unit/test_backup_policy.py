"""Backup decisions as pure functions: full or incremental, restorable chains, the RTO
verdict, which smoke queries a restore answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.backups.policy import (
    DrillResult,
    incremental_parent,
    restore_chain_problems,
    rto_problem,
    smoke_applies,
    within_rto,
)

NOW = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


def test_incremental_builds_on_the_newest_backup_until_a_full_is_due() -> None:
    week = timedelta(days=7)
    assert incremental_parent(True, week, "b3", NOW - timedelta(days=6), NOW) == "b3"
    assert incremental_parent(True, week, "b3", NOW - week, NOW) is None
    assert incremental_parent(True, None, "b3", NOW - timedelta(days=400), NOW) == "b3"


def test_a_full_backup_when_not_incremental_or_nothing_to_build_on() -> None:
    assert incremental_parent(False, None, "b3", NOW, NOW) is None
    assert incremental_parent(True, timedelta(days=7), None, None, NOW) is None


def test_the_clock_passed_in_decides_not_the_wall_clock() -> None:
    started = datetime(2020, 1, 1, tzinfo=UTC)
    assert incremental_parent(True, timedelta(days=1), "b1", started,
                              started + timedelta(hours=1)) == "b1"


def test_a_chain_with_a_missing_or_damaged_parent_cannot_be_restored() -> None:
    assert restore_chain_problems("base", "i2", ["i1", "i2"], "f0", []) == (
        "base/i2: cannot be restored: backup f0, which i1 builds on, is missing")
    assert restore_chain_problems("base", "i2", ["f0", "i1", "i2"], None, ["f0", "i2"]) == (
        "base/i2: cannot be restored: base/f0 that it builds on is damaged")
    assert restore_chain_problems("base", "i2", ["f0", "i1", "i2"], None, ["f0", "i1"]) == (
        "base/i2: cannot be restored: base/f0, base/i1 that it builds on are damaged")


def test_a_whole_chain_or_only_the_backup_itself_damaged_is_not_a_chain_problem() -> None:
    assert restore_chain_problems("base", "i2", ["f0", "i1", "i2"], None, []) is None
    assert restore_chain_problems("base", "i2", ["f0", "i1", "i2"], None, ["i2"]) is None


def test_rto_verdict() -> None:
    assert within_rto(59.9, 60) and within_rto(60, 60)
    assert not within_rto(60.1, 60)
    assert not within_rto(None, 60)  # never finished: not within
    assert rto_problem(75.25, 60) == "recovery took 75.2s, over the RTO of 60s"
    assert rto_problem(30, 60) is None
    assert rto_problem(None, 60) is None  # a failed restore says why on its own
    assert DrillResult("t", seconds=10, rto_seconds=5).within_rto is False


def test_smoke_queries_run_only_where_the_restore_holds_what_they_read() -> None:
    assert smoke_applies({"orders"}, {"orders", "payments"})
    assert not smoke_applies({"orders", "users"}, {"orders"})
    assert smoke_applies({"anything"}, None)
    assert smoke_applies(set(), {"orders"})


def test_archiving_waits_for_a_restart_until_archive_mode_and_wal_level_are_live() -> None:
    from engine.backups.serverchecks import archiving_needs_restart

    live = {"archive_mode": "on", "wal_level": "replica"}
    assert not archiving_needs_restart(False, live)
    assert archiving_needs_restart(True, live)  # another setting pends a restart
    assert archiving_needs_restart(False, {**live, "archive_mode": "off"})
    assert archiving_needs_restart(False, {**live, "wal_level": "minimal"})
    assert not archiving_needs_restart(False, {"archive_mode": "always", "wal_level": "logical"})
    assert archiving_needs_restart(False, {})
