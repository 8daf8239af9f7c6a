"""The least-privilege roles: what they hold, the statements that get them there."""

from pathlib import Path

from engine.dbschema.roles import (
    RoleSpec,
    RoleState,
    SessionPowers,
    backup_role,
    plan,
    report_reads,
    report_role,
    session_warning,
)
from tests.helpers import REVENUE, SHOP, check

VIEWS = SHOP + """\
views:
  big_orders:
    columns:
      id: {type: bigint}
      total: {type: "numeric(12,2)"}
    definition: select o.id, o.total from shop.orders o where o.total > 100
"""

BIG = REVENUE.replace("select c.region, sum(o.total) as revenue",
                      "select count(*) as n").replace(
    """  from shop.orders o
  join shop.customers c on c.id = o.customer_id
  where o.placed_at >= :period_start and o.placed_at < :period_end
  group by c.region""", "  from shop.big_orders b").replace("Daily revenue", "Big orders")


def test_the_reports_role_reads_exactly_what_reports_read(tmp_path: Path) -> None:
    project = check(tmp_path).project
    spec = report_role(project, "reporter", "shop")
    assert spec.tables == {("shop", "orders"), ("shop", "customers")}
    assert spec.schemas == {"shop"}
    assert spec.settings == {"default_transaction_read_only": "on",
                             "statement_timeout": "300000ms"}
    assert not spec.replication and not spec.member_of


def test_views_count_with_what_they_read(tmp_path: Path) -> None:
    project = check(tmp_path, {"schema/shop.yaml": VIEWS,
                               "definitions/reports/revenue.yaml": BIG}).project
    assert report_reads(project) == {("shop", "big_orders"), ("shop", "orders")}


def test_a_new_role_is_created_with_nothing_but_its_grants() -> None:
    spec = RoleSpec("reporter", "shop", schemas=frozenset({"shop"}),
                    tables=frozenset({("shop", "orders")}),
                    settings={"statement_timeout": "60000ms"})
    assert plan(spec, RoleState(connecting_functions=frozenset({"public.dblink(text)"}))) == [
        "CREATE ROLE reporter LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        "NOBYPASSRLS",
        "GRANT CONNECT ON DATABASE shop TO reporter",
        "GRANT USAGE ON SCHEMA shop TO reporter",
        "GRANT SELECT ON shop.orders TO reporter",
        "REVOKE EXECUTE ON FUNCTION public.dblink(text) FROM PUBLIC",
        "ALTER ROLE reporter SET statement_timeout = '60000ms'",
    ]


def test_applied_twice_changes_nothing() -> None:
    spec = RoleSpec("reporter", "shop", schemas=frozenset({"shop"}),
                    tables=frozenset({("shop", "orders")}),
                    settings={"statement_timeout": "60000ms"})
    state = RoleState(exists=True, attributes=frozenset({"LOGIN"}),
                      database=frozenset({"CONNECT"}), schemas=frozenset({("shop", "USAGE")}),
                      tables=frozenset({("shop", "orders", "SELECT")}),
                      settings={"statement_timeout": "60000ms"})
    assert plan(spec, state) == []


def test_whatever_else_the_role_holds_is_taken_away() -> None:
    spec = RoleSpec("reporter", "shop", schemas=frozenset({"shop"}),
                    tables=frozenset({("shop", "orders")}))
    state = RoleState(
        exists=True, attributes=frozenset({"LOGIN", "SUPERUSER", "CREATEDB"}),
        member_of=frozenset({"pg_write_all_data", "pg_execute_server_program"}),
        database=frozenset({"CONNECT", "CREATE", "TEMPORARY"}),
        schemas=frozenset({("shop", "USAGE"), ("shop", "CREATE"), ("admin", "USAGE")}),
        tables=frozenset({("shop", "orders", "SELECT"), ("shop", "orders", "INSERT"),
                          ("admin", "audit_log", "SELECT")}),
        columns=frozenset({("shop", "orders", "total", "UPDATE")}),
        functions=frozenset({"pg_catalog.pg_read_file(text)"}),
        settings={"search_path": "admin"})
    assert plan(spec, state) == [
        "ALTER ROLE reporter LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        "NOBYPASSRLS",
        "REVOKE pg_execute_server_program FROM reporter",
        "REVOKE pg_write_all_data FROM reporter",
        "REVOKE CREATE, TEMPORARY ON DATABASE shop FROM reporter",
        "REVOKE USAGE ON SCHEMA admin FROM reporter",
        "REVOKE CREATE ON SCHEMA shop FROM reporter",
        "REVOKE SELECT ON admin.audit_log FROM reporter",
        "REVOKE INSERT ON shop.orders FROM reporter",
        "REVOKE UPDATE (total) ON shop.orders FROM reporter",
        "REVOKE EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) FROM reporter",
        "ALTER ROLE reporter RESET search_path",
    ]


