"""The composition root's helpers: settings resolved into connections and runners."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import DefinitionError, MarketopsError, UsageError
from engine.jobs import Job
from engine.ledger import Ledger, Run
from engine.validate import ValidationResult, validate
from runners.postgres import EmbeddedServer

if TYPE_CHECKING:
    from engine.execution import Outcome
    from engine.freshness import Freshness
    from engine.status import JobStatus
    from runners.report import ReportRequest, ReportResult
    from runners.storage import Store

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def resolve_env(value: str, what: str) -> str:
    """`${VAR}` -> the variable's value; a clear error naming the variable when unset."""
    match = _ENV_REF.match(value)
    if not match:
        return value
    resolved = os.environ.get(match.group(1))
    if not resolved:
        raise UsageError(f"{what} refers to ${{{match.group(1)}}}, which is not set in the "
                         "environment")
    from engine.masking import remember

    return remember(resolved)


def valid_definitions(root: Path) -> ValidationResult:
    """The definitions, refusing to go on when any is invalid (nothing is half-applied)."""
    result = validate(root)
    if not result.passed():
        first = result.errors[0]
        raise DefinitionError(f"{len(result.errors)} definition error(s), first: {first.location}:"
                              f" {first.message}; run marketops validate")
    return result


@dataclass(frozen=True)
class Target:
    """Where a command connects, and the embedded server when that is what it is."""

    dsn: str
    server: EmbeddedServer | None = None


def embedded_server(root: Path, result: ValidationResult) -> EmbeddedServer:
    settings = result.project.settings.embedded
    data_dir = Path(settings.data_dir)
    if not data_dir.is_absolute():
        data_dir = (root / data_dir).resolve()
    return EmbeddedServer(data_dir, settings.port, settings.database)


def primary_target(root: Path, result: ValidationResult, dsn_override: str | None) -> Target:
    """The primary database: --dsn / MARKETOPS_DSN, else settings; `embedded` starts it."""
    dsn = dsn_override or result.project.settings.databases.primary.dsn
    if dsn == "embedded":
        from runners.database import ensure_database

        server = embedded_server(root, result)
        server.start()
        ensure_database(server.dsn("postgres"), server.database)
        return Target(server.dsn(), server)
    return Target(resolve_env(dsn, "databases.primary.dsn"))


@dataclass(frozen=True)
class DemoDataSummary:
    """Rows generated per table, where, and how long it took."""

    dsn: str
    rows: dict[str, int]
    seconds: float
    applied_statements: int


def apply_schema(result: ValidationResult, dsn: str) -> int:
    """Create whatever the declared schema lacks in `dsn`; the number of statements run."""
    from engine.schemadiff import apply_statements
    from runners.database import connect, execute_script
    from runners.introspect import pull

    declared = {name: s.model for name, s in result.project.schemas.items()}
    with connect(dsn) as conn:
        live = pull(conn, list(declared)).schemas
    statements = apply_statements(declared, live)
    if statements:
        execute_script(dsn, statements)
    return len(statements)


def demo_data(root: Path, dsn_override: str | None, *, scale: float, seed: int,
              until: date | None) -> DemoDataSummary:
    """Apply the schema where needed, then replace every declared table's rows."""
    from runners.demodata import generate

    result = valid_definitions(root)
    target = primary_target(root, result, dsn_override)
    applied = apply_schema(result, target.dsn)
    tables = [f"{s}.{t}" for s, loaded in result.project.schemas.items()
              for t in loaded.model.tables]
    generated = generate(target.dsn, tables, scale=scale, seed=seed, until=until)
    return DemoDataSummary(target.dsn, generated.rows, generated.seconds, applied)


def local_destination(root: Path, result: ValidationResult, name: str) -> Path:
    """The directory of a file:// destination (relative URLs are relative to the root)."""
    destination = result.project.settings.destinations.get(name)
    if destination is None:
        raise UsageError(f"unknown destination '{name}'")
    url = destination.url
    if not url.startswith("file://"):
        raise UsageError(f"destination '{name}' is {url.split(':')[0]}://; this needs a "
                         "local file:// directory")
    path = Path(url.removeprefix("file://"))
    return path if path.is_absolute() else (root / path).resolve()


