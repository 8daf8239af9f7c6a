"""Rules on reports: their SQL, parameters, outputs, cadence, recipients and personal data."""

from __future__ import annotations

from collections.abc import Iterator
from difflib import get_close_matches

from engine.definitions.models.report import (
    DestinationRecipient,
    EmailRecipient,
    Recipient,
    Report,
    RollingPeriod,
    WebhookRecipient,
)
from engine.definitions.project import Loaded, Project
from engine.scheduling.periods import CALENDAR_LENGTHS, PARAMETERS
from engine.validation.findings import Finding, Severity
from engine.validation.rules import rule
from engine.validation.rules.common import gap_range, human, unknown_name


def _sql_key(report: Report) -> str:
    return "sql" if report.sql is not None else "sql_file"


@rule("sql")
def sql_is_valid(project: Project) -> Iterator[Finding]:
    """One read-only statement over declared tables and columns, resolvable without ambiguity."""
    for report_id, analysis in project.analyses.items():
        loaded = project.reports[report_id]
        sql = project.report_sql[report_id]
        for problem in analysis.problems:
            message = problem.message
            term = _unlisted_term(project, message)
            if term is not None:
                message = (f"'{term}' is a glossary term: list it under `uses` in "
                           f"{loaded.doc.file} to read it")
            yield Finding(sql.locate(loaded.doc, problem.line, problem.col), message,
                          problem.rule)


@rule("sql")
def unbuilt_reports_sql_is_valid(project: Project) -> Iterator[Finding]:
    """A report whose YAML has problems still has its SQL checked, in the same run."""
    for sql, doc in project.unbuilt_sql.values():
        for problem in project.analyze(sql.text).problems:
            if problem.rule != "sql-parameters":
                yield Finding(sql.locate(doc, problem.line, problem.col), problem.message,
                              problem.rule)


def _unlisted_term(project: Project, message: str) -> str | None:
    """The glossary term an 'unqualified table' message names, if it names one."""
    for term in project.terms:
        if message.startswith(f"unknown table '{term}': not in any schema on the search_path"):
            return term
    return None


@rule("sql-parameters")
def parameters_are_provided(project: Project) -> Iterator[Finding]:
    """Every :name in the SQL is a period parameter or one of the report's `params`."""
    for report_id, analysis in project.analyses.items():
        loaded = project.reports[report_id]
        sql = project.report_sql[report_id]
        provided = [*PARAMETERS, *loaded.model.params]
        for name, (line, col) in analysis.parameters.items():
            if name in provided:
                continue
            close = get_close_matches(name, provided, n=1)
            hint = f"; did you mean :{close[0]}?" if close else (
                f" (provided: {', '.join(':' + p for p in provided)}; declare others under "
                "params)")
            yield Finding(sql.locate(loaded.doc, line, col), f"unknown parameter :{name}{hint}",
                          "sql-parameters")
        for name in loaded.model.params:
            if name not in analysis.parameters and analysis.ok:
                yield Finding(loaded.loc(("params", name), key=True), f"param '{name}' is "
                              "never used in the SQL", "sql-parameters", Severity.WARNING)


@rule("report-output-columns")
def chart_and_alert_columns_exist(project: Project) -> Iterator[Finding]:
    """Declared columns, chart axes and alert columns are columns the query returns."""
    for report_id, analysis in project.analyses.items():
        if not analysis.ok:
            continue
        loaded = project.reports[report_id]
        outputs = analysis.outputs
        wanted: list[tuple[tuple[str | int, ...], str]] = []
        if loaded.model.chart is not None:
            wanted.append((("chart", "x"), loaded.model.chart.x))
            wanted.extend((("chart", "y", i), y) for i, y in enumerate(loaded.model.chart.y))
            if loaded.model.chart.series is not None:
                wanted.append((("chart", "series"), loaded.model.chart.series))
        wanted.extend((("alerts", i, "column"), a.column)
                      for i, a in enumerate(loaded.model.alerts))
        wanted.extend((("columns", name), name) for name in loaded.model.columns)
        for path, column in wanted:
            if column not in outputs:
                yield Finding(loaded.loc(path, key=path[0] == "columns"),
                              unknown_name("output column", column, outputs,
                                           "the query's SELECT list"),
                              "report-output-columns")


