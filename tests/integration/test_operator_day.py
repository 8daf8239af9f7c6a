"""The new user's and the on-call engineer's day, through the installed command: the demo's
port, progress lines, the demo key after the demo, and what a failing delivery says."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.conftest import copy_repository
from tests.integration.test_cli import MARKETOPS


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: no MARKETOPS_* from this test process unless given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    return subprocess.run([MARKETOPS, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**clean, **(env or {})}, check=False)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _with_port(root: Path, port: int) -> None:
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + f"embedded:\n  port: {port}\n")


def test_a_taken_port_moves_the_server_and_later_commands_find_it(
        tmp_path: Path, repo_root: Path, taken_port: int) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    _with_port(root, taken_port)
    try:
        started = run("db", "start", cwd=root)
        assert started.returncode == 0, started.stderr
        assert f"port {taken_port} on 127.0.0.1 is taken by another program" in started.stderr
        moved = int(started.stderr.split("uses port ")[1].split()[0])
        assert moved != taken_port
        assert f"127.0.0.1:{moved}/" in started.stdout
        # Each later command finds the same server, running or not.
        assert run("db", "dsn", cwd=root).stdout.strip().endswith(f":{moved}/marketplace")
        status = run("db", "status", cwd=root)
        assert status.returncode == 0 and f":{moved}/" in status.stdout
        assert run("db", "stop", cwd=root).stdout.strip() == "stopped"
        assert f":{moved}/" in run("db", "status", cwd=root).stdout
        again = run("db", "start", cwd=root)
        assert again.returncode == 0 and f":{moved}/" in again.stdout, again.stderr
    finally:
        run("db", "stop", cwd=root)


def test_an_asked_for_port_is_used_and_a_taken_one_is_refused(
        tmp_path: Path, repo_root: Path, taken_port: int) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    _with_port(root, free_port())
    refused = run("db", "start", cwd=root, env={"MARKETOPS_EMBEDDED_PORT": str(taken_port)})
    assert refused.returncode != 0
    assert f"port {taken_port} on 127.0.0.1 is used by another program" in refused.stderr
    assert "MARKETOPS_EMBEDDED_PORT" in refused.stderr and "Traceback" not in refused.stderr
    wanted = free_port()
    try:
        started = run("db", "start", cwd=root, env={"MARKETOPS_EMBEDDED_PORT": str(wanted)})
        assert started.returncode == 0 and f":{wanted}/" in started.stdout, started.stderr
        assert f":{wanted}/" in run("db", "dsn", cwd=root).stdout
    finally:
        run("db", "stop", cwd=root)
    bad = run("db", "dsn", cwd=root, env={"MARKETOPS_EMBEDDED_PORT": "eighty"})
    assert bad.returncode != 0 and "MARKETOPS_EMBEDDED_PORT=eighty is not a port" in bad.stderr


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal, as a person at a shell sees it."""
    import pty

    master, slave = pty.openpty()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    process = subprocess.Popen([MARKETOPS, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=slave, env={**clean, "TERM": "xterm", "COLUMNS": "100"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_demo_data_shows_progress_on_a_terminal_and_plain_lines_elsewhere(
        new_database: Callable[..., str], tmp_path: Path, repo_root: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    dsn = new_database()
    plain = run("demo-data", "--dsn", dsn, "--scale", "0.0005", cwd=root)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stderr.splitlines()
    assert lines[0] == "demo data (scale 0.0005) ..."
    assert lines[1].startswith("demo data (scale 0.0005): ") and " rows in 109 tables (" in \
        lines[1] and lines[1].endswith("s)")
    assert "\x1b[" not in plain.stderr  # no terminal codes in a log
    code, screen = _on_a_terminal(["demo-data", "--dsn", dsn, "--scale", "0.0005"], root)
    assert code == 0, screen
    from runners.demodata import steps

    assert "\x1b[" in screen and f"/{len(steps())} steps" in screen  # a live bar
    assert " rows in 109 tables (" in screen
