"""Helpers shared by rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from difflib import get_close_matches
from functools import lru_cache

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


def human(delta: timedelta) -> str:
    """A duration as people say it: 25h, 7d, 31d 1h, 90s."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}min" if minutes else "", f"{secs}s" if secs else ""]
    if days and days < 2 and not minutes and not secs:
        return f"{days * 24 + hours}h"
    return " ".join(p for p in parts if p) or "0s"
