"""What `marketops status`, /status and /metrics report: per job, its last and next run and
whether it is late or failing."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from engine.backups.freshness import Freshness, span
from engine.backups.walqueue import describe, stalled
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
    timezone: str = "UTC"  # the job's own IANA zone, in which its times are shown
    suspended: str | None = None  # "since ... by ...: reason" while `marketops suspend` holds

    @property
    def healthy(self) -> bool:
        return self.problem is None

    @property
    def duration(self) -> float | None:
        """Seconds the last run took, once it finished."""
        last = self.last
        if last is None or last.started_at is None or last.finished_at is None:
            return None
        return (last.finished_at - last.started_at).total_seconds()


def job_status(job: Job, supported: bool, last: RunRecord | None,
               last_success: datetime | None, now: datetime,
               freshness: Freshness | None = None, suspended: str | None = None) -> JobStatus:
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
    elif supported and last is not None and last.status == "retrying":
        # A delivery or connection failing for now still needs someone to look at it.
        problem = f"retrying after attempt {last.attempt}: {last.error}"
    elif supported and expected is not None and (last is None or last.slot < expected) \
            and suspended is None:  # a suspended job is not late: nobody wants it to run
        problem = f"late: the slot at {expected.isoformat()} has not run"
    if freshness is not None and freshness.problem:
        problem = f"{problem}; {freshness.problem}" if problem else freshness.problem
    scheduled = supported or freshness is not None  # WAL archiving runs continuously
    return JobStatus(job.id, job.kind, scheduled, last, last_success, next_run, expected,
                     problem, freshness, schedule.timezone if schedule else "UTC", suspended)


def relative(at: datetime, now: datetime) -> str:
    """"5 min ago", "in 3 h", "2 d ago": how far from now, as people say it."""
    seconds = (at - now).total_seconds()
    size = abs(seconds)
    if size < 60:
        return "just now" if seconds <= 0 else "in under a minute"
    amount = f"{int(size // 60)} min" if size < 3600 else (
        f"{int(size // 3600)} h" if size < 2 * 86400 else f"{int(size // 86400)} d")
    return f"{amount} ago" if seconds < 0 else f"in {amount}"


def local(at: datetime, zone: str | tzinfo) -> str:
    """A time in a zone, the zone named: 2026-12-01 06:00 CET."""
    shown = at.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    return f"{shown:%Y-%m-%d %H:%M} {shown.tzname()}"


def took(seconds: float | None) -> str:
    """A run's duration: 0.4s, 12s, 3min 5s."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    return f"{whole}s" if whole < 60 else f"{whole // 60}min {whole % 60}s"


def _zone(s: JobStatus, utc: bool) -> tzinfo:
    return UTC if utc else ZoneInfo(s.timezone)


def _at(at: datetime | None, s: JobStatus, now: datetime | None, utc: bool) -> str:
    if at is None:
        return "-"
    return local(at, _zone(s, utc)) + (f" ({relative(at, now)})" if now is not None else "")


def _age(s: JobStatus) -> str:
    f = s.freshness
    if f is None:
        return "-"
    return f"{span(f.age) if f.age is not None else 'none'} / RPO {span(f.rpo)}"


def render_text(statuses: list[JobStatus], now: datetime | None = None, utc: bool = False
                ) -> str:
    """One line per job: its last run (slot, how long it took), last success and next run in
    the job's own timezone, named, and how far from `now` (when given: the core reads no
    clock); `utc` shows every time in UTC."""
    rows = [("job", "zone", "last run", "slot", "took", "last success", "next run",
             "backup age", "health")]
    queues: dict[int, str] = {}  # under a WAL tier's row: its asynchronous archiving queue
    for s in statuses:
        nxt = _at(s.next_run, s, now, utc) if s.next_run else (
            "continuous" if s.freshness is not None else "-")
        health = "not scheduled" if not s.scheduled else ("ok" if s.healthy else s.problem)
        if s.suspended:
            health = f"suspended {s.suspended}" + ("" if s.healthy else f"; {s.problem}")
        rows.append((s.job, "UTC" if utc else s.timezone, s.last.status if s.last else "-",
                     local(s.last.slot, _zone(s, utc)) if s.last else "-", took(s.duration),
                     _at(s.last_success, s, now, utc), nxt, _age(s), str(health)))
        if s.freshness is not None and s.freshness.queue is not None:
            queues[len(rows) - 1] = f"  {describe(s.freshness.queue)}\n"
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                   + "  " + row[-1] + "\n" + queues.get(i, "") for i, row in enumerate(rows))


