"""Least-privilege database roles: what the reporting and backup roles should hold, and the
GRANT/REVOKE statements that bring a role as the catalog has it to exactly that.

Pure planning: `runners.postgres.roles` reads a `RoleState` from the catalog and runs the
statements; applying the plan twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from engine.dbschema.pgnames import ident, literal, qualified
from engine.definitions.project import Project

TableRef = tuple[str, str]

# Attributes a reporting or backup role never has; REPLICATION only the backup role has.
_ATTRIBUTES = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")

# Predefined roles that reach outside the database or write: never granted to these roles.
ESCAPE_ROLES = frozenset({"pg_execute_server_program", "pg_read_server_files",
                          "pg_write_server_files", "pg_write_all_data", "pg_signal_backend",
                          "pg_create_subscription", "pg_use_reserved_connections"})

# Extensions whose functions open connections of their own (writing through them, or
# reaching other servers): their functions are revoked from PUBLIC and from the role.
CONNECTING_EXTENSIONS = ("dblink", "postgres_fdw")


@dataclass(frozen=True)
class RoleState:
    """One role as the catalog holds it, plus what PUBLIC may do that matters to it."""

    exists: bool = False
    attributes: frozenset[str] = frozenset()  # those of _ATTRIBUTES and LOGIN that are on
    member_of: frozenset[str] = frozenset()
    database: frozenset[str] = frozenset()  # CONNECT, CREATE, TEMPORARY held directly
    schemas: frozenset[tuple[str, str]] = frozenset()  # (schema, USAGE|CREATE) held directly
    tables: frozenset[tuple[str, str, str]] = frozenset()  # (schema, relation, privilege)
    columns: frozenset[tuple[str, str, str, str]] = frozenset()  # (..., column, privilege)
    functions: frozenset[str] = frozenset()  # signatures the role may EXECUTE directly
    settings: dict[str, str] = field(default_factory=dict)  # ALTER ROLE ... SET, all databases
    connecting_functions: frozenset[str] = frozenset()  # of CONNECTING_EXTENSIONS, by PUBLIC
    server_version: int = 180000
    public_temporary: bool = False  # PUBLIC may create temporary tables in the database
    # The other login roles (not superusers, not the owner) whose TEMPORARY is PUBLIC's only.
    temporary_through_public: frozenset[str] = frozenset()
    # Every table, view and sequence outside the system schemas, declared or not (identity
    # columns own a sequence each): pg_dump reads them all, pg_read_all_data covers that
    # only from PostgreSQL 14.
    relations: frozenset[TableRef] = frozenset()
    # What the applying role's default privileges grant this role on objects it creates
    # later: (schema, or "" for every schema; object type "r" tables, "S" sequences, ...;
    # privilege).
    default_privileges: frozenset[tuple[str, str, str]] = frozenset()


@dataclass(frozen=True)
class RoleSpec:
    """What a role should hold, exactly."""

    name: str
    database: str
    replication: bool = False
    member_of: frozenset[str] = frozenset()
    schemas: frozenset[str] = frozenset()  # USAGE
    tables: frozenset[TableRef] = frozenset()  # SELECT
    settings: dict[str, str] = field(default_factory=dict)
    # Whether the role may create temporary tables (which PUBLIC may, by default, in a READ
    # WRITE session). When not, PUBLIC's TEMPORARY is revoked and granted by name to the
    # login roles that had it only through PUBLIC, except `peers`.
    temporary: bool = True
    peers: frozenset[str] = frozenset()  # the other roles the settings name
    # Schemas where tables and sequences the applying role creates later (as `schema apply`
    # does) are readable at once: default privileges.
    default_select: frozenset[str] = frozenset()


def report_reads(project: Project) -> set[TableRef]:
    """Every table and view the declared reports read: through glossary terms (their SQL is
    part of each report's) and through the views they read (PostgreSQL checks a view's own
    tables against the view's owner, unless the view is security_invoker)."""
    reads: set[TableRef] = set()
    for analysis in project.analyses.values():
        reads |= analysis.tables
    return reads


def report_role(project: Project, name: str, database: str) -> RoleSpec:
    """The reporting role: SELECT on exactly what the reports read, USAGE on those schemas
    (and on those of `reports.safe_functions`), read-only by default, and a statement
    timeout no report needs more than."""
    tables = frozenset(report_reads(project))
    function_schemas = {f.split(".", 1)[0] for f in project.settings.reports.safe_functions
                        if "." in f}
    longest = max((r.model.limits.statement_timeout for r in project.reports.values()),
                  default=timedelta(minutes=5))
    peers = frozenset(r for r in (project.settings.roles.backups,) if r and r != name)
    return RoleSpec(name, database, schemas=frozenset({s for s, _ in tables} | function_schemas),
                    tables=tables,
                    settings={"default_transaction_read_only": "on",
                              "statement_timeout": f"{_ms(longest)}ms"},
                    temporary=False, peers=peers)


def backup_role(project: Project, name: str, database: str, server_version: int,
                relations: Iterable[TableRef] = ()) -> RoleSpec:
    """The backup role: REPLICATION (pg_basebackup) and reading everything (pg_dump): the
    predefined pg_read_all_data from PostgreSQL 14, else SELECT per declared table and view
    and per relation of the catalog's (`relations`: sequences, undeclared tables) in a
    declared schema, and default privileges for those the applier creates later."""
    if server_version >= 140000:
        return RoleSpec(name, database, replication=True,
                        member_of=frozenset({"pg_read_all_data"}))
    tables = frozenset((s, t) for s, loaded in project.schemas.items()
                       for t in (*loaded.model.tables, *loaded.model.views))
    tables |= {(s, r) for s, r in relations if s in project.schemas}
    return RoleSpec(name, database, replication=True, schemas=frozenset(project.schemas),
                    tables=tables, default_select=frozenset(project.schemas))


def _ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def plan(spec: RoleSpec, state: RoleState) -> list[str]:
    """The statements that make the role hold exactly `spec`; [] when it already does."""
    role = ident(spec.name)
    wanted = {"LOGIN"} | ({"REPLICATION"} if spec.replication else set())
    options = " ".join(a if a in wanted else f"NO{a}" for a in ("LOGIN", *_ATTRIBUTES))
    out: list[str] = []
    if not state.exists:
        out.append(f"CREATE ROLE {role} {options}")
    elif state.attributes != wanted:
        out.append(f"ALTER ROLE {role} {options}")
    for other in sorted(state.member_of - spec.member_of):
        out.append(f"REVOKE {ident(other)} FROM {role}")
    for other in sorted(spec.member_of - state.member_of):
        out.append(f"GRANT {ident(other)} TO {role}")
    database = ident(spec.database)
    if "CONNECT" not in state.database:
        out.append(f"GRANT CONNECT ON DATABASE {database} TO {role}")
    extra = sorted(state.database - {"CONNECT"})
    if extra:
        out.append(f"REVOKE {', '.join(extra)} ON DATABASE {database} FROM {role}")
    if not spec.temporary and state.public_temporary:
        # No DENY in PostgreSQL: PUBLIC's grant must go, and the others keep theirs by name.
        for other in sorted(state.temporary_through_public - spec.peers - {spec.name}):
            out.append(f"GRANT TEMPORARY ON DATABASE {database} TO {ident(other)}")
        out.append(f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC")
    out.extend(_schemas(spec, state, role))
    out.extend(_tables(spec, state, role))
    out.extend(_defaults(spec, state, role))
    # Column grants (an UPDATE on one column is a write): table-level SELECT covers reading.
    for schema, table, column, privilege in sorted(state.columns):
        out.append(f"REVOKE {privilege} ({ident(column)}) ON {qualified(schema, table)} "
                   f"FROM {role}")
    for function in sorted(state.connecting_functions):
        out.append(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
    for function in sorted(state.functions):
        out.append(f"REVOKE EXECUTE ON FUNCTION {function} FROM {role}")
    for name in sorted(set(state.settings) - set(spec.settings)):
        out.append(f"ALTER ROLE {role} RESET {name}")
    for name, value in sorted(spec.settings.items()):
        if state.settings.get(name) != value:
            out.append(f"ALTER ROLE {role} SET {name} = {literal(value)}")
    return out


def _schemas(spec: RoleSpec, state: RoleState, role: str) -> Iterable[str]:
    held: dict[str, set[str]] = {}
    for schema, privilege in state.schemas:
        held.setdefault(schema, set()).add(privilege)
    for schema in sorted(set(held) | spec.schemas):
        privileges = held.get(schema, set())
        if schema in spec.schemas and "USAGE" not in privileges:
            yield f"GRANT USAGE ON SCHEMA {ident(schema)} TO {role}"
        extra = sorted(privileges - ({"USAGE"} if schema in spec.schemas else set()))
        if extra:
            yield f"REVOKE {', '.join(extra)} ON SCHEMA {ident(schema)} FROM {role}"


def _tables(spec: RoleSpec, state: RoleState, role: str) -> Iterable[str]:
    held: dict[TableRef, set[str]] = {}
    for schema, table, privilege in state.tables:
        held.setdefault((schema, table), set()).add(privilege)
    for ref in sorted(set(held) | spec.tables):
        privileges = held.get(ref, set())
        name = qualified(*ref)
        extra = sorted(privileges - ({"SELECT"} if ref in spec.tables else set()))
        if extra:
            yield f"REVOKE {', '.join(extra)} ON {name} FROM {role}"
        if ref in spec.tables and "SELECT" not in privileges:
            yield f"GRANT SELECT ON {name} TO {role}"


_DEFAULT_OBJECTS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES",
                    "n": "SCHEMAS"}


def _defaults(spec: RoleSpec, state: RoleState, role: str) -> Iterable[str]:
    wanted = {(s, kind, "SELECT") for s in spec.default_select for kind in ("r", "S")}
    for verb, entries in (("REVOKE", state.default_privileges - wanted),
                          ("GRANT", wanted - state.default_privileges)):
        grouped: dict[tuple[str, str], set[str]] = {}
        for schema, kind, privilege in entries:
            grouped.setdefault((schema, kind), set()).add(privilege)
        for (schema, kind), privileges in sorted(grouped.items()):
            where = f" IN SCHEMA {ident(schema)}" if schema else ""
            what = f"{', '.join(sorted(privileges))} ON {_DEFAULT_OBJECTS[kind]}"
            yield (f"ALTER DEFAULT PRIVILEGES{where} GRANT {what} TO {role}" if verb == "GRANT"
                   else f"ALTER DEFAULT PRIVILEGES{where} REVOKE {what} FROM {role}")


@dataclass(frozen=True)
class SessionPowers:
    """What the user a report runs as could do beyond reading: read from the live session."""

    user: str
    superuser: bool
    writable: Sequence[str] = ()  # relations it may INSERT/UPDATE/DELETE/TRUNCATE (a sample)
    escape_roles: Sequence[str] = ()  # ESCAPE_ROLES it has the privileges of


def session_warning(powers: SessionPowers) -> str | None:
    """One line when reports run as a role that could do more than read, else None."""
    if powers.superuser:
        return (f"reports run as the superuser {powers.user}: a report (or a view or function "
                "it reads) could write or reach outside the database; set roles.reports in "
                "marketops.yaml and run marketops roles apply")
    if powers.writable or powers.escape_roles:
        can = [f"write {', '.join(powers.writable)}"] if powers.writable else []
        can += [f"use {r}" for r in powers.escape_roles]
        return (f"reports run as {powers.user}, which can {' and '.join(can)}; set "
                "roles.reports in marketops.yaml and run marketops roles apply")
    return None
