"""The service loop: decide which slots are due, claim them in the ledger, run them.

The scheduler part is pure (times are passed in); the loop is the only place that reads the
clock. Replicas share nothing but the ledger: each computes the same due slots, and the
ledger's unique (job, slot) lets exactly one of them run each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from engine import logger
from engine.errors import MarketopsError
from engine.runs.execution import Execute, OnFailure, Outcome, execute_run
from engine.runs.ledger import Ledger, Run
from engine.scheduling.jobs import Job

log = logger("marketops.service")


class JobRunner(Protocol):
    def supports(self, job: Job) -> bool: ...
    def __call__(self, job: Job, run: Run) -> dict[str, object]: ...


@dataclass(frozen=True)
class Decision:
    """Slots to run now and slots to record as skipped, with why."""

    run: list[tuple[Job, datetime]]
    skip: list[tuple[Job, datetime, str]]


@dataclass
class Scheduler:
    """Due slots per job since the last look, with misfire grace and coalescing.

    Each job's next fire time is cached, so a tick costs a comparison per job until a job is
    actually due (10,000 jobs stay cheap to watch).
    """

    cursors: dict[str, datetime] = field(default_factory=dict)
    next_fire: dict[str, tuple[str, datetime | None]] = field(default_factory=dict)

    def start(self, job: Job, last_recorded: datetime | None, now: datetime) -> None:
        """Look from the last recorded slot (so missed slots are run or recorded), at most a
        year back; a job with no history starts now (it has missed nothing)."""
        if job.id not in self.cursors:
            self.cursors[job.id] = max(last_recorded, now - timedelta(days=366)) \
                if last_recorded else now

    def upcoming(self, job: Job) -> datetime | None:
        """The job's next slot after its cursor (cached per definition)."""
        cached = self.next_fire.get(job.id)
        if cached is None or cached[0] != job.definition_hash:
            assert job.schedule is not None
            cached = (job.definition_hash, job.schedule.next_after(self.cursors[job.id]))
            self.next_fire[job.id] = cached
        return cached[1]

    def due(self, jobs: list[Job], now: datetime) -> Decision:
        """Slots in (cursor, now] of every job: the latest within grace runs; others skip."""
        run: list[tuple[Job, datetime]] = []
        skip: list[tuple[Job, datetime, str]] = []
        for job in jobs:
            if job.schedule is None or job.id not in self.cursors:
                continue
            upcoming = self.upcoming(job)
            if upcoming is None or upcoming > now:
                continue
            slots = job.schedule.between(self.cursors[job.id], now)
            self.cursors[job.id] = now
            self.next_fire.pop(job.id, None)
            in_grace = [s for s in slots if now - s <= job.policy.misfire_grace]
            for slot in slots:
                if slot not in in_grace:
                    late = now - slot
                    skip.append((job, slot, f"missed by {int(late.total_seconds())}s, beyond "
                                 f"the misfire grace of {job.policy.misfire_grace}"))
                elif slot != in_grace[-1]:
                    latest = in_grace[-1].isoformat()
                    skip.append((job, slot, f"coalesced into the slot at {latest}"))
            if in_grace:
                run.append((job, in_grace[-1]))
        return Decision(run, skip)


def loop_stalled(last_tick: datetime | None, now: datetime, tick_seconds: float) -> bool:
    """/healthz's verdict: the loop has not ticked yet, or not for five ticks (at least 10s,
    so that a slow tick or a short pause of the machine does not restart a healthy pod)."""
    if last_tick is None:
        return True
    return (now - last_tick).total_seconds() >= max(10.0, 5 * tick_seconds)


@dataclass
class ServiceConfig:
    worker: str
    lease: timedelta = timedelta(seconds=30)
    tick_seconds: float = 1.0
    limits: dict[str, int] = field(default_factory=lambda: {"report": 2, "backup": 1})
    shutdown_grace: float = 30.0
    reload_seconds: float = 2.0


