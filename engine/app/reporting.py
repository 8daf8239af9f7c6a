"""Reports as the root runs them: the resolved request for a slot, then its delivery."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

from engine.app.context import (
    local_destination,
    psql_binary,
    resolve_env,
    smtp_server,
    store_for,
)
from engine.app.deliveries import deliver_once
from engine.app.roles import reports_dsn as role_dsn
from engine.definitions.models.base import canonical_locale
from engine.definitions.models.report import DestinationRecipient, EmailRecipient
from engine.errors import JobError, MarketopsError, TransientError, UsageError
from engine.reports.delivery_plan import attach_files, report_recipients
from engine.reports.figures import (
    Display,
    Reference,
    display_of,
    file_name,
    fmt_number,
    key_figures,
    period_heading,
    period_kind,
    period_words,
    reference_period,
)
from engine.reports.mail import SUMMARY_ROWS, ReportView, render_html, render_text
from engine.reports.sqlparams import to_pyformat
from engine.reports.thresholds import Threshold
from engine.runs.fencing import message_id
from engine.runs.ledger import Ledger, Run
from engine.scheduling.jobs import Job
from engine.scheduling.periods import Period
from engine.validation.validate import ValidationResult
from runners.delivery.send import Attachment, build_message, post_webhook, send_message
from runners.report.query import ChartSpec, ReportRequest, ReportResult, run_report
from runners.storage.directories import copy_directory, upload_directory


def report_locale(defs: ValidationResult, job: Job) -> str:
    """The locale a report's figures read in: its own, else reports.locale in settings."""
    assert job.report is not None
    return job.report.locale or canonical_locale(defs.project.settings.reports.locale)


def declared_columns(job: Job, locale: str) -> dict[str, Display]:
    """The report's declared output columns as Displays, by name."""
    assert job.report is not None
    return {name: display_of(name, column, locale)
            for name, column in job.report.columns.items()}


def period_label(period: Period) -> str:
    """The archive folder name of a period: '2026-11-01_2026-12-01'."""
    return f"{_label(period.start)}_{_label(period.end)}"


def report_request(root: Path, defs: ValidationResult, job: Job, slot: datetime,
                   reports_dsn: str, *, out_dir: Path | None = None,
                   compare: bool = True) -> ReportRequest:
    """Everything a report run needs, resolved: SQL for the driver, parameters, paths, the
    period in words and, for compared key figures, the previous period's figures."""
    assert job.report is not None and job.sql is not None
    period = job.period(slot)
    assert period is not None
    params = job.parameters(slot)
    archive = defs.project.settings.reports.destination
    if archive is None:
        raise UsageError("reports.destination is not set in marketops.yaml")
    report = job.report
    # The archive is a destination of its own: reports/ in its name already says what it holds.
    archived = local_destination(root, defs, archive) / job.name
    out_dir = out_dir or archived / period_label(period)
    chart = ChartSpec(report.chart.type.value, report.chart.x, list(report.chart.y),
                      report.chart.title or report.title,
                      report.chart.series) if report.chart else None
    alerts = tuple(Threshold(a.name, a.column, a.op.value, a.value, a.when,
                             a.message or f"{a.column} {a.op.value} {a.value}")
                   for a in report.alerts)
    kind = period_kind(report.period)
    heading = period_heading(kind, period, report.timezone)
    sql = to_pyformat(job.sql, set(params))
    local_slot = slot.astimezone(period.end.tzinfo)
    about = (("Report", f"report/{job.name}: {report.title}"),
             ("Description", report.description.strip()),
             ("Period", heading),
             ("Slot", f"{local_slot.isoformat()} ({report.timezone})"),
             ("SQL sha256", hashlib.sha256(sql.encode()).hexdigest()))
    request = ReportRequest(job.name, role_dsn(root, defs, reports_dsn), sql, params,
                            report.limits.statement_timeout, report.limits.max_rows, out_dir,
                            report.timezone, tuple(f.value for f in report.formats),
                            report.title, heading, chart, alerts, psql_binary(defs),
                            declared_columns(job, report_locale(defs, job)), about=about,
                            locale=report_locale(defs, job))
    kinds = sorted({c.compare for c in report.columns.values() if c.compare} if compare
                   else set())
    references: dict[str, Reference] = {}
    for which in kinds:
        before = reference_period(which, kind, period, report.timezone)
        figures = _previous_figures(job, slot, request, period, before,
                                    archived / period_label(before))
        references[which] = Reference(period_words(kind, before), figures)
    return replace(request, references=references) if references else request


