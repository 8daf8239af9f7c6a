"""Reports as the root runs them: the resolved request for a slot, then its delivery."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from engine.alerts import AlertRule
from engine.app.context import local_destination, psql_binary, resolve_env, store_for
from engine.errors import LeaseLost, MarketopsError, TransientError, UsageError
from engine.fencing import message_id
from engine.jobs import Job
from engine.ledger import Ledger, Run
from engine.masking import mask
from engine.models.report import DestinationRecipient, EmailRecipient
from engine.sqlparams import to_pyformat
from engine.validate import ValidationResult
from runners.delivery import Attachment, DeliveryError, SmtpServer, post_webhook, send_mail
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
    return ReportRequest(job.name, reports_dsn, to_pyformat(job.sql, set(params)), params,
                         report.limits.statement_timeout, report.limits.max_rows, out_dir,
                         report.timezone, tuple(f.value for f in report.formats),
                         report.title, subtitle, chart, alerts, psql_binary(result))


def _label(moment: datetime) -> str:
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H%M%S%z")


class ReportDelivery:
    """Sends a finished report to its recipients: each (run, recipient) is claimed in the
    ledger before sending, fenced by the run's attempt, and its result recorded after, so a
    retry sends only what did not go out, a recipient refused for good is not tried again,
    and a worker that lost the run stops (LeaseLost) instead of sending."""

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
        refused: list[str] = []
        for recipient in recipients:
            key = self._key(recipient)
            claim = self.ledger.begin_delivery(run.id, key, run.attempt)
            if not claim:
                statuses[key] = claim.reason
                if claim.reason.startswith("refused"):
                    refused.append(f"{key}: {claim.reason}")
                continue
            send = self._sender(job, run, done, recipient, claim.queued_at)
            try:
                send()
            except LeaseLost:
                raise
            except TransientError as exc:
                self.ledger.finish_delivery(run.id, key, str(exc), attempt=run.attempt)
                statuses[key] = f"failed, will retry: {mask(str(exc))}"
                transient.append(key)
            except MarketopsError as exc:
                # A refusal for good (5xx, a 4xx webhook answer) is final; a settings mistake
                # may be fixed before the run's next attempt.
                permanent = isinstance(exc, DeliveryError)
                self.ledger.finish_delivery(run.id, key, str(exc), attempt=run.attempt,
                                            permanent=permanent)
                statuses[key] = f"failed: {mask(str(exc))}"
                if permanent:
                    refused.append(f"{key}: {mask(str(exc))}")
            else:
                self.ledger.finish_delivery(run.id, key, None, attempt=run.attempt)
                statuses[key] = "sent"
        if transient:
            also = f"; refused for good, not retried: {'; '.join(refused)}" if refused else ""
            raise TransientError(f"{len(transient)} delivery(ies) failed for now: "
                                 f"{', '.join(transient)}{also}")
        return statuses

    def _fence(self, run: Run) -> Callable[[], None]:
        return lambda: self.ledger.fence(run.id, run.attempt)

    @staticmethod
    def _key(recipient: object) -> str:
        if isinstance(recipient, EmailRecipient):
            return f"email:{recipient.email}"
        if isinstance(recipient, DestinationRecipient):
            return f"destination:{recipient.destination}"
        return f"webhook:{getattr(recipient, 'webhook', '')}"

    def _sender(self, job: Job, run: Run, done: ReportResult, recipient: object,
                queued_at: datetime | None) -> Callable[[], None]:
        if isinstance(recipient, EmailRecipient):
            return lambda: self._mail(job, run, done, recipient.email, queued_at)
        if isinstance(recipient, DestinationRecipient):
            return lambda: self._copy(job, run, done, recipient.destination, recipient.path)
        name = getattr(recipient, "webhook", "")
        return lambda: self._post(job, done, name)

    def _subject(self, job: Job, done: ReportResult) -> str:
        assert job.report is not None
        prefix = "[ALERT] " if done.alerts else ""
        return f"{prefix}{job.report.title}: {done.directory.name.replace('_', ' to ')}"

    def _mail(self, job: Job, run: Run, done: ReportResult, address: str,
              queued_at: datetime | None) -> None:
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
        # The same Message-ID and Date on every send of this (run, recipient): a re-send
        # after a crash between DATA and the server's 250 is recognisably the same mail.
        date = queued_at.astimezone(job.schedule.tz) if queued_at and job.schedule else queued_at
        send_mail(server, [address], self._subject(job, done), text, html, attachments,
                  ("chart", chart) if chart else None,
                  message_id=message_id(run.id, f"email:{address}", smtp.sender), date=date,
                  before_data=self._fence(run))

    def _post(self, job: Job, done: ReportResult, name: str) -> None:
        hook = self.result.project.settings.webhooks[name]
        url = resolve_env(hook.url, f"webhooks.{name}.url")
        alerts = "".join(f"\n:warning: {a}" for a in done.alerts)
        post_webhook(url, {"text": f"{self._subject(job, done)}: {done.rows:,} rows, "
                                   f"archived at {done.directory}{alerts}"})

    def _copy(self, job: Job, run: Run, done: ReportResult, destination: str,
              path: str | None) -> None:
        spec = self.result.project.settings.destinations[destination]
        if spec.url.startswith("s3://"):
            store = store_for(self.root, self.result, destination)
            prefix = f"{path or 'reports/' + job.name}/{done.directory.name}"
            files = sorted(done.directory.iterdir(), key=lambda p: (p.name == "manifest.json",
                                                                    p.name))
            for file in files:  # the manifest last: a copy is complete once it is there
                if file.name == "manifest.json":
                    self._fence(run)()
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
        try:
            self._fence(run)()
        except LeaseLost:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
