"""Pure backup logic: retention, WAL names and gaps, the audit chain, freshness, manifests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.backups.auditchain import GENESIS, Batch, chain_hash, chain_problems
from engine.backups.freshness import WalState, backup_freshness, wal_problems
from engine.backups.manifest import Manifest, StoredFile, new_backup_id
from engine.backups.retention import BackupInfo, plan_retention, wal_cutoff
from engine.backups.walnames import (
    Segment,
    is_wal_name,
    missing_segments,
    parse_segment,
    segment_of_lsn,
)
from engine.definitions.models.backup import Retention

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _daily(days: int, parent_chain: bool = False) -> list[BackupInfo]:
    out = []
    for i in range(days, 0, -1):
        moment = NOW - timedelta(days=i)
        parent = out[-1].backup_id if parent_chain and out else None
        out.append(BackupInfo(new_backup_id(moment), moment, parent,
                              Segment(1, 100 - i).name))
    return out


def test_keep_last_keeps_the_newest_n() -> None:
    backups = _daily(10)
    plan = plan_retention(backups, Retention(keep_last=3), NOW)
    assert sorted(plan.keep) == [b.backup_id for b in backups[-3:]]
    assert len(plan.delete) == 7


def test_daily_weekly_monthly_buckets_keep_the_newest_of_each() -> None:
    backups = _daily(120)
    plan = plan_retention(backups, Retention(keep_last=1, keep_weekly=4, keep_monthly=3), NOW)
    kept = [b for b in backups if b.backup_id in plan.keep]
    weeks = {b.finished_at.isocalendar()[:2] for b in kept}
    assert len(weeks) >= 4 and len(kept) <= 1 + 4 + 3
    months = {b.finished_at.strftime("%Y-%m") for b in kept}
    assert len(months) >= 3
    assert backups[-1].backup_id in plan.keep


def test_max_age_keeps_everything_younger() -> None:
    backups = _daily(30)
    plan = plan_retention(backups, Retention(keep_last=1, max_age=timedelta(days=10)), NOW)
    assert len(plan.keep) == 10


def test_a_kept_incremental_keeps_its_whole_chain() -> None:
    backups = _daily(6, parent_chain=True)
    plan = plan_retention(backups, Retention(keep_last=1), NOW)
    assert set(plan.keep) == {b.backup_id for b in backups}
    assert "parent of kept incremental" in plan.keep[backups[0].backup_id]


def test_newest_backup_is_never_deleted() -> None:
    backups = _daily(3)
    plan = plan_retention(backups, Retention(keep_last=1, max_age=timedelta(seconds=1)), NOW)
    assert backups[-1].backup_id in plan.keep


def test_wal_cutoff_is_the_base_that_opens_the_pitr_window() -> None:
    backups = _daily(14)
    kept = {b.backup_id for b in backups}
    cut = wal_cutoff(backups, kept, timedelta(days=7), NOW)
    opener = [b for b in backups if b.finished_at <= NOW - timedelta(days=7)][-1]
    assert cut == opener.start_wal
    assert wal_cutoff(backups[-3:], kept, timedelta(days=7), NOW) is None


def test_segment_names_round_trip_and_gaps_are_named() -> None:
    first = parse_segment("0000000100000000000000FE")
    assert first.next().name == "0000000100000000000000FF"
    assert first.next().next().name == "000000010000000100000000"
    assert segment_of_lsn(1, "1/2000028").name == "000000010000000100000002"
    stored = [Segment(1, n).name for n in range(10, 20) if n != 14]
    assert missing_segments(stored, Segment(1, 10), Segment(1, 19)) == [Segment(1, 14).name]
    assert is_wal_name("00000002.history") and not is_wal_name("../etc/passwd")
    with pytest.raises(ValueError):
        parse_segment("000000010000000000000100")  # segment number past 0xFF


def test_wal_problems_name_the_gap_failure_and_lag() -> None:
    stored = [Segment(1, n).name for n in range(1, 30) if n != 7]
    state = WalState(stored, Segment(1, 1).name, Segment(1, 29).name, timedelta(seconds=5),
                     Segment(1, 30).name, False, 0, None)
    problems, gaps = wal_problems(state, timedelta(minutes=5))
    assert gaps == [Segment(1, 7).name] and Segment(1, 7).name in problems[0]
    failing = WalState([*stored, Segment(1, 7).name], Segment(1, 1).name, Segment(1, 29).name,
                       timedelta(hours=1), Segment(1, 45).name, True, 12, Segment(1, 30).name)
    problems, _ = wal_problems(failing, timedelta(minutes=5))
    text = " | ".join(problems)
    assert "archiver failing on" in text and "archive lag: 15" in text and "stalled" in text
    idle = WalState([*stored, Segment(1, 7).name], Segment(1, 1).name,
                    Segment(1, 29).name + ".00000028.backup",
                    timedelta(days=2), Segment(1, 30).name, False, 0, None)
    assert wal_problems(idle, timedelta(minutes=5))[0] == []  # idle is not stalled


def test_wal_gap_without_a_base_backup_counts_from_the_oldest_stored_segment() -> None:
    stored = [Segment(1, n).name for n in (3, 4, 6)]
    state = WalState(stored, None, None, None, None, False, 0, None)
    problems, gaps = wal_problems(state, timedelta(minutes=5))
    assert gaps == [Segment(1, 5).name] and Segment(1, 5).name in problems[0]
    whole = WalState(stored[:2], None, None, None, None, False, 0, None)
    assert wal_problems(whole, timedelta(minutes=5)) == ([], [])


def test_audit_chain_finds_deleted_altered_and_reordered_batches() -> None:
    batches, prev = [], GENESIS
    for seq in range(1, 5):
        digest = chain_hash(prev, seq, seq * 10, seq * 10 + 9, 10, f"{seq:064x}")
        batches.append(Batch(f"b{seq}", seq, seq * 10, seq * 10 + 9, 10, f"{seq:064x}", prev,
                             digest))
        prev = digest
    assert chain_problems(batches) == []
    assert any("missing" in p for p in chain_problems([batches[0], *batches[2:]]))
    swapped = [batches[0], batches[2], batches[1], batches[3]]
    assert any("out of order" in p for p in chain_problems(swapped))
    altered = list(batches)
    altered[1] = Batch("b2", 2, 20, 29, 11, batches[1].data_sha256, batches[1].prev_hash,
                       batches[1].chain_hash)
    assert any("altered" in p for p in chain_problems(altered))


def test_freshness_against_rpo() -> None:
    fresh = backup_freshness("t", timedelta(hours=26), "x", NOW - timedelta(hours=2), NOW)
    assert fresh.problem is None
    stale = backup_freshness("t", timedelta(hours=26), "x", NOW - timedelta(hours=30), NOW)
    assert stale.problem == "newest backup is 30.0h old, RPO is 26.0h"
    assert "no complete backup" in str(backup_freshness("t", timedelta(hours=1), None, None,
                                                        NOW).problem)


def test_manifest_round_trips() -> None:
    manifest = Manifest("t", "logical_full", "id", NOW, NOW, "zstd", "k", [
        StoredFile("toc.dat.zst.age", 10, "a" * 64, 12, "b" * 64)], row_counts={"s.t": 3},
        details={"snapshot": "0000-1"})
    assert Manifest.from_json(manifest.to_json()) == manifest
    with pytest.raises(ValueError):
        Manifest.from_json(b'{"format": 99}')


def test_a_batch_forged_with_the_right_number_does_not_follow_the_chain() -> None:
    first = Batch("b1", 1, 1, 9, 9, "a" * 64, GENESIS,
                  chain_hash(GENESIS, 1, 1, 9, 9, "a" * 64))
    forged_prev = "f" * 64  # self-consistent, right number, but not linked to b1
    forged = Batch("b2", 2, 10, 19, 10, "b" * 64, forged_prev,
                   chain_hash(forged_prev, 2, 10, 19, 10, "b" * 64))
    problems = chain_problems([first, forged])
    assert len(problems) == 1 and "does not follow the previous batch" in problems[0]
