"""validate's whole-run memo: the output of the last runs, replayed while none of their
inputs changed, without importing pydantic, sqlglot or the definition models.

One JSON file under the cache directory (next to sql-analyses.json), replaced atomically.
An entry is keyed by the command's arguments and the tool's fingerprint (the engine's own
source and the versions of the libraries that decide a finding), and holds the journal of
the inputs the loader read (engine.definitions.journal): the entry is replayed only when
every one of those observes the same again. A missing, corrupt or unwritable file is only a
miss; nothing here can change what validate finds.

Kept light on purpose: it is imported before anything heavy on every validate.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from engine.definitions.journal import unchanged
from runners.cache.directory import cache_dir, ignore_in_git, write_json

FILE = "validate-runs.json"
# Bumped when the layout below changes.
FORMAT = 1
# Enough for text locally, github and json in CI, and a target or two.
_KEEP = 8
# The libraries whose behaviour a finding depends on, by distribution name as pip writes it
# in *.dist-info (normalised: lowercase, '-' as '_').
_DISTRIBUTIONS = frozenset({"pydantic", "pydantic_core", "sqlglot", "croniter", "pyyaml",
                            "tzdata", "python_dateutil", "click", "marketops"})
_PACKAGES = (Path(__file__).resolve().parents[2] / "engine",
             Path(__file__).resolve().parent)


def _sources(digest: Any) -> None:
    """Every source file of the engine (and of this cache), by path and content: any edit to
    the code that finds or renders a finding is a new tool."""
    for package in _PACKAGES:
        for folder, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith((".py", ".sql")):
                    path = os.path.join(folder, name)
                    digest.update(path.encode())
                    with open(path, "rb") as handle:
                        digest.update(handle.read())


def _versions() -> list[str]:
    """The installed versions of _DISTRIBUTIONS, from the *.dist-info folder names on
    sys.path (cheaper than importing importlib.metadata)."""
    found = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                project = name.removesuffix(".dist-info").rsplit("-", 1)[0]
                if project.lower().replace("-", "_").replace(".", "_") in _DISTRIBUTIONS:
                    found.append(f"{entry}/{name}")
    return sorted(found)


def tool_fingerprint() -> str:
    digest = hashlib.sha256(f"{FORMAT}:{sys.version}".encode())
    _sources(digest)
    digest.update("\n".join(_versions()).encode())
    return digest.hexdigest()


def run_key(arguments: dict[str, object], tool: str) -> str:
    """The key of one invocation: what it was asked, by which tool."""
    text = json.dumps([arguments, tool], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _read(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((cache_dir(root) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or not isinstance(data.get("runs"), dict):
        return {}
    runs: dict[str, Any] = data["runs"]
    return runs


def replay(root: Path, key: str) -> tuple[str, int] | None:
    """The output and exit code of the run saved under `key`, when all its inputs are as
    they were; None otherwise (never saved, changed, or an unreadable entry)."""
    entry = _read(root).get(key)
    if not isinstance(entry, dict):
        return None
    output, code, journal = entry.get("output"), entry.get("code"), entry.get("journal")
    if not isinstance(output, str) or not isinstance(code, int) or isinstance(code, bool) \
            or not isinstance(journal, dict) or not journal:
        return None
    try:
        if not unchanged(journal):
            return None
    except (OSError, ValueError, TypeError):
        return None
    return output, code


def remember(root: Path, key: str, journal: dict[str, object], output: str, code: int
             ) -> bool:
    """Save this run's output under `key`, keeping the latest few others; False when the
    cache directory cannot be written."""
    runs = {k: v for k, v in _read(root).items() if k != key}
    runs[key] = {"journal": journal, "output": output, "code": code}
    runs = dict(list(runs.items())[-_KEEP:])
    directory = cache_dir(root)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        ignore_in_git(root, directory)
        write_json(directory / FILE, {"format": FORMAT, "runs": runs}, separators=(",", ":"))
    except OSError:
        return False
    return True