@rule("report-period-cadence")
def period_fits_cadence(project: Project) -> Iterator[Finding]:
    """The period is neither reported twice (runs too often) nor left with holes (too rarely)."""
    for loaded in project.reports.values():
        report = loaded.model
        gaps = gap_range(report.cron, report.timezone)
        if gaps is None:
            continue
        low, high = gaps
        if isinstance(report.period, RollingPeriod):
            shortest = longest = report.period.rolling
            name = f"a rolling {human(report.period.rolling)}"
        else:
            shortest, longest = CALENDAR_LENGTHS[report.period]
            name = f"the {report.period.value.replace('_', ' ')}"
            if low < shortest:
                yield Finding(loaded.loc(("cron",)), f"runs as often as every {human(low)} but "
                              f"reports {name}: the same period would be reported again; run "
                              "it once per period or use a rolling period", "report-period-cadence")
        if high > longest:
            yield Finding(loaded.loc(("period",)), f"covers {name} but runs only every "
                          f"{human(high)} at times: some time is never reported",
                          "report-period-cadence", Severity.WARNING)


def _recipients(report: Report) -> Iterator[tuple[tuple[str | int, ...], Recipient]]:
    for i, recipient in enumerate(report.recipients):
        yield ("recipients", i), recipient
    for a, alert in enumerate(report.alerts):
        for i, recipient in enumerate(alert.notify):
            yield ("alerts", a, "notify", i), recipient


@rule("report-recipients")
def recipients_exist(project: Project) -> Iterator[Finding]:
    """Webhooks and destinations named by recipients are declared in settings."""
    settings = project.settings
    for loaded in project.reports.values():
        for path, recipient in _recipients(loaded.model):
            if isinstance(recipient, WebhookRecipient) and \
                    recipient.webhook not in settings.webhooks:
                yield Finding(loaded.loc((*path, "webhook")),
                              unknown_name("webhook", recipient.webhook, settings.webhooks),
                              "report-recipients")
            if isinstance(recipient, DestinationRecipient) and \
                    recipient.destination not in settings.destinations:
                yield Finding(loaded.loc((*path, "destination")),
                              unknown_name("destination", recipient.destination,
                                           settings.destinations), "report-recipients")


def _pii_outputs(project: Project, report_id: str) -> list[str]:
    analysis = project.analyses.get(report_id)
    if analysis is None:
        return []
    pii = project.catalog.pii
    return sorted(f"{'.'.join(ref)} (as '{output}')" for output, refs in analysis.exposed.items()
                  for ref in refs if ref in pii)


@rule("report-pii")
def personal_data_stays_internal(project: Project) -> Iterator[Finding]:
    """A report returning PII declares it and goes only to internal domains and PII webhooks."""
    settings = project.settings
    domains = [d.lower() for d in settings.reports.pii_allowed_domains]
    for loaded in project.reports.values():
        report = loaded.model
        exposed = _pii_outputs(project, loaded.id)
        if exposed and not report.contains_pii:
            yield Finding(loaded.loc((_sql_key(report),)), f"returns personal data: "
                          f"{', '.join(exposed[:3])}{' ...' if len(exposed) > 3 else ''}; "
                          "set contains_pii: true (it then goes only to internal recipients) "
                          "or aggregate it", "report-pii")
        if not (exposed or report.contains_pii):
            continue
        yield from _pii_recipients(loaded, domains, project)


def _pii_recipients(loaded: Loaded[Report], domains: list[str],
                    project: Project) -> Iterator[Finding]:
    for path, recipient in _recipients(loaded.model):
        if isinstance(recipient, EmailRecipient):
            domain = recipient.email.rsplit("@", 1)[1]
            if domain not in domains:
                allowed = ", ".join(domains) or "none: set reports.pii_allowed_domains in " \
                    "marketops.yaml"
                yield Finding(loaded.loc((*path, "email")), f"{recipient.email} may not "
                              f"receive personal data (allowed domains: {allowed})", "report-pii")
        elif isinstance(recipient, WebhookRecipient):
            webhook = project.settings.webhooks.get(recipient.webhook)
            if webhook is not None and not webhook.allow_pii:
                yield Finding(loaded.loc((*path, "webhook")), f"webhook '{recipient.webhook}' "
                              "may not receive personal data (allow_pii is false)", "report-pii")
