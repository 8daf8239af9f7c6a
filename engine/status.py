"""What `marketops status`, /status and /metrics report: per job, its last and next run and
whether it is late or failing."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from engine.jobs import Job
from engine.ledger import RunRecord


@dataclass(frozen=True)
class JobStatus:
    job: str
    kind: str
    scheduled: bool
    last: RunRecord | None
    last_success: datetime | None
    next_run: datetime | None
    expected_slot: datetime | None
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.problem is None


def job_status(job: Job, supported: bool, last: RunRecord | None,
               last_success: datetime | None, now: datetime) -> JobStatus:
    """Late: the newest slot older than the misfire grace has not run; failing: it failed."""
    schedule = job.schedule
    next_run = schedule.next_after(now) if schedule else None
    expected = None
    if schedule is not None:
        expected = schedule.latest_at_or_before(now - job.policy.misfire_grace)
    problem = None  # jobs without a runner are reported as not scheduled, not as unhealthy
    if supported and last is not None and last.status == "failed":
        problem = f"last run failed: {last.error}"
    elif supported and expected is not None and (last is None or last.slot < expected):
        problem = f"late: the slot at {expected.isoformat()} has not run"
    return JobStatus(job.id, job.kind, supported, last, last_success, next_run, expected,
                     problem)


def render_text(statuses: list[JobStatus]) -> str:
    lines = [f"{'job':<34} {'last run':<10} {'slot':<26} {'next run':<26} health"]
    for s in statuses:
        last = s.last.status if s.last else "-"
        slot = s.last.slot.isoformat(timespec="minutes") if s.last else "-"
        nxt = s.next_run.isoformat(timespec="minutes") if s.next_run else "-"
        health = "not scheduled (no runner yet)" if not s.scheduled else (
            "ok" if s.healthy else s.problem)
        lines.append(f"{s.job:<34} {last:<10} {slot:<26} {nxt:<26} {health}")
    return "\n".join(lines) + "\n"


def as_dict(s: JobStatus) -> dict[str, object]:
    return {"job": s.job, "kind": s.kind, "scheduled": s.scheduled, "healthy": s.healthy,
            "problem": s.problem,
            "last_run": None if s.last is None else {
                "status": s.last.status, "slot": s.last.slot.isoformat(),
                "attempt": s.last.attempt, "finished_at":
                    s.last.finished_at.isoformat() if s.last.finished_at else None,
                "error": s.last.error},
            "last_success": s.last_success.isoformat() if s.last_success else None,
            "next_run": s.next_run.isoformat() if s.next_run else None}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def render_metrics(statuses: list[JobStatus], counts: list[tuple[str, str, int]],
                   durations: dict[str, float], delivery_failures: dict[str, int]) -> str:
    """Prometheus text exposition format."""
    out = ["# HELP marketops_runs_total Runs recorded in the ledger, by job and status.",
           "# TYPE marketops_runs_total counter"]
    out += [f'marketops_runs_total{{job="{_label(j)}",status="{s}"}} {n}' for j, s, n in counts]
    out += ["# HELP marketops_last_success_timestamp_seconds When each job last succeeded.",
            "# TYPE marketops_last_success_timestamp_seconds gauge"]
    out += [f'marketops_last_success_timestamp_seconds{{job="{_label(s.job)}"}} '
            f"{s.last_success.timestamp():.0f}" for s in statuses if s.last_success]
    out += ["# HELP marketops_last_run_duration_seconds Duration of each job's last run.",
            "# TYPE marketops_last_run_duration_seconds gauge"]
    out += [f'marketops_last_run_duration_seconds{{job="{_label(j)}"}} {d:.3f}'
            for j, d in sorted(durations.items())]
    out += ["# HELP marketops_delivery_failures Deliveries (mail, webhook) that failed.",
            "# TYPE marketops_delivery_failures gauge"]
    out += [f'marketops_delivery_failures{{job="{_label(j)}"}} {n}'
            for j, n in sorted(delivery_failures.items())]
    out += ["# HELP marketops_job_healthy 1 when the job is on time and not failing.",
            "# TYPE marketops_job_healthy gauge"]
    out += [f'marketops_job_healthy{{job="{_label(s.job)}"}} {int(s.healthy)}'
            for s in statuses if s.scheduled]
    return "\n".join(out) + "\n"


def render_html(statuses: list[JobStatus], worker: str, now: datetime) -> str:
    """A status page a person reads: one row per job, problems first."""
    rows = []
    for s in sorted(statuses, key=lambda x: (x.healthy or not x.scheduled, x.job)):
        state = "not scheduled" if not s.scheduled else ("ok" if s.healthy else "problem")
        rows.append(
            f'<tr class="{state.replace(" ", "-")}"><td>{html.escape(s.job)}</td>'
            f"<td>{html.escape(s.last.status if s.last else '-')}</td>"
            f"<td>{html.escape(s.last.slot.isoformat(timespec='minutes') if s.last else '-')}</td>"
            f"<td>{html.escape(s.next_run.isoformat(timespec='minutes') if s.next_run else '-')}"
            f"</td><td>{html.escape(state if s.healthy or not s.scheduled else str(s.problem))}"
            "</td></tr>")
    unhealthy = sum(1 for s in statuses if s.scheduled and not s.healthy)
    summary = "All scheduled jobs are healthy." if not unhealthy else \
        f"{unhealthy} job(s) need attention."
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>marketops status</title>
<meta http-equiv="refresh" content="10">
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}
tr.problem td{{background:#fde2e2}}tr.not-scheduled td{{color:#888}}</style></head>
<body><h1>marketops status</h1>
<p id="summary">{html.escape(summary)}</p>
<p>worker {html.escape(worker)}, {html.escape(now.isoformat(timespec="seconds"))}</p>
<table id="jobs"><thead><tr><th>job</th><th>last run</th><th>slot</th><th>next run</th>
<th>health</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
