"""Reports as the root runs them: the resolved request for a slot, then its delivery."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from engine.alerts import AlertRule
from engine.app.context import local_destination, psql_binary, resolve_env, store_for
from engine.app.roles import reports_dsn as role_dsn
from engine.errors import MarketopsError, TransientError, UsageError
from engine.jobs import Job
from engine.ledger import Ledger, Run
from engine.models.report import DestinationRecipient, EmailRecipient
from engine.sqlparams import to_pyformat
from engine.validate import ValidationResult
from runners.delivery import Attachment, SmtpServer, post_webhook, send_mail
from runners.render import summary_html
from runners.report import ChartSpec, ReportRequest, ReportResult


def report_request(root: Path, result: ValidationResult, job: Job, slot: datetime,
                   reports_dsn: str) -> ReportRequest:
    """Everything a report run needs, resolved: SQL for the driver, parameters, paths."""
    assert job.report is not None and job.sql is not None
    period = job.period(slot)
    assert period is not None
    params = job.parameters(slot)
    archive = result.project.settings.reports.destination
    if archive is None:
        raise UsageError("reports.destination is not set in marketops.yaml")
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
    return ReportRequest(job.name, role_dsn(root, result, reports_dsn),
                         to_pyformat(job.sql, set(params)), params,
                         report.limits.statement_timeout, report.limits.max_rows, out_dir,
                         report.timezone, tuple(f.value for f in report.formats),
                         report.title, subtitle, chart, alerts, psql_binary(result))


def _label(moment: datetime) -> str:
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H%M%S%z")


class ReportDelivery:
    """Sends a finished report to its recipients: each (run, recipient) is recorded in the
    ledger before and after sending, so a retry sends only what did not go out."""

    def __init__(self, root: Path, result: ValidationResult, ledger: Ledger) -> None:
        self.root = root
        self.result = result
        self.ledger = ledger

    def deliver(self, job: Job, run: Run, done: ReportResult) -> dict[str, str]:
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
        hook = self.result.project.settings.webhooks[name]
        url = resolve_env(hook.url, f"webhooks.{name}.url")
        alerts = "".join(f"\n:warning: {a}" for a in done.alerts)
        post_webhook(url, {"text": f"{self._subject(job, done)}: {done.rows:,} rows, "
                                   f"archived at {done.directory}{alerts}"})

    def _copy(self, job: Job, done: ReportResult, destination: str, path: str | None) -> None:
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
