"""Roles as the catalog holds them, and the session's own powers: what
`engine.dbschema.roles` plans from and warns about."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.dbschema.pgnames import ident
from engine.dbschema.roles import (
    CONNECTING_EXTENSIONS,
    ESCAPE_ROLES,
    RoleSpec,
    RoleState,
    SessionPowers,
    plan,
)
from engine.errors import DatabaseError
from runners.postgres.connection import Connection, PostgresError, connect

_ROLE = """
select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin,
       array(select b.rolname from pg_auth_members m join pg_roles b on b.oid = m.roleid
             where m.member = r.oid)::text[],
       coalesce((select array_agg(s) from pg_db_role_setting d, unnest(d.setconfig) s
                 where d.setrole = r.oid and d.setdatabase = 0), '{}')::text[]
from pg_roles r where rolname = %s
"""

_DATABASE = """
select a.privilege_type from pg_database d, aclexplode(d.datacl) a
where d.datname = current_database() and a.grantee = %s::regrole
"""

# PUBLIC's TEMPORARY on this database (a NULL ACL is the default: PUBLIC holds it), and the
# login roles that would lose it with PUBLIC's.
_PUBLIC_TEMPORARY = """
select exists (select 1 from aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
               where a.grantee = 0 and a.privilege_type = 'TEMPORARY'),
       array(select r.rolname from pg_roles r
             where r.rolcanlogin and not r.rolsuper and r.oid <> d.datdba
               and r.rolname <> %s and r.rolname !~ '^pg_'
               and not exists (select 1 from aclexplode(coalesce(d.datacl,
                                   acldefault('d', d.datdba))) a
                               where a.grantee = r.oid and a.privilege_type = 'TEMPORARY')
             order by 1)::text[]
from pg_database d where d.datname = current_database()
"""

_SCHEMAS = """
select n.nspname, a.privilege_type from pg_namespace n, aclexplode(n.nspacl) a
where a.grantee = %s::regrole
"""

_TABLES = """
select n.nspname, c.relname, a.privilege_type
from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
where a.grantee = %s::regrole
"""

_RELATIONS = """
select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and n.nspname <> 'information_schema'
  and left(n.nspname, 3) <> 'pg_'
"""

# The applying user's default privileges for the role (what it gets on objects the
# applier creates later), per schema ("" for the database-wide defaults).
_DEFAULTS = """
select coalesce(n.nspname, ''), d.defaclobjtype::text, a.privilege_type
from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace,
     aclexplode(d.defaclacl) a
where d.defaclrole = current_user::regrole and a.grantee = %s::regrole
"""

_COLUMNS = """
select n.nspname, c.relname, a.attname, x.privilege_type
from pg_attribute a join pg_class c on c.oid = a.attrelid
     join pg_namespace n on n.oid = c.relnamespace, aclexplode(a.attacl) x
where x.grantee = %s::regrole
"""

_SIGNATURE = """quote_ident(n.nspname) || '.' || quote_ident(p.proname)
       || '(' || pg_get_function_identity_arguments(p.oid) || ')'"""

# Functions of the connecting extensions that PUBLIC may execute (the default).
_CONNECTING = f"""
select {_SIGNATURE}
from pg_proc p join pg_namespace n on n.oid = p.pronamespace,
     aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
where a.privilege_type = 'EXECUTE' and a.grantee = 0
  and p.oid in (select d.objid from pg_depend d join pg_extension e on e.oid = d.refobjid
                where d.classid = 'pg_proc'::regclass and d.deptype = 'e'
                  and e.extname = any(%s))
