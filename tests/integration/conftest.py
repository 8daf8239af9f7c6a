"""Fixtures shared by the backup tests: the marketplace schema with generated rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from engine.ddl import create_all
from engine.validate import validate
from runners.database import connect, execute_script, with_database
from runners.demodata import generate


@pytest.fixture(scope="session")
def market_template(pg_admin_dsn: str, repo_root: Path) -> Iterator[str]:
    """Name of a database holding the 109 declared tables and a little demo data."""
    project = validate(repo_root).project
    name = f"market_{uuid.uuid4().hex[:8]}"
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name}".encode())
    dsn = with_database(pg_admin_dsn, name)
    execute_script(dsn, create_all(s.model for s in project.schemas.values()))
    generate(dsn, [f"{s}.{t}" for s, loaded in project.schemas.items()
                   for t in loaded.model.tables], scale=0.002, seed=5, until=date(2026, 11, 1))
    yield name
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())
