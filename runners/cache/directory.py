"""The repository's cache directory: `.marketops/cache/` under the root, or
MARKETOPS_CACHE_DIR. What is kept there can always be rebuilt from the definitions."""

from __future__ import annotations

import os
from pathlib import Path

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
