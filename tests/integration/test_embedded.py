"""The embedded server: started, reused, stopped, and clear about what is wrong."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from engine.errors import EmbeddedServerError
from runners.postgres.connection import connect
from runners.postgres.embedded import EmbeddedServer
from tests.conftest import free_port


def test_start_reuse_stop(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pg", free_port())
    assert server.start() is True
    try:
        assert server.is_running()
        assert server.start() is False  # reused, not started twice
        with connect(server.dsn("postgres")) as conn:
            version = conn.execute("show server_version_num").fetchone()
            assert version is not None and int(version[0]) >= 180000
            settings = dict(conn.execute(
                "select name, setting from pg_settings where name in "
                "('wal_level', 'summarize_wal', 'listen_addresses')").fetchall())
            assert settings == {"wal_level": "replica", "summarize_wal": "on",
                                "listen_addresses": "127.0.0.1"}
    finally:
        assert server.stop() is True
    assert not server.is_running()
    assert server.stop() is False
    assert server.start() is True  # the same data directory starts again
    server.stop()


def test_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedServer(tmp_path / "pg", port)
        with pytest.raises(EmbeddedServerError, match=f"port {port} on 127.0.0.1 is used"):
            server.start()


def test_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "notes.txt").write_text("mine")
    with pytest.raises(EmbeddedServerError, match="not empty but holds no PostgreSQL"):
        EmbeddedServer(tmp_path / "pg", free_port()).start()
    assert (tmp_path / "pg" / "notes.txt").read_text() == "mine"


def test_stale_lock_file_after_a_crash_is_recovered(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "pg", free_port())
    server.start()
    server.stop()
    # What a crash leaves behind: a postmaster.pid naming a process that no longer exists.
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = server.data_dir / "postmaster.pid"
    pid_file.write_text(f"{dead.pid}\n{server.data_dir}\n0\n{server.port}\n\n127.0.0.1\n"
                        "0 0\nready\n")
    assert not server.is_running()
    try:
        assert server.start() is True
        assert server.is_running()
    finally:
        server.stop()