def test_names_are_quoted_where_postgresql_needs_it() -> None:
    spec = RoleSpec("reporter", "Shop DB", schemas=frozenset({"Sales"}),
                    tables=frozenset({("Sales", "Order")}))
    statements = plan(spec, RoleState())
    assert 'GRANT CONNECT ON DATABASE "Shop DB" TO reporter' in statements
    assert 'GRANT SELECT ON "Sales"."Order" TO reporter' in statements


def test_the_backups_role(tmp_path: Path) -> None:
    project = check(tmp_path).project
    spec = backup_role(project, "backup", "shop", 180000)
    assert spec.replication and spec.member_of == {"pg_read_all_data"} and not spec.tables
    assert plan(spec, RoleState())[:2] == [
        "CREATE ROLE backup LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS",
        "GRANT pg_read_all_data TO backup"]
    older = backup_role(project, "backup", "shop", 130000)
    assert older.member_of == frozenset()
    assert older.tables == {("shop", "orders"), ("shop", "customers")}
    # pg_dump reads every relation of a schema (each sequence's state, undeclared tables):
    # the catalog's in declared schemas are granted too.
    with_sequences = backup_role(project, "backup", "shop", 130000,
                                 [("shop", "orders_id_seq"), ("shop", "orders"),
                                  ("shop", "imported"), ("other", "x_seq")])
    assert with_sequences.tables == older.tables | {("shop", "orders_id_seq"),
                                                    ("shop", "imported")}
    assert "GRANT SELECT ON shop.orders_id_seq TO backup" in plan(with_sequences, RoleState())
    # Tables and sequences the applier creates later (schema apply) are readable at once.
    planned = plan(older, RoleState())
    assert planned[-2:] == ["ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON "
                            "SEQUENCES TO backup",
                            "ALTER DEFAULT PRIVILEGES IN SCHEMA shop GRANT SELECT ON "
                            "TABLES TO backup"]
    held = RoleState(exists=True, attributes=frozenset({"LOGIN", "REPLICATION"}),
                     database=frozenset({"CONNECT"}), schemas=frozenset({("shop", "USAGE")}),
                     tables=frozenset((s, t, "SELECT") for s, t in older.tables),
                     default_privileges=frozenset({("shop", "r", "SELECT"),
                                                   ("shop", "S", "SELECT")}))
    assert plan(older, held) == []


def test_default_privileges_beyond_the_spec_are_revoked() -> None:
    spec = RoleSpec("reporter", "shop")
    state = RoleState(exists=True, attributes=frozenset({"LOGIN"}),
                      database=frozenset({"CONNECT"}),
                      default_privileges=frozenset({("shop", "r", "INSERT"),
                                                    ("shop", "r", "SELECT"),
                                                    ("", "f", "EXECUTE")}))
    assert plan(spec, state) == [
        "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM reporter",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA shop REVOKE INSERT, SELECT ON TABLES FROM reporter",
    ]


def test_the_warning_names_what_the_user_could_do() -> None:
    assert session_warning(SessionPowers("reporter", False)) is None
    superuser = session_warning(SessionPowers("postgres", True))
    assert superuser is not None and "superuser postgres" in superuser
    writer = session_warning(SessionPowers("app", False, ("shop.orders",),
                                           ("pg_read_server_files",)))
    assert writer == ("reports run as app, which can write shop.orders and use "
                      "pg_read_server_files; set roles.reports in marketops.yaml and run "
                      "marketops roles apply")


def test_public_temporary_goes_and_the_other_login_roles_keep_it_by_name(
        tmp_path: Path) -> None:
    project = check(tmp_path).project
    spec = report_role(project, "reporter", "shop")
    assert not spec.temporary
    ready = plan(spec, RoleState())
    state = RoleState(public_temporary=True,
                      temporary_through_public=frozenset({"app", "reporter", "zeta"}))
    added = [s for s in plan(spec, state) if s not in ready]
    assert added == ["GRANT TEMPORARY ON DATABASE shop TO app",
                     "GRANT TEMPORARY ON DATABASE shop TO zeta",
                     "REVOKE TEMPORARY ON DATABASE shop FROM PUBLIC"]
    # The backup role named in the settings is not handed what it should not hold.
    peered = RoleSpec(**{**spec.__dict__, "peers": frozenset({"zeta"})})
    assert "GRANT TEMPORARY ON DATABASE shop TO zeta" not in plan(peered, state)
    # A role that may create temporary tables leaves PUBLIC's grant alone.
    assert not [s for s in plan(backup_role(project, "b", "shop", 180000), state)
                if "TEMPORARY" in s]