def as_dict(s: JobStatus) -> dict[str, object]:
    return {"job": s.job, "kind": s.kind, "scheduled": s.scheduled, "healthy": s.healthy,
            "problem": s.problem, "timezone": s.timezone, "last_run_seconds": s.duration,
            "suspended": s.suspended,
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
                "problem": s.freshness.problem, **_queue(s.freshness)}}


def _queue_html(freshness: Freshness | None) -> str:
    if freshness is None or freshness.queue is None:
        return ""
    return f'<br><small class="queue">{html.escape(describe(freshness.queue))}</small>'


def _queue(freshness: Freshness) -> dict[str, object]:
    """Asynchronous WAL archiving's queue, for the tiers that archive so."""
    queue = freshness.queue
    if queue is None:
        return {}
    return {"queue": {"ready": queue.ready, "stored_ahead": queue.stored_ahead,
                      "pusher_pid": queue.pusher_pid, "errors": queue.failed,
                      "pusher_hung": queue.pusher_pid is not None
                      and stalled(queue.progress_age)}}


def metric_families(statuses: list[JobStatus], counts: Iterable[tuple[str, str, int]] = (),
                    durations: dict[str, float] | None = None,
                    delivery_failures: dict[str, int] | None = None) -> list[Metric]:
    """What the ledger and the stores say now, as Prometheus gauges (read at each scrape;
    the counters and histograms of what this replica did are kept by engine.app.metrics)."""
    fresh = [s.freshness for s in statuses if s.freshness is not None]

    def gauge(name: str, text: str, label: str, samples: Iterable[tuple[str, float]]
              ) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, text, labels=[label])
        for value, sample in samples:
            family.add_metric([value], sample)
        return family

    ledger = GaugeMetricFamily("marketops_ledger_runs", "Ledger rows by job and their current "
                               "status (a gauge: a retried run moves between statuses).",
                               labels=["job", "status"])
    for job, status, n in counts:
        ledger.add_metric([job, status], n)
    return [
        ledger,
        gauge("marketops_last_success_timestamp_seconds", "When each job last succeeded "
              "(Unix time).", "job",
              [(s.job, s.last_success.timestamp()) for s in statuses if s.last_success]),
        gauge("marketops_last_run_duration_seconds", "Duration of each job's last finished "
              "run.", "job", sorted((durations or {}).items())),
        gauge("marketops_delivery_failed_recipients", "Recipients whose delivery is recorded "
              "failed in the ledger, by job.", "job",
              sorted((delivery_failures or {}).items())),
        gauge("marketops_backup_age_seconds", "Age of each tier's newest valid backup (for "
              "WAL: of the last archived segment).", "tier",
              [(f.tier, f.age.total_seconds()) for f in fresh if f.age is not None]),
        gauge("marketops_backup_rpo_seconds", "Each tier's declared RPO.", "tier",
              [(f.tier, f.rpo.total_seconds()) for f in fresh]),
        gauge("marketops_backup_fresh", "1 when the tier is within its RPO and intact.",
              "tier", [(f.tier, float(f.problem is None)) for f in fresh]),
        gauge("marketops_job_healthy", "1 when the job is on time and neither failing nor "
              "retrying.", "job", [(s.job, float(s.healthy)) for s in statuses if s.scheduled]),
        *_queue_gauges(fresh, gauge),
    ]


def _queue_gauges(fresh: list[Freshness], gauge: Callable[..., GaugeMetricFamily]
                  ) -> list[GaugeMetricFamily]:
    """Asynchronous WAL archiving's queue, only for the tiers that archive so."""
    queued = [(f.tier, f.queue) for f in fresh if f.queue is not None]
    if not queued:
        return []
    return [
        gauge("marketops_wal_async_ready", "WAL files the server waits to have archived.",
              "tier", [(t, float(q.ready)) for t, q in queued if q.ready is not None]),
        gauge("marketops_wal_async_stored_ahead", "WAL files the pusher stored before the "
              "server asked.", "tier", [(t, float(q.stored_ahead)) for t, q in queued]),
        gauge("marketops_wal_async_pusher_running", "1 while the background WAL pusher runs.",
              "tier", [(t, float(q.pusher_pid is not None)) for t, q in queued]),
    ]


