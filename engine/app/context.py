"""The composition root's context: the App and the helpers that resolve settings into
connections, stores and tools."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from engine.definitions.loader import load_project
from engine.definitions.models.base import env_reference
from engine.definitions.models.settings import Smtp
from engine.errors import DefinitionError, UsageError
from engine.masking import remember
from engine.runs.ledger import Ledger
from engine.scheduling.jobs import Job, jobs
from engine.validation.validate import ValidationResult, validate
from runners.postgres.connection import Pool, connect, ensure_database, execute_script
from runners.postgres.embedded import (
    EmbeddedServer,
    embedded_bin_dir,
    port_file,
    port_free,
    remember_port,
    remembered_port,
    running_port,
)
from runners.postgres.toolset import Toolset, discover
from runners.service.gitinfo import head_commit
from runners.service.progress import note
from runners.storage.stores import Store, StoreSpec

# What only some commands use is imported where it is used: `run`, `wal-push` and the
# service's start pay for what they need, not for every command's libraries.
if TYPE_CHECKING:
    from engine.backups.freshness import Freshness
    from engine.runs.status import JobStatus
    from runners.delivery.send import SmtpServer

def resolve_env(value: str, what: str) -> str:
    """`${VAR}` -> the variable's value; a clear error naming the variable when unset."""
    name = env_reference(value)
    if name is None:
        return value
    resolved = os.environ.get(name)
    if not resolved:
        raise UsageError(f"{what} refers to ${{{name}}}, which is not set in the environment")
    return remember(resolved)


def smtp_server(smtp: Smtp) -> SmtpServer:
    """The SMTP server of the settings, its password resolved from the environment."""
    from runners.delivery.send import SmtpServer

    return SmtpServer(smtp.host, smtp.port, smtp.sender, smtp.starttls, smtp.username,
                      resolve_env(smtp.password, "smtp.password") if smtp.password else None)


def valid_definitions(root: Path, target: str | None = None,
                      how: str = "--target") -> ValidationResult:
    """The definitions with the settings of `target` (asked for by `how`), refusing to go
    on when any is invalid (nothing is half-applied)."""
    defs = validate(root, target=target, how=how)
    if not defs.passed():
        first = defs.errors[0]
        raise DefinitionError(f"{len(defs.errors)} definition error(s), first: {first.location}:"
                              f" {first.message}; run marketops validate")
    return defs


@dataclass(frozen=True)
class Target:
    """Where a command connects, and the embedded server when that is what it is."""

    dsn: str
    server: EmbeddedServer | None = None


PORT_VARIABLE = "MARKETOPS_EMBEDDED_PORT"


def chosen_port() -> int | None:
    """The port asked for with `demo --port` or MARKETOPS_EMBEDDED_PORT, if any."""
    value = os.environ.get(PORT_VARIABLE, "").strip()
    if not value:
        return None
    if not value.isdigit() or not 1024 <= int(value) <= 65535:
        raise UsageError(f"{PORT_VARIABLE}={value[:20]} is not a port from 1024 to 65535")
    return int(value)


def embedded_server(root: Path, defs: ValidationResult) -> EmbeddedServer:
    """The embedded server of the settings, on the port it runs on (or was last started on),
    else the one asked for, else embedded.port."""
    settings = defs.project.settings.embedded
    data_dir = Path(settings.data_dir)
    if not data_dir.is_absolute():
        data_dir = (root / data_dir).resolve()
    port = (running_port(data_dir) or chosen_port()
            or remembered_port(data_dir, settings.port) or settings.port)
    return EmbeddedServer(data_dir, port, settings.database)


