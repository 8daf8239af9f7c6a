"""/metrics through prometheus_client: what this replica did, as counters and histograms
(runs by job and outcome, their durations, deliveries by outcome, bytes backups stored), the
gauges the ledger and the stores give at each scrape, build_info, and process metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import Metric

from engine.errors import TransientError
from engine.runs.ledger import Run
from engine.scheduling.jobs import Job

# Reports take from a fraction of a second to minutes, dumps and drills up to hours.
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 7200,
                    float("inf"))


def package_version() -> str:
    try:
        return version("marketops")
    except PackageNotFoundError:  # run from a tree that is not installed
        return "unknown"


class Metrics:
    """One replica's registry; `render` is the /metrics page."""

    def __init__(self, gauges: Callable[[], Iterable[Metric]],
                 commit: Callable[[], str | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.build = Info("marketops_build", "The running marketops: version and git commit "
                          "of the definitions.", registry=self.registry)
        self._commit = commit  # asked at the first scrape: the loop's start need not wait
        self._built = False
        self.runs = Counter("marketops_runs", "Runs this replica finished, by job and how "
                            "they ended (succeeded, failed, retrying).", ["job", "status"],
                            registry=self.registry)
        self.duration = Histogram("marketops_run_duration_seconds", "How long this "
                                  "replica's runs took, by job.", ["job"],
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.deliveries = Counter("marketops_deliveries", "Delivery attempts by job, kind "
                                  "(email, webhook, destination) and outcome (sent, failed, "
                                  "retrying).", ["job", "kind", "outcome"],
                                  registry=self.registry)
        self.stored = Counter("marketops_backup_stored_bytes", "Bytes this replica's backups "
                              "stored, by tier.", ["tier"], registry=self.registry)

        class Now:
            def collect(self) -> Iterable[Metric]:
                return gauges()

        self.registry.register(Now())

    def render(self) -> tuple[int, str, str]:
        if not self._built:
            self.build.info({"version": package_version(), "commit": self._commit() or
                             "unknown"})
            self._built = True
        return 200, "text/plain; version=0.0.4", generate_latest(self.registry).decode()

    def delivered(self, job: Job, kind: str, outcome: str) -> None:
        self.deliveries.labels(job.id, kind, outcome).inc()


class Measured:
    """An executor counted and timed: each run's outcome, duration and stored bytes."""

    def __init__(self, executor: Any, metrics: Metrics) -> None:
        self.executor = executor
        self.metrics = metrics

    def supports(self, job: Job) -> bool:
        return bool(self.executor.supports(job))

    def __call__(self, job: Job, run: Run) -> dict[str, Any]:
        metrics = self.metrics
        began = time.monotonic()
        status = "failed"
        try:
            outputs: dict[str, Any] = self.executor(job, run)
            status = "succeeded"
        except TransientError:
            status = "retrying"
            raise
        finally:
            metrics.runs.labels(job.id, status).inc()
            metrics.duration.labels(job.id).observe(time.monotonic() - began)
        stored = outputs.get("stored_bytes") if job.kind == "backup" else None
        if isinstance(stored, int) and stored > 0:
            metrics.stored.labels(job.name).inc(stored)
        return outputs
