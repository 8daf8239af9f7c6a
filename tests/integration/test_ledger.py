"""The ledger on PostgreSQL: migrations, exactly-once claims, leases and takeover."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import LeaseLost
from engine.runs.ledger import MIGRATIONS, Ledger
from runners.postgres.connection import connect

SLOT = datetime(2026, 3, 1, 5, tzinfo=UTC)
LEASE = timedelta(seconds=30)
VERSIONS = [version for version, _, _ in MIGRATIONS]


@pytest.fixture
def ledger(new_database: Callable[..., str]) -> Ledger:
    dsn = new_database()
    ledger = Ledger(lambda: connect(dsn, autocommit=True))
    assert ledger.migrate() == VERSIONS
    return ledger


def test_migrations_are_applied_once(ledger: Ledger) -> None:
    assert ledger.migrate() == []


@pytest.mark.parametrize("before", [[1, 2, 3], [1, 2, 20]], ids=["main's", "issue 20's"])
def test_a_database_migrated_by_an_earlier_ledger_migrates_cleanly(
        new_database: Callable[..., str], monkeypatch: pytest.MonkeyPatch,
        before: list[int]) -> None:
    # Main's ledger had 1-3 and the suspend/resume branch 1, 2 and 20: the versions are a
    # set, so either database takes the rest, once, and every table is there.
    assert len(set(VERSIONS)) == len(VERSIONS)
    dsn = new_database()
    ledger = Ledger(lambda: connect(dsn, autocommit=True))
    monkeypatch.setattr("engine.runs.ledger.MIGRATIONS",
                        [m for m in MIGRATIONS if m[0] in before])
    assert ledger.migrate() == before
    monkeypatch.undo()
    assert ledger.migrate() == [v for v in VERSIONS if v not in before]
    assert ledger.migrate() == []
    assert ledger.suspend("report/x", "quiet", "ops") and ledger.suspended()["report/x"][0] == \
        "quiet"
    with connect(dsn) as conn:
        columns = {r[0] for r in conn.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marketops' and table_name = 'deliveries'").fetchall()}
    assert {"run_attempt", "permanent", "queued_at"} <= columns


def test_concurrent_migrations_do_not_collide(new_database: Callable[..., str]) -> None:
    dsn = new_database()
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda: results.append(
        Ledger(lambda: connect(dsn, autocommit=True)).migrate())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[], [], [], VERSIONS]


def test_a_slot_is_claimed_once_among_many_workers(ledger: Ledger) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def worker(name: str) -> None:
        barrier.wait()
        if ledger.claim("report/x", SLOT, name, LEASE, "h1"):
            winners.append(name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    [record] = ledger.runs("report/x")
    assert (record.status, record.worker, record.attempt) == ("running", winners[0], 1)


def test_finish_heartbeat_and_lost_runs(ledger: Ledger) -> None:
    run = ledger.claim("report/x", SLOT, "a", LEASE, "h1")
    assert run is not None
    assert ledger.heartbeat(run.id, "a", LEASE)
    assert not ledger.heartbeat(run.id, "b", LEASE)  # not b's run
    assert ledger.finish(run.id, "a", "succeeded", outputs={"rows": 3})
    assert not ledger.finish(run.id, "a", "failed")  # already finished
    [record] = ledger.runs("report/x")
    assert (record.status, record.outputs) == ("succeeded", {"rows": 3})
    assert ledger.claim("report/x", SLOT, "c", LEASE, "h1") is None  # same slot never again


def test_expired_lease_is_taken_over(ledger: Ledger) -> None:
    run = ledger.claim("report/x", SLOT, "dead", timedelta(seconds=-1), "h1")
    assert run is not None
    assert ledger.take_over("other", LEASE, ["report/y"]) is None  # not a job of ours
    taken = ledger.take_over("alive", LEASE, ["report/x"])
    assert taken is not None and (taken.id, taken.attempt, taken.was) == (run.id, 2, "running")
    assert not ledger.heartbeat(run.id, "dead", LEASE)
    [record] = ledger.runs("report/x")
    assert record.worker == "alive"
    with ledger._conn() as conn:
        notes = conn.execute("select notes from marketops.runs").fetchone()[0]
    assert notes == "lease of dead expired"


def test_retries_come_back_when_due(ledger: Ledger) -> None:
    run = ledger.claim("report/x", SLOT, "a", LEASE, "h1")
    assert run is not None
    assert ledger.retry_later(run.id, "a", timedelta(hours=1), "connection lost")
    assert ledger.take_over("b", LEASE, ["report/x"]) is None  # not yet due
    run2 = ledger.claim("report/x", SLOT + timedelta(days=1), "a", LEASE, "h1")
    assert run2 is not None
    assert ledger.retry_later(run2.id, "a", timedelta(seconds=0), "smtp down")
    again = ledger.take_over("b", LEASE, ["report/x"])
    assert again is not None and (again.id, again.attempt, again.was) == (run2.id, 2, "retrying")


def test_skipped_slots_and_queries(ledger: Ledger) -> None:
    assert ledger.record_skipped("report/x", SLOT, "missed: service down", "h1")
    assert not ledger.record_skipped("report/x", SLOT, "again", "h1")
    assert ledger.claim("report/x", SLOT, "a", LEASE, "h1") is None
    assert ledger.last_slot("report/x") == SLOT
    assert ledger.latest_by_job() == {}
    later = ledger.claim("report/x", SLOT + timedelta(days=1), "a", LEASE, "h1")
    assert later is not None and ledger.is_running("report/x")
    ledger.cancel_running("report/x", "replaced")
    assert not ledger.is_running("report/x")
    assert dict(((j, s), n) for j, s, n in ledger.counts()) == {
        ("report/x", "cancelled"): 1, ("report/x", "skipped"): 1}


def test_the_audit_vault_head_is_kept_and_never_moves_back(ledger: Ledger) -> None:
    from engine.backups.auditchain import Head

    assert ledger.audit_head("vault", "admin.audit_log") is None
    ledger.record_audit_head("vault", "admin.audit_log", Head(3, "c" * 64, 300, "sig"))
    ledger.record_audit_head("vault", "admin.audit_log", Head(2, "b" * 64, 200))
    assert ledger.audit_head("vault", "admin.audit_log") == Head(3, "c" * 64, 300, "sig")
    ledger.record_audit_head("vault", "admin.audit_log", Head(4, "d" * 64, 400))
    assert ledger.audit_head("vault", "admin.audit_log") == Head(4, "d" * 64, 400)
    assert ledger.audit_head("other", "admin.audit_log") is None


def test_deliveries_are_fenced_by_the_attempt_in_sql(ledger: Ledger) -> None:
    run = ledger.claim("report/x", SLOT, "sleepy", LEASE, "h1")
    assert run is not None and run.attempt == 1
    assert ledger.begin_delivery(run.id, "email:a", 1)
    assert ledger.finish_delivery(run.id, "email:a", None, attempt=1)
    assert ledger.begin_delivery(run.id, "email:gone", 1)
    assert ledger.finish_delivery(run.id, "email:gone", "recipients refused (550)", attempt=1,
                                  permanent=True)
    assert ledger.begin_delivery(run.id, "email:b", 1)  # then the worker froze
    assert not ledger.begin_delivery(run.id, "email:b", 1)
    with ledger._conn() as conn:  # its lease runs out
        conn.execute("update marketops.runs set lease_until = now() - interval '1 second'")
    with pytest.raises(LeaseLost, match="its lease expired"):
        ledger.fence(run.id, 1)
    taken = ledger.take_over("awake", LEASE, ["report/x"])
    assert taken is not None and taken.attempt == 2
    assert ledger.begin_delivery(run.id, "email:a", 2).reason == "sent earlier"
    assert ledger.begin_delivery(run.id, "email:gone", 2).reason.startswith(
        "refused earlier, not retried")
    assert ledger.begin_delivery(run.id, "email:b", 2)
    # The frozen attempt wakes up: nothing it records or claims is taken.
    assert not ledger.finish_delivery(run.id, "email:b", None, attempt=1)
    with pytest.raises(LeaseLost, match="attempt 2 has taken the run over"):
        ledger.begin_delivery(run.id, "email:c", 1)
    assert not ledger.finish(run.id, "sleepy", "succeeded", attempt=1)
    assert ledger.finish_delivery(run.id, "email:b", None, attempt=2)
    assert ledger.deliveries(run.id) == {"email:a": ("sent", 1), "email:gone": ("failed", 1),
                                         "email:b": ("sent", 2)}