def store_for(root: Path, result: ValidationResult, name: str) -> Store:
    """The destination `name` with its secrets read from the environment."""
    from runners.storage import Store, StoreSpec

    destination = result.project.settings.destinations.get(name)
    if destination is None:
        raise UsageError(f"unknown destination '{name}'")
    if destination.url.startswith("file://"):
        return Store(StoreSpec(name, f"file://{local_destination(root, result, name)}"))
    options: dict[str, object] = {}
    if destination.endpoint_url:
        options["endpoint_url"] = destination.endpoint_url
    if destination.region:
        options["client_kwargs"] = {"region_name": destination.region}
    if destination.access_key_id:
        options["key"] = resolve_env(destination.access_key_id,
                                     f"destinations.{name}.access_key_id")
    if destination.secret_access_key:
        options["secret"] = resolve_env(destination.secret_access_key,
                                        f"destinations.{name}.secret_access_key")
    return Store(StoreSpec(name, destination.url, options))


def database_dsn(root: Path, result: ValidationResult, which: str,
                 dsn_override: str | None = None) -> str:
    """DSN of `primary`, `reports` (falls back to primary) or `state` (falls back to primary)."""
    databases = result.project.settings.databases
    chosen = getattr(databases, which) if which != "primary" else None
    if dsn_override or chosen is None:
        return primary_target(root, result, dsn_override).dsn
    if chosen.dsn == "embedded":
        return primary_target(root, result, "embedded").dsn
    return resolve_env(chosen.dsn, f"databases.{which}.dsn")


def ledger_for(dsn: str) -> Ledger:
    """The ledger in `dsn`, migrated, over a small pool of connections."""
    from runners.database import Pool

    pool = Pool(dsn, application="marketops ledger")
    ledger = Ledger(pool.connection)
    ledger.migrate()
    return ledger


def worker_name() -> str:
    """host:pid, unique among replicas."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def report_request(root: Path, result: ValidationResult, job: Job, slot: datetime,
                   reports_dsn: str) -> ReportRequest:
    """Everything a report run needs, resolved: SQL for the driver, parameters, paths."""
    from engine.sqlparams import to_pyformat
    from runners.report import ReportRequest

    assert job.report is not None and job.sql is not None
    period = job.period(slot)
    assert period is not None
    params = job.parameters(slot)
    archive = result.project.settings.reports.destination
    if archive is None:
        raise UsageError("reports.destination is not set in marketops.yaml")
    from engine.alerts import AlertRule
    from runners.report import ChartSpec

    report = job.report
    label = f"{_label(period.start)}_{_label(period.end)}"
    out_dir = local_destination(root, result, archive) / "reports" / job.name / label
    chart = ChartSpec(report.chart.type.value, report.chart.x, list(report.chart.y),
                      report.chart.title or report.title) if report.chart else None
    alerts = tuple(AlertRule(a.name, a.column, a.op.value, a.value, a.when,
                             a.message or f"{a.column} {a.op.value} {a.value}")
                   for a in report.alerts)
    subtitle = (f"Period {period.start.isoformat()} to {period.end.isoformat()} "
                f"({report.timezone})")
    return ReportRequest(job.name, reports_dsn, to_pyformat(job.sql, set(params)), params,
                         report.limits.statement_timeout, report.limits.max_rows, out_dir,
                         report.timezone, tuple(f.value for f in report.formats),
                         report.title, subtitle, chart, alerts, psql_binary(result))


def psql_binary(result: ValidationResult) -> Path | None:
    """psql from postgres.bin_dir, else the embedded PostgreSQL's; None if neither exists."""
    from runners.postgres import embedded_bin_dir

    configured = result.project.settings.postgres.bin_dir
    directory = Path(configured) if configured else embedded_bin_dir()
    candidate = directory / "psql"
    return candidate if candidate.is_file() else None


