"""Whether a run's (or a staging directory's) owner is dead: the pure decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.runs.liveness import (
    Process,
    StagingOwner,
    dead_worker,
    is_marketops_command,
    staging_name,
    staging_owner,
    stale_staging,
    worker_pid,
)

T0 = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
MARKETOPS = (".venv/bin/python", ".venv/bin/marketops", "run", "backup/nightly_full")


def test_only_workers_of_this_host_named_host_pid_can_be_checked() -> None:
    assert worker_pid("db1:4242", "db1") == 4242
    assert worker_pid("db2:4242", "db1") is None
    assert worker_pid("replica-a", "db1") is None  # --worker NAME
    assert worker_pid(None, "db1") is None
    assert worker_pid("db1:x", "db1") is None


def test_a_worker_is_dead_when_its_pid_is_gone_reused_or_not_marketops() -> None:
    alive = Process(4242, T0 - timedelta(minutes=5), MARKETOPS)
    assert not dead_worker("db1:4242", "db1", alive, T0, me=1)
    assert dead_worker("db1:4242", "db1", None, T0, me=1)  # no such process
    reused = Process(4242, T0 + timedelta(minutes=1), MARKETOPS)  # started after the claim
    assert dead_worker("db1:4242", "db1", reused, T0, me=1)
    within_clock_skew = Process(4242, T0 + timedelta(seconds=2), MARKETOPS)
    assert not dead_worker("db1:4242", "db1", within_clock_skew, T0, me=1)
    other = Process(4242, T0 - timedelta(hours=1), ("/usr/sbin/nginx", "-g", "daemon off;"))
    assert dead_worker("db1:4242", "db1", other, T0, me=1)
    # Another host's worker keeps its lease, whatever runs under that pid here.
    assert not dead_worker("db2:4242", "db1", None, T0, me=1)
    assert not dead_worker("db1:7", "db1", None, T0, me=7)  # never ourselves


def test_python_programs_count_as_marketops_something_else_does_not() -> None:
    assert is_marketops_command(MARKETOPS)
    assert is_marketops_command(("/usr/bin/python3", "-m", "engine.cli", "run", "x"))
    assert is_marketops_command(("python3.12", "-m", "pytest"))  # the engine as a library
    assert is_marketops_command(())  # unknown: not assumed dead
    assert not is_marketops_command(("/bin/sleep", "100"))


def test_a_staging_name_records_its_owner_and_reads_back() -> None:
    prefix = staging_name("nightly_full/20261125T040000.000Z", 4242, "db-1.example", 17)
    assert prefix == "nightly_full-20261125T040000.000Z.4242@db-1.example.run17."
    assert staging_owner(prefix + "k2_x9ab1") == StagingOwner(
        "nightly_full-20261125T040000.000Z", 4242, "db-1.example", 17)
    assert staging_owner(staging_name("restore-users", 9, "h", None) + "abc") == \
        StagingOwner("restore-users", 9, "h", None)
    odd = staging_name("x", 1, "my host/é", None)
    assert staging_owner(odd + "r") == StagingOwner("x", 1, "my_host__", None)
    assert staging_owner("nightly_full-20261125T040000.000Z-abc123") is None  # not ours
    assert staging_owner("drill-abc") is None


def test_a_staging_leftover_is_stale_when_its_maker_is_gone_or_its_run_ended() -> None:
    here = StagingOwner("nightly_full-x", 4242, "db1", 17)
    alive = Process(4242, T0 - timedelta(minutes=5), MARKETOPS)
    assert not stale_staging(here, "db1", alive, T0, None, me=1)
    # A live maker keeps its directory even when the ledger says otherwise.
    assert not stale_staging(here, "db1", alive, T0, "failed", me=1)
    assert stale_staging(here, "db1", None, T0, "running", me=1)
    reused = Process(4242, T0 + timedelta(minutes=1), MARKETOPS)
    assert stale_staging(here, "db1", reused, T0, None, me=1)
    assert not stale_staging(here, "db1", None, T0, None, me=4242)  # ours
    there = StagingOwner("nightly_full-x", 4242, "db2", 17)
    assert not stale_staging(there, "db1", None, T0, None, me=1)
    assert not stale_staging(there, "db1", None, T0, "running", me=1)
    assert stale_staging(there, "db1", None, T0, "succeeded", me=1)
    unknown_run = StagingOwner("restore-users", 4242, "db2", None)
    assert not stale_staging(unknown_run, "db1", None, T0, None, me=1)


def test_a_heartbeat_two_beats_late_has_stopped_on_any_host() -> None:
    from engine.runs.liveness import heartbeat_stopped, run_owner_dead

    beat_at = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    lease_until = beat_at + timedelta(seconds=60)  # beats every 20 s
    assert not heartbeat_stopped(beat_at, lease_until, beat_at + timedelta(seconds=44))
    assert heartbeat_stopped(beat_at, lease_until, beat_at + timedelta(seconds=46))
    assert not heartbeat_stopped(None, lease_until, beat_at + timedelta(days=1))
    late = beat_at + timedelta(seconds=46)
    # Another host's worker cannot be checked by pid, its heartbeat still tells.
    assert run_owner_dead("elsewhere:42", "here", None, beat_at, beat_at, lease_until, late, 1)
    assert not run_owner_dead("elsewhere:42", "here", None, beat_at, beat_at, lease_until,
                              beat_at + timedelta(seconds=5), 1)
    assert run_owner_dead("here:42", "here", None, beat_at, beat_at, lease_until,
                          beat_at + timedelta(seconds=5), 1)  # gone from this host
    alive = Process(42, beat_at - timedelta(minutes=1), MARKETOPS)
    assert not run_owner_dead("here:42", "here", alive, beat_at, beat_at, lease_until, late, 1)
