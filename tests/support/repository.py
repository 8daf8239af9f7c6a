"""This repository's own definitions, copied for a test to change."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def definitions_copy(target: Path) -> Path:
    """marketops.yaml, schema/ and definitions/ of this repository under `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("marketops.yaml", "schema", "definitions"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy(source, target / name)
    return target
