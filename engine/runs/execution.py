"""Running one claimed slot: heartbeat while it runs, then record the outcome in the ledger.

Transient failures (connection lost) are retried with exponential backoff and jitter up to the
job's `run.retries`; anything else fails the run at once. The result is always recorded.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine import logger
from engine.definitions.models.base import format_duration
from engine.errors import LeaseLost, MarketopsError, TransientError
from engine.masking import describe_error, mask
from engine.runs.ledger import Ledger, Run
from engine.scheduling.jobs import Job

log = logger("marketops.run")

Execute = Callable[[Job, Run], dict[str, Any]]
OnFailure = Callable[[Job, Run, str], None]


@dataclass(frozen=True)
class Outcome:
    """How a run ended: succeeded, failed, retrying or lost (no longer ours)."""

    status: str
    error: str | None = None
    outputs: dict[str, Any] | None = None
    retry_in: timedelta | None = None  # when retrying: the delay before the next attempt


def backoff(job: Job, attempt: int, rng: random.Random | None = None) -> timedelta:
    """Delay before retry `attempt` + 1: base * 2^(attempt-1), jittered by +-50%."""
    # In seconds, capped before it becomes a timedelta: 100 years doubled 20 times overflows.
    base = job.policy.retry_backoff.total_seconds() * (2 ** max(attempt - 1, 0))
    jitter: float = (rng or random.Random()).uniform(0.5, 1.5)
    return timedelta(seconds=min(base * jitter, timedelta(hours=6).total_seconds()))


def execute_run(ledger: Ledger, execute: Execute, job: Job, run: Run, worker: str,
                lease: timedelta, on_failure: OnFailure | None = None) -> Outcome:
    """Run a claimed slot to its recorded end."""
    lost = threading.Event()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(lease.total_seconds() / 3):
            try:
                if not ledger.heartbeat(run.id, worker, lease, run.attempt):
                    lost.set()
                    return
            except MarketopsError as exc:  # the state database is down: keep trying
                log.warning("heartbeat failed: %s", exc, extra={"job": job.id, "run_id": run.id})

    heart = threading.Thread(target=beat, name=f"heartbeat-{run.id}", daemon=True)
    heart.start()
    extra = {"job": job.id, "slot": run.slot.isoformat(), "run_id": run.id,
             "attempt": run.attempt}
    log.info("run started", extra=extra)
    try:
        outputs = execute(job, run)
    except LeaseLost as exc:
        # A side effect's fence refused: another worker runs the slot now, so this one
        # records nothing and sends nothing more.
        log.warning("run lost its lease, stopped with nothing more sent: %s", mask(str(exc)),
                    extra=extra)
        return Outcome("lost", mask(str(exc)))
    except TransientError as exc:
        outcome = _transient(ledger, job, run, worker, mask(str(exc)))
    except MarketopsError as exc:
        outcome = Outcome("failed", mask(str(exc)))
    except Exception as exc:  # a bug must still end as a recorded failure
        # By type and masked message: a repr or traceback would carry secrets (a URL, a DSN).
        outcome = Outcome("failed", f"internal error: {describe_error(exc)}")
        log.error("run crashed: %s", describe_error(exc), extra=extra)
        log.debug("run crashed", exc_info=True, extra=extra)
    else:
        outcome = Outcome("succeeded", None, outputs)
    finally:
        done.set()
        heart.join()
    if lost.is_set():
        log.warning("run lost its lease; result not recorded", extra=extra)
        return Outcome("lost", "lease lost")
    if outcome.status in ("succeeded", "failed"):
        if not ledger.finish(run.id, worker, outcome.status, outcome.error, outcome.outputs,
                             attempt=run.attempt):
            return Outcome("lost", "lease lost")
    if outcome.status == "failed" and on_failure is not None:
        try:
            on_failure(job, run, outcome.error or "failed")
        except Exception:  # an alert that cannot go out must not hide the recorded failure
            log.exception("alerting the owners failed", extra=extra)
    retry = (f" (next attempt in {format_duration(outcome.retry_in)})"
             if outcome.retry_in is not None else "")
    log.log(logging.INFO if outcome.status == "succeeded" else logging.ERROR,
            "run %s%s%s", outcome.status, f": {outcome.error}" if outcome.error else "", retry,
            extra=extra)
    return outcome


def _transient(ledger: Ledger, job: Job, run: Run, worker: str, error: str) -> Outcome:
    if run.attempt > job.policy.retries:
        message = f"gave up after {run.attempt} attempts: {error}"
        return Outcome("failed", message)
    delay = backoff(job, run.attempt)
    ledger.retry_later(run.id, worker, delay, error, attempt=run.attempt)
    return Outcome("retrying", error, retry_in=delay)
