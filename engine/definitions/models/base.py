"""The base model and the validated value types every definition kind shares."""

from __future__ import annotations

import re
from datetime import timedelta
from difflib import get_close_matches
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from engine.scheduling.schedule import check_cron


class Model(BaseModel):
    """Strict base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^\s*\d+\s*(s|sec|m|min|h|d|w)\s*$"
# Longer than anything a schedule, retention or timeout means; far inside what timedelta
# and PostgreSQL intervals hold.
MAX_DURATION = timedelta(days=36500)


def parse_duration(value: Any) -> timedelta:
    """'90s', '15min', '26h', '7d', '2w' -> timedelta, at most MAX_DURATION (100 years)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            digits = match.group(1).lstrip("0") or "0"
            seconds = int(digits) * _UNITS[match.group(2)] if len(digits) <= 12 else None
            if seconds is None or seconds > MAX_DURATION.total_seconds():
                raise ValueError(f"duration '{value.strip()[:40]}' is too long: at most "
                                 "36500d (100 years)")
            return timedelta(seconds=seconds)
    raise ValueError(f"expected a duration such as '90s', '15min', '26h', '7d' or '2w', "
                     f"got {str(value)[:60]!r}")


def format_duration(delta: timedelta) -> str:
    """A duration as the YAML writes it, and as people say it: 3s, 15min, 25h, 7d, 31d 1h
    (whole seconds; parse_duration reads each part back)."""
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}min" if minutes else "", f"{secs}s" if secs else ""]
    if days and days < 2 and not minutes and not secs:
        return f"{days * 24 + hours}h"
    return " ".join(p for p in parts if p) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN,
                    "examples": ["90s", "15min", "26h", "7d"]}),
]


def _longer_than_zero(why: str) -> AfterValidator:
    def check(value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError(f"must be longer than 0s: {why}")
        return value

    return AfterValidator(check)


RollingLength = Annotated[Duration, _longer_than_zero("a rolling period of 0s covers no time")]
ArchiveTimeout = Annotated[Duration, _longer_than_zero(
    "PostgreSQL reads an archive_timeout of 0 as never forcing a WAL switch")]
PushWait = Annotated[Duration, _longer_than_zero(
    "archive_command would fail every segment not stored before it was called")]
# PostgreSQL keeps statement_timeout in milliseconds in a 32-bit int (about 24.8 days).
MAX_STATEMENT_TIMEOUT = timedelta(hours=24)


def _statement_timeout(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s: PostgreSQL reads a statement_timeout of 0 "
                         "as no limit at all")
    if value > MAX_STATEMENT_TIMEOUT:
        raise ValueError("at most 24h: a report query running longer belongs in a backup "
                         "or a materialized table")
    return value


StatementTimeout = Annotated[Duration, AfterValidator(_statement_timeout)]


def _cron(value: str) -> str:
    problem = check_cron(value)
    if problem:
        raise ValueError(problem)
    return value


CronExpr = Annotated[
    str,
    AfterValidator(_cron),
    WithJsonSchema({"type": "string", "description":
                    "cron: minute hour day-of-month month day-of-week [second]",
                    "examples": ["0 6 * * *", "30 2 * * 1"]}),
]


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        close = get_close_matches(value, sorted(available_timezones()), n=1)
        hint = (f"; did you mean '{close[0]}'?" if close
                else " (use an IANA name like Europe/Berlin)")
        raise ValueError(f"unknown IANA timezone '{value}'{hint}") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_timezone),
                         WithJsonSchema({"type": "string", "examples": ["UTC", "Europe/Berlin"]})]

def canonical_locale(value: str) -> str:
    """A CLDR locale name as Babel spells it ('de-DE' -> 'de_DE'); ValueError (with what to
    write instead) when no locale has that name."""
    # Loaded here, not on top: every command loads the models, few need locales (wal-push).
    from babel import Locale, UnknownLocaleError
    from babel.localedata import locale_identifiers

    for sep in ("_", "-"):  # de_DE as CLDR writes it, de-DE as BCP 47 does
        try:
            return str(Locale.parse(value, sep=sep))
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    close = get_close_matches(value, sorted(locale_identifiers()), n=1, cutoff=0.75)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ValueError(f"unknown locale '{value}'{hint} (use a CLDR locale name such as en, "
                     "en_GB, de_DE or fr_FR)") from None


LocaleName = Annotated[str, AfterValidator(canonical_locale),
                       WithJsonSchema({"type": "string", "examples": ["en", "de_DE", "fr_FR"]})]

# `${VAR}`: how every secret and DSN names the environment variable that holds it.
ENV_REF_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
_ENV_REF = re.compile(ENV_REF_PATTERN)


def env_reference(value: str) -> str | None:
    """The variable a `${VAR}` value refers to; None when the value is not a reference."""
    return value[2:-1] if _ENV_REF.match(value) else None


def _secret(value: str) -> str:
    if env_reference(value) is None:
        raise ValueError("a secret must be an environment variable reference like "
                         "${SMTP_PASSWORD}, never the value itself")
    return value


SecretRef = Annotated[str, AfterValidator(_secret),
                      WithJsonSchema({"type": "string", "pattern": ENV_REF_PATTERN})]

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"'{value[:120]}' is not a valid email address")
    return value.lower()


EmailAddress = Annotated[str, AfterValidator(_email),
                         WithJsonSchema({"type": "string", "format": "email"})]

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(value: str) -> str:
    if not _IDENT.match(value):
        raise ValueError(f"'{value}' is not a valid name: use lowercase letters, digits and "
                         "underscores, starting with a letter, at most 63 characters")
    return value


Identifier = Annotated[str, AfterValidator(_identifier),
                       WithJsonSchema({"type": "string", "pattern": "^[a-z_][a-z0-9_]{0,62}$"})]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"'{value}' is not a valid name: letters, digits, '_', '-', '.'")
    return value


Name = Annotated[str, AfterValidator(_name),
                 WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"})]


class RunPolicy(Model):
    """How the service runs a job's slots: lateness, overlap, retries (Kubernetes CronJob terms)."""

    misfire_grace: Duration = Field(default=timedelta(minutes=15), description=(
        "A slot missed by less than this (service or database down) still runs, once; older "
        "missed slots are recorded as skipped."))
    overlap: Literal["forbid", "allow", "replace"] = Field(
        "forbid", description="When the previous run is still going: skip (forbid), run "
        "alongside (allow), or cancel the previous (replace).")
    retries: int = Field(3, ge=0, le=20, description="Retries after a transient failure.")
    retry_backoff: Duration = Field(default=timedelta(seconds=30), description=(
        "First retry delay; doubles each attempt, with jitter."))
    timeout: Duration = Field(default=timedelta(hours=2), description="A run taking longer "
                              "is stopped and fails.")
