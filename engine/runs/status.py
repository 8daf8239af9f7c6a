"""What `marketops status`, /status and /metrics report: per job, its last and next run and
whether it is late or failing."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from engine.backups.freshness import Freshness, span
from engine.runs.ledger import RunRecord
from engine.scheduling.jobs import Job


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
    freshness: Freshness | None = None

    @property
    def healthy(self) -> bool:
        return self.problem is None


def job_status(job: Job, supported: bool, last: RunRecord | None,
               last_success: datetime | None, now: datetime,
               freshness: Freshness | None = None) -> JobStatus:
    """Late: the newest slot older than the misfire grace has not run; failing: it failed;
    stale: a backup tier's newest valid backup (or WAL) is older than its RPO."""
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
    if freshness is not None and freshness.problem:
        problem = f"{problem}; {freshness.problem}" if problem else freshness.problem
    scheduled = supported or freshness is not None  # WAL archiving runs continuously
    return JobStatus(job.id, job.kind, scheduled, last, last_success, next_run, expected,
                     problem, freshness)


def _age(s: JobStatus) -> str:
    f = s.freshness
    if f is None:
        return "-"
    return f"{span(f.age) if f.age is not None else 'none'} / RPO {span(f.rpo)}"


def render_text(statuses: list[JobStatus]) -> str:
    lines = [f"{'job':<34} {'last run':<10} {'slot':<26} {'next run':<26} "
             f"{'backup age':<22} health"]
    for s in statuses:
        last = s.last.status if s.last else "-"
        slot = s.last.slot.isoformat(timespec="minutes") if s.last else "-"
        nxt = s.next_run.isoformat(timespec="minutes") if s.next_run else (
            "continuous" if s.freshness is not None else "-")
        health = "not scheduled" if not s.scheduled else ("ok" if s.healthy else s.problem)
        lines.append(f"{s.job:<34} {last:<10} {slot:<26} {nxt:<26} {_age(s):<22} {health}")
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
            "next_run": s.next_run.isoformat() if s.next_run else None,
            "backup": None if s.freshness is None else {
                "newest": s.freshness.newest, "rpo_seconds": s.freshness.rpo.total_seconds(),
                "age_seconds": s.freshness.age.total_seconds() if s.freshness.age else None,
                "problem": s.freshness.problem}}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _family(name: str, kind: str, text: str, samples: list[tuple[str, str, str]]
            ) -> list[str]:
    """One metric family: HELP, TYPE, then `name{label="value"} sample` lines."""
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}",
            *(f'{name}{{{label}="{_label(value)}"}} {sample}'
              for label, value, sample in samples)]


def render_metrics(statuses: list[JobStatus], counts: list[tuple[str, str, int]],
                   durations: dict[str, float], delivery_failures: dict[str, int]) -> str:
    """Prometheus text exposition format."""
    fresh = [s.freshness for s in statuses if s.freshness is not None]
    out = ["# HELP marketops_runs_total Runs recorded in the ledger, by job and status.",
           "# TYPE marketops_runs_total counter"]
    out += [f'marketops_runs_total{{job="{_label(j)}",status="{s}"}} {n}' for j, s, n in counts]
    out += _family("marketops_last_success_timestamp_seconds", "gauge",
                   "When each job last succeeded.",
                   [("job", s.job, f"{s.last_success.timestamp():.0f}") for s in statuses
                    if s.last_success])
    out += _family("marketops_last_run_duration_seconds", "gauge",
                   "Duration of each job's last run.",
                   [("job", j, f"{d:.3f}") for j, d in sorted(durations.items())])
    out += _family("marketops_delivery_failures", "gauge",
                   "Deliveries (mail, webhook) that failed.",
                   [("job", j, str(n)) for j, n in sorted(delivery_failures.items())])
    out += _family("marketops_backup_age_seconds", "gauge",
                   "Age of each tier's newest valid backup (for WAL: of the last archived "
                   "segment).", [("tier", f.tier, f"{f.age.total_seconds():.0f}")
                                 for f in fresh if f.age is not None])
    out += _family("marketops_backup_rpo_seconds", "gauge", "Each tier's declared RPO.",
                   [("tier", f.tier, f"{f.rpo.total_seconds():.0f}") for f in fresh])
    out += _family("marketops_backup_fresh", "gauge",
                   "1 when the tier is within its RPO and intact.",
                   [("tier", f.tier, str(int(f.problem is None))) for f in fresh])
    out += _family("marketops_job_healthy", "gauge",
                   "1 when the job is on time and not failing.",
                   [("job", s.job, str(int(s.healthy))) for s in statuses if s.scheduled])
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
            f"</td><td>{html.escape(_age(s))}</td>"
            f"<td>{html.escape(state if s.healthy or not s.scheduled else str(s.problem))}"
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
<th>backup age</th><th>health</th></tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""
