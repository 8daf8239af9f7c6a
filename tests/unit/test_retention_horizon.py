"""How far `plan --retention` looks ahead by default: each tier's retention horizon."""

from __future__ import annotations

from datetime import timedelta

from engine.backups.retention import retention_horizon
from engine.definitions.models.backup import Retention


def test_the_horizon_is_the_longest_span_a_rule_keeps_a_backup_for() -> None:
    day = timedelta(days=1)
    assert retention_horizon(Retention(keep_last=7, keep_weekly=4, keep_monthly=3), day) == \
        timedelta(days=93)
    assert retention_horizon(Retention(keep_last=24, keep_daily=7), timedelta(hours=1)) == \
        timedelta(days=7)
    assert retention_horizon(Retention(keep_last=14), day) == timedelta(days=14)
    assert retention_horizon(Retention(keep_last=3, max_age=timedelta(days=9)), None) == \
        timedelta(days=9)
    assert retention_horizon(Retention(keep_last=2), timedelta(hours=1)) == day  # at least
