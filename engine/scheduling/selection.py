"""dbt's node selection for jobs: `tag:finance`, `kind:backup`, `kind:wal_archive`,
`report/*`, `backup/nightly_full`. Selectors given separately are a union (dbt's spaces);
`a,b` in one selector is an intersection (dbt's commas)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from engine.errors import UsageError
from engine.scheduling.jobs import Job

METHODS = ("tag", "kind", "job")


def _tags(job: Job) -> list[str]:
    return list(job.report.tags) if job.report is not None else []


def _matches(job: Job, term: str) -> bool:
    method, _, value = term.partition(":") if ":" in term else ("job", ":", term)
    if not value:
        raise UsageError(f"--select {term!r} names no value; e.g. tag:finance, kind:backup, "
                         "report/*")
    if method == "tag":
        return any(fnmatchcase(tag, value) for tag in _tags(job))
    if method == "kind":  # the job's kind, or a backup tier's own kind
        kinds = [job.kind] + ([job.tier.kind] if job.tier is not None else [])
        return any(fnmatchcase(kind, value) for kind in kinds)
    if method == "job":
        return fnmatchcase(job.id, value) or fnmatchcase(job.name, value)
    raise UsageError(f"--select {term!r}: unknown method {method!r} (methods: "
                     f"{', '.join(METHODS)}; a bare name or glob is a job id)")


def select(jobs: Mapping[str, Job], selectors: Iterable[str]) -> list[Job]:
    """The jobs any selector picks, in id order; UsageError when none does."""
    given = [s for s in selectors if s.strip()]
    chosen = [job for job_id, job in sorted(jobs.items())
              if not given or any(all(_matches(job, term.strip()) for term in s.split(","))
                                  for s in given)]
    if given and not chosen:
        raise UsageError(f"--select {' '.join(given)} selects no job (jobs: "
                         f"{', '.join(sorted(jobs))})")
    return chosen
