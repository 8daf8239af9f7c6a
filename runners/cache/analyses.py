"""validate's cache on disk: the SQL analyses of the last run, under the repository's cache
directory (`.marketops/cache/`, or MARKETOPS_CACHE_DIR).

One JSON file, replaced atomically. A missing, unreadable or corrupt file is an empty cache;
a directory that cannot be written (a read-only checkout in CI) only means no cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

from engine.validation.sqlmemo import FORMAT, SqlMemo
from runners.cache.directory import cache_dir, ignore_in_git, write_json

FILE = "sql-analyses.json"
# The modules whose code decides an analysis: a change to any of them is a new checker.
_CHECKER_MODULES = ("engine.validation.sqlcheck", "engine.validation.sqltypes",
                    "engine.dbschema.pgnames", "engine.validation.sqlmemo")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def tool_fingerprint() -> str:
    """marketops' and sqlglot's versions and the checker's own source, hashed: an edit to the
    checker (even without a version bump) invalidates every entry."""
    digest = hashlib.sha256(f"{FORMAT}:{_version('marketops')}:{_version('sqlglot')}".encode())
    for name in _CHECKER_MODULES:
        spec = importlib.util.find_spec(name)  # finds the file without importing sqlglot
        origin = spec.origin if spec is not None else None
        digest.update(name.encode())
        digest.update(Path(origin).read_bytes() if origin else b"?")
    return digest.hexdigest()


def open_memo(root: Path) -> SqlMemo:
    """A memo over the entries saved by the last run of this checker (none when unreadable)."""
    tool = tool_fingerprint()
    entries: dict[str, Any] = {}
    try:
        data = json.loads((cache_dir(root) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if isinstance(data, dict) and data.get("tool") == tool \
            and isinstance(data.get("entries"), dict):
        entries = data["entries"]
    return SqlMemo(entries, tool)


def save_memo(root: Path, memo: SqlMemo, *, prune: bool = True) -> bool:
    """Keep what this run used; with `prune` (a whole validate) drop what it no longer
    reads, without (one job's check) keep the other entries too. False when the cache
    directory cannot be written."""
    if not memo.changed if prune else not memo.misses:
        return True
    entries = memo.used if prune else {**memo.entries, **memo.used}
    directory = cache_dir(root)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        ignore_in_git(root, directory)
        write_json(directory / FILE, {"tool": memo.tool, "entries": entries},
                   separators=(",", ":"))
    except OSError:
        return False
    return True