def start_embedded(root: Path, defs: ValidationResult) -> tuple[EmbeddedServer, bool]:
    """Start the embedded server unless it runs; True when this call started it. When its
    port is taken by another program and none was asked for, a free one is chosen, said, and
    remembered for the next commands."""
    from runners.demo.mailbox import free_port

    configured = defs.project.settings.embedded.port
    server = embedded_server(root, defs)
    if chosen_port() is None and not server.is_running() and not port_free(server.port):
        taken = server.port
        server = dataclasses.replace(server, port=free_port())
        note(f"port {taken} on 127.0.0.1 is taken by another program: the embedded server "
             f"uses port {server.port} (remembered in {port_file(server.data_dir)}; choose "
             f"with --port, {PORT_VARIABLE} or embedded.port)")
    if not server.is_running():
        _hand_demo_key_to_the_server(root, defs)
    started = server.start()
    if started:
        remember_port(server.data_dir, configured, server.port)
    return server, started


def _hand_demo_key_to_the_server(root: Path, defs: ValidationResult) -> None:
    """In the demo's project with MARKETOPS_BACKUP_KEY unset, a server this command starts
    inherits the demo key: its archive_command (wal-push, run as the server's own user, who
    cannot read the 0600 file) seals with it, as it does under `serve` and the demo."""
    if is_demo_project(defs) and not os.environ.get(DEMO_KEY_VARIABLE) \
            and demo_key_file(root).is_file():
        with contextlib.suppress(OSError):
            hand_on_demo_key(root)


def primary_target(root: Path, defs: ValidationResult, dsn_override: str | None) -> Target:
    """The primary database: --dsn / MARKETOPS_DSN, else settings; `embedded` starts it."""
    dsn = dsn_override or defs.project.settings.databases.primary.dsn
    if dsn == "embedded":
        server, _ = start_embedded(root, defs)
        ensure_database(server.dsn("postgres"), server.database)
        return Target(server.dsn(), server)
    return Target(resolve_env(dsn, "databases.primary.dsn"))


@dataclass(frozen=True)
class DemoDataSummary:
    """Rows generated per table, where, and how long it took."""

    dsn: str
    rows: dict[str, int]
    seconds: float
    applied_statements: int


def apply_schema(defs: ValidationResult, dsn: str) -> int:
    """Create whatever the declared schema lacks in `dsn`; the number of statements run."""
    from engine.dbschema.schemadiff import apply_statements
    from runners.postgres.introspect import pull

    declared = {name: s.model for name, s in defs.project.schemas.items()}
    with connect(dsn) as conn:
        live = pull(conn, list(declared)).schemas
    statements = apply_statements(declared, live)
    if statements:
        execute_script(dsn, statements)
    return len(statements)


def demo_data(root: Path, dsn_override: str | None, *, scale: float, seed: int,
              until: date | None) -> DemoDataSummary:
    """Apply the schema where needed, then replace every declared table's rows."""
    from runners.demo.data import generate

    defs = valid_definitions(root)
    target = primary_target(root, defs, dsn_override)
    applied = apply_schema(defs, target.dsn)
    tables = [f"{s}.{t}" for s, loaded in defs.project.schemas.items()
              for t in loaded.model.tables]
    generated = generate(target.dsn, tables, scale=scale, seed=seed, until=until)
    return DemoDataSummary(target.dsn, generated.rows, generated.seconds, applied)


def local_destination(root: Path, defs: ValidationResult, name: str) -> Path:
    """The directory of a file:// destination (relative URLs are relative to the root)."""
    destination = defs.project.settings.destinations.get(name)
    if destination is None:
        raise UsageError(f"unknown destination '{name}'")
    url = destination.url
    if not url.startswith("file://"):
        raise UsageError(f"destination '{name}' is {url.split(':')[0]}://; this needs a "
                         "local file:// directory")
    path = Path(url.removeprefix("file://"))
    return path if path.is_absolute() else (root / path).resolve()


