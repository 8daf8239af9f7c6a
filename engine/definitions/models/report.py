"""A report declared in `definitions/reports/<id>.yaml`."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from engine.definitions.models.base import (
    CronExpr,
    EmailAddress,
    Identifier,
    LocaleName,
    Model,
    Name,
    RollingLength,
    RunPolicy,
    StatementTimeout,
    TimeZoneName,
)
from engine.scheduling.periods import CalendarPeriod


class RollingPeriod(Model):
    """A window of fixed length ending at the slot, e.g. the last 28 days."""

    rolling: RollingLength


def _period_kind(value: Any) -> str:
    rolling = isinstance(value, dict | RollingPeriod)
    return "rolling-period" if rolling else "calendar-period"


PeriodSpec = Annotated[
    Annotated[CalendarPeriod, Tag("calendar-period")]
    | Annotated[RollingPeriod, Tag("rolling-period")],
    Discriminator(_period_kind),
]


class OutputFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    HTML = "html"


class ChartKind(StrEnum):
    LINE = "line"
    BAR = "bar"
    AREA = "area"


class Chart(Model):
    """A chart rendered as PNG into the HTML summary and the mail."""

    type: ChartKind = ChartKind.LINE
    x: Identifier = Field(description="Output column for the x axis.")
    y: list[Identifier] = Field(min_length=1, description="Output columns plotted.")
    series: Identifier | None = Field(None, description="Output column splitting the lines "
                                      "(or grouping the bars): one per value; one y only.")
    title: str | None = None

    @model_validator(mode="after")
    def _one_y_per_series(self) -> Chart:
        if self.series is not None and len(self.y) != 1:
            raise ValueError("a chart with `series` plots exactly one y column")
        return self


class Currency(Model):
    """Money in one currency (ISO 4217 code)."""

    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])


class Decimals(Model):
    """A plain number with a fixed number of decimals."""

    decimal: int = Field(ge=0, le=10)


PlainFormat = Literal["integer", "percent", "date", "duration", "text"]


def _format_kind(value: Any) -> str:
    if isinstance(value, str):
        return "plain"
    if isinstance(value, Currency) or (isinstance(value, dict) and "currency" in value):
        return "currency"
    return "decimals"


ColumnFormat = Annotated[
    Annotated[PlainFormat, Tag("plain")] | Annotated[Currency, Tag("currency")]
    | Annotated[Decimals, Tag("decimals")],
    Discriminator(_format_kind),
]


class Column(Model):
    """How an output column is shown to people: CSV keeps the raw value and name."""

    label: str | None = Field(None, min_length=1, description="Header in the mail and XLSX; "
                              "default: the column name.")
    format: ColumnFormat = Field("text", description="integer, percent (a 0-1 share), date, "
                                 "duration (an interval, or hours), {currency: EUR} or "
                                 "{decimal: 2}.")
    description: str | None = None
    key: bool = Field(False, description="A key figure: in the mail's summary line (the total "
                      "over the rows; percent and decimal figures only for one-row results).")
    compare: Literal["previous_period", "year_over_year"] | None = Field(
        None, description="Show a key figure's change against the previous period, or the "
        "same period a year earlier.")

    @model_validator(mode="after")
    def _compare_needs_key(self) -> Column:
        if self.compare is not None and not self.key:
            raise ValueError("compare applies to key figures: add key: true")
        return self


class EmailRecipient(Model):
    """Send the report by email."""

    email: EmailAddress


class WebhookRecipient(Model):
    """Post the report to a webhook named in settings (Slack-compatible)."""

    webhook: Name


class DestinationRecipient(Model):
    """Write the outputs to a destination named in settings."""

    destination: Name
    path: str | None = Field(None, description="Path under the destination; default "
                             "reports/<id>/<period>/.")


def _recipient_kind(value: Any) -> str | None:
    for key in ("email", "webhook", "destination"):
        if (isinstance(value, dict) and key in value) or hasattr(value, key):
            return f"{key}-recipient"
    return None


Recipient = Annotated[
    Annotated[EmailRecipient, Tag("email-recipient")]
    | Annotated[WebhookRecipient, Tag("webhook-recipient")]
    | Annotated[DestinationRecipient, Tag("destination-recipient")],
    Discriminator(_recipient_kind, custom_error_type="recipient",
                  custom_error_message="a recipient is one of {email: ...}, {webhook: ...} "
                  "or {destination: ...}"),
]


class Comparison(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="


class Alert(Model):
    """A threshold on the output: when crossed, the delivery is an alert and reaches `notify`."""

    name: Identifier
    column: Identifier = Field(description="Output column the threshold applies to.")
    op: Comparison
    value: float
    when: Literal["any_row", "all_rows"] = Field(
        "any_row", description="Fire if any row crosses it, or only if every row does.")
    message: str | None = None
    notify: list[Recipient] = Field(default_factory=list,
                                    description="Extra recipients of alert deliveries.")


class Limits(Model):
    """Guards on execution."""

    statement_timeout: StatementTimeout = Field(timedelta(minutes=5))
    max_rows: int = Field(1_000_000, ge=1, le=100_000_000)


class Report(Model):
    """A report: SQL run for a period on a cron schedule, rendered and delivered."""

    title: str = Field(min_length=3)
    description: str = Field(min_length=3)
    owner: EmailAddress = Field(description="Who answers for it; failures alert them.")
    cron: CronExpr
    timezone: TimeZoneName = Field(description="IANA zone of the cron and of the period.")
    period: PeriodSpec = Field(
        description="previous_day/week/month/quarter/year, or {rolling: 28d}.")
    sql: str | None = Field(None, description="The query; named parameters :period_start, "
                            ":period_end, :slot_time, :timezone and any of `params`.")
    sql_file: str | None = Field(None, description="Path of a .sql file, relative to this one.")
    params: dict[Identifier, str | int | float | bool] = Field(default_factory=dict)
    uses: list[Identifier] = Field(default_factory=list, description="Glossary terms "
                                   "(definitions/glossary/<term>.yaml) the SQL reads by name; "
                                   "each is put in front of the SQL as a CTE.")
    columns: dict[Identifier, Column] = Field(
        default_factory=dict, description="Labels, formats and key figures of output columns.")
    locale: LocaleName | None = Field(None, description="How numbers, money and percentages "
                                      "read (e.g. de_DE: 316.795,04 €); default: "
                                      "reports.locale in marketops.yaml.")
    formats: list[OutputFormat] = Field(default_factory=lambda: [OutputFormat.CSV,
                                                                 OutputFormat.HTML], min_length=1)
    chart: Chart | None = None
    recipients: list[Recipient] = Field(min_length=1)
    alerts: list[Alert] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    contains_pii: bool = Field(False, description="Declared when the output holds personal "
                               "data; such reports only go to internal domains.")
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)
    run: RunPolicy = Field(default_factory=RunPolicy)

    @model_validator(mode="after")
    def _one_sql_source(self) -> Report:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("give exactly one of `sql` (inline) or `sql_file`")
        return self
