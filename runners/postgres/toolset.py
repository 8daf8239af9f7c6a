"""PostgreSQL client tools (pg_dump & co.): where they are, which version, what they can do.

The embedded wheel's tools are built with zlib only (no zstd, no lz4, no TLS); a system or
distribution bin directory may do more. Capabilities are probed, not assumed, and a tool older
than the server it would back up is refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from runners.postgres.tools import Command, PgBaseBackup, PgDump, Program, ToolError, tool_failure

P = TypeVar("P", bound=Program)

__all__ = ["ToolError", "Toolset", "check_server", "discover", "tool_failure"]

TOOLS = ("pg_dump", "pg_dumpall", "pg_restore", "pg_basebackup", "pg_verifybackup",
         "pg_combinebackup", "pg_waldump", "psql")
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")
# pg_dump parses --compress before connecting: probing against a socket directory that does
# not exist fails fast, with a compression error only when the method is unsupported.
_PROBE_DSN = "host=/nonexistent-marketops-probe dbname=probe connect_timeout=1"
_METHODS = ("gzip", "lz4", "zstd")


@dataclass(frozen=True)
class Toolset:
    """The tools of one bin directory."""

    bin_dir: Path
    version: tuple[int, int]
    tools: dict[str, Path]
    compression: frozenset[str]  # pg_dump's --compress methods
    # pg_basebackup's client-side --compress methods (15+; the same build as pg_dump's, but
    # 15's pg_dump predates method names, so each tool is probed on its own).
    basebackup_compression: frozenset[str] = frozenset()

    @property
    def major(self) -> int:
        return self.version[0]

    def path(self, tool: str) -> Path:
        found = self.tools.get(tool)
        if found is None:
            raise ToolError(f"{tool} is not in {self.bin_dir}; set postgres.bin_dir to a "
                            f"PostgreSQL {self.major}+ bin directory that has it")
        return found

    def program(self, kind: type[P]) -> P:
        """One of the tools, to build its command lines: `toolset.program(PgDump)`."""
        return kind(self.path(kind.name), self.major)


def _version(binary: Path) -> tuple[int, int]:
    done = PgDump(binary).version().run(timeout=10)
    if done.returncode != 0:
        raise ToolError(f"cannot run {binary}: {tool_failure(binary.name, done)}")
    out = done.stdout
    match = _VERSION.search(out)
    if not match:
        raise ToolError(f"cannot read the version of {binary} from {out.strip()!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def _supports(probe: Command) -> bool:
    done = probe.run(timeout=30)
    return "compression" not in done.stderr and "--compress" not in done.stderr


def discover(bin_dir: Path) -> Toolset:
    """The tools in `bin_dir`, their version (from pg_dump) and the compression methods of
    pg_dump and pg_basebackup."""
    tools = {name: bin_dir / name for name in TOOLS if (bin_dir / name).is_file()}
    if "pg_dump" not in tools:
        raise ToolError(f"no pg_dump in {bin_dir}; set postgres.bin_dir to a PostgreSQL bin "
                        "directory")
    version = _version(tools["pg_dump"])
    methods = frozenset(m for m in _METHODS if _supports(
        PgDump(tools["pg_dump"]).compression_probe(m, _PROBE_DSN)))
    basebackup = frozenset(m for m in _METHODS if "pg_basebackup" in tools and _supports(
        PgBaseBackup(tools["pg_basebackup"]).compression_probe(m, _PROBE_DSN)))
    return Toolset(bin_dir, version, tools, methods, basebackup)


def check_server(toolset: Toolset, server_version_num: int, *, physical: bool = False
                 ) -> str | None:
    """Why these tools cannot back up a server of this version, or None.

    pg_dump reads older servers but not newer ones; pg_basebackup and its companions work
    with their own major version only.
    """
    server_major = server_version_num // 10000
    if toolset.major < server_major:
        return (f"the tools in {toolset.bin_dir} are PostgreSQL {toolset.major}, older than "
                f"the server ({server_major}); point postgres.bin_dir at PostgreSQL "
                f"{server_major} tools")
    if physical and toolset.major != server_major:
        return (f"pg_basebackup {toolset.major} cannot take base backups of a PostgreSQL "
                f"{server_major} server; use PostgreSQL {server_major} tools for physical tiers")
    return None