def store_for(root: Path, defs: ValidationResult, name: str) -> Store:
    """The destination `name` with its secrets read from the environment."""
    destination = defs.project.settings.destinations.get(name)
    if destination is None:
        raise UsageError(f"unknown destination '{name}'")
    if destination.url.startswith("file://"):
        return Store(StoreSpec(name, f"file://{local_destination(root, defs, name)}"))
    options: dict[str, object] = {}
    if destination.endpoint_url:
        options["endpoint_url"] = destination.endpoint_url
    if destination.region:
        options["client_kwargs"] = {"region_name": destination.region}
    if destination.access_key_id:
        options["key"] = resolve_env(destination.access_key_id,
                                     f"destinations.{name}.access_key_id")
    if destination.secret_access_key:
        options["secret"] = resolve_env(destination.secret_access_key,
                                        f"destinations.{name}.secret_access_key")
    return Store(StoreSpec(name, destination.url, options))


def database_dsn(root: Path, defs: ValidationResult, which: str,
                 dsn_override: str | None = None) -> str:
    """DSN of `primary`, `reports` (falls back to primary) or `state` (falls back to primary)."""
    databases = defs.project.settings.databases
    chosen = getattr(databases, which) if which != "primary" else None
    if dsn_override or chosen is None:
        return primary_target(root, defs, dsn_override).dsn
    if chosen.dsn == "embedded":
        return primary_target(root, defs, "embedded").dsn
    return resolve_env(chosen.dsn, f"databases.{which}.dsn")


def ledger_for(dsn: str, pools: list[Pool] | None = None) -> Ledger:
    """The ledger in `dsn`, migrated, over a small pool of connections (added to `pools`,
    when given, for the caller to close)."""
    pool = Pool(dsn, application="marketops ledger")
    if pools is not None:
        pools.append(pool)
    ledger = Ledger(pool.connection)
    ledger.migrate()
    return ledger


def worker_name() -> str:
    """host:pid, unique among replicas."""
    return f"{socket.gethostname()}:{os.getpid()}"


def psql_binary(defs: ValidationResult) -> Path | None:
    """psql from postgres.bin_dir, else the embedded PostgreSQL's; None if neither exists."""
    configured = defs.project.settings.postgres.bin_dir
    directory = Path(configured) if configured else embedded_bin_dir()
    candidate = directory / "psql"
    return candidate if candidate.is_file() else None


def latest_slot(job: Job, at: datetime) -> datetime:
    """The latest slot of `job` at or before `at`."""
    if job.schedule is None:
        raise UsageError(f"{job.id} runs continuously; it has no slots")
    slot = job.schedule.latest_at_or_before(at)
    if slot is None:
        raise UsageError(f"{job.id} has no slot before {at.isoformat()}")
    return slot


class LiveDefinitions:
    """The definitions as they are on disk now: reloaded on change, kept only when valid."""

    def __init__(self, root: Path, defs: ValidationResult,
                 adjust: Callable[[ValidationResult], ValidationResult] | None = None,
                 target: str | None = None) -> None:
        self.root = root
        self.target = target
        self.defs = defs
        self.adjust = adjust  # applied to every reload (the demo's mailbox, say)
        self._signature = self.signature()

    def signature(self) -> tuple[tuple[str, float, int], ...]:
        files = [self.root / "marketops.yaml"]
        for folder in ("schema", "definitions/reports", "definitions/backups"):
            directory = self.root / folder
            if directory.is_dir():
                files.extend(sorted(directory.iterdir()))
        found = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_mtime, stat.st_size))
        return tuple(found)

    def changed(self) -> bool:
        current = self.signature()
        if current == self._signature:
            return False
        self._signature = current
        return True

    def load(self) -> dict[str, Job]:
        """Validate and take the current files; DefinitionError when they are invalid."""
        defs = valid_definitions(self.root, self.target)
        if self.adjust is not None:
            defs = self.adjust(defs)
        self.defs = defs
        return jobs(defs.project, head_commit(self.root))


def current(definitions: ValidationResult | LiveDefinitions) -> ValidationResult:
    """The definitions in force: the latest valid set when they are live."""
    if isinstance(definitions, LiveDefinitions):
        return definitions.defs
    return definitions