def _previous_figures(job: Job, slot: datetime, request: ReportRequest, period: Period,
                      before: Period, archived: Path) -> dict[str, str] | None:
    """An earlier period's key figures: from its archived manifest when that run exists,
    else computed by running the report for that period (into a scratch folder)."""
    manifest = archived / "manifest.json"
    if manifest.exists():
        figures = json.loads(manifest.read_text()).get("figures")
        if isinstance(figures, dict):
            return {str(k): str(v) for k, v in figures.items()}
    # The same offset from the period's end as this slot: what the scheduler would pass.
    params = {**request.params, "period_start": before.start, "period_end": before.end,
              "slot_time": slot - (period.end - before.end)}
    assert job.sql is not None
    with tempfile.TemporaryDirectory(prefix="marketops-previous-") as scratch:
        earlier = replace(request, sql=to_pyformat(job.sql, set(params)), params=params,
                          out_dir=Path(scratch) / "run", formats=("csv",), alerts=(),
                          chart=None, psql=None)
        try:
            return run_report(earlier).figures
        except JobError:
            # The comparison is an extra: this period's report goes out without it.
            return None


def _label(moment: datetime) -> str:
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%dT%H%M%S%z")


def _manifest(done: ReportResult) -> dict[str, object]:
    path = done.directory / "manifest.json"
    loaded = json.loads(path.read_text()) if path.exists() else {}
    return loaded if isinstance(loaded, dict) else {}


def subject(job: Job, slot: datetime, alerts: bool) -> str:
    """'[ALERT] Monthly P&L: November 2026'."""
    assert job.report is not None
    period = job.period(slot)
    assert period is not None
    words = period_words(period_kind(job.report.period), period)
    return f"{'[ALERT] ' if alerts else ''}{job.report.title}: {words}"


def public_link(defs: ValidationResult, job: Job, done: ReportResult) -> str | None:
    """The run's archived summary over HTTP, when reports.public_url is set."""
    base = defs.project.settings.reports.public_url
    if base is None:
        return None
    page = f"{job.name}.html" if f"{job.name}.html" in done.files else ""
    return f"{base.rstrip('/')}/reports/{job.name}/{done.directory.name}/{page}"


def report_view(defs: ValidationResult, job: Job, slot: datetime, done: ReportResult, *,
                chart_src: str | None, attached: bool, note: str = "") -> ReportView:
    """What the mail shows for a finished run (the compared figures from its manifest)."""
    assert job.report is not None
    period = job.period(slot)
    assert period is not None
    kind = period_kind(job.report.period)
    locale = report_locale(defs, job)
    declared = declared_columns(job, locale)
    shown = [declared.get(c) or Display(c, c, locale=locale) for c in done.columns]
    manifest = _manifest(done)
    compared = manifest.get("compared")
    references = {
        str(which): Reference(str(ref.get("period", "")),
                              _dict(ref["figures"]) if isinstance(ref.get("figures"), dict)
                              else None)
        for which, ref in (compared.items() if isinstance(compared, dict) else ())
        if isinstance(ref, dict)}
    figures = key_figures(shown, done.figures or _dict(manifest.get("figures")), references)
    return ReportView(job.report.title, period_heading(kind, period, job.report.timezone),
                      shown, done.head, done.rows, figures, done.alerts, chart_src, attached,
                      note, public_link(defs, job, done), job.report.description, locale)