"""

# Functions the role was granted EXECUTE on by name (it should hold none).
_DIRECT = f"""
select {_SIGNATURE}
from pg_proc p join pg_namespace n on n.oid = p.pronamespace, aclexplode(p.proacl) a
where a.privilege_type = 'EXECUTE' and a.grantee = %s::regrole
"""


def role_state(conn: Connection, name: str) -> RoleState:
    """The role `name` in the connected database (RoleState() when it does not exist)."""
    shown = conn.execute("show server_version_num").fetchone()
    version = int(shown[0]) if shown else 0
    row = conn.execute(_ROLE, [name]).fetchone()
    public = frozenset(r[0] for r in conn.execute(_CONNECTING, [list(CONNECTING_EXTENSIONS)]))
    temporary = conn.execute(_PUBLIC_TEMPORARY, [name]).fetchone()
    assert temporary is not None  # the connected database's own row
    public_temporary, through_public = bool(temporary[0]), frozenset(temporary[1])
    relations = frozenset((r[0], r[1]) for r in conn.execute(_RELATIONS))
    if row is None:
        return RoleState(connecting_functions=public, server_version=version,
                         public_temporary=public_temporary,
                         temporary_through_public=through_public, relations=relations)
    flags = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS", "LOGIN")
    attributes = frozenset(f for f, on in zip(flags, row[:6], strict=True) if on)
    settings = dict(s.split("=", 1) for s in row[7])
    return RoleState(
        exists=True, attributes=attributes, member_of=frozenset(row[6]),
        database=frozenset(r[0] for r in conn.execute(_DATABASE, [name])),
        schemas=frozenset((r[0], r[1]) for r in conn.execute(_SCHEMAS, [name])),
        tables=frozenset((r[0], r[1], r[2]) for r in conn.execute(_TABLES, [name])),
        columns=frozenset((r[0], r[1], r[2], r[3]) for r in conn.execute(_COLUMNS, [name])),
        functions=frozenset(r[0] for r in conn.execute(_DIRECT, [name])),
        default_privileges=frozenset((r[0], r[1], r[2])
                                     for r in conn.execute(_DEFAULTS, [name])),
        settings=settings, connecting_functions=public,
        server_version=version, public_temporary=public_temporary,
        temporary_through_public=through_public, relations=relations)


_POWERS = """
select current_user, (select rolsuper from pg_roles where rolname = current_user),
       array(select quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog',
                   'information_schema') and n.nspname not like 'pg\\_%%'
               and has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
             order by 1 limit 3)::text[],
       array(select r from unnest(%s::text[]) r
             where case when exists (select 1 from pg_roles where rolname = r)
                        then pg_has_role(current_user, r, 'USAGE') else false end
             order by 1)::text[]
"""


def session_powers(conn: Connection) -> SessionPowers:
    """What the connected user could do beyond reading (a few writable tables as a sample)."""
    row = conn.execute(_POWERS, [sorted(ESCAPE_ROLES)]).fetchone()
    assert row is not None  # a select without FROM returns one row
    return SessionPowers(row[0], bool(row[1]), tuple(row[2]), tuple(row[3]))


def apply_roles(dsn: str, specs: Sequence[Callable[[RoleState], RoleSpec]],
                dry_run: bool = False) -> list[tuple[str, list[str]]]:
    """Bring each role to its spec in one transaction (all roles or none), serialised
    against other appliers by a transaction lock; the statements run, per role."""
    done: list[tuple[str, list[str]]] = []
    with connect(dsn, application="marketops roles") as conn:
        statement = ""
        try:
            with conn.transaction():
                conn.execute("select pg_advisory_xact_lock(%s)", [_LOCK])
                for build in specs:
                    name = build(RoleState()).name
                    state = role_state(conn, name)
                    statements = plan(build(state), state)
                    done.append((name, statements))
                    if not dry_run:
                        for statement in statements:
                            conn.execute(statement.encode())
                if dry_run:
                    raise _Rollback
        except _Rollback:
            pass
        except PostgresError as exc:
            raise DatabaseError(f"{exc.diag.message_primary or exc} "
                                f"(while running: {statement[:160]})") from None
    return done


class _Rollback(Exception):
    """Leaves a dry run's transaction without committing anything."""


_LOCK = 0x6D6B_726F6C65  # "mkrole": one applier at a time per cluster


def ensure_roles_exist(admin_dsn: str, names: Sequence[str]) -> list[str]:
    """Create the roles among `names` the cluster lacks, NOLOGIN and with nothing granted: a
    dump's GRANTs to them then restore (pg_dump does not dump roles); `roles apply` makes
    them usable. The names created."""
    created = []
    with connect(admin_dsn, autocommit=True, application="marketops roles") as conn:
        for name in names:
            if conn.execute("select 1 from pg_roles where rolname = %s", [name]).fetchone():
                continue
            conn.execute(f"CREATE ROLE {ident(name)} NOLOGIN".encode())
            created.append(name)
    return created