def _label(moment: datetime) -> str:
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H%M%S%z")


def run_slot(ledger: Ledger, executor: Executor, job: Job, slot: datetime,
             trigger: str) -> Outcome | None:
    """Claim one slot outside the service (manual run, backfill, demo) — or take it again
    when it ran before — and run it to its recorded end; None while it runs elsewhere."""
    from engine.execution import execute_run

    worker, lease = worker_name(), timedelta(seconds=60)
    run = ledger.claim(job.id, slot, worker, lease, job.definition_hash, job.git_commit,
                       trigger=trigger) or \
        ledger.reclaim(job.id, slot, worker, lease, job.definition_hash, trigger=trigger) or \
        take_over_dead(ledger, job, slot, worker, lease, trigger)
    if run is None:
        return None
    return execute_run(ledger, executor, job, run, worker, lease)


def take_over_dead(ledger: Ledger, job: Job, slot: datetime, worker: str, lease: timedelta,
                   trigger: str) -> Run | None:
    """The slot's running run, when its worker is a process of this host that has died
    (killed, crashed): taken now rather than after its lease; None otherwise."""
    from engine.liveness import dead_worker, worker_pid
    from runners.processes import host_name, process

    owner = ledger.running_owner(job.id, slot)
    if owner is None:
        return None
    pid = worker_pid(owner[0], host_name())
    found = process(pid) if pid is not None else None
    if owner[0] is None or not dead_worker(owner[0], host_name(), found, owner[1], os.getpid()):
        return None
    return ledger.take_over_dead(job.id, slot, owner[0], worker, lease, job.definition_hash,
                                 trigger)


def latest_slot(job: Job, at: datetime) -> datetime:
    """The latest slot of `job` at or before `at`."""
    if job.schedule is None:
        raise UsageError(f"{job.id} runs continuously; it has no slots")
    slot = job.schedule.latest_at_or_before(at)
    if slot is None:
        raise UsageError(f"{job.id} has no slot before {at.isoformat()}")
    return slot


class LiveDefinitions:
    """The definitions as they are on disk now: reloaded on change, kept only when valid."""

    def __init__(self, root: Path, result: ValidationResult) -> None:
        self.root = root
        self.result = result
        self._signature = self.signature()

    def signature(self) -> tuple[tuple[str, float, int], ...]:
        files = [self.root / "marketops.yaml"]
        for folder in ("schema", "definitions/reports", "definitions/backups"):
            directory = self.root / folder
            if directory.is_dir():
                files.extend(sorted(directory.iterdir()))
        found = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_mtime, stat.st_size))
        return tuple(found)

    def changed(self) -> bool:
        current = self.signature()
        if current == self._signature:
            return False
        self._signature = current
        return True

    def load(self) -> dict[str, Job]:
        """Validate and take the current files; DefinitionError when they are invalid."""
        from engine.jobs import jobs
        from runners.gitinfo import head_commit

        result = valid_definitions(self.root)
        self.result = result
        return jobs(result.project, head_commit(self.root))


def current(definitions: ValidationResult | LiveDefinitions) -> ValidationResult:
    """The definitions in force: the latest valid set when they are live."""
    if isinstance(definitions, LiveDefinitions):
        return definitions.result
    return definitions


@dataclass(frozen=True)
class Executor:
    """Runs a job's slot with the runner of its kind, then delivers what it produced."""

    root: Path
    definitions: ValidationResult | LiveDefinitions
    reports_dsn: str
    ledger: Ledger | None = None
    primary_dsn: str | None = None

    @property
    def result(self) -> ValidationResult:
        return current(self.definitions)

    def supports(self, job: Job) -> bool:
        return job.kind == "report" or job.schedule is not None

    def __call__(self, job: Job, run: Run) -> dict[str, object]:
        from runners.report import run_report

        if job.kind == "backup":
            from engine.backup_wiring import run_backup

            return run_backup(self.root, self.result, job,
                              self.primary_dsn or database_dsn(self.root, self.result,
                                                               "primary"),
                              run_id=run.id, ledger=self.ledger)
        result = self.result
        done = run_report(report_request(self.root, result, job, run.slot, self.reports_dsn))
        outputs: dict[str, object] = {
            "rows": done.rows, "columns": done.columns, "files": done.files,
            "directory": str(done.directory), "seconds": round(done.seconds, 3),
            "alerts": done.alerts}
        if self.ledger is not None:
            outputs["deliveries"] = ReportDelivery(self.root, result, self.ledger).deliver(
                job, run, done)
        return outputs


