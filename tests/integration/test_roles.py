"""The reporting role on a real PostgreSQL: every declared report runs as it, and it can
neither write, nor read what no report reads, nor get out through dblink, COPY PROGRAM or
the server's files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from engine.app.roles import apply
from engine.dbschema.roles import report_reads
from engine.scheduling.jobs import jobs
from engine.validation.validate import ValidationResult, validate
from runners.postgres.connection import as_user, connect
from runners.report.query import run_report
from tests.support.reports import request_for

ROLE = "marketops_reports"
AT = datetime(2026, 10, 31, 12, tzinfo=UTC)
MARKETOPS = str(Path(sys.executable).with_name("marketops"))


@pytest.fixture(scope="module")
def definitions(repo_root: Path) -> ValidationResult:
    defs = validate(repo_root)
    assert defs.project.settings.roles.reports == ROLE
    return defs


@pytest.fixture
def armed(market_dsn: str) -> Iterator[str]:
    """The marketplace with dblink and a view that writes through it, as an attacker with
    CREATE VIEW (or a careless migration) would leave it: created before the roles."""
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("create extension dblink")
        conn.execute("create extension postgres_fdw")
        conn.execute("create table public.landed (id serial primary key)")
        conn.execute(f"""create view public.sneaky as select x from dblink(
            '{market_dsn}', 'insert into public.landed default values returning 1')
            as t(x int)""".encode())
    yield market_dsn


def _landed(dsn: str) -> int:
    with connect(dsn) as conn:
        row = conn.execute("select count(*) from public.landed").fetchone()
        assert row is not None
        return int(row[0])


def _drift(dsn: str) -> None:
    """What a hand-made change leaves: a grant gone, a write granted, a table nobody reads."""
    with connect(dsn, autocommit=True) as conn:
        conn.execute(f"revoke all on all tables in schema orders from {ROLE}".encode())
        conn.execute(f"grant insert on users.accounts to {ROLE}".encode())
        conn.execute(f"grant select on public.landed to {ROLE}".encode())
        conn.execute(f"grant update (status) on orders.orders to {ROLE}".encode())


def test_roles_apply_converges_and_is_idempotent(definitions: ValidationResult,
                                                 armed: str) -> None:
    _drift(armed)
    first = dict(apply(definitions, armed))
    assert "GRANT SELECT ON orders.orders TO marketops_reports" in first[ROLE]
    assert "REVOKE INSERT ON users.accounts FROM marketops_reports" in first[ROLE]
    assert "REVOKE SELECT ON public.landed FROM marketops_reports" in first[ROLE]
    assert "REVOKE UPDATE (status) ON orders.orders FROM marketops_reports" in first[ROLE]
    assert any(s.startswith("REVOKE EXECUTE ON FUNCTION public.dblink(")
               for s in first[ROLE])
    assert dict(apply(definitions, armed)) == {ROLE: [], "marketops_backups": []}


def test_the_cli_applies_and_dry_runs(definitions: ValidationResult, armed: str,
                                      repo_root: Path) -> None:
    market_dsn = armed
    def roles(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MARKETOPS, "--root", str(repo_root), "roles", "apply",
                               "--dsn", market_dsn, *extra], capture_output=True, text=True,
                              timeout=120, check=False)

    _drift(market_dsn)
    dry = roles("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"role {ROLE}: would run" in dry.stdout and "GRANT SELECT ON" in dry.stdout
    again = roles("--dry-run")
    assert again.stdout == dry.stdout  # the dry run changed nothing
    done = roles()
    assert done.returncode == 0, done.stderr
    assert roles().stdout.count("applied 0 statement(s)") == 2


def test_every_report_runs_as_the_role_and_it_warns_as_superuser(
        definitions: ValidationResult, armed: str, tmp_path: Path) -> None:
    apply(definitions, armed)
    role_dsn = as_user(armed, ROLE)
    reports = [j for j in jobs(definitions.project).values() if j.kind == "report"]
    assert len(reports) == len(definitions.project.reports) >= 15
    for job in reports:
        assert job.schedule is not None
        slot = job.schedule.latest_at_or_before(AT)
        assert slot is not None
        done = run_report(request_for(job, slot, role_dsn, tmp_path / job.name))
        assert done.warnings == (), (job.name, done.warnings)
    as_superuser = run_report(request_for(reports[0], slot, armed, tmp_path / "su"))
    assert as_superuser.warnings and "superuser" in as_superuser.warnings[0]


def _refused(dsn: str, statement: str) -> str:
    """The error PostgreSQL gives `statement` in a read-write transaction of its own."""
    with connect(dsn) as conn:
        conn.execute("begin read write")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            conn.execute(statement.encode())
        return str(refused.value.diag.message_primary)


def test_the_role_cannot_write_reach_or_escape(definitions: ValidationResult,
                                               armed: str) -> None:
    with connect(armed, autocommit=True) as conn:  # an application's own login role
        conn.execute("do $$ begin create role marketops_test_app login; "
                     "exception when duplicate_object then null; end $$")
    apply(definitions, armed)
    role_dsn = as_user(armed, ROLE)
    read = report_reads(definitions.project)
    declared = {(s, t) for s, loaded in definitions.project.schemas.items()
                for t in loaded.model.tables}
    unread = sorted(declared - read)
    assert ("orders", "orders") in read and unread

    for statement in ("insert into orders.orders (id) values (-1)",
                      "update orders.orders set id = id",
                      "delete from orders.orders",
                      "truncate orders.orders",
                      "create table orders.mine (x int)",
                      "create table public.mine (x int)",
                      "create schema mine",
                      "create temporary table mine (x int)"):
        assert "permission denied" in _refused(role_dsn, statement)
    # PUBLIC's TEMPORARY went; the application's role keeps it, granted by name.
    with connect(as_user(armed, "marketops_test_app")) as conn:
        conn.execute("create temporary table mine (x int)")
    for schema, table in unread:
        assert "permission denied" in _refused(role_dsn, f"select 1 from {schema}.{table}")

    # The superuser's view writes through dblink's own connection, read-only or not.
    before = _landed(armed)
    with connect(armed) as conn:
        conn.execute("set transaction read only")
        conn.execute("select * from public.sneaky").fetchall()
    assert _landed(armed) == before + 1
    with connect(armed, autocommit=True) as conn:  # as if a report declared the view
        conn.execute(f"grant select on public.sneaky to {ROLE}".encode())
    assert "permission denied for function dblink" in _refused(
        role_dsn, "select * from public.sneaky")
    assert "permission denied for function dblink_connect" in _refused(
        role_dsn, f"select dblink_connect('{armed}')")
    assert _landed(armed) == before + 1

    assert "foreign-data wrapper postgres_fdw" in _refused(
        role_dsn, "create server elsewhere foreign data wrapper postgres_fdw")
    for statement in ("copy (select 1) to program 'id'",
                      "copy orders.orders to '/tmp/marketops-roles-test.csv'",
                      "copy public.landed from '/etc/hostname'",
                      "select pg_read_file('postgresql.conf')",
                      "select pg_ls_dir('.')",
                      "select pg_read_binary_file('/etc/hostname')",
                      "select lo_import('/etc/hostname')",
                      "select lo_export(0, '/tmp/marketops-roles-test')"):
        assert _refused(role_dsn, statement)

    with connect(role_dsn) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("select lo_create(0)")  # no large object either, in its sessions
    with connect(role_dsn) as conn:  # sessions start read-only, with a statement timeout
        shown = conn.execute("select current_setting('default_transaction_read_only'), "
                             "extract(epoch from current_setting('statement_timeout')::interval)"
                             ).fetchone()
    longest = max(r.model.limits.statement_timeout
                  for r in definitions.project.reports.values())
    assert shown == ("on", longest.total_seconds())


def test_logical_backups_connect_as_the_backups_role(repo_root: Path, tmp_path: Path,
                                                      market_dsn: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pyrage

    from engine.app.executor import run_backup
    from engine.errors import MarketopsError
    from tests.integration.conftest import copy_repository

    root = copy_repository(repo_root, tmp_path / "repo")
    monkeypatch.setenv("MARKETOPS_BACKUP_KEY", str(pyrage.x25519.Identity.generate()))
    defs = validate(root)
    job = jobs(defs.project)["backup/users_schema"]
    assert run_backup(root, defs, job, market_dsn)["rows"] > 0
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("alter role marketops_backups nologin")
    try:  # the same run fails once the role may not log in: it is the role that connects
        with pytest.raises(MarketopsError, match="marketops_backups"):
            run_backup(root, defs, job, market_dsn)
    finally:
        with connect(market_dsn, autocommit=True) as conn:
            conn.execute("alter role marketops_backups login")


@pytest.mark.parametrize("name", ["backup/audit_vault", "backup/wal_archive"])
def test_audit_and_wal_runs_connect_as_the_backups_role(repo_root: Path, tmp_path: Path,
                                                        market_dsn: str, name: str,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    import pyrage

    from engine.app.executor import run_backup
    from engine.errors import MarketopsError
    from tests.integration.conftest import copy_repository

    root = copy_repository(repo_root, tmp_path / "repo")
    monkeypatch.setenv("MARKETOPS_BACKUP_KEY", str(pyrage.x25519.Identity.generate()))
    defs = validate(root)
    job = jobs(defs.project)[name]
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("alter role marketops_backups nologin")
    try:  # refused at its login: it is the role that reads the rows and the archiver
        with pytest.raises(MarketopsError, match="marketops_backups"):
            run_backup(root, defs, job, market_dsn)
    finally:
        with connect(market_dsn, autocommit=True) as conn:
            conn.execute("alter role marketops_backups login")
    if name == "backup/audit_vault":  # as the role, the export reads admin.audit_log
        assert run_backup(root, defs, job, market_dsn)["rows"] > 0


def test_a_report_reading_a_dblink_view(definitions: ValidationResult, armed: str,
                                        tmp_path: Path) -> None:
    """As the superuser the view's write lands once per run (the SQL is evaluated once, for
    the CSV and the typed pass alike); as the reporting role the run fails and writes nothing."""
    from datetime import timedelta

    from engine.errors import JobError
    from runners.report.query import ReportRequest

    def request(dsn: str, name: str) -> ReportRequest:
        return ReportRequest("sneaky", dsn, "select x from public.sneaky", {},
                             timedelta(seconds=30), 100, tmp_path / name, "UTC",
                             ("csv", "html"))

    apply(definitions, armed)
    before = _landed(armed)
    done = run_report(request(armed, "su"))
    assert done.rows == 1 and _landed(armed) == before + 1
    assert done.warnings and "superuser" in done.warnings[0]
    with connect(armed, autocommit=True) as conn:  # as if a report declared the view
        conn.execute(f"grant select on public.sneaky to {ROLE}".encode())
    with pytest.raises(JobError, match="permission denied for function dblink"):
        run_report(request(as_user(armed, ROLE), "role"))
    assert _landed(armed) == before + 1


def test_the_wal_check_as_the_backups_role_reads_an_archiving_server(
        tmp_path: Path) -> None:
    """Not only refused at login: as the role, the check sees the server's archive settings
    and its archiver, and passes on an archive with no gap."""
    import pyrage

    from engine.app.executor import run_backup
    from engine.app.tiers.backup import take_backup
    from engine.errors import MarketopsError
    from tests.integration.test_backup_physical import SETTINGS, archiving_cluster

    key = str(pyrage.x25519.Identity.generate())
    settings = {"marketops.yaml": SETTINGS + "roles: {backups: marketops_backups}\n"}
    with archiving_cluster(tmp_path / "repo", key, settings) as cluster:
        result = cluster.result
        apply(result, cluster.dsn)
        job = jobs(result.project)["backup/wal"]
        take_backup(cluster.root, result, jobs(result.project)["backup/base"], cluster.dsn)
        cluster.switch_and_wait()
        assert run_backup(cluster.root, result, job, cluster.dsn)["stored"] > 0
        cluster.sql("alter role marketops_backups nologin")
        with pytest.raises(MarketopsError, match="marketops_backups"):
            run_backup(cluster.root, result, job, cluster.dsn)


def test_without_pg_read_all_data_the_backups_role_dumps_every_declared_schema(
        definitions: ValidationResult, market_dsn: str) -> None:
    """The PostgreSQL < 14 spec (built for 13 here, on this server): SELECT per declared
    table, view and sequence lets a real pg_dump of each declared schema read its tables and
    its identity sequences' state, and default privileges cover a table created afterwards
    by the applier (as `schema apply` would) before `roles apply` runs again, which then
    keeps it; applied twice, nothing changes."""
    from engine.dbschema.roles import RoleSpec, RoleState, backup_role
    from runners.postgres.connection import database_name
    from runners.postgres.embedded import embedded_bin_dir
    from runners.postgres.roles import apply_roles

    name = "marketops_backups_pre14"
    database = database_name(market_dsn)

    def build(state: RoleState) -> RoleSpec:
        return backup_role(definitions.project, name, database, 130000, state.relations)

    try:
        apply_roles(market_dsn, [build])
        assert apply_roles(market_dsn, [build]) == [(name, [])]
        with connect(market_dsn, autocommit=True) as conn:
            conn.execute("create table orders.added_later "
                         "(id bigint generated always as identity, note text)")
            conn.execute("insert into orders.added_later (note) values ('kept')")
        schemas = [f"--schema={s}" for s in sorted(definitions.project.schemas)]
        dump = subprocess.run([str(embedded_bin_dir() / "pg_dump"), "--dbname",
                               as_user(market_dsn, name), *schemas], capture_output=True,
                              text=True, timeout=300, check=False)
        assert dump.returncode == 0, dump.stderr
        assert "SELECT pg_catalog.setval('orders.orders_id_seq'" in dump.stdout
        assert "COPY orders.added_later (id, note) FROM stdin;\n1\tkept" in dump.stdout
        # Applying again keeps the undeclared table's grant: pg_dump of its schema needs it.
        assert apply_roles(market_dsn, [build]) == [(name, [])]
    finally:
        with connect(market_dsn, autocommit=True) as conn:
            conn.execute(f"drop owned by {name}".encode())
            conn.execute(f"drop role if exists {name}".encode())
