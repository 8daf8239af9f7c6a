"""The PostgreSQL programs' command lines: built in runners/postgres/tools.py only, the password
never in argv."""

from __future__ import annotations

import ast
from pathlib import Path

import runners.postgres.tools as pgcommands
from runners.postgres.tools import (
    PgBaseBackup,
    PgCombineBackup,
    PgCtl,
    PgDump,
    PgRestore,
    PgVerifyBackup,
    PgWalDump,
    Psql,
)
from runners.postgres.toolset import TOOLS

ROOT = Path(__file__).resolve().parents[2]
DSN = "postgresql://backup:s3cret-pw@db.internal:5432/shop"
BIN = Path("/usr/lib/postgresql/18/bin")
PROGRAMS = {*TOOLS, "pg_ctl", "initdb", "pg_isready", "postgres"}
_SPAWN = {"run", "Popen", "call", "check_call", "check_output"}


def test_the_password_goes_to_the_environment_never_to_argv() -> None:
    command = PgDump(BIN / "pg_dump", 18).directory_dump(
        DSN, Path("/tmp/d"), jobs=2, snapshot="00000003-1", compress="--compress=0",
        schemas=["orders"], exclude_data=["orders.big", "analytics.events"])
    assert "s3cret-pw" not in " ".join(command.argv)
    assert command.env == {"PGPASSWORD": "s3cret-pw"}
    assert "s3cret-pw" not in command.where
    assert command.argv[0] == str(BIN / "pg_dump")
    assert "--schema=orders" in command.argv
    # sorted, so the same definitions give the same command
    assert [a for a in command.argv if a.startswith("--exclude-table-data")] == [
        "--exclude-table-data=analytics.events", "--exclude-table-data=orders.big"]
    assert command.argv[-1].startswith("--dbname=") and "db.internal" in command.argv[-1]


def test_psql_gets_the_application_name_and_the_password_by_environment() -> None:
    command = Psql(BIN / "psql").script(DSN, "marketops report/growth")
    assert command.env == {"PGAPPNAME": "marketops report/growth", "PGPASSWORD": "s3cret-pw"}
    assert "s3cret-pw" not in " ".join(command.argv)
    assert command.argv[1:5] == ("-X", "-q", "-v", "ON_ERROR_STOP=1")
    assert command.argv[5].startswith("--dbname=")


def test_compression_options() -> None:
    assert PgDump.compress_option(None) == "--compress=0"
    assert PgDump.compress_option("zstd", 3) == "--compress=zstd:3"
    assert PgBaseBackup.compress_option("gzip", 6, 2) == "client-gzip:level=6"
    assert PgBaseBackup.compress_option("gzip", 0, 2) is None  # gzip takes 1-9 only
    assert PgBaseBackup.compress_option("zstd", 9, 4) == "client-zstd:level=9,workers=4"


def test_base_backup_incremental_and_verify() -> None:
    tool = PgBaseBackup(BIN / "pg_basebackup", 18)
    full = tool.tar_backup(DSN, Path("/w/base"), label="marketops t/1", compress=None,
                           incremental=None)
    incremental = tool.tar_backup(DSN, Path("/w/base"), label="marketops t/2",
                                  compress="client-gzip:level=1",
                                  incremental=Path("/w/parent_manifest"))
    assert not any(a.startswith("--incremental") for a in full.argv)
    assert "--incremental=/w/parent_manifest" in incremental.argv
    assert "--compress=client-gzip:level=1" in incremental.argv
    verify = PgVerifyBackup(BIN / "pg_verifybackup").verify(Path("/w/base"), parse_wal=False)
    assert verify.argv[1:] == ("--no-parse-wal", "--quiet", "/w/base")
    combine = PgCombineBackup(BIN / "pg_combinebackup").combine(
        [Path("/w/a"), Path("/w/b")], Path("/w/out"))
    assert combine.argv[1:] == ("/w/a", "/w/b", "--output", "/w/out", "--no-sync")


def test_restore_and_wal_and_server_control() -> None:
    restore = PgRestore(BIN / "pg_restore").restore(Path("/w/dump"), DSN, jobs=3,
                                                    use_list=Path("/w/list"))
    assert "--use-list=/w/list" in restore.argv and "--jobs=3" in restore.argv
    assert "--use-list" not in " ".join(PgRestore(BIN / "pg_restore").restore(
        Path("/w/dump"), DSN, jobs=1, use_list=None).argv)
    wal = PgWalDump(BIN / "pg_waldump").check_range(Path("/w/wal"), 1, "0/2000028", "0/3000000")
    assert wal.argv[1:] == ("--quiet", "--path=/w/wal", "--timeline=1", "--start=0/2000028",
                            "--end=0/3000000")
    ctl = PgCtl(BIN / "pg_ctl")
    assert ctl.stop(Path("/d"), wait=60).argv[1:] == ("stop", "-D", "/d", "-m", "fast", "-w",
                                                      "-t", "60")
    assert ctl.stop_line(Path("/d")) == f"{BIN / 'pg_ctl'} stop -D /d"


def _spawns(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute) and node.func.attr in _SPAWN
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "subprocess"]


def test_only_pgcommands_builds_a_postgresql_command_line() -> None:
    """Every other process started in engine/ and runners/ is a literal argv of a program
    that is not PostgreSQL's (git, useradd), or Python itself (the staging watcher)."""
    offenders = []
    for path in sorted([*ROOT.glob("engine/**/*.py"), *ROOT.glob("runners/**/*.py")]):
        if path == Path(pgcommands.__file__).resolve():
            continue
        for call in _spawns(ast.parse(path.read_text(encoding="utf-8"))):
            argv = call.args[0] if call.args else None
            first = argv.elts[0] if isinstance(argv, ast.List) and argv.elts else None
            python = isinstance(first, ast.Attribute) and first.attr == "executable" and \
                isinstance(first.value, ast.Name) and first.value.id == "sys"
            if not python and not (isinstance(first, ast.Constant)
                                   and isinstance(first.value, str)
                                   and first.value not in PROGRAMS):
                offenders.append(f"{path.relative_to(ROOT)}:{call.lineno}")
    assert offenders == []


def test_the_check_above_finds_a_hand_built_command_line() -> None:
    tree = ast.parse('import subprocess\nsubprocess.run([str(bin_dir / "pg_dump"), "-V"])\n')
    call = _spawns(tree)[0]
    first = call.args[0].elts[0]  # type: ignore[attr-defined]
    assert not isinstance(first, ast.Constant)
