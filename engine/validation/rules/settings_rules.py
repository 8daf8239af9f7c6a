"""Rules on marketops.yaml itself."""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.definitions.models.base import canonical_locale
from engine.definitions.project import Project
from engine.validation.findings import Finding, Severity
from engine.validation.rules import rule
from engine.validation.rules.common import unknown_name

_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


@rule("settings")
def settings_are_consistent(project: Project) -> Iterator[Finding]:
    """The reports archive destination exists; the locale is known; allowed domains are
    domains."""
    settings = project.settings
    try:
        canonical_locale(settings.reports.locale)
    except ValueError as exc:
        yield Finding(project.settings_loc(("reports", "locale")), str(exc), "settings")
    archive = settings.reports.destination
    if archive is not None and archive not in settings.destinations:
        yield Finding(project.settings_loc(("reports", "destination")),
                      unknown_name("destination", archive, settings.destinations), "settings")
    elif archive is not None and not settings.destinations[archive].url.startswith("file://"):
        yield Finding(project.settings_loc(("reports", "destination")),
                      f"the reports archive '{archive}' must be a file:// destination (reports "
                      "are copied to s3:// destinations through recipients)", "settings")
    webhook = settings.alerts.webhook
    if webhook is not None and webhook not in settings.webhooks:
        yield Finding(project.settings_loc(("alerts", "webhook")),
                      unknown_name("webhook", webhook, settings.webhooks), "settings")
    for i, domain in enumerate(settings.reports.pii_allowed_domains):
        if not _DOMAIN.match(domain.lower()):
            yield Finding(project.settings_loc(("reports", "pii_allowed_domains", i)),
                          f"'{domain}' is not a domain name (write example.com, no @)",
                          "settings")


@rule("roles")
def reports_have_their_own_role(project: Project) -> Iterator[Finding]:
    """Reports without `roles.reports` connect as the DSN's own user: on the embedded server
    (and on many others) a superuser, who can write and reach outside the database."""
    settings = project.settings
    if settings.roles.reports is not None or not project.reports:
        return
    databases = settings.databases
    dsn = (databases.reports or databases.primary).dsn
    who = "the embedded server's superuser" if dsn == "embedded" else "the DSN's own user"
    yield Finding(project.settings_loc(("roles",)) if "roles" in _keys(project)
                  else project.settings_loc(),
                  f"reports would connect as {who}, who can write and reach outside the "
                  "database: set roles.reports (e.g. roles: {reports: marketops_reports}) and "
                  "run marketops roles apply", "roles", Severity.WARNING)


def _keys(project: Project) -> set[str]:
    return set(project.settings.model_fields_set)
