"""Failure alerts: a run that failed for good is told to its owner and the alert webhook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engine import logger
from engine.app.context import LiveDefinitions, current, resolve_env, smtp_server
from engine.app.deliveries import deliver_once
from engine.errors import LeaseLost
from engine.reports.delivery_plan import alert_again, failure_alert_targets
from engine.runs.fencing import message_id
from engine.runs.ledger import Ledger, Run
from engine.scheduling.jobs import Job
from engine.validation.validate import ValidationResult
from runners.delivery.send import post_webhook, send_mail


@dataclass(frozen=True)
class FailureAlerter:
    """Tells a job's owner (mail) and the alert webhook that a run failed for good; each
    (run, recipient) is recorded in the ledger before and after sending, so never twice."""

    definitions: LiveDefinitions | ValidationResult
    ledger: Ledger

    @property
    def defs(self) -> ValidationResult:
        return current(self.definitions)

    def __call__(self, job: Job, run: Run, error: str) -> None:
        settings = self.defs.project.settings
        kind = job.tier.kind if job.tier is not None else None
        before = self.ledger.previous_run(job.id, run.slot)
        if not alert_again(kind, before.status if before else None,
                           before.error if before else None, error):
            return
        slot = run.slot.astimezone(job.schedule.tz) if job.schedule else run.slot
        subject = f"[marketops] {job.id} failed (slot {slot.isoformat()})"
        text = (f"{job.id} failed for its slot at {slot.isoformat()} after {run.attempt} "
                f"attempt(s):\n\n{error}\n\nRun it again with:\n  marketops run {job.id} "
                f"--at {slot.isoformat()}\n")
        sends = [(target, self._sender(target, run, subject, text, error))
                 for target in failure_alert_targets(
                     job.owner, email_owners=settings.alerts.email_owners,
                     smtp=settings.smtp is not None, webhook=settings.alerts.webhook)]
        self._send(job, run, sends)

    def _sender(self, target: str, run: Run, subject: str, text: str, error: str
                ) -> Callable[[datetime | None], None]:
        settings = self.defs.project.settings
        kind, name = target.split(":", 1)
        if kind == "email":
            smtp = settings.smtp
            assert smtp is not None
            server = smtp_server(smtp)
            return lambda queued_at: send_mail(
                server, [name], subject, text,
                message_id=message_id(run.id, f"alert:{target}", smtp.sender), date=queued_at,
                before_data=lambda: self.ledger.fence(run.id, run.attempt))
        url = resolve_env(settings.webhooks[name].url, f"webhooks.{name}.url")
        return lambda _: post_webhook(url, {"text": f"{subject}\n{error}"})

    def _send(self, job: Job, run: Run,
              sends: list[tuple[str, Callable[[datetime | None], None]]]) -> None:
        log = logger("marketops.alerts")
        extra = {"job": job.id, "run_id": run.id}
        for recipient, send in sends:
            try:
                outcome = deliver_once(self.ledger, run, recipient, send)
            except LeaseLost as exc:  # another attempt owns the run now, and its alerts
                log.warning("alert not sent, stopped: %s", exc, extra=extra)
                return
            except Exception as exc:  # recorded as failed; the failure it reports stands
                log.error("alert to %s failed: %s", recipient, exc, extra=extra)
                continue
            if outcome.status.startswith("failed"):
                log.error("alert to %s %s", recipient, outcome.status, extra=extra)
