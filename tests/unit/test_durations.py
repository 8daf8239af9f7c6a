"""Durations as the YAML writes them, back out of the engine in the same words."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.definitions.models.base import format_duration, parse_duration


@pytest.mark.parametrize(("delta", "written"), [
    (timedelta(seconds=3), "3s"),
    (timedelta(minutes=15), "15min"),
    (timedelta(minutes=1, seconds=6), "1min 6s"),
    (timedelta(hours=25), "25h"),
    (timedelta(days=7), "7d"),
    (timedelta(days=31, hours=1), "31d 1h"),
    (timedelta(0), "0s"),
])
def test_a_duration_reads_as_it_is_written(delta: timedelta, written: str) -> None:
    assert format_duration(delta) == written
    assert sum((parse_duration(part) for part in written.split()), timedelta()) == delta
