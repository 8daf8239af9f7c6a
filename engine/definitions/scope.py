"""What one job needs of the definitions: `marketops run`/`backfill` check those, not every
report's SQL. A problem elsewhere is shown as a warning and does not stop a healthy job (the
service already keeps running the last valid set; the CLI is as sensible)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from engine.definitions.glossary import closure
from engine.definitions.loader import (
    BACKUPS_DIR,
    REPORTS_DIR,
    SCHEMA_DIR,
    SETTINGS_FILE,
    load_project,
)
from engine.definitions.project import Project
from engine.validation.findings import Finding
from engine.validation.sqlmemo import SqlMemo
from engine.validation.validate import ValidationResult, run_rules


@dataclass
class JobDefinitions:
    """The definitions narrowed to one job: `defs` holds the problems that stop it (its
    own files, the settings, the schema), `elsewhere` the others."""

    defs: ValidationResult
    elsewhere: list[Finding]

    def passed(self) -> bool:
        return self.defs.passed()


def _kind_and_name(job_id: str) -> tuple[str, str]:
    kind, _, name = job_id.partition("/")
    return kind, name


def scoped_project(project: Project, job_id: str) -> Project:
    """`project` with only the reports and glossary terms `job_id` reads (none for a backup:
    a backup reads the schema and the other tiers, never a report)."""
    kind, name = _kind_and_name(job_id)
    if kind == "report" and name in project.reports:
        uses = project.reports[name].model.uses
        depends = {t: loaded.model.uses for t, loaded in project.terms.items()}
        terms = closure(uses, depends)
        return replace(
            project, reports={name: project.reports[name]},
            report_sql={name: project.report_sql[name]} if name in project.report_sql else {},
            terms={t: project.terms[t] for t in terms},
            term_sql={t: project.term_sql[t] for t in terms if t in project.term_sql},
            unbuilt_sql={})
    return replace(project, reports={}, report_sql={}, terms={}, term_sql={}, unbuilt_sql={})


def job_files(project: Project, job_id: str) -> tuple[set[str], tuple[str, ...]]:
    """The files whose problems stop `job_id`: exact names, and folder prefixes."""
    kind, name = _kind_and_name(job_id)
    prefixes: tuple[str, ...] = (f"{SCHEMA_DIR}/",)
    files = {SETTINGS_FILE, f"{REPORTS_DIR}/{name}.yaml"} if kind == "report" \
        else {SETTINGS_FILE}
    if kind == "backup":
        # Tiers refer to each other (a WAL tier's base, a drill's tiers): all of them count.
        prefixes += (f"{BACKUPS_DIR}/",)
    scoped = scoped_project(project, job_id)
    for rid, sql in scoped.report_sql.items():
        files.add(scoped.reports[rid].doc.file)
        if sql.file is not None:
            files.add(sql.file)
    for term, loaded in scoped.terms.items():
        files.add(loaded.doc.file)
        term_file = scoped.term_sql[term].file if term in scoped.term_sql else None
        if term_file is not None:
            files.add(term_file)
    return files, prefixes


def validate_job(root: Path, job_id: str, *, target: str | None = None, how: str = "--target",
                 memo: SqlMemo | None = None, debug: bool = False) -> JobDefinitions:
    """Load every definition (a job id must resolve), with the settings of `target` (asked
    for by `how`), but run the SQL checks only of what `job_id` reads; split the findings
    into those that stop it and the others."""
    project, loaded = load_project(root, target, how)
    project.sql_memo = memo
    scoped = scoped_project(project, job_id)
    findings = run_rules(scoped, loaded, debug=debug)
    files, prefixes = job_files(project, job_id)
    kind, _ = _kind_and_name(job_id)
    mine = [f for f in findings
            if (f.location.file in files or f.location.file.startswith(prefixes))
            and not (kind == "report" and f.rule.startswith("backup-"))]
    others = [f for f in findings if f not in mine and f.is_error]
    return JobDefinitions(ValidationResult(scoped, mine), others)
