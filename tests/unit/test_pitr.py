"""Recovery targets: which base backup, which archived segments, what the log says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.backups.pitr import (
    BaseChoice,
    Mark,
    RecoveryTarget,
    check_base_fits,
    choose_base,
    explain_early_end,
    first_gap,
    in_zone,
    needed_range,
    read_recovery_log,
    target_from_options,
)
from engine.backups.walnames import DEFAULT_SEGMENT_SIZE as SIZE
from engine.errors import BackupError, UsageError

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def seg(number: int, timeline: int = 1) -> str:
    return f"{timeline:08X}{number // 256:08X}{number % 256:08X}"


BACKUPS = [BaseChoice("b1", T0, "0/2000100"), BaseChoice("b2", T0 + timedelta(hours=1),
                                                          "0/5000100")]


def test_no_target_is_latest_and_two_targets_are_refused() -> None:
    assert target_from_options(None, None, None, None) == RecoveryTarget("latest")
    assert target_from_options("immediate", None, None, None).kind == "immediate"
    assert target_from_options(None, None, "0/3a", None).lsn == "0/3A"
    with pytest.raises(UsageError, match="--target-time and --target-name"):
        target_from_options(None, T0, None, "x")
    with pytest.raises(UsageError, match="not an LSN"):
        target_from_options(None, None, "3000060", None)
    with pytest.raises(UsageError, match="restore point name"):
        target_from_options(None, None, None, "a name; drop")


def test_settings_per_target() -> None:
    assert RecoveryTarget("latest").settings() == {}
    assert RecoveryTarget("immediate").settings() == {}
    assert not RecoveryTarget("immediate").replays_archive
    assert RecoveryTarget("name", name="m").settings() == {
        "recovery_target_name": "m", "recovery_target_action": "promote"}
    assert RecoveryTarget("lsn", lsn="0/3000000").settings()["recovery_target_lsn"] == \
        "0/3000000"


def test_the_base_backup_is_the_newest_that_ends_before_the_target() -> None:
    assert choose_base(BACKUPS, RecoveryTarget(), None, "base") == "b2"
    at = RecoveryTarget("time", time=T0 + timedelta(minutes=30))
    assert choose_base(BACKUPS, at, None, "base") == "b1"
    assert choose_base(BACKUPS, RecoveryTarget("lsn", lsn="0/4000000"), None, "base") == "b1"
    mark = Mark("m", "0/6000000", T0 + timedelta(hours=2), 1, seg(6))
    assert choose_base(BACKUPS, RecoveryTarget("name", name="m"), mark, "base") == "b2"
    with pytest.raises(BackupError, match="no base backup finished before"):
        choose_base(BACKUPS, RecoveryTarget("time", time=T0 - timedelta(1)), None, "base")
    with pytest.raises(BackupError, match="ends before LSN 0/1000000"):
        choose_base(BACKUPS, RecoveryTarget("lsn", lsn="0/1000000"), None, "base")


def test_a_chosen_backup_must_end_before_the_target() -> None:
    check_base_fits("b1", "0/2000100", T0, RecoveryTarget("lsn", lsn="0/3000000"), None)
    with pytest.raises(BackupError, match="before the end of backup b2"):
        check_base_fits("b2", "0/5000100", T0, RecoveryTarget("lsn", lsn="0/3000000"), None)
    with pytest.raises(BackupError, match="before the end of backup b2"):
        check_base_fits("b2", None, T0, RecoveryTarget("time", time=T0 - timedelta(1)), None)


def test_the_range_runs_to_the_target_or_the_end_of_the_archive() -> None:
    stored = {seg(n): T0 + timedelta(minutes=n) for n in range(2, 10)}
    latest = needed_range(seg(3), RecoveryTarget(), None, stored, SIZE)
    assert latest is not None and (latest.first.name, latest.last.name) == (seg(3), seg(9))
    assert not latest.bounded
    lsn = needed_range(seg(3), RecoveryTarget("lsn", lsn="0/5000010"), None, stored, SIZE)
    assert lsn is not None and lsn.last.name == seg(5) and lsn.bounded
    # A time: up to the first segment stored at or after it (older ones hold earlier WAL).
    at = needed_range(seg(3), RecoveryTarget("time", time=T0 + timedelta(minutes=6, seconds=1)),
                      None, stored, SIZE)
    assert at is not None and at.last.name == seg(7)
    beyond = needed_range(seg(3), RecoveryTarget("time", time=T0 + timedelta(days=1)), None,
                          stored, SIZE)
    assert beyond is not None and beyond.last.name == seg(9) and not beyond.bounded
    assert needed_range(seg(12), RecoveryTarget(), None, stored, SIZE) is None


def test_the_first_gap_counts_segments_on_a_later_timeline() -> None:
    stored = [seg(3), seg(4), seg(6), seg(7, timeline=2), seg(9)]
    wal_range = needed_range(seg(3), RecoveryTarget(), None, dict.fromkeys(stored), SIZE)
    assert wal_range is not None
    assert first_gap(wal_range, stored) == seg(5)
    assert first_gap(wal_range, [*stored, seg(5)]) == seg(8)
    assert first_gap(wal_range, [*stored, seg(5), seg(8, timeline=2)]) is None


LOG_GAP = f"""\
001 [1] LOG:  starting point-in-time recovery to 2026-12-02 21:10:00+00
100 [1] LOG:  restored log file "{seg(3)}" from archive
200 [1] LOG:  consistent recovery state reached at 0/3000138
300 [1] LOG:  restored log file "{seg(4)}" from archive
400 [1] LOG:  redo done at 0/4000060 system usage: CPU: user: 0.00 s
400 [1] LOG:  last completed transaction was at log time 2026-12-02 20:59:01.5+00
500 [1] FATAL:  recovery ended before configured recovery target was reached
"""


def test_the_log_names_where_recovery_stopped_and_why() -> None:
    parsed = read_recovery_log(LOG_GAP)
    assert parsed.ended_early and parsed.last_restored == seg(4)
    assert parsed.fatal == "recovery ended before configured recovery target was reached"
    assert parsed.reached() == (f"last replayed commit at 2026-12-02 20:59:01.5+00; last "
                                f"archived segment {seg(4)}")
    target = RecoveryTarget("time", time=T0)
    gap = explain_early_end(parsed, target, [seg(3), seg(4), seg(6)], seg(3), SIZE)
    assert gap.startswith(f"WAL segment {seg(5)} is missing from the archive")
    end = explain_early_end(parsed, target, [seg(3), seg(4)], seg(3), SIZE)
    assert end.startswith(f"the archive ends at {seg(4)}") and "--target latest" in end
    damaged = read_recovery_log(LOG_GAP + f'FATAL:  could not restore file "{seg(5)}" from '
                                "archive: child process exited with exit code 255\n")
    assert explain_early_end(damaged, target, [], seg(3), SIZE).startswith(
        f"WAL segment {seg(5)} could not be read")
    point = read_recovery_log('LOG:  recovery stopping at restore point "m1", time '
                              "2026-12-02 21:00:01+00\n")
    assert point.stopped_at == "stopped at restore point 'm1' (made 2026-12-02 21:00:01+00)"


def test_the_logs_times_read_in_the_drill_jobs_zone_named() -> None:
    reached = read_recovery_log(LOG_GAP).reached()
    assert reached is not None
    berlin = in_zone(reached, "Europe/Berlin")
    assert berlin == f"last replayed commit at 2026-12-02 21:59:01 CET; last archived segment " \
        f"{seg(4)}"
    assert in_zone(reached, "UTC").startswith("last replayed commit at 2026-12-02 20:59:01 UTC;")
    # Summer time, and a server whose log_timezone is not UTC (offsets with minutes).
    assert in_zone("at 2026-07-01 10:00:00.25+00", "Europe/Berlin") == "at 2026-07-01 12:00:00 CEST"
    assert in_zone("at 2026-07-01 10:00:00+05:30", "UTC") == "at 2026-07-01 04:30:00 UTC"
    assert in_zone("at 2026-01-01 23:30:00-03", "Asia/Tokyo") == "at 2026-01-02 11:30:00 JST"


def test_only_the_logs_timestamps_change() -> None:
    # An LSN, a segment name, an ISO target with a T and a bare date are not log times.
    text = f"redo done at 0/4000060; {seg(4)}; target 2026-12-02T21:10:00+00:00; day 2026-12-02"
    assert in_zone(text, "Europe/Berlin") == text
