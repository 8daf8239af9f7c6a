"""Engine settings: `marketops.yaml` at the root of the definitions repository."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from engine.definitions.models.base import (
    EmailAddress,
    Model,
    Name,
    SecretRef,
    env_reference,
)
from engine.masking import literal_password


def _dsn(value: str) -> str:
    if value == "embedded" or env_reference(value) is not None:
        return value
    form = literal_password(value)
    if form is not None:
        raise ValueError(f"this DSN holds {form}: put the whole DSN in an environment "
                         "variable (dsn: ${PRIMARY_DSN}) or use PGPASSFILE")
    return value


Dsn = Annotated[str, AfterValidator(_dsn)]


class Database(Model):
    """A PostgreSQL connection."""

    dsn: Dsn = Field("embedded", description="'embedded' (the bundled PostgreSQL 18), a DSN "
                     "without a password, or ${ENV_VAR}.")


class Databases(Model):
    """Where backups read (primary), reports read (replica) and the ledger lives (state)."""

    primary: Database = Field(default_factory=Database)
    reports: Database | None = Field(None, description="Read replica for reports; default "
                                     "the primary.")
    state: Database | None = Field(None, description="Ledger database; default the primary's "
                                   "`marketops` schema.")


class Destination(Model):
    """Where files go: file:// or s3://."""

    url: str = Field(pattern=r"^(file|s3)://\S+$", description="file:///path or s3://bucket/prefix")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, moto).")
    region: str | None = None
    access_key_id: SecretRef | None = None
    secret_access_key: SecretRef | None = None


class Smtp(Model):
    """The mail server reports are sent through."""

    host: str
    port: int = Field(587, ge=1, le=65535)
    username: str | None = None
    password: SecretRef | None = None
    starttls: bool = True
    sender: EmailAddress
    max_message_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Above this the "
                                   "mail links to the archived file instead of attaching it.")


class Webhook(Model):
    """A Slack-compatible incoming webhook; the URL is a secret."""

    url: SecretRef
    allow_pii: bool = Field(False, description="Whether reports holding PII may be posted here.")


class ReportSettings(Model):
    """Defaults and guards for all reports."""

    destination: Name | None = Field(None, description="Where every run's outputs are archived.")
    public_url: str | None = Field(None, pattern=r"^https?://\S+$", description="Where people "
                                   "reach the archive over HTTP; mails and webhooks link to a "
                                   "run's outputs under <public_url>/reports/<id>/<period>/.")
    # A plain string checked by the `settings` rule: a model error here would drop the whole
    # file and bury the one mistake under every reference to a destination or key.
    locale: str = Field("en", examples=["en", "de_DE", "fr_FR"], description=(
        "How numbers, money and percentages read in mails, summaries and charts (separators, "
        "currency symbol and its side): a CLDR locale such as en, en_GB, de_DE, fr_FR. A "
        "report's own `locale` overrides it; XLSX keeps numeric cells, CSV raw values."))
    pii_allowed_domains: list[str] = Field(default_factory=list, description="Email domains "
                                           "that may receive reports holding personal data.")
    search_path: list[str] = Field(default_factory=lambda: ["public"], description="Schemas "
                                   "an unqualified table name in report SQL is looked up in, "
                                   "in order, as PostgreSQL's search_path.")
    safe_functions: list[str] = Field(default_factory=list, description="User-defined "
                                      "functions reports may call (schema.name), besides the "
                                      "declared immutable or stable ones that are not "
                                      "SECURITY DEFINER.")


class Alerts(Model):
    """Who hears about a job that failed for good (after its retries)."""

    email_owners: bool = Field(True, description="Mail the job's owner (needs smtp).")
    webhook: Name | None = Field(None, description="Also post to this webhook.")


class PostgresTools(Model):
    """Which PostgreSQL client tools run backups and restores."""

    bin_dir: str | None = Field(None, description="Directory of pg_dump & co.; default the "
                                "embedded PostgreSQL's.")


class EmbeddedServer(Model):
    """The bundled PostgreSQL 18 used when a DSN says `embedded`."""

    data_dir: str = Field("var/pg", description="Data directory, relative to marketops.yaml.")
    port: int = Field(54329, ge=1024, le=65535, description="TCP port on 127.0.0.1.")
    database: str = Field("marketplace", pattern=r"^[a-z_][a-z0-9_]{0,62}$")


class Settings(Model):
    """marketops.yaml: databases, destinations, mail, webhooks and keys."""

    databases: Databases = Field(default_factory=Databases)
    embedded: EmbeddedServer = Field(default_factory=EmbeddedServer)
    postgres: PostgresTools = Field(default_factory=PostgresTools)
    destinations: dict[Name, Destination] = Field(default_factory=dict)
    smtp: Smtp | None = None
    webhooks: dict[Name, Webhook] = Field(default_factory=dict)
    keys: dict[Name, SecretRef] = Field(default_factory=dict, description="Encryption keys, "
                                        "each an ${ENV_VAR} reference.")
    reports: ReportSettings = Field(default_factory=ReportSettings)
    alerts: Alerts = Field(default_factory=Alerts)


class SettingsFile(Settings):
    """marketops.yaml: the settings, and named targets that change some of them."""

    # Each overlay is checked as the Settings it makes once merged (with its own positions),
    # so here it is only a mapping; the JSON Schema describes it as partial Settings.
    targets: dict[Name, dict[str, Any]] = Field(default_factory=dict, description=(
        "Named targets (dev, prod): each a partial copy of these settings, deep-merged onto "
        "them (mappings key by key, anything else replaces). Chosen with --target NAME or "
        "MARKETOPS_TARGET, else default_target."))
    default_target: Name | None = Field(None, description="The target in force when none "
                                        "is asked for; default: these settings alone.")
