"""Failure alerts: a run that failed for good is told to its owner and the alert webhook."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from engine.app.context import LiveDefinitions, current, resolve_env
from engine.jobs import Job
from engine.ledger import Ledger, Run
from engine.validate import ValidationResult
from runners.delivery import SmtpServer, post_webhook, send_mail


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
