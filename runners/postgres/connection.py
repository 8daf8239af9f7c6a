"""PostgreSQL connections: the one module that imports psycopg."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.adapt import Transformer
from psycopg.conninfo import make_conninfo
from psycopg.pq import ExecStatus, Format

from engine.dbschema.pgnames import literal
from engine.errors import DatabaseError
from engine.masking import mask, mask_dsn

APPLICATION_NAME = "marketops"

Connection = psycopg.Connection[Any]
# The errors other runners tell apart, so that they need not import psycopg themselves.
PostgresError = psycopg.Error
ConnectionFailed = psycopg.OperationalError
ReadOnlyRefused = psycopg.errors.ReadOnlySqlTransaction
Cancelled = psycopg.errors.QueryCanceled
Refused = psycopg.errors.InsufficientPrivilege
__all__ = ["mask_dsn"]  # the one masking function, re-exported for the runners


def without_password(dsn: str) -> tuple[str, str | None]:
    """The DSN without its password, and the password (for PGPASSWORD, never argv)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    password = params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}), \
        (str(password) if password is not None else None)


def as_user(dsn: str, user: str) -> str:
    """The same server and database, connecting as `user` (its password, if it needs one,
    from PGPASSFILE or PGPASSWORD: never the DSN's own user's)."""
    from psycopg.conninfo import conninfo_to_dict

    if conninfo_to_dict(dsn).get("user") == user:
        return dsn  # already the role, with its own password if the DSN holds one
    base, _ = without_password(dsn)
    return make_conninfo(base, user=user)


def bind_literally(conn: Connection, sql: str, params: dict[str, Any]) -> str:
    """The query with its parameters as SQL literals (for tools that take a query text)."""
    return psycopg.ClientCursor(conn).mogrify(sql, params)


def result_types(conn: Connection, sql: str, params: dict[str, Any]) -> list[int]:
    """The type oids of a query's result columns, from describing it (it is not run)."""
    query = bind_literally(conn, sql, params).encode()
    prepared = conn.pgconn.prepare(b"", query, None)
    if prepared.status != ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(prepared, encoding=conn.info.encoding)
    described = conn.pgconn.describe_prepared(b"")
    return [described.ftype(i) for i in range(described.nfields)]


def text_loader(conn: Connection, types: Sequence[int]
                ) -> Callable[[Sequence[bytes | None]], tuple[Any, ...]]:
    """What turns a row of PostgreSQL text values (None for NULL) into Python values of
    the given type oids, as the connection loads a query's rows."""
    loader = Transformer(conn)
    loader.set_loader_types(types, Format.TEXT)
    return loader.load_sequence


def database_name(dsn: str) -> str:
    """The database a DSN names (libpq's default: the user name)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    return str(params.get("dbname") or params.get("user") or "postgres")


def with_database(dsn: str, database: str) -> str:
    """The same connection parameters, another database."""
    return make_conninfo(dsn, dbname=database)


def _open(dsn: str, autocommit: bool, application: str) -> Connection:
    """A new connection; failing to connect becomes one clear DatabaseError (password masked)."""
    try:
        return psycopg.connect(dsn, autocommit=autocommit, application_name=application,
                               connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreachable"
        reason = mask(reason)
        raise DatabaseError(f"cannot connect to {mask_dsn(dsn)}: {reason}") from None


@contextmanager
def connect(dsn: str, *, autocommit: bool = False,
            application: str = APPLICATION_NAME) -> Iterator[Connection]:
    """A connection, closed on exit; connection failures become one clear DatabaseError."""
    conn = _open(dsn, autocommit, application)
    try:
        yield conn
    finally:
        conn.close()


def ensure_database(dsn_admin: str, name: str) -> bool:
    """Create database `name` if missing (connecting through `dsn_admin`); True if created."""
    with connect(dsn_admin, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(pgsql.SQL("create database {}").format(pgsql.Identifier(name)))
        return True


def drop_database(dsn_admin: str, name: str) -> None:
    """Drop database `name` (a restore's own, after it failed), ending its sessions."""
    with connect(dsn_admin, autocommit=True) as conn:
        conn.execute(pgsql.SQL("drop database if exists {} with (force)").format(
            pgsql.Identifier(name)))


def execute_script(dsn: str, statements: Sequence[str]) -> None:
    """Run statements in one transaction: all of them or none."""
    with connect(dsn) as conn:
        try:
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement.encode())
        except psycopg.Error as exc:
            raise DatabaseError(f"{exc.diag.message_primary or exc} "
                                f"(while running: {statement.strip()[:160]})") from None


