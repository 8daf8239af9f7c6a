"""archive_command's fast path: the compiled settings, used only while they match the
definitions, storing exactly what `marketops wal-push` stores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyrage
import pytest

from engine.app.tiers.backup import archive_command
from tests.support.repository import definitions_copy

KEY = str(pyrage.x25519.Identity.generate())
HEAVY = ("pydantic", "sqlglot", "click", "engine.definitions.loader", "psycopg", "fsspec",
         "logging")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return definitions_copy(tmp_path / "repo")


def segment(directory: Path, name: str, seed: bytes) -> Path:
    path = directory / name
    path.write_bytes(seed * (1 << 14))
    return path


def push(root: Path, path: Path, key: str | None = KEY, target: str | None = None
         ) -> tuple[int, str, set[str]]:
    """archive_command as PostgreSQL runs it (with `--target` when given); its exit code,
    stderr and the heavy modules it imported (from -X importtime)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MARKETOPS_BACKUP_KEY", "MARKETOPS_CACHE_DIR")}
    if key is not None:
        env["MARKETOPS_BACKUP_KEY"] = key
    chosen = ["--target", target] if target is not None else []
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "engine.app.walpush",
                           "--root", str(root), *chosen, str(path)], capture_output=True,
                          text=True,
                          env=env, cwd=path.parent, timeout=300)
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    messages = "\n".join(line for line in done.stderr.splitlines()
                         if not line.startswith("import time:"))
    return done.returncode, messages, {m for m in imported if m.split(".")[0] in
                                       {h.split(".")[0] for h in HEAVY} and
                                       any(m == h or m.startswith(h + ".") for h in HEAVY)}


def fetch(root: Path, name: str, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root),
                           "wal-fetch", name, str(target)], capture_output=True, text=True,
                          env={**os.environ, "MARKETOPS_BACKUP_KEY": KEY}, timeout=300)


def test_the_archive_command_is_the_fast_entry_point(root: Path) -> None:
    assert "-m engine.app.walpush --root" in archive_command(root)
    assert archive_command(root, "prod").endswith(' --target "prod" "%p"')
    assert "-m engine.app.walpush --root" in archive_command(root, "prod")


def test_compiled_once_then_pushed_without_the_definitions(root: Path, tmp_path: Path) -> None:
    config = root / ".marketops/cache/archive.json"
    first = segment(tmp_path, "000000010000000000000001", b"first---")
    code, err, heavy = push(root, first)
    assert code == 0, err
    assert "pydantic" in heavy  # no compiled settings yet: the full path, which compiles them
    assert config.exists()
    text = config.read_text()
    assert KEY not in text and "${MARKETOPS_BACKUP_KEY}" in text
    assert json.loads(text)["tier"] == "wal_archive"

    second = segment(tmp_path, "000000010000000000000002", b"second--")
    code, err, heavy = push(root, second)
    assert code == 0, err
    assert heavy == set(), f"the fast path imported {sorted(heavy)}"
    stored = list((root / "var/backups/wal_archive").rglob("000000010000000000000002-*"))
    assert len(stored) == 1 and stored[0].name.endswith(".zst.age")
    assert second.read_bytes() not in stored[0].read_bytes()  # sealed, not in the clear
    restored = tmp_path / "restored"
    done = fetch(root, second.name, restored)
    assert done.returncode == 0, done.stderr
    assert restored.read_bytes() == second.read_bytes()
    # Pushed again, identical: a no-op; a different file of that name: refused.
    assert push(root, second)[0] == 0
    second.write_bytes(b"other---" * (1 << 14))
    code, err, heavy = push(root, second)
    assert code == 1 and "different file of that name is already archived" in err
    assert "Traceback" not in err and heavy == set()


