"""The WAL archive's settings compiled into one small file, so archive_command (started by
PostgreSQL once per WAL segment) stores a segment without loading the definitions.

The file names the tier, the destination (its URL and options, secrets as `${VAR}`
references, never their values), the compression and the key's variable, and carries the
sha256 of the files it was compiled from: when marketops.yaml or a backup tier changes, the
file no longer matches and the caller takes the full path (which compiles it again).

Each target of marketops.yaml has its own file (archive.json without one, archive-NAME.json
for target NAME), which also records the target it was compiled for: settings compiled for
one target are never read for another.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from runners.cache.directory import cache_dir, ignore_in_git, write_json

FILE = "archive.json"
FORMAT = 3
# A target's name as marketops.yaml allows it (engine.definitions.models.base.Name): never a
# path of its own, whatever archive_command's argv says.
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def sources(root: Path) -> list[Path]:
    """The files WAL archiving's settings come from."""
    backups = root / "definitions" / "backups"
    found = sorted(backups.iterdir()) if backups.is_dir() else []
    return [root / "marketops.yaml", *(p for p in found if p.suffix in (".yaml", ".yml"))]


def fingerprint(root: Path) -> str:
    """sha256 of the names and contents of `sources(root)`."""
    digest = hashlib.sha256(str(FORMAT).encode())
    for path in sources(root):
        digest.update(b"\x00" + path.name.encode() + b"\x00")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"\x01missing")
    return digest.hexdigest()


@dataclass(frozen=True)
class ArchiveConfig:
    """What wal-push needs, as compiled: nothing here is a secret."""

    tier: str
    destination: str
    url: str  # absolute for file://
    options: dict[str, Any]  # values may be ${VAR}
    codec: str
    level: int
    key_name: str | None = None
    key_ref: str | None = None  # ${VAR} of the key
    process_max: int = 0  # > 0: asynchronous, through the spool, this many at once
    timeout: float = 60.0  # seconds an asynchronous archive_command waits for its file
    spool: str = ""  # absolute
    target: str | None = None  # the target of marketops.yaml these settings are of

    @property
    def archive(self) -> str:
        """Names the archive a spool marker vouches for."""
        return f"{self.url}#{self.tier}"


def file_name(target: str | None) -> str | None:
    """The compiled file of `target`; None for a name no target can have."""
    if target is None:
        return FILE
    return f"archive-{target}.json" if _TARGET.fullmatch(target) else None


def write(root: Path, config: ArchiveConfig) -> bool:
    """Compile `config` for `root`; False when the cache directory cannot be written (the
    full path keeps working, only slower)."""
    directory = cache_dir(root)
    data = {"format": FORMAT, "sources": fingerprint(root), **config.__dict__}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        ignore_in_git(root, directory)
        name = file_name(config.target)
        if name is None:
            return False
        current = directory / name
        with contextlib.suppress(OSError, ValueError):
            if json.loads(current.read_text(encoding="utf-8")) == data:
                return True
        # The server's own user reads it; it holds no secret.
        write_json(current, data, mode=0o644, indent=1)
    except OSError:
        return False
    return True


def read(root: Path, target: str | None = None) -> ArchiveConfig | None:
    """The settings compiled for `target`, or None when missing, unreadable, corrupt, out of
    date or compiled for another target."""
    name = file_name(target)
    if name is None:
        return None
    try:
        data = json.loads((cache_dir(root) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.pop("format", None) != FORMAT \
            or data.pop("sources", None) != fingerprint(root) \
            or data.get("target") != target:
        return None
    try:
        config = ArchiveConfig(**data)
    except TypeError:
        return None
    fields = (config.tier, config.destination, config.url, config.codec)
    if not all(isinstance(f, str) for f in (*fields, config.spool)) \
            or not isinstance(config.level, int) or not isinstance(config.options, dict) \
            or not isinstance(config.process_max, int) \
            or not isinstance(config.timeout, (int, float)):
        return None
    return config


def resolve(value: str, what: str) -> str:
    """`${VAR}` -> its value (a clear error naming the variable when unset), as the full
    path does."""
    match = _ENV_REF.match(value)
    if not match:
        return value
    resolved = os.environ.get(match.group(1))
    if not resolved:
        raise UsageError(f"{what} refers to ${{{match.group(1)}}}, which is not set in the "
                         "environment")
    return resolved


_SETTING = {"key": "access_key_id", "secret": "secret_access_key"}


def resolved_options(config: ArchiveConfig) -> dict[str, Any]:
    """The destination's options with their `${VAR}` read from the environment."""
    return {k: resolve(v, f"destinations.{config.destination}.{_SETTING.get(k, k)}")
            if isinstance(v, str) else v for k, v in config.options.items()}