def _dict(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def report_message(defs: ValidationResult, job: Job, slot: datetime, done: ReportResult,
                   to: list[str], *, message_id: str | None = None,
                   date: datetime | None = None) -> EmailMessage:
    """The mail of a finished run: summary and table in HTML and plain text, the chart
    inline, CSV/XLSX attached when they fit under smtp.max_message_bytes."""
    assert job.report is not None
    smtp = defs.project.settings.smtp
    sender = smtp.sender if smtp is not None else "marketops@localhost"
    limit = smtp.max_message_bytes if smtp is not None else 10_000_000
    chart_path = done.directory / f"{job.name}.png"
    chart = chart_path.read_bytes() if chart_path.exists() else None
    files = [done.directory / n for n in done.files if n.endswith((".csv", ".xlsx"))]
    size = sum(p.stat().st_size for p in files)
    attach = attach_files(size, limit)
    period = job.period(slot)
    assert period is not None
    words = period_words(period_kind(job.report.period), period)
    attachments = tuple(
        Attachment(file_name(job.report.title, words, p.suffix), p.read_bytes(),
                   "text" if p.suffix == ".csv" else "application",
                   "csv" if p.suffix == ".csv" else
                   "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        for p in files) if attach else ()
    bytes_text = fmt_number(Decimal(size), 0, report_locale(defs, job))
    where = "" if attach else (f"The files ({bytes_text} bytes) are too large to attach; they "
                               f"are archived at {done.directory}.")
    view = report_view(defs, job, slot, done, chart_src="cid:chart" if chart else None,
                       attached=attach and bool(files), note=where)
    return build_message(sender, to, subject(job, slot, bool(done.alerts)), render_text(view),
                         render_html(view), attachments, ("chart", chart) if chart else None,
                         message_id=message_id, date=date)


class ReportDelivery:
    """Sends a finished report to its recipients: each (run, recipient) is claimed in the
    ledger before sending, fenced by the run's attempt, and its result recorded after, so a
    retry sends only what did not go out, a recipient refused for good is not tried again,
    and a worker that lost the run stops (LeaseLost) instead of sending."""

    def __init__(self, root: Path, defs: ValidationResult, ledger: Ledger,
                 observe: Callable[[Job, str, str], None] | None = None) -> None:
        self.root = root
        self.defs = defs
        self.ledger = ledger
        self.observe = observe  # (job, recipient kind, outcome) of each attempt, for metrics

    def deliver(self, job: Job, run: Run, done: ReportResult) -> dict[str, str]:
        assert job.report is not None
        recipients = report_recipients(
            job.report.recipients, {a.name: a.notify for a in job.report.alerts}, done.fired)
        statuses: dict[str, str] = {}
        transient: list[str] = []  # "recipient (why)"
        refused: list[str] = []
        for recipient in recipients:
            key = self._key(recipient)
            outcome = deliver_once(self.ledger, run, key, self._sender(job, run, done, recipient))
            statuses[key] = outcome.status
            if outcome.transient:
                transient.append(f"{key} ({outcome.cause})")
            if outcome.refused:
                refused.append(f"{key}: {outcome.status}")
            if outcome.tried and self.observe is not None:
                self.observe(job, key.split(":", 1)[0], outcome.outcome)
        if transient:
            count = "1 delivery" if len(transient) == 1 else f"{len(transient)} deliveries"
            also = f"; refused for good, not retried: {'; '.join(refused)}" if refused else ""
            raise TransientError(f"{count} failed: {'; '.join(transient)}{also}")
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

    def _sender(self, job: Job, run: Run, done: ReportResult, recipient: object
                ) -> Callable[[datetime | None], None]:
        if isinstance(recipient, EmailRecipient):
            return lambda queued_at: self._mail(job, run, done, recipient.email, queued_at)
        if isinstance(recipient, DestinationRecipient):
            return lambda _: self._copy(job, run, done, recipient.destination, recipient.path)
        name = getattr(recipient, "webhook", "")
        return lambda _: self._post(job, run, done, name)

    def _mail(self, job: Job, run: Run, done: ReportResult, address: str,
              queued_at: datetime | None) -> None:
        smtp = self.defs.project.settings.smtp
        if smtp is None:
            raise UsageError("a report goes to an email address but marketops.yaml has no smtp")
        # The same Message-ID and Date on every send of this (run, recipient): a re-send
        # after a crash between DATA and the server's 250 is recognisably the same mail.
        date = queued_at.astimezone(job.schedule.tz) if queued_at and job.schedule else queued_at
        message = report_message(self.defs, job, run.slot, done, [address],
                                 message_id=message_id(run.id, f"email:{address}", smtp.sender),
                                 date=date)
        send_message(smtp_server(smtp), message, before_data=self._fence(run))

    def _post(self, job: Job, run: Run, done: ReportResult, name: str) -> None:
        hook = self.defs.project.settings.webhooks[name]
        url = resolve_env(hook.url, f"webhooks.{name}.url")
        view = report_view(self.defs, job, run.slot, done, chart_src=None, attached=False)
        rows = fmt_number(Decimal(done.rows), 0, view.locale)
        lines = [f"*{subject(job, run.slot, bool(done.alerts))}*: {rows} "
                 f"row{'' if done.rows == 1 else 's'}"]
        lines += [f"• {f.sentence()}" for f in view.figures]
        lines += [f":warning: {a}" for a in done.alerts]
        if view.link:
            lines.append(f"<{view.link}|Open the report>")
        post_webhook(url, {"text": "\n".join(lines)})

    def _copy(self, job: Job, run: Run, done: ReportResult, destination: str,
              path: str | None) -> None:
        spec = self.defs.project.settings.destinations[destination]
        if spec.url.startswith("s3://"):
            store = store_for(self.root, self.defs, destination)
            prefix = f"{path or 'reports/' + job.name}/{done.directory.name}"
            upload_directory(done.directory, store, prefix, last="manifest.json",
                             before_each=self._fence(run))
            return
        base = local_destination(self.root, self.defs, destination)
        archive = destination == self.defs.project.settings.reports.destination
        folder = path or (job.name if archive else f"reports/{job.name}")
        copy_directory(done.directory, base / folder / done.directory.name,
                       before_publish=self._fence(run))


def archived_result(directory: Path) -> ReportResult:
    """A finished run read back from its archive folder: the manifest, and the first rows
    from the CSV (as text; empty fields are NULL)."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise UsageError(f"{directory} holds no finished run (no manifest.json); run the slot "
                         "first with `marketops run`")
    manifest = json.loads(manifest_path.read_text())
    name = str(manifest["report"])
    head: list[tuple[object, ...]] = []
    data = directory / f"{name}.csv"
    if data.exists():
        with data.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for row in reader:
                head.append(tuple(v if v != "" else None for v in row))
                if len(head) >= SUMMARY_ROWS:
                    break
    return ReportResult(int(manifest["rows"]), list(manifest["columns"]),
                        dict(manifest["files"]), float(manifest.get("duration_seconds", 0)),
                        directory, list(manifest.get("alerts") or []), head,
                        fired=tuple(manifest.get("thresholds_crossed") or ()),
                        figures=_dict(manifest.get("figures")))


def preview(root: Path, defs: ValidationResult, job: Job, slot: datetime, reports_dsn: str,
            folder: Path) -> list[Path]:
    """Every output of the slot and its mail (.eml, and .html with the chart embedded) in
    `folder`, delivering nothing and leaving the ledger alone."""
    assert job.report is not None
    period = job.period(slot)
    assert period is not None
    out = folder / period_label(period)
    done = run_report(report_request(root, defs, job, slot, reports_dsn, out_dir=out))
    to = [r.email for r in job.report.recipients if isinstance(r, EmailRecipient)]
    message = report_message(defs, job, slot, done, to or ["preview@localhost"])
    eml = out / f"{job.name}.eml"
    eml.write_bytes(bytes(message))
    chart = out / f"{job.name}.png"
    src = ("data:image/png;base64," + base64.b64encode(chart.read_bytes()).decode()
           if chart.exists() else None)
    page = out / f"{job.name}.mail.html"
    view = report_view(defs, job, slot, done, chart_src=src,
                       attached=any(n.endswith((".csv", ".xlsx")) for n in done.files))
    page.write_text(render_html(view), encoding="utf-8")
    return sorted(out.iterdir())


def resend(defs: ValidationResult, ledger: Ledger, job: Job, slot: datetime,
           addresses: list[str], asked_by: str, now: datetime) -> dict[str, str]:
    """Send a finished slot's archived outputs again, on purpose: each send is recorded on
    the slot's run as its own delivery, naming who asked and when."""
    assert job.report is not None
    runs = [r for r in ledger.runs(job.id, limit=1000) if r.slot == slot]
    run = next((r for r in runs if r.status == "succeeded"), None)
    if run is None:
        state = runs[0].status if runs else "never run"
        raise UsageError(f"{job.id} slot {slot.isoformat()} has no succeeded run ({state}); "
                         "run it with `marketops run` first")
    done = archived_result(Path(str(run.outputs["directory"])))
    to = addresses or [r.email for r in job.report.recipients if isinstance(r, EmailRecipient)]
    if not to:
        raise UsageError(f"{job.id} has no email recipients; name one with --to")
    smtp = defs.project.settings.smtp
    if smtp is None:
        raise UsageError("resending a report needs smtp in marketops.yaml")
    server = smtp_server(smtp)
    statuses: dict[str, str] = {}
    for address in to:
        # Its own delivery row, not claimed: the run has finished, and a re-send on purpose
        # is sent whatever was sent before.
        key = f"email:{address} (resent at {now.isoformat()} by {asked_by})"
        try:
            send_message(server, report_message(defs, job, slot, done, [address]))
        except MarketopsError as exc:
            ledger.record_delivery(run.id, key, str(exc))
            statuses[key] = f"failed: {exc}"
        else:
            ledger.record_delivery(run.id, key, None)
            statuses[key] = "sent"
    return statuses
