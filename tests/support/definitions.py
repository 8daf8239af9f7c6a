"""Definitions tests write again and again: a physical base tier, the WAL archive on it, and
the small repository's revenue report over all time."""

from __future__ import annotations

from tests.helpers import REVENUE


def base_tier(title: str, cron: str, rpo: str) -> str:
    """A physical base tier `base` names: encrypted with k1 to `backups`, two kept."""
    return f"""\
title: {title}
owner: dba@corp.example
kind: physical_base
cron: "{cron}"
destination: backups
encryption: {{key: k1}}
retention: {{keep_last: 2}}
rpo: {rpo}
rto: 2h
"""


def wal_tier(pitr_window: str, max_age: str | None = None) -> str:
    """The WAL archive of tier `base`, encrypted with k1 to `backups` (kept `max_age`)."""
    retention = f"retention: {{max_age: {max_age}}}\n" if max_age else ""
    return f"""\
title: WAL
owner: dba@corp.example
kind: wal_archive
destination: backups
base_tier: base
encryption: {{key: k1}}
pitr_window: {pitr_window}
{retention}rpo: 5min
rto: 2h
"""


def all_time_revenue() -> str:
    """tests.helpers' revenue report without its period filter: every order counts."""
    period = "  where o.placed_at >= :period_start and o.placed_at < :period_end\n"
    assert period in REVENUE
    return (REVENUE.replace(period, "")
            .replace("title: Daily revenue", "title: Revenue by region")
            .replace("description: Revenue per region.",
                     "description: Revenue per region, all time."))