class ReportDelivery:
    """Sends a finished report to its recipients: each (run, recipient) is recorded in the
    ledger before and after sending, so a retry sends only what did not go out."""

    def __init__(self, root: Path, result: ValidationResult, ledger: Ledger) -> None:
        self.root = root
        self.result = result
        self.ledger = ledger

    def deliver(self, job: Job, run: Run, done: ReportResult) -> dict[str, str]:
        from engine.errors import TransientError

        assert job.report is not None
        recipients = list(job.report.recipients)
        if done.alerts:
            for alert in job.report.alerts:
                if any(a.startswith(f"{alert.name}:") for a in done.alerts):
                    recipients.extend(r for r in alert.notify if r not in recipients)
        statuses: dict[str, str] = {}
        transient: list[str] = []
        for recipient in recipients:
            key, send = self._sender(job, run, done, recipient)
            if not self.ledger.begin_delivery(run.id, key):
                statuses[key] = "sent earlier"
                continue
            try:
                send()
            except TransientError as exc:
                self.ledger.finish_delivery(run.id, key, str(exc))
                statuses[key] = f"failed, will retry: {exc}"
                transient.append(key)
            except MarketopsError as exc:
                self.ledger.finish_delivery(run.id, key, str(exc))
                statuses[key] = f"failed: {exc}"
            else:
                self.ledger.finish_delivery(run.id, key, None)
                statuses[key] = "sent"
        if transient:
            raise TransientError(f"{len(transient)} delivery(ies) failed for now: "
                                 f"{', '.join(transient)}")
        return statuses

    def _sender(self, job: Job, run: Run, done: ReportResult,
                recipient: object) -> tuple[str, Callable[[], None]]:
        from engine.models.report import DestinationRecipient, EmailRecipient

        if isinstance(recipient, EmailRecipient):
            return f"email:{recipient.email}", lambda: self._mail(job, done, recipient.email)
        if isinstance(recipient, DestinationRecipient):
            return (f"destination:{recipient.destination}",
                    lambda: self._copy(job, done, recipient.destination, recipient.path))
        name = getattr(recipient, "webhook", "")
        return f"webhook:{name}", lambda: self._post(job, done, name)

    def _subject(self, job: Job, done: ReportResult) -> str:
        assert job.report is not None
        prefix = "[ALERT] " if done.alerts else ""
        return f"{prefix}{job.report.title}: {done.directory.name.replace('_', ' to ')}"

    def _mail(self, job: Job, done: ReportResult, address: str) -> None:
        from runners.delivery import Attachment, SmtpServer, send_mail
        from runners.render import summary_html

        assert job.report is not None
        smtp = self.result.project.settings.smtp
        if smtp is None:
            raise UsageError("a report goes to an email address but marketops.yaml has no smtp")
        server = SmtpServer(smtp.host, smtp.port, smtp.sender, smtp.starttls, smtp.username,
                            resolve_env(smtp.password, "smtp.password") if smtp.password
                            else None)
        chart_path = done.directory / f"{job.name}.png"
        chart = chart_path.read_bytes() if chart_path.exists() else None
        files = [done.directory / n for n in done.files if n.endswith((".csv", ".xlsx"))]
        size = sum(p.stat().st_size for p in files)
        attach = size <= smtp.max_message_bytes
        attachments = tuple(
            Attachment(p.name, p.read_bytes(), "text" if p.suffix == ".csv" else "application",
                       "csv" if p.suffix == ".csv" else
                       "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            for p in files) if attach else ()
        where = "" if attach else (f" The files ({size:,} bytes) are too large to attach; they "
                                   f"are archived at {done.directory}.")
        html = summary_html(job.report.title, f"{done.rows:,} rows.{where}", done.columns,
                            done.head, done.rows, chart, chart_src="cid:chart",
                            alerts=done.alerts)
        text = (f"{job.report.title}\n{done.rows:,} rows.{where}\n"
                + "".join(f"Alert: {a}\n" for a in done.alerts))
        send_mail(server, [address], self._subject(job, done), text, html, attachments,
                  ("chart", chart) if chart else None)

    def _post(self, job: Job, done: ReportResult, name: str) -> None:
        from runners.delivery import post_webhook

        hook = self.result.project.settings.webhooks[name]
        url = resolve_env(hook.url, f"webhooks.{name}.url")
        alerts = "".join(f"\n:warning: {a}" for a in done.alerts)
        post_webhook(url, {"text": f"{self._subject(job, done)}: {done.rows:,} rows, "
                                   f"archived at {done.directory}{alerts}"})

    def _copy(self, job: Job, done: ReportResult, destination: str, path: str | None) -> None:
        import shutil

        spec = self.result.project.settings.destinations[destination]
        if spec.url.startswith("s3://"):
            store = store_for(self.root, self.result, destination)
            prefix = f"{path or 'reports/' + job.name}/{done.directory.name}"
            files = sorted(done.directory.iterdir(), key=lambda p: (p.name == "manifest.json",
                                                                    p.name))
            for file in files:  # the manifest last: a copy is complete once it is there
                with file.open("rb") as source, store.writer(f"{prefix}/{file.name}") as sink:
                    shutil.copyfileobj(source, sink)
            return
        base = local_destination(self.root, self.result, destination)
        target = base / (path or f"reports/{job.name}") / done.directory.name
        if target.resolve() == done.directory.resolve():
            return  # the archive itself
        staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(done.directory, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)


def statuses(result: ValidationResult, ledger: Ledger, supports: Callable[[Job], bool],
             now: datetime, fresh: dict[str, Freshness] | None = None) -> list[JobStatus]:
    """The status of every job of the project (with backup freshness when given)."""
    from engine.jobs import jobs
    from engine.status import job_status

    latest = ledger.latest_by_job()
    success = ledger.last_success()
    fresh = fresh or {}
    return [job_status(job, supports(job), latest.get(job_id), success.get(job_id), now,
                       fresh.get(job.name) if job.kind == "backup" else None)
            for job_id, job in sorted(jobs(result.project).items())]


def durations(ledger: Ledger) -> dict[str, float]:
    """Seconds the latest finished run of each job took."""
    found: dict[str, float] = {}
    for job, record in ledger.latest_by_job().items():
        if record.started_at and record.finished_at:
            found[job] = (record.finished_at - record.started_at).total_seconds()
    return found


def ensure_demo_data(root: Path, result: ValidationResult, dsn: str) -> bool:
    """On the embedded server, create and fill the marketplace when it is not there yet."""
    from runners.database import connect

    with connect(dsn) as conn:
        present = conn.execute(
            "select count(*) from pg_tables where schemaname = 'orders' "
            "and tablename = 'orders'").fetchone()
        if present and present[0]:
            rows = conn.execute("select exists (select 1 from orders.orders)").fetchone()
            if rows and rows[0]:
                return False
    demo_data(root, "embedded", scale=0.01, seed=42, until=None)
    return True


@dataclass(frozen=True)
class Alerter:
    """Tells a job's owner (mail) and the alert webhook that a run failed for good; each
    (run, recipient) is recorded in the ledger before and after sending, so never twice."""

    definitions: LiveDefinitions | ValidationResult
    ledger: Ledger

    @property
    def result(self) -> ValidationResult:
        return current(self.definitions)

    def __call__(self, job: Job, run: Run, error: str) -> None:
        import logging

        from runners.delivery import SmtpServer, post_webhook, send_mail

        settings = self.result.project.settings
        if job.tier is not None and job.tier.kind == "wal_archive":
            # A check that keeps failing for the same reason alerts once, when it starts.
            before = self.ledger.previous_run(job.id, run.slot)
            if before is not None and before.status == "failed" and before.error == error:
                return
        slot = run.slot.astimezone(job.schedule.tz) if job.schedule else run.slot
        subject = f"[marketops] {job.id} failed (slot {slot.isoformat()})"
        text = (f"{job.id} failed for its slot at {slot.isoformat()} after {run.attempt} "
                f"attempt(s):\n\n{error}\n\nRun it again with:\n  marketops run {job.id} "
                f"--at {slot.isoformat()}\n")
        sends: list[tuple[str, Callable[[], None]]] = []
        if settings.alerts.email_owners and settings.smtp is not None:
            smtp = settings.smtp
            server = SmtpServer(smtp.host, smtp.port, smtp.sender, smtp.starttls, smtp.username,
                                resolve_env(smtp.password, "smtp.password")
                                if smtp.password else None)
            sends.append((f"email:{job.owner}",
                          lambda: send_mail(server, [job.owner], subject, text)))
        if settings.alerts.webhook is not None:
            hook = settings.webhooks[settings.alerts.webhook]
            url = resolve_env(hook.url, f"webhooks.{settings.alerts.webhook}.url")
            sends.append((f"webhook:{settings.alerts.webhook}",
                          lambda: post_webhook(url, {"text": f"{subject}\n{error}"})))
        for recipient, send in sends:
            if not self.ledger.begin_delivery(run.id, recipient):
                continue
            try:
                send()
            except Exception as exc:
                self.ledger.finish_delivery(run.id, recipient, str(exc))
                logging.getLogger("marketops.alerts").error(
                    "alert to %s failed: %s", recipient, exc, extra={"job": job.id,
                                                                      "run_id": run.id})
            else:
                self.ledger.finish_delivery(run.id, recipient, None)


@dataclass(frozen=True)
class DemoReport:
    """One report's demo run."""

    job: str
    period: str
    status: str
    rows: int
    outputs: list[str]
    deliveries: dict[str, str]


def run_demo_reports(root: Path, result: ValidationResult, dsn: str, mailbox: Path,
                     now: datetime) -> list[DemoReport]:
    """Every report for its latest period, delivered to a local mailbox started for it."""
    import dataclasses

    from engine.jobs import jobs
    from engine.models.settings import Smtp
    from runners.mailbox import LocalMailbox

    ledger = ledger_for(dsn)
    found: list[DemoReport] = []
    with LocalMailbox(mailbox) as box:
        settings = result.project.settings
        webhooks = {name: hook.model_copy(update={"url": "${MARKETOPS_DEMO_WEBHOOK}"})
                    for name, hook in settings.webhooks.items()}
        smtp = Smtp(host="127.0.0.1", port=box.smtp_port, starttls=False,
                    sender=settings.smtp.sender if settings.smtp else "marketops@localhost")
        demo_settings = settings.model_copy(update={"smtp": smtp, "webhooks": webhooks})
        demo = ValidationResult(dataclasses.replace(result.project, settings=demo_settings),
                                result.findings)
        os.environ["MARKETOPS_DEMO_WEBHOOK"] = box.webhook_url
        executor = Executor(root, demo, dsn, ledger)
        for job in sorted((j for j in jobs(demo.project).values() if j.kind == "report"),
                          key=lambda j: j.id):
            slot = latest_slot(job, now)
            period = job.period(slot)
            outcome = run_slot(ledger, executor, job, slot, "manual")
            if outcome is None:
                continue
            outputs = outcome.outputs or {}
            found.append(DemoReport(
                job.id, f"{period.start.date()} .. {period.end.date()}" if period else "",
                outcome.status, int(outputs.get("rows", 0)),
                sorted(str(f).rsplit(".", 1)[-1] for f in outputs.get("files", {})),
                dict(outputs.get("deliveries", {}))))
    return found