def statuses(defs: ValidationResult, ledger: Ledger, supports: Callable[[Job], bool],
             now: datetime, fresh: dict[str, Freshness] | None = None) -> list[JobStatus]:
    """The status of every job of the project (with backup freshness when given)."""
    from engine.runs.status import job_status, local

    latest = ledger.latest_by_job()
    success = ledger.last_success()
    fresh = fresh or {}
    held = {job: f"since {local(at, 'UTC')} by {by or '?'}" + (f": {why}" if why else "")
            for job, (why, by, at) in ledger.suspended().items()}
    return [job_status(job, supports(job), latest.get(job_id), success.get(job_id), now,
                       fresh.get(job.name) if job.kind == "backup" else None,
                       held.get(job_id))
            for job_id, job in sorted(jobs(defs.project).items())]


def durations(ledger: Ledger) -> dict[str, float]:
    """Seconds the latest finished run of each job took."""
    found: dict[str, float] = {}
    for job, record in ledger.latest_by_job().items():
        if record.started_at and record.finished_at:
            found[job] = (record.finished_at - record.started_at).total_seconds()
    return found


def toolset_for(defs: ValidationResult) -> Toolset:
    """The PostgreSQL tools backups use: postgres.bin_dir, else the embedded ones."""
    configured = defs.project.settings.postgres.bin_dir
    return discover(Path(configured) if configured else embedded_bin_dir())


DEMO_KEY_VARIABLE = "MARKETOPS_BACKUP_KEY"


def demo_key_file(root: Path) -> Path:
    """The key the demo (and `serve` on the embedded server) encrypts with when
    MARKETOPS_BACKUP_KEY is unset."""
    return root / "var" / "demo-backup.key"


def hand_on_demo_key(root: Path, variable: str = DEMO_KEY_VARIABLE) -> str:
    """The demo key (var/demo-backup.key), also put in `variable` for the programs this
    process starts: a server's archive_command (`wal-push`) and a restored server's
    restore_command (`wal-fetch`) run as the server's own user, who cannot read the file
    (0600, ours). An empty file hands nothing on; OSError when it cannot be read."""
    value = demo_key_file(root).read_text(encoding="utf-8").strip()
    if value:
        os.environ[variable] = value
    return value


def is_demo_project(defs: ValidationResult) -> bool:
    """Whether the primary is the embedded server: the demo's project, whose backups may be
    encrypted with the demo key."""
    return defs.project.settings.databases.primary.dsn == "embedded"


def backup_key(defs: ValidationResult, name: str) -> str:
    """The value of a key named in settings (from its environment variable). In the demo's
    project, an unset MARKETOPS_BACKUP_KEY falls back to var/demo-backup.key, as `serve` and
    the demo themselves do, so every command reads what they wrote."""
    ref = defs.project.settings.keys.get(name)
    if ref is None:
        raise UsageError(f"key '{name}' is not declared under keys: in marketops.yaml")
    try:
        return resolve_env(ref, f"keys.{name}")
    except UsageError:
        if ref != f"${{{DEMO_KEY_VARIABLE}}}" or not is_demo_project(defs):
            raise
        path = demo_key_file(defs.project.root)
        unset = f"keys.{name} refers to ${{{DEMO_KEY_VARIABLE}}}, which is not set in the " \
            "environment"
        if not path.is_file():
            raise UsageError(f"{unset}, and there is no demo key ({path}, written by "
                             "`marketops demo`)") from None
        try:
            value = hand_on_demo_key(defs.project.root)
        except OSError as exc:
            raise UsageError(f"{unset}, and the demo key {path} cannot be read "
                             f"({exc.strerror})") from None
        if not value:
            raise UsageError(f"{unset}, and the demo key {path} is empty") from None
        return remember(value)


