"""The `backups` listing's arithmetic: recoverable WAL range, the vault's chain state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.backups.auditchain import GENESIS, chain_hash
from engine.backups.listing import (
    TierListing,
    archived_at,
    as_dict,
    audit_chain,
    lsn_text,
    render_text,
    wal_range,
)
from engine.backups.manifest import Manifest, StoredFile

T0 = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)


def _base(backup_id: str, at: datetime, start: str, stop: str) -> Manifest:
    return Manifest("base", "physical_base", backup_id, at, at + timedelta(minutes=1), "zstd",
                    None, [StoredFile("base.tar.zst", 10, "r", 5, "s")],
                    details={"start_lsn": start, "stop_lsn": stop, "timeline": 1})


def _segments(*numbers: int) -> list[str]:
    return [f"00000001{n // 256:08X}{n % 256:08X}" for n in numbers]


def test_the_range_runs_from_the_oldest_base_to_the_end_of_unbroken_wal() -> None:
    old = _base("a", T0, "0/2000028", "0/2000120")
    new = _base("b", T0 + timedelta(days=1), "0/4000028", "0/4000120")
    found = wal_range([old, new], [*_segments(2, 3, 4, 5, 6), "00000001.history"])
    assert found.segments == 5 and found.first == _segments(2)[0]
    assert found.earliest is not None and found.earliest.lsn == "0/2000120"
    assert found.earliest.time == old.finished_at
    assert found.latest is not None and found.latest.lsn == "0/7000000"
    assert found.latest_segment == _segments(6)[0] and found.gap_after is None
    stored = T0 + timedelta(days=2)
    assert archived_at(found, stored).latest.time == stored  # type: ignore[union-attr]


def test_a_gap_after_the_newest_base_ends_the_range_there() -> None:
    new = _base("b", T0, "0/4000028", "0/4000120")
    found = wal_range([new], _segments(4, 5, 7, 8))
    assert found.latest is not None and found.latest.lsn == "0/6000000"
    assert found.gap_after == _segments(6)[0]
    # Its own WAL not archived yet: restorable to the end of the backup (it carries it).
    alone = wal_range([new], _segments(2, 3))
    assert alone.latest is not None and alone.latest.what == "end of base backup b"
    assert alone.latest.time == new.finished_at and alone.latest_segment is None
    assert wal_range([], _segments(1)).earliest is None


def test_lsn_text_is_postgresql_s_notation() -> None:
    assert lsn_text(0x1_0000_0000 + 0xABC) == "1/ABC"
    assert lsn_text(0) == "0/0"


def _batch(seq: int, first: int, last: int, prev: str) -> Manifest:
    digest = chain_hash(prev, seq, first, last, last - first + 1, f"d{seq}")
    return Manifest("vault/admin.audit_log", "audit_vault", f"2026112{seq}T000000.000Z", T0,
                    T0, "zstd", None, [StoredFile("rows.csv.zst", 1, f"d{seq}", 1, "s")],
                    backup_type="batch", details={
                        "seq": seq, "first_id": first, "last_id": last,
                        "rows": last - first + 1, "prev_hash": prev, "chain_hash": digest})


def test_the_vault_lists_batches_with_the_state_of_their_chain() -> None:
    one = _batch(1, 1, 100, GENESIS)
    two = _batch(2, 101, 150, str(one.details["chain_hash"]))
    intact = audit_chain("admin.audit_log", [two, one], [], [])
    assert intact.state == "intact" and [b.backup_id for b in intact.batches] == [
        one.backup_id, two.backup_id]
    listing = TierListing("vault", "audit_vault", "audit-vault", None, chains=[intact])
    text = render_text([listing])
    assert "admin.audit_log: 2 batch(es), ids 1..150, chain intact" in text
    assert "incomplete" not in text
    assert as_dict(listing)["chains"][0]["batches"][1]["seq"] == 2
    broken = audit_chain("admin.audit_log", [two], [], [])  # the first batch deleted
    assert broken.state == "broken" and broken.problems
    assert "chain BROKEN" in render_text([TierListing("vault", "audit_vault", None, None,
                                                      chains=[broken])])
    assert audit_chain("t", [one], ["20261129T000000.000Z"], []).state == "broken"