def test_changed_settings_or_tiers_are_never_read_from_a_stale_compile(root: Path,
                                                                       tmp_path: Path) -> None:
    assert push(root, segment(tmp_path, "000000010000000000000003", b"a-------"))[0] == 0
    tier = root / "definitions/backups/wal_archive.yaml"
    original = tier.read_text()
    # The archive moves to another destination: the compiled file must not be used.
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text().replace(
        "  audit-vault:", "  moved:\n    url: file://./var/moved\n  audit-vault:"))
    tier.write_text(original.replace("destination: backups", "destination: moved"))
    assert "destination: moved" in tier.read_text()
    code, err, heavy = push(root, segment(tmp_path, "000000010000000000000004", b"b-------"))
    assert code == 0, err
    assert "pydantic" in heavy
    assert list((root / "var/moved/wal_archive").rglob("000000010000000000000004-*"))
    assert not list((root / "var/backups").rglob("000000010000000000000004-*"))
    # Compiled again by that run: the next segment takes the fast path to the new place.
    code, err, heavy = push(root, segment(tmp_path, "000000010000000000000005", b"c-------"))
    assert code == 0 and heavy == set(), err
    assert list((root / "var/moved/wal_archive").rglob("000000010000000000000005-*"))


def test_a_missing_key_is_one_line_and_nothing_is_stored(root: Path, tmp_path: Path) -> None:
    assert push(root, segment(tmp_path, "000000010000000000000006", b"d-------"))[0] == 0
    path = segment(tmp_path, "000000010000000000000007", b"e-------")
    code, err, heavy = push(root, path, key=None)
    assert code != 0 and heavy == set()
    assert err.strip().splitlines() == [
        "error: wal-push 000000010000000000000007: keys.backup-key refers to "
        "${MARKETOPS_BACKUP_KEY}, which is not set in the environment"]
    assert not list((root / "var/backups").rglob("000000010000000000000007-*"))


def test_a_corrupt_compiled_file_falls_back_to_the_full_path(root: Path,
                                                             tmp_path: Path) -> None:
    assert push(root, segment(tmp_path, "000000010000000000000008", b"f-------"))[0] == 0
    config = root / ".marketops/cache/archive.json"
    config.write_text(config.read_text()[:40])
    code, err, heavy = push(root, segment(tmp_path, "000000010000000000000009", b"g-------"))
    assert code == 0 and "pydantic" in heavy, err
    assert json.loads(config.read_text())["tier"] == "wal_archive"


def _stored(root: Path, folder: str, name: str) -> int:
    return len(list((root / "var" / folder / "wal_archive").rglob(f"{name}-*")))


def test_each_target_has_its_own_compiled_settings(root: Path, tmp_path: Path) -> None:
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + "targets:\n  prod:\n    destinations:\n"
                        "      backups: {url: \"file://./var/prod-backups\"}\n")
    cache = root / ".marketops/cache"
    first = segment(tmp_path, "000000010000000000000011", b"p1------")
    code, err, heavy = push(root, first, target="prod")
    assert code == 0 and "pydantic" in heavy, err  # compiled for prod by the full path
    assert json.loads((cache / "archive-prod.json").read_text())["target"] == "prod"
    assert not (cache / "archive.json").exists()
    assert (_stored(root, "prod-backups", first.name), _stored(root, "backups", first.name)) \
        == (1, 0)
    second = segment(tmp_path, "000000010000000000000012", b"p2------")
    code, err, heavy = push(root, second, target="prod")
    assert code == 0 and heavy == set(), err
    assert _stored(root, "prod-backups", second.name) == 1

    # Without --target: prod's compiled settings are not the file's own, whatever their name.
    third = segment(tmp_path, "000000010000000000000013", b"n3------")
    code, err, heavy = push(root, third)
    assert code == 0 and "pydantic" in heavy, err
    assert (_stored(root, "backups", third.name), _stored(root, "prod-backups", third.name)) \
        == (1, 0)
    assert json.loads((cache / "archive.json").read_text())["target"] is None
    shutil.copy(cache / "archive-prod.json", cache / "archive.json")
    fourth = segment(tmp_path, "000000010000000000000014", b"n4------")
    code, err, heavy = push(root, fourth)
    assert code == 0 and "pydantic" in heavy, err  # recorded for prod: not trusted
    assert (_stored(root, "backups", fourth.name), _stored(root, "prod-backups", fourth.name)) \
        == (1, 0)
    fifth = segment(tmp_path, "000000010000000000000015", b"n5------")
    code, err, heavy = push(root, fifth)
    assert code == 0 and heavy == set(), err
    assert _stored(root, "backups", fifth.name) == 1

    code, err, _ = push(root, segment(tmp_path, "000000010000000000000016", b"x6------"),
                        target="../prod")
    assert code == 2 and err.strip().startswith("error: unknown target '../prod' (from "
                                                "--target): marketops.yaml:"), err
    assert "Traceback" not in err
