"""One class per PostgreSQL program, the only place their command lines are built.

Each method returns a `Command` (argv and environment) for the program's version; running it
is `Command.run` or `Command.start`. A DSN's password goes through PGPASSWORD, never argv, so
it cannot show in `ps` or in an error. barman's `command_wrappers.py` is the model.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from engine.errors import MarketopsError


class ToolError(MarketopsError):
    """A PostgreSQL tool is missing, too old, or lacks what a tier needs."""


@dataclass(frozen=True)
class Command:
    """A command line ready to run: argv, the variables it adds to the environment, and a
    masked description of what it talks to, for error messages."""

    tool: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    where: str = ""

    def _environment(self) -> dict[str, str] | None:
        return {**os.environ, **self.env} if self.env else None

    def run(self, *, timeout: float | None = None, cwd: Path | None = None,
            input: str | None = None, as_user: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run to its end, output captured; `as_user` runs it as that user and its group."""
        try:
            return subprocess.run(list(self.argv), capture_output=True, text=True,
                                  timeout=timeout, check=False, env=self._environment(),
                                  cwd=cwd, input=input, user=as_user, group=as_user,
                                  extra_groups=[] if as_user else None)
        except subprocess.TimeoutExpired:
            raise ToolError(f"{self.tool} did not finish within {timeout:.0f}s") from None
        except OSError as exc:
            where = f" ({self.where})" if self.where else ""
            raise ToolError(f"cannot run {self.tool}{where}: {exc.strerror}") from None

    def start(self) -> subprocess.Popen[str]:
        """Start in the background, stdout discarded and stderr captured; killed if this
        process dies while it runs."""
        from runners.storage import guard

        try:
            # A group of its own: the watcher can kill it with its workers (pg_dump -j).
            process = subprocess.Popen(list(self.argv), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True,
                                       env=self._environment(), process_group=0)
        except OSError as exc:
            raise ToolError(f"cannot run {self.tool}: {exc.strerror}") from None
        guard.watch(process)  # killed with us: an orphan would go on writing plaintext
        return process


def tool_failure(tool: str, done: subprocess.CompletedProcess[str]) -> str:
    """The last meaningful lines of a failed tool's stderr, on one line."""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return f"{tool} failed (exit {done.returncode}): " + " | ".join(lines[-3:])[:600]


@dataclass(frozen=True)
class Program:
    """A program of one PostgreSQL major version (0: not known yet)."""

    name: ClassVar[str]
    binary: Path
    major: int = 0

    def command(self, args: Iterable[str], *, dsn: str | None = None) -> Command:
        argv = [str(self.binary), *args]
        env: dict[str, str] = {}
        where = str(self.binary.parent)
        if dsn is not None:
            # Imported here: psycopg is slow to import, and wal-push runs once per segment.
            from runners.postgres.connection import mask_dsn, without_password

            bare, password = without_password(dsn)
            argv.append(f"--dbname={bare}")
            if password:
                env["PGPASSWORD"] = password
            where = mask_dsn(dsn)
        return Command(self.binary.name, tuple(argv), env, where)

    def version(self) -> Command:
        """`--version`, which every PostgreSQL program answers."""
        return self.command(["--version"])

    def probe(self, args: Sequence[str], probe_dsn: str) -> Command:
        """The command line with a DSN that cannot connect: the options are parsed, and
        refused or not, before any connection is tried."""
        return Command(self.binary.name, (str(self.binary), *args, "--dbname", probe_dsn))


class PgDump(Program):
    """pg_dump."""

    name = "pg_dump"

    @staticmethod
    def compress_option(method: str | None, level: int = 0) -> str:
        """--compress for `method` at `level`; None: no compression."""
        return f"--compress={method}:{level}" if method else "--compress=0"

    def compression_probe(self, method: str, probe_dsn: str) -> Command:
        return self.probe([self.compress_option(method, 1), "--format=custom"], probe_dsn)

    def directory_dump(self, dsn: str, out: Path, *, jobs: int, snapshot: str, compress: str,
                       schemas: Sequence[str], exclude_data: Iterable[str]) -> Command:
        """A directory-format dump in an exported snapshot, naming each table's data file as
        it finishes it (--verbose), unsynced (the engine syncs what it stores)."""
        args = ["--format=directory", f"--jobs={jobs}", f"--file={out}",
                f"--snapshot={snapshot}", "--no-sync", compress]
        args += [f"--schema={s}" for s in schemas]
        args += [f"--exclude-table-data={t}" for t in sorted(exclude_data)]
        return self.command([*args, "--verbose"], dsn=dsn)


