"""Backups under faults: killed mid-way, a full destination, verify after damage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

from engine.app.executor import run_backup
from engine.app.tiers.backup import catalog_of
from engine.errors import BackupError
from engine.scheduling.jobs import jobs
from engine.validation.validate import ValidationResult, validate
from tests.integration.conftest import copy_repository

KEY = str(pyrage.x25519.Identity.generate())


@pytest.fixture
def repo(tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[tuple[Path, ValidationResult]]:
    # The primary (and the ledger in it) is the test's database, never the embedded default.
    root = copy_repository(repo_root, tmp_path / "repo", "TEST_PRIMARY_DSN")
    monkeypatch.setenv("MARKETOPS_BACKUP_KEY", KEY)
    defs = validate(root)
    assert defs.passed()
    yield root, defs




def test_sigkill_mid_backup_leaves_nothing_that_lists_as_complete(
        repo: tuple[Path, ValidationResult], market_dsn: str) -> None:
    root, result = repo
    from runners.postgres.connection import connect

    with connect(market_dsn, autocommit=True) as conn:  # enough bytes to be caught mid-write
        conn.execute("create table admin.bulk as select g as id, (select string_agg(md5("
                     "random()::text || g || i), '') from generate_series(1, 30) i) as body "
                     "from generate_series(1, 40000) g")
    env = {**os.environ, "TEST_PRIMARY_DSN": market_dsn, "MARKETOPS_BACKUP_KEY": KEY}
    folder = root / "var" / "backups" / "nightly_full"
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(root), "run",
                             "backup/nightly_full"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    # Kill it once it has started writing files to the destination, before the manifest.
    while time.monotonic() < deadline:
        written = [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []
        if written:
            break
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not list(folder.rglob("manifest.json"))
    catalog = catalog_of(root, result, "nightly_full")
    assert catalog.complete == [] and len(catalog.incomplete) == 1
    listed = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), "backups",
                             "nightly_full"], env=env, capture_output=True, text=True)
    assert "0 backup(s), 1 incomplete" in listed.stdout
    from engine.app.tiers.restore import restore_database

    with pytest.raises(BackupError, match="no complete backup"):
        restore_database(root, result, "nightly_full", "never", server_dsn=market_dsn)
    # The next run succeeds, and clears what the killed one left.
    job = jobs(result.project)["backup/nightly_full"]
    outputs = run_backup(root, result, job, market_dsn)
    assert outputs["deleted"] == catalog.incomplete
    after = catalog_of(root, result, "nightly_full")
    assert [m.backup_id for m in after.complete] == [outputs["backup_id"]]
    assert after.incomplete == []


def _small_filesystem(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return done.returncode == 0


def test_a_full_destination_is_a_clear_error_and_leaves_nothing(
        repo: tuple[Path, ValidationResult], market_dsn: str) -> None:
    root, result = repo
    destination = root / "var" / "backups"
    mounted = _small_filesystem(destination, "256k")
    try:
        job = jobs(result.project)["backup/nightly_full"]
        if mounted:
            with pytest.raises(BackupError, match="destination 'backups' is full") as info:
                run_backup(root, result, job, market_dsn)
        else:
            # Without the right to mount, a per-process file size limit stands in for the
            # small filesystem: writes past it fail the same way (EFBIG instead of ENOSPC).
            script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
                      "(200_000, 200_000)); from engine.cli import main; sys.argv = ['marketops',"
                      f" '--root', {str(root)!r}, 'run', 'backup/nightly_full']; main()")
            done = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                  text=True, env={**os.environ, "TEST_PRIMARY_DSN": market_dsn})
            assert done.returncode == 1
            assert "is full" in done.stdout + done.stderr
            info = None
        assert "Traceback" not in str(info.value if info else "")
        leftovers = [p for p in destination.rglob("*") if p.is_file()]
        assert leftovers == []
        assert not list((root / "var" / "staging").glob("*/*")) if (
            root / "var" / "staging").exists() else True
    finally:
        if mounted:
            subprocess.run(["umount", str(destination)], check=True)
