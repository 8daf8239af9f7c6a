"""Fixtures shared by the backup tests: the marketplace schema with generated rows."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from engine.app.roles import apply as apply_roles
from engine.dbschema.ddl import create_all
from engine.definitions.project import Project
from engine.validation.validate import ValidationResult, validate
from runners.demo.data import generate
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect, execute_script, with_database


@pytest.fixture(scope="session")
def validated(repo_root: Path) -> ValidationResult:
    """This repository's definitions, validated once."""
    defs = validate(repo_root)
    assert defs.passed(), [str(f) for f in defs.errors]
    return defs


@pytest.fixture(scope="session")
def project(validated: ValidationResult) -> Project:
    """This repository's definitions, validated once."""
    return validated.project


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
    # As an operator would after `schema apply`: the roles the settings name, granted what
    # they need (roles are the cluster's; the grants are cloned with the template).
    apply_roles(validate(repo_root), dsn)
    yield name
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())


@pytest.fixture(scope="session")
def declared_schema(pg_admin_dsn: str, validated: ValidationResult) -> Iterator[str]:
    """Name of a database holding the declared schema, its roles applied, and no rows, for
    tests to copy (`new_database(declared_schema)`, CREATE DATABASE ... TEMPLATE) instead of
    building the 109 tables again each time. Nothing may connect to it but that copy."""
    name = f"declared_{uuid.uuid4().hex[:8]}"
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"create database {name}".encode())
    dsn = with_database(pg_admin_dsn, name)
    execute_script(dsn, create_all(s.model for s in validated.project.schemas.values()))
    # As an operator would after `schema apply` (reports connect as roles.reports); the
    # grants are cloned with the template.
    apply_roles(validated, dsn)
    yield name
    with connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {name} with (force)".encode())


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on loopback."""
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H",
                               "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def market_dsn(new_database: Callable[..., str], market_template: str) -> str:
    """A fresh copy of the marketplace database."""
    return new_database(market_template)


def copy_repository(repo_root: Path, root: Path, primary_variable: str | None = None) -> Path:
    """This repository's definitions under `root` (so var/ is the test's); optionally with
    the primary DSN read from `primary_variable` instead of the embedded default."""
    root.mkdir(parents=True, exist_ok=True)
    for part in ("schema", "definitions"):
        shutil.copytree(repo_root / part, root / part)
    settings = (repo_root / "marketops.yaml").read_text(encoding="utf-8")
    if primary_variable:
        settings = settings.replace("dsn: embedded ", f"dsn: ${{{primary_variable}}} ")
        assert primary_variable in settings
    (root / "marketops.yaml").write_text(settings, encoding="utf-8")
    return root
