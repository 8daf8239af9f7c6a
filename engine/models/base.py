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

from engine.schedule import check_cron


class Model(BaseModel):
    """Strict base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_PATTERN = r"^\s*\d+\s*(s|sec|m|min|h|d|w)\s*$"


def parse_duration(value: Any) -> timedelta:
    """'90s', '15min', '26h', '7d', '2w' -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(f"expected a duration such as '90s', '15min', '26h', '7d' or '2w', "
                     f"got {value!r}")


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN,
                    "examples": ["90s", "15min", "26h", "7d"]}),
]


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

_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
ENV_REF_PATTERN = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"


def _secret(value: str) -> str:
    if not _ENV_REF.match(value):
        raise ValueError("a secret must be an environment variable reference like "
                         "${SMTP_PASSWORD}, never the value itself")
    return value


SecretRef = Annotated[str, AfterValidator(_secret),
                      WithJsonSchema({"type": "string", "pattern": ENV_REF_PATTERN})]

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"'{value}' is not a valid email address")
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