def render_metrics(statuses: list[JobStatus], counts: Iterable[tuple[str, str, int]] = (),
                   durations: dict[str, float] | None = None,
                   delivery_failures: dict[str, int] | None = None) -> str:
    """The gauges alone in Prometheus text exposition format (prometheus_client's)."""
    families = metric_families(statuses, counts, durations, delivery_failures)

    class Now:
        def collect(self) -> Iterable[Metric]:
            return families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Now())
    return generate_latest(registry).decode()


_STYLE = """<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}
td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}
tr.problem td{background:#fde2e2}tr.not-scheduled td{color:#888}</style>"""


def render_html(statuses: list[JobStatus], worker: str, now: datetime, utc: bool = False
                ) -> str:
    """A status page a person reads: one row per job, problems first, times in each job's
    own timezone (named) and how far from now; each last run links to its outputs and error."""
    rows = []
    for s in sorted(statuses, key=lambda x: (x.healthy or not x.scheduled, x.job)):
        state = "not scheduled" if not s.scheduled else ("ok" if s.healthy else "problem")
        last = "-" if s.last is None else \
            f'<a href="/runs/{s.last.id}">{html.escape(s.last.status)}</a>'
        health = html.escape(state if s.healthy or not s.scheduled else str(s.problem))
        if s.suspended:
            health = html.escape(f"suspended {s.suspended}") + ("" if s.healthy else
                                                               f"; {health}")
        if s.last is not None and s.last.error and not s.healthy:
            health = f'<a href="/runs/{s.last.id}#error">{health}</a>'
        nxt = _at(s.next_run, s, now, utc) if s.next_run else (
            "continuous" if s.freshness is not None else "-")
        cells = [html.escape(s.job), html.escape("UTC" if utc else s.timezone), last,
                 html.escape(local(s.last.slot, _zone(s, utc)) if s.last else "-"),
                 html.escape(took(s.duration)), html.escape(_at(s.last_success, s, now, utc)),
                 html.escape(nxt), html.escape(_age(s)), health + _queue_html(s.freshness)]
        rows.append(f'<tr class="{state.replace(" ", "-")}">'
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    unhealthy = sum(1 for s in statuses if s.scheduled and not s.healthy)
    summary = "All scheduled jobs are healthy." if not unhealthy else \
        f"{unhealthy} job(s) need attention."
    heads = "".join(f"<th>{h}</th>" for h in ("job", "zone", "last run", "slot", "took",
                                               "last success", "next run", "backup age",
                                               "health"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>marketops status</title>
<meta http-equiv="refresh" content="10">
{_STYLE}</head>
<body><h1>marketops status</h1>
<p id="summary">{html.escape(summary)}</p>
<p>worker {html.escape(worker)}, {html.escape(local(now, UTC))}</p>
<table id="jobs"><thead><tr>{heads}</tr></thead><tbody>
{"".join(rows)}
</tbody></table></body></html>
"""


def render_run(record: RunRecord, zone: str, now: datetime) -> str:
    """One run's page: when, how it ended, its error, and where its outputs are."""
    tz = ZoneInfo(zone)

    def at(value: datetime | None) -> str:
        return "-" if value is None else f"{local(value, tz)} ({relative(value, now)})"

    outputs = dict(record.outputs)
    directory = outputs.pop("directory", None)
    files = outputs.pop("files", None)
    facts = [("job", record.job), ("slot", local(record.slot, tz)), ("status", record.status),
             ("attempt", str(record.attempt)), ("trigger", record.trigger),
             ("worker", record.worker or "-"), ("started", at(record.started_at)),
             ("finished", at(record.finished_at))]
    listed = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                     for k, v in facts)
    body = [f'<table id="run">{listed}</table>',
            f'<h2>error</h2><pre id="error">{html.escape(record.error or "none")}</pre>']
    if directory:
        names = files if isinstance(files, dict | list) else []
        links = "".join(f'<li><a href="file://{html.escape(str(directory))}/'
                        f'{html.escape(str(name))}">{html.escape(str(name))}</a></li>'
                        for name in names)
        body.append(f'<h2>outputs</h2><p id="outputs"><a href="file://'
                    f'{html.escape(str(directory))}/">{html.escape(str(directory))}</a></p>'
                    f"<ul>{links}</ul>")
    if outputs:
        body.append("<h2>recorded</h2><pre>" + html.escape(
            "\n".join(f"{k}: {v}" for k, v in outputs.items())) + "</pre>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(record.job)} run {record.id}</title>
{_STYLE}</head>
<body><h1>{html.escape(record.job)}, run {record.id}</h1>
<p><a href="/status">all jobs</a></p>
{"".join(body)}
</body></html>
"""
