"""The repository's cache directory: `.marketops/cache/` under the root, or
MARKETOPS_CACHE_DIR. What is kept there can always be rebuilt from the definitions."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

CACHE_DIR = Path(".marketops") / "cache"


def cache_dir(root: Path) -> Path:
    configured = os.environ.get("MARKETOPS_CACHE_DIR")
    return Path(configured) if configured else root / CACHE_DIR


def ignore_in_git(root: Path, directory: Path) -> None:
    """Keep the default cache directory out of commits (as ruff and pytest do theirs)."""
    if directory != root / CACHE_DIR:
        return
    ignore = directory.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# marketops' cache: never commit it\n*\n")


def write_json(path: Path, data: Any, *, mode: int | None = None, **dump: Any) -> None:
    """Write `data` as JSON to `path` whole or not at all (a temporary file, then rename), so
    a reader never sees half a file; OSError when it cannot."""
    import tempfile  # here: archive_command reads the cache and never writes it

    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, **dump)
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
