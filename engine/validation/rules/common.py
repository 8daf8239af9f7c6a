"""Helpers shared by rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from difflib import get_close_matches
from functools import lru_cache

from engine.definitions.models.base import format_duration
from engine.scheduling.schedule import Schedule

# One year, starting and ending in winter so both DST transitions of either hemisphere fall in.
YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)


def unknown_name(kind: str, name: str, known: Iterable[str], where: str = "marketops.yaml"
                 ) -> str:
    """'unknown destination 'x' ...' with a suggestion or the list of known names."""
    names = sorted(known)
    close = get_close_matches(name, names, n=1)
    if close:
        hint = f"; did you mean '{close[0]}'?"
    elif names:
        hint = f" (known: {', '.join(names)})"
    else:
        hint = f"; none is declared in {where}"
    return f"unknown {kind} '{name}'{hint}"


@lru_cache(maxsize=1024)
def gap_range(cron: str, timezone: str) -> tuple[timedelta, timedelta] | None:
    """Smallest and largest time between two runs over a year."""
    return Schedule(cron, timezone).gap_range(YEAR_START, YEAR_END)


human = format_duration  # the rules' name for it