def query(conn: Connection, text: str | pgsql.Composed,
          params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    return conn.execute(text, params).fetchall()


def count_rows(dsn: str, tables: Sequence[str]) -> dict[str, int]:
    """Rows in each `schema.table` (for checking a restore against its manifest)."""
    counts: dict[str, int] = {}
    with connect(dsn) as conn:
        for table in tables:
            statement = pgsql.SQL("select count(*) from {}").format(
                pgsql.Identifier(*table.split(".")))
            counts[table] = int(query(conn, statement)[0][0])
    return counts


def rows_returned(dsn: str, text: str) -> int:
    """How many rows a query returns (a restore drill's smoke query)."""
    with connect(dsn) as conn:
        return len(query(conn, text))


def one_row(dsn: str, text: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row a statement returns, on an autocommit connection of its own; failing
    to connect, a refused statement or a connection lost mid-way (a server shutting down)
    is one DatabaseError."""
    with connect(dsn, autocommit=True) as conn:
        try:
            row = conn.execute(text, params).fetchone()
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"lost the connection to {mask_dsn(dsn)}: "
                                f"{str(exc).strip()[:200]}") from None
        except psycopg.Error as exc:
            raise DatabaseError(str(exc.diag.message_primary or exc).strip()) from None
    return tuple(row) if row is not None else None


def probe(dsn: str, text: str) -> Any:
    """The first value of the first row (see one_row)."""
    row = one_row(dsn, text)
    return row[0] if row else None


class Pool:
    """A few reusable autocommit connections for the ledger: the service loop and its
    heartbeats talk to the state database many times a second."""

    def __init__(self, dsn: str, application: str = APPLICATION_NAME, keep: int = 4) -> None:
        self.dsn = dsn
        self.application = application
        self.keep = keep
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """An autocommit connection; returned to the pool unless it broke."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = _open(self.dsn, True, self.application)
        try:
            yield conn
        except psycopg.OperationalError as exc:
            conn.close()
            raise DatabaseError(f"lost the connection to {mask_dsn(self.dsn)}: "
                                f"{mask(str(exc).strip())[:200]}") from None
        except BaseException:
            conn.close()
            raise
        with self._lock:
            if not conn.closed and len(self._idle) < self.keep:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


@contextlib.contextmanager
def advisory_lock(dsn: str, key: int, holder: str) -> Iterator[None]:
    """Hold a session advisory lock on the server for the block (waiting for it if taken);
    a crashed holder's session ends and the lock with it."""
    with connect(dsn, autocommit=True, application=f"marketops lock {holder}") as conn:
        conn.execute("select pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (key,))


def alter_system(dsn: str, settings: dict[str, str], report: Sequence[str]
                 ) -> tuple[bool, dict[str, str]]:
    """ALTER SYSTEM each setting and reload the configuration: whether any setting now waits
    for a restart, and the live values of the `report` settings."""
    with connect(dsn, autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"alter system set {name} = {literal(value)}".encode())
        conn.execute("select pg_reload_conf()")
        pending = query(conn, "select count(*) from pg_settings where pending_restart")[0][0]
        live = {str(r[0]): str(r[1]) for r in query(
            conn, "select name, setting from pg_settings where name = any(%s)", (list(report),))}
    return bool(pending), live
