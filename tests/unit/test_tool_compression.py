"""Who compresses a base backup's tars: pg_basebackup, when its build has the tier's codec
and the verifier can read the result; otherwise the engine."""

from pathlib import Path

import pytest

from runners.backup.physical import tool_compression
from runners.postgres.toolset import Toolset
from runners.storage.sealing import Sealing


def _tools(major: int, dump: set[str], basebackup: set[str]) -> Toolset:
    return Toolset(Path(f"/usr/lib/postgresql/{major}/bin"), (major, 0), {},
                   frozenset(dump), frozenset(basebackup))


WHEEL_18 = _tools(18, {"gzip"}, {"gzip"})  # the embedded wheel: zlib only
PGDG_18 = _tools(18, {"gzip", "lz4", "zstd"}, {"gzip", "lz4", "zstd"})
DEBIAN_15 = _tools(15, set(), {"gzip", "lz4", "zstd"})  # 15's pg_dump names no methods


@pytest.mark.parametrize(("sealing", "tools", "verifier", "expected"), [
    (Sealing("zstd", 3), PGDG_18, PGDG_18, "client-zstd:level=3,workers=2"),
    (Sealing("zstd", 9, threads=4), PGDG_18, None, "client-zstd:level=9,workers=4"),
    (Sealing("gzip", 1), WHEEL_18, WHEEL_18, "client-gzip:level=1"),
    (Sealing("zstd", 3), WHEEL_18, WHEEL_18, None),  # the wheel's pg_basebackup lacks zstd
    (Sealing("zstd", 3), DEBIAN_15, WHEEL_18, None),  # its verifier cannot read .tar.zst
    (Sealing("zstd", 3), DEBIAN_15, None, "client-zstd:level=3,workers=2"),  # unverified
    (Sealing("gzip", 0), WHEEL_18, WHEEL_18, None),  # gzip levels are 1-9 in pg_basebackup
    (Sealing("none", 0), PGDG_18, PGDG_18, None),
], ids=["pgdg-zstd", "unverified-zstd", "wheel-gzip", "wheel-zstd", "15-verified",
        "15-unverified", "gzip-0", "none"])
def test_who_compresses(sealing: Sealing, tools: Toolset, verifier: Toolset | None,
                        expected: str | None) -> None:
    assert tool_compression(sealing, tools, verifier) == expected


def test_encryption_does_not_change_who_compresses() -> None:
    sealed = Sealing("zstd", 3, key_name="k", key="age1example")
    assert tool_compression(sealed, PGDG_18, PGDG_18) == "client-zstd:level=3,workers=2"