class Service:
    """Runs due slots of the supported jobs until `stop()`."""

    def __init__(self, load_jobs: Callable[[], dict[str, Job]], ledger: Ledger,
                 executor: JobRunner, config: ServiceConfig,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 changed: Callable[[], bool] = lambda: False,
                 on_failure: OnFailure | None = None) -> None:
        self.load_jobs = load_jobs
        self.ledger = ledger
        self.executor = executor
        self.config = config
        self.clock = clock
        self.changed = changed
        self.on_failure = on_failure
        self.scheduler = Scheduler()
        self.jobs: dict[str, Job] = {}
        self.suspended: dict[str, Any] = {}
        self.pending: list[tuple[Job, datetime]] = []
        self.active: dict[int, tuple[Job, Run, Future[Outcome]]] = {}
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=sum(config.limits.values()) + 2,
                                       thread_name_prefix="job")
        self.last_tick: datetime | None = None
        self.reload_error: str | None = None
        self._announced: set[str] = set()
        self._reloading: Future[dict[str, Job] | None] | None = None

    # -- definitions -----------------------------------------------------------------------
    def _load(self) -> dict[str, Job] | None:
        """The current definitions, or None (logged once per distinct error) when invalid."""
        try:
            loaded = self.load_jobs()
        except MarketopsError as exc:
            if str(exc) != self.reload_error:
                log.error("definitions changed but are invalid; still running the last valid "
                          "set: %s", exc)
            self.reload_error = str(exc)
            return None
        self.reload_error = None
        return loaded

    def reload(self) -> None:
        """Take the current definitions if they are valid; keep the last valid set if not."""
        loaded = self._load()
        if loaded is not None:
            self._install(loaded)

    def _reload_in_background(self) -> None:
        """Validate off the loop thread (it can take a while); the loop swaps the result in."""
        if self._reloading is None or self._reloading.done():
            self._reloading = self.pool.submit(self._load)

    def _take_reloaded(self) -> None:
        if self._reloading is None or not self._reloading.done():
            return
        loaded, self._reloading = self._reloading.result(), None
        if loaded is not None:
            self._install(loaded)

    def _install(self, loaded: dict[str, Job]) -> None:
        if set(loaded) != set(self.jobs) or any(
                loaded[j].definition_hash != self.jobs[j].definition_hash for j in loaded):
            log.info("definitions loaded: %d jobs", len(loaded))
        self.jobs = loaded
        for job in loaded.values():
            if not self.executor.supports(job) and job.id not in self._announced:
                log.warning("%s is not scheduled: no runner for %s jobs yet", job.id, job.kind,
                            extra={"job": job.id})
                self._announced.add(job.id)

    def runnable(self) -> list[Job]:
        return [j for j in self.jobs.values() if self.executor.supports(j)]

    # -- the loop ----------------------------------------------------------------------------
    def tick(self) -> None:
        """One pass: reap finished runs, find due slots, claim and start what fits."""
        now = self.clock()
        self.last_tick = now
        self._reap()
        fresh = [j for j in self.runnable() if j.id not in self.scheduler.cursors]
        if fresh:
            recorded = self.ledger.last_slots([j.id for j in fresh])
            for job in fresh:
                self.scheduler.start(job, recorded.get(job.id), now)
        decision = self.scheduler.due(self.runnable(), now)
        self.suspended = self.ledger.suspended()
        skip = list(decision.skip)
        for job, slot in decision.run:
            if job.id in self.suspended:  # like a suspended CronJob: its slots do not run
                skip.append((job, slot, "suspended: " + (self.suspended[job.id][0] or
                                                         "marketops suspend")))
            else:
                self.pending.append((job, slot))
        for job, slot, reason in skip:
            if self.ledger.record_skipped(job.id, slot, reason, job.definition_hash):
                log.warning("slot skipped: %s", reason, extra={"job": job.id,
                                                             "slot": slot.isoformat()})
        self._start_pending(now)
        self._take_over()

    def _capacity(self, kind: str) -> bool:
        busy = sum(1 for job, _, _ in self.active.values() if job.kind == kind)
        return busy < self.config.limits.get(kind, 1)

    def _start_pending(self, now: datetime) -> None:
        waiting: list[tuple[Job, datetime]] = []
        for job, slot in self.pending:
            if self.stopping.is_set():
                break
            if now - slot > job.policy.misfire_grace:
                self.ledger.record_skipped(job.id, slot, "waited for capacity beyond the "
                                           "misfire grace", job.definition_hash)
                continue
            if not self._capacity(job.kind):
                waiting.append((job, slot))
                continue
            if job.policy.overlap != "allow" and self.ledger.is_running(job.id):
                if job.policy.overlap == "forbid":
                    self.ledger.record_skipped(job.id, slot, "previous run still running "
                                               "(overlap: forbid)", job.definition_hash)
                    continue
                self.ledger.cancel_running(job.id, f"replaced by the slot at {slot.isoformat()}")
            run = self.ledger.claim(job.id, slot, self.config.worker, self.config.lease,
                                    job.definition_hash, job.git_commit)
            if run is not None:
                self._submit(job, run)
        self.pending = waiting

    def _take_over(self) -> None:
        jobs = [j for j in self.runnable() if j.id not in self.suspended]
        while not self.stopping.is_set() and any(self._capacity(j.kind) for j in jobs):
            ids = [j.id for j in jobs if self._capacity(j.kind)]
            run = self.ledger.take_over(self.config.worker, self.config.lease, ids)
            if run is None:
                return
            job = self.jobs[run.job]
            if run.attempt > job.policy.retries + 1:
                error = f"gave up after {run.attempt - 1} attempts"
                self.ledger.finish(run.id, self.config.worker, "failed", error,
                                   attempt=run.attempt)
                if self.on_failure is not None:
                    self.on_failure(job, run, error)
                continue
            # A due retry is the next attempt, not a rescue: "took over" means a lease ran out.
            log.info("retrying run" if run.was == "retrying" else "took over run",
                     extra={"job": job.id, "slot": run.slot.isoformat(), "run_id": run.id,
                            "attempt": run.attempt})
            self._submit(job, run)

    def _submit(self, job: Job, run: Run) -> None:
        execute: Execute = self.executor
        future = self.pool.submit(execute_run, self.ledger, execute, job, run,
                                  self.config.worker, self.config.lease, self.on_failure)
        self.active[run.id] = (job, run, future)

    def _reap(self) -> None:
        for run_id in [r for r, (_, _, f) in self.active.items() if f.done()]:
            self.active.pop(run_id)

    def serve(self) -> None:
        """Tick until stopped; then let running jobs finish within the grace, release the rest."""
        self.reload()
        next_check = 0.0
        while not self.stopping.is_set():
            try:
                # Definitions are re-read when their files change (checked every few seconds).
                if next_check <= 0:
                    next_check = self.config.reload_seconds
                    if self.changed():
                        self._reload_in_background()
                self._take_reloaded()
                self.tick()
            except MarketopsError as exc:  # the state database is down: keep the loop alive
                log.error("tick failed: %s", exc)
            pause = self._pause()
            self.stopping.wait(pause)
            next_check -= pause
        self._shutdown()

    def _pause(self) -> float:
        """Sleep until the next slot of any job, or one tick, whichever is sooner."""
        now = self.clock()
        upcoming = [self.scheduler.upcoming(j) for j in self.runnable()
                    if j.schedule and j.id in self.scheduler.cursors]
        soonest = min((t for t in upcoming if t is not None), default=None)
        if soonest is None:
            return self.config.tick_seconds
        return max(0.005, min(self.config.tick_seconds, (soonest - now).total_seconds()))

    def stop(self) -> None:
        self.stopping.set()

    def _shutdown(self) -> None:
        log.info("stopping: %d run(s) in progress", len(self.active))
        deadline = self.config.shutdown_grace
        for job, run, future in list(self.active.values()):
            try:
                future.result(timeout=max(deadline, 0.1))
            except TimeoutError:
                released = self.ledger.retry_later(run.id, self.config.worker, timedelta(0),
                                                   "released at shutdown", attempt=run.attempt)
                log.warning("released unfinished run" if released else "run lost",
                            extra={"job": job.id, "run_id": run.id})
            except Exception as exc:  # already recorded by execute_run
                log.error("run ended with %r", exc, extra={"job": job.id, "run_id": run.id})
        self.pool.shutdown(wait=False, cancel_futures=True)
