"""`marketops serve` assembled: the live definitions, the ledger, the job dispatcher, the
scheduling loop and the status server, until SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from engine import logger
from engine.app import clock
from engine.app.alerting import FailureAlerter
from engine.app.context import (
    App,
    LiveDefinitions,
    durations,
    is_demo_project,
    statuses,
    worker_name,
)
from engine.app.demo import (
    demo_mailbox,
    enable_archiving,
    ensure_demo_data,
    ensure_demo_key,
    into_mailbox,
)
from engine.app.executor import JobDispatcher, release_dead_runs
from engine.app.health import FreshnessCache
from engine.app.metrics import Measured, Metrics
from engine.app.tiers.backup import clear_staging
from engine.app.tiers.wal import compile_archive_config
from engine.runs.ledger import Ledger
from engine.runs.logs import configure
from engine.runs.service import Service, ServiceConfig, loop_stalled
from engine.runs.status import as_dict, metric_families, render_html, render_run
from engine.scheduling.jobs import jobs as all_jobs
from engine.validation.validate import ValidationResult
from runners.service.gitinfo import head_commit
from runners.service.http import StatusServer, json_page

Page = tuple[int, str, str]


@dataclass(frozen=True)
class ServeOptions:
    """What `marketops serve` was told: where to listen and how much to run at once."""

    host: str = "127.0.0.1"
    port: int = 8086
    tick: float = 1.0
    worker: str | None = None
    shutdown_grace: float = 30.0
    max_reports: int = 2
    max_backups: int = 1
    lease: float = 30.0


def serve(app: App, options: ServeOptions) -> None:
    """Run the schedule and the status server until SIGTERM or SIGINT; every line is JSON."""
    name = options.worker or worker_name()
    configure(name)
    say = logger("marketops.serve").info
    with ExitStack() as stack:
        live = _live_definitions(app, stack, say)
        ledger = app.ledger
        _clean_up_after_the_dead(app, ledger, say)
        metrics = Metrics(lambda: metric_families(now_statuses(), ledger.counts(),
                                                  durations(ledger),
                                                  ledger.delivery_failures()),
                          lambda: head_commit(app.root))
        executor = JobDispatcher(app.root, live, app.dsn("reports"), ledger,
                                 observe_delivery=metrics.delivered)
        service = Service(live.load, ledger, Measured(executor, metrics),
                          ServiceConfig(worker=name, tick_seconds=options.tick,
                                        shutdown_grace=options.shutdown_grace,
                                        lease=timedelta(seconds=options.lease),
                                        limits={"report": options.max_reports,
                                                "backup": options.max_backups}),
                          changed=live.changed, on_failure=FailureAlerter(live, ledger))
        backup_freshness = FreshnessCache(app.root, live, app.dsn("primary"))

        def now_statuses() -> list[Any]:
            return statuses(live.defs, ledger, executor.supports, clock.now(),
                            backup_freshness())

        def healthz() -> Page:
            stalled = loop_stalled(service.last_tick, clock.now(), options.tick)
            ledger.latest_by_job()  # raises when the state database is unreachable
            return (503, "text/plain", "loop stalled\n") if stalled else \
                (200, "text/plain", "ok\n")

        pages: dict[str, Callable[[], Page]] = {
            "/healthz": healthz,
            "/metrics": metrics.render,
            "/status": lambda: (200, "text/html",
                                render_html(now_statuses(), name, clock.now())),
            "/status.json": json_page(lambda: [as_dict(s) for s in now_statuses()]),
        }
        http = StatusServer(options.host, options.port, pages,
                            under={"/runs/": lambda rest: _run_page(live, ledger, rest)})
        http.start()
        stack.callback(http.stop)
        # Said without a URL path, which the log's masking would take for a webhook token.
        in_force = live.defs.project.target  # asked for, or the file's default_target
        target = f", target {in_force}" if in_force else ""
        say(f"serving: worker {name}{target}; status page, /status.json, /metrics and "
            f"/healthz on {options.host}:{http.port}")
        signal.signal(signal.SIGTERM, lambda *_: service.stop())
        signal.signal(signal.SIGINT, lambda *_: service.stop())
        service.serve()


def _live_definitions(app: App, stack: ExitStack, say: Callable[[str], None]
                      ) -> LiveDefinitions:
    """The definitions the service runs, reloaded on change; the demo's project also gets
    its data, key, archiving and local mailbox, and no other project does."""
    defs: ValidationResult = app.defs
    compile_archive_config(app.root, defs)  # what archive_command's fast path reads
    if not is_demo_project(defs):
        return LiveDefinitions(app.root, defs, target=app.target)
    target = app.primary()
    if ensure_demo_data(app.root, defs, target.dsn):
        say("the embedded marketplace was empty: filled it with demo data")
    if ensure_demo_key(app.root):
        say("MARKETOPS_BACKUP_KEY is not set: backups of the embedded marketplace are "
            "encrypted with var/demo-backup.key")
    enable_archiving(app.root, defs, target)
    box = stack.enter_context(demo_mailbox(app.root, defs))
    if box is None:
        return LiveDefinitions(app.root, defs, target=app.target)
    say(f"the demo's project and no mail server: mail and unset webhooks go to "
        f"{box.directory}, as in the demo")
    return LiveDefinitions(app.root, into_mailbox(defs, box), lambda r: into_mailbox(r, box),
                           target=app.target)


def _clean_up_after_the_dead(app: App, ledger: Ledger, say: Callable[[str], None]) -> None:
    """Runs whose worker died are released and their staging removed before anything runs."""
    for dead in release_dead_runs(ledger):  # not waiting out a lease nobody will renew
        say(f"{dead.job} slot {dead.slot.isoformat()}: worker {dead.worker} died; "
            "taken over now")
    for leftover in clear_staging(app.root, ledger):  # a killed run's plaintext
        say(f"removed staging/{leftover}: left by a run that died")


def _run_page(live: LiveDefinitions, ledger: Ledger, rest: str) -> Page:
    """/runs/<id>: one run's outputs and error, its times in the job's own zone."""
    record = ledger.run(int(rest)) if rest.isdigit() else None
    if record is None:
        return 404, "text/plain", f"no run {rest} in the ledger\n"
    job = all_jobs(live.defs.project).get(record.job)
    zone = job.schedule.timezone if job is not None and job.schedule else "UTC"
    return 200, "text/html", render_run(record, zone, clock.now())