class App:
    """The root's one front object (sqlmesh's Context): the repository, its current valid
    definitions, and what is built from them on first use — DSNs, the primary, the ledger,
    stores, tools and keys. A CLI command makes one and calls on it."""

    def __init__(self, root: Path, defs: ValidationResult | None = None, *,
                 debug: bool = False, target: str | None = None,
                 target_from: str = "--target") -> None:
        self.root = root
        self.debug = debug
        self.target = target  # asked for by --target or MARKETOPS_TARGET (`target_from`)
        self.target_from = target_from
        if defs is not None:
            self.__dict__["defs"] = defs
        self._dsns: dict[str, str] = {}
        self._stores: dict[str, Store] = {}
        self._targets: dict[str | None, Target] = {}
        self._pools: list[Pool] = []

    def as_loaded(self) -> App:
        """This repository with its definitions as loaded, valid or not: for the commands
        that must work while a repository is being adopted (db, schema pull)."""
        project, _ = load_project(self.root, self.target, self.target_from)
        return self._derived(ValidationResult(project, []))

    def for_job(self, job_id: str) -> App:
        """This repository with only what `job_id` reads checked (run, backfill): its own
        problems stop it, problems elsewhere are warned about on stderr."""
        from engine.app.jobdefs import job_definitions

        return self._derived(job_definitions(self.root, job_id, target=self.target,
                                             how=self.target_from, debug=self.debug))

    def _derived(self, defs: ValidationResult) -> App:
        """An App over other definitions whose connections this one's close() closes too."""
        child = App(self.root, defs, debug=self.debug, target=self.target,
                    target_from=self.target_from)
        child._pools = self._pools
        return child

    @cached_property
    def defs(self) -> ValidationResult:
        """The definitions, validated once; DefinitionError when any is invalid."""
        return valid_definitions(self.root, self.target, self.target_from)

    def dsn(self, which: str, dsn_override: str | None = None) -> str:
        """DSN of `primary`, `reports` or `state` (the latter two fall back to primary)."""
        if dsn_override is not None:
            return database_dsn(self.root, self.defs, which, dsn_override)
        if which not in self._dsns:
            self._dsns[which] = database_dsn(self.root, self.defs, which)
        return self._dsns[which]

    def primary(self, dsn_override: str | None = None) -> Target:
        """The primary database (the embedded one started when that is what it is)."""
        if dsn_override not in self._targets:
            self._targets[dsn_override] = primary_target(self.root, self.defs, dsn_override)
        return self._targets[dsn_override]

    def embedded(self) -> EmbeddedServer:
        """The embedded server of the settings, not started."""
        return embedded_server(self.root, self.defs)

    def start_embedded(self) -> tuple[EmbeddedServer, bool]:
        """Start the embedded server (on a free port when its own is taken)."""
        return start_embedded(self.root, self.defs)

    @cached_property
    def ledger(self) -> Ledger:
        """The ledger in the state database, migrated."""
        return self.ledger_at(self.dsn("state"))

    def ledger_at(self, dsn: str) -> Ledger:
        """The ledger in `dsn` (run --dsn), its connections closed with this App's."""
        return ledger_for(dsn, self._pools)

    def close(self) -> None:
        """Close the ledgers' idle connections, also those of the Apps derived from this one
        (a process that goes on, such as a test invoking the CLI in-process, must not leave
        them to the garbage collector)."""
        pools = list(self._pools)
        self._pools.clear()
        for pool in pools:
            pool.close()

    def store(self, name: str) -> Store:
        """The destination `name`, its secrets read from the environment."""
        if name not in self._stores:
            self._stores[name] = store_for(self.root, self.defs, name)
        return self._stores[name]

    @cached_property
    def toolset(self) -> Toolset:
        """The PostgreSQL tools backups and restores use."""
        return toolset_for(self.defs)

    def key(self, name: str) -> str:
        """The value of the key `name` of the settings."""
        return backup_key(self.defs, name)