class PgRestore(Program):
    """pg_restore."""

    name = "pg_restore"

    def table_of_contents(self, dump: Path) -> Command:
        return self.command(["--list", str(dump)])

    def restore(self, dump: Path, dsn: str, *, jobs: int, use_list: Path | None) -> Command:
        """Into an existing database, owners not restored, stopping at the first error."""
        args = ["--no-owner", f"--jobs={jobs}", "--exit-on-error"]
        if use_list is not None:
            args.append(f"--use-list={use_list}")
        return self.command([*args, str(dump)], dsn=dsn)


class PgBaseBackup(Program):
    """pg_basebackup."""

    name = "pg_basebackup"

    @staticmethod
    def compress_option(method: str, level: int, threads: int) -> str | None:
        """Client-side compression for `method` at `level`, or None when the tool cannot
        take that level (gzip: 1-9)."""
        if method == "gzip":
            return f"client-gzip:level={level}" if 1 <= level <= 9 else None
        if method == "zstd":
            return f"client-zstd:level={level},workers={threads}"
        return f"client-{method}:level={level}"

    def compression_probe(self, method: str, probe_dsn: str) -> Command:
        return self.probe([f"--compress=client-{method}:1", "--format=tar",
                           "--pgdata=/nonexistent-marketops-probe"], probe_dsn)

    def tar_backup(self, dsn: str, target: Path, *, label: str, compress: str | None,
                   incremental: Path | None) -> Command:
        """Tar format with WAL streamed beside it, a fast checkpoint, a CRC32C manifest."""
        args = ["--pgdata", str(target), "--format=tar", "--wal-method=stream",
                "--checkpoint=fast", "--manifest-checksums=CRC32C", "--no-sync",
                f"--label={label}"]
        if compress is not None:
            args.append(f"--compress={compress}")
        if incremental is not None:
            args.append(f"--incremental={incremental}")
        return self.command(args, dsn=dsn)


class PgVerifyBackup(Program):
    """pg_verifybackup."""

    name = "pg_verifybackup"

    def verify(self, backup: Path, *, parse_wal: bool) -> Command:
        return self.command([*([] if parse_wal else ["--no-parse-wal"]), "--quiet",
                             str(backup)])


class PgCombineBackup(Program):
    """pg_combinebackup (17+)."""

    name = "pg_combinebackup"

    def combine(self, chain: Sequence[Path], output: Path) -> Command:
        """A full backup and its incrementals, oldest first, into one data directory."""
        return self.command([*map(str, chain), "--output", str(output), "--no-sync"])


class PgWalDump(Program):
    """pg_waldump."""

    name = "pg_waldump"

    def check_range(self, directory: Path, timeline: int, start: str, end: str) -> Command:
        """Read every record from `start` to `end`, printing nothing: it fails where one
        does not parse."""
        return self.command(["--quiet", f"--path={directory}", f"--timeline={timeline}",
                             f"--start={start}", f"--end={end}"])


class Psql(Program):
    """psql."""

    name = "psql"

    def script(self, dsn: str, application: str) -> Command:
        """A script read from standard input, without psqlrc, stopping at the first error."""
        command = self.command(["-X", "-q", "-v", "ON_ERROR_STOP=1"], dsn=dsn)
        return replace(command, env={"PGAPPNAME": application, **command.env})


class InitDb(Program):
    """initdb."""

    name = "initdb"

    def init(self, data_dir: Path, superuser: str) -> Command:
        """A UTF-8 cluster with data checksums and trust authentication (the embedded
        server listens on loopback only)."""
        return self.command(["-D", str(data_dir), "-U", superuser, "--auth=trust",
                             "--encoding=UTF8", "--locale=C.UTF-8", "--data-checksums"])


class PgCtl(Program):
    """pg_ctl."""

    name = "pg_ctl"

    def status(self, data_dir: Path) -> Command:
        return self.command(["status", "-D", str(data_dir)])

    def start(self, data_dir: Path, log_file: Path, options: str, *, wait: int) -> Command:
        return self.command(["start", "-D", str(data_dir), "-w", "-t", str(wait), "-l",
                             str(log_file), "-o", options])

    def stop(self, data_dir: Path, *, wait: int) -> Command:
        return self.command(["stop", "-D", str(data_dir), "-m", "fast", "-w", "-t", str(wait)])

    def stop_line(self, data_dir: Path) -> str:
        """The stop command as a line for a person to run."""
        return f"{self.binary} stop -D {data_dir}"


class PgIsReady(Program):
    """pg_isready."""

    name = "pg_isready"

    def check(self, host: str, port: int, database: str, user: str) -> Command:
        return self.command(["-h", host, "-p", str(port), "-d", database, "-U", user])
