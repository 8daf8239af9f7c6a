"""A logical restore that fails after creating its database: dropped and said so, or kept
and named with --keep-on-failure, through the CLI as a DBA runs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

from runners.demo.mailbox import free_port
from runners.postgres.connection import connect
from runners.postgres.embedded import EmbeddedServer
from tests.integration.conftest import copy_repository
from tests.integration.test_backup_leftovers import _cli, _databases

KEY = str(pyrage.x25519.Identity.generate())


@pytest.fixture
def root(tmp_path: Path, repo_root: Path) -> Path:
    return copy_repository(repo_root, tmp_path / "repo", "TEST_PRIMARY_DSN")


@pytest.fixture
def env(market_dsn: str) -> dict[str, str]:
    return {**os.environ, "TEST_PRIMARY_DSN": market_dsn, "MARKETOPS_BACKUP_KEY": KEY}


@pytest.fixture
def other_server(tmp_path: Path) -> Iterator[str]:
    """A second server whose template1 already holds a `users` schema, as a DBA's
    customised template can: every database created there clashes with the dump's."""
    server = EmbeddedServer(tmp_path / "other", free_port(), "postgres")
    server.start()
    try:
        with connect(server.dsn("template1"), autocommit=True) as conn:
            conn.execute("create schema users")
        yield server.dsn("postgres")
    finally:
        server.stop()


def test_a_restore_failing_after_create_drops_its_database_or_keeps_it_when_asked(
        root: Path, env: dict[str, str], other_server: str) -> None:
    made = _cli(root, env, "run", "backup/users_schema")
    assert made.returncode == 0, made.stdout + made.stderr
    before = _databases(other_server)

    dropped = _cli(root, env, "restore", "--tier", "users_schema", "--into-database",
                   "r_clash", "--dsn", other_server)
    assert dropped.returncode != 0, dropped.stdout
    assert "Traceback" not in dropped.stderr, dropped.stderr
    lines = dropped.stderr.strip().splitlines()
    assert len(lines) == 1, dropped.stderr
    assert "cannot restore users_schema/" in lines[0] and "into database r_clash" in lines[0]
    assert "copied from template1" in lines[0], lines[0]  # not "restore into a new database"
    assert lines[0].endswith("; dropped database r_clash (keep it with --keep-on-failure)")
    assert _databases(other_server) == before

    kept = _cli(root, env, "restore", "--tier", "users_schema", "--into-database", "r_clash",
                "--dsn", other_server, "--keep-on-failure")
    assert kept.returncode == dropped.returncode, kept.stderr
    assert "Traceback" not in kept.stderr, kept.stderr
    assert "kept database r_clash as it is (--keep-on-failure)" in kept.stderr, kept.stderr
    assert _databases(other_server) == before | {"r_clash"}
