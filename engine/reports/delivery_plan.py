"""Who is told what, as functions of their inputs: a report's recipients once its thresholds
have fired, whether its files go attached or as a link to the archive, and where a failure
alert goes (and whether a failing check alerts again)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TypeVar

R = TypeVar("R")


def report_recipients(recipients: Sequence[R], notify: Mapping[str, Sequence[R]],
                      fired: Collection[str]) -> list[R]:
    """The report's own recipients, then those each fired threshold names (`notify`, by
    threshold name, in declared order), each recipient once."""
    chosen = list(recipients)
    for name, extra in notify.items():
        if name in fired:
            chosen.extend(r for r in extra if r not in chosen)
    return chosen


def attach_files(total_bytes: int, max_message_bytes: int) -> bool:
    """Files are attached when they fit in a message; otherwise the mail says where they
    are archived."""
    return total_bytes <= max_message_bytes


def failure_alert_targets(owner: str, *, email_owners: bool, smtp: bool,
                          webhook: str | None) -> list[str]:
    """The recipients of a failure alert, as the ledger keys its deliveries: the owner by
    mail (when owners are mailed and SMTP is set), and the alert webhook (when one is)."""
    targets = [f"email:{owner}"] if email_owners and smtp else []
    if webhook is not None:
        targets.append(f"webhook:{webhook}")
    return targets


def alert_again(kind: str | None, previous_status: str | None, previous_error: str | None,
                error: str) -> bool:
    """Whether a failure is alerted. A WAL check that keeps failing for the same reason as
    its previous run alerted once, when it started; every other failure alerts."""
    repeated = previous_status == "failed" and previous_error == error
    return not (kind == "wal_archive" and repeated)
