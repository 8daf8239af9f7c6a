"""The repository's own tiers on the marketplace: every logical tier, the audit vault with
its hash chain, restore drills, retention and verify, through the composition root."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyrage
import pytest

from engine.app.executor import run_backup
from engine.app.health import freshness
from engine.app.inventory import verify_tier
from engine.app.tiers.backup import apply_retention, catalog_of, retention_plan
from engine.errors import BackupError
from engine.scheduling.jobs import Job, jobs
from engine.validation.validate import ValidationResult, validate
from runners.postgres.connection import connect
from tests.backupcheck import table_fingerprints
from tests.integration.conftest import copy_repository

KEY = str(pyrage.x25519.Identity.generate())


@pytest.fixture
def repo(tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[tuple[Path, ValidationResult]]:
    """A copy of this repository's definitions, writing under tmp_path/var."""
    root = copy_repository(repo_root, tmp_path / "repo")
    monkeypatch.setenv("MARKETOPS_BACKUP_KEY", KEY)
    defs = validate(root)
    assert defs.passed()
    yield root, defs




def _job(defs: ValidationResult, name: str) -> Job:
    return jobs(defs.project)[f"backup/{name}"]


def test_every_logical_tier_backs_up_and_restores_identically(
        repo: tuple[Path, ValidationResult], market_dsn: str) -> None:
    root, result = repo
    from engine.app.tiers.restore import restore_database

    logical = [t for t, loaded in result.project.backups.items()
               if loaded.model.kind in ("logical_full", "logical_schemas")]
    assert len(logical) == 7
    source = table_fingerprints(market_dsn)
    for tier_id in sorted(logical):
        outputs = run_backup(root, result, _job(result, tier_id), market_dsn)
        assert outputs["rows"] > 0 and outputs["stored_bytes"] > 0, tier_id
        database = f"restored_{tier_id}"
        done = restore_database(root, result, tier_id, database, server_dsn=market_dsn)
        restored = table_fingerprints(done.dsn)
        tier = result.project.backups[tier_id].model
        expected = {t: v for t, v in source.items()
                    if getattr(tier, "schemas", None) is None or t.split(".")[0] in tier.schemas}
        expected = {t: v for t, v in expected.items() if t != "analytics.daily_kpis"}
        assert {t: v for t, v in restored.items() if t in expected} == expected, tier_id
        assert set(expected) <= set(restored)
        with connect(market_dsn, autocommit=True) as conn:
            conn.execute(f"drop database {database} with (force)".encode())


def test_drill_restores_checks_and_times_each_tier(
        repo: tuple[Path, ValidationResult], market_dsn: str) -> None:
    root, result = repo
    for tier_id in ("nightly_full", "users_schema"):
        run_backup(root, result, _job(result, tier_id), market_dsn)
    drill = _job(result, "restore_drill")
    assert drill.tier is not None
    only_logical = drill.tier.model_copy(update={"tiers": ["nightly_full", "users_schema"]})
    from dataclasses import replace

    outputs = run_backup(root, result, replace(drill, tier=only_logical), market_dsn)
    full = outputs["tiers"]["nightly_full"]
    assert full["within_rto"] and full["tables_checked"] >= 100
    assert full["smoke"] == {"recent_orders": "ok (1 rows)", "accounts_have_emails":
                             "ok (10 rows)"}
    users = outputs["tiers"]["users_schema"]
    assert users["tables_checked"] >= 5 and set(users["smoke"]) == {"accounts_have_emails"}

    # A flipped byte in a stored file is caught by verify and by the drill.
    latest = catalog_of(root, result, "users_schema").latest()
    assert latest is not None
    victim = max(latest.files, key=lambda f: f.stored_size)
    path = root / "var" / "backups" / "users_schema" / latest.backup_id / victim.name
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x20
    path.write_bytes(bytes(data))
    problems, _ = verify_tier(root, result, "users_schema")
    assert problems and victim.name in problems[0] and "damaged" in problems[0]
    with pytest.raises(BackupError, match=r"users_schema: .*(damaged|decrypt)"):
        run_backup(root, result, replace(drill, tier=only_logical), market_dsn)


def test_audit_vault_chain_detects_deleted_altered_and_reordered_batches(
        repo: tuple[Path, ValidationResult], market_dsn: str) -> None:
    root, result = repo
    job = _job(result, "audit_vault")
    tier = job.tier.model_copy(update={"batch_rows": 60})  # type: ignore[union-attr]
    from dataclasses import replace

    job = replace(job, tier=tier)
    result.project.backups["audit_vault"] = replace(result.project.backups["audit_vault"],
                                                    model=tier)
    with connect(market_dsn) as conn:
        total = conn.execute("select count(*) from admin.audit_log").fetchone()[0]
    assert total > 300
    first = run_backup(root, result, job, market_dsn)
    assert first["rows"] == total and first["batches"]["admin.audit_log"] == -(-total // 60)
    assert run_backup(root, result, job, market_dsn)["rows"] == 0  # nothing new: no batch
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("insert into admin.audit_log (admin_id, action, entity_type, occurred_at)"
                      " select admin_id, 'test.append', 'test', now() from admin.audit_log "
                      "limit 7")
    assert run_backup(root, result, job, market_dsn)["rows"] == 7
    problems, checked = verify_tier(root, result, "audit", dsn=market_dsn)
    assert not problems and "chain intact" in checked[0]

    folder = root / "var" / "audit-vault" / "audit_vault" / "admin.audit_log"
    batches = sorted(p for p in folder.iterdir() if p.is_dir())
    # Altered rows: re-sealing different content under the same name.
    stored = next(p for p in batches[1].iterdir() if p.name.startswith("rows"))
    saved = stored.read_bytes()
    stored.write_bytes(saved[:-10] + bytes(10))
    problems, _ = verify_tier(root, result, "audit", dsn=market_dsn)
    assert any(batches[1].name in p and ("altered" in p or "damaged" in p or "decrypt" in p)
               for p in problems), problems
    stored.write_bytes(saved)
    # Deleted batch.
    moved = folder.parent / "held"
    shutil.move(batches[2], moved)
    problems, _ = verify_tier(root, result, "audit", dsn=market_dsn)
    assert any("missing" in p for p in problems) and any("does not follow" in p
                                                         for p in problems), problems
    with pytest.raises(BackupError, match=r"chain of admin\.audit_log is broken"):
        run_backup(root, result, job, market_dsn)
    shutil.move(moved, batches[2])
    # Reordered: two batches swap places (their folders sort by export time).
    a, b = batches[3], batches[4]
    a.rename(folder / "swap")
    b.rename(a)
    (folder / "swap").rename(b)
    problems, _ = verify_tier(root, result, "audit", dsn=market_dsn)
    assert any("out of order" in p or "does not follow" in p for p in problems), problems


def test_retention_keeps_the_newest_and_deletes_the_rest(
        repo: tuple[Path, ValidationResult], market_dsn: str) -> None:
    root, result = repo
    job = _job(result, "content_schema")
    ids = [run_backup(root, result, job, market_dsn)["backup_id"] for _ in range(3)]
    assert len(catalog_of(root, result, "content_schema").complete) == 3
    later = datetime.now(UTC) + timedelta(days=40)  # every backup is now weeks old
    plan = retention_plan(root, result, "content_schema", later)
    assert ids[-1] in plan.keep  # keep_last 7 keeps all three
    tier = result.project.backups["content_schema"].model
    from dataclasses import replace

    strict = tier.model_copy(update={"retention": tier.retention.model_copy(  # type: ignore[union-attr]
        update={"keep_last": 1, "keep_weekly": 0})})
    result.project.backups["content_schema"] = replace(result.project.backups["content_schema"],
                                                       model=strict)
    applied = apply_retention(root, result, "content_schema", later)
    assert sorted(applied.delete) == sorted(ids[:2])
    left = catalog_of(root, result, "content_schema").complete
    assert [m.backup_id for m in left] == [ids[-1]]
    fresh = freshness(root, result, None, later)["content_schema"]
    assert fresh.problem is not None and "RPO" in fresh.problem
    assert freshness(root, result, None)["content_schema"].problem is None


def test_two_backups_of_one_cluster_never_overlap(repo: tuple[Path, ValidationResult],
                                                  market_dsn: str) -> None:
    import itertools
    import threading

    root, result = repo
    outputs: dict[str, dict[str, object]] = {}

    def run(tier: str) -> None:
        outputs[tier] = run_backup(root, result, _job(result, tier), market_dsn)

    threads = [threading.Thread(target=run, args=(t,)) for t in ("nightly_full", "support_schema",
                                                                "users_schema")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    spans = sorted((m.started_at, m.finished_at) for t in outputs
                   for m in catalog_of(root, result, t).complete)
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, spans  # the advisory lock serialised them


def test_restore_command_into_a_new_database(repo: tuple[Path, ValidationResult],
                                             market_dsn: str) -> None:
    import os
    import subprocess
    import sys

    root, result = repo
    run_backup(root, result, _job(result, "support_schema"), market_dsn)
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), "restore",
                           "--tier", "support_schema", "--into-database", "support_check",
                           "--dsn", market_dsn], capture_output=True, text=True,
                          env={**os.environ, "MARKETOPS_BACKUP_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert "row counts match the manifest" in done.stdout
    assert "skipped foreign key support." in done.stdout  # users/orders are not in it
    from runners.postgres.connection import with_database

    restored = table_fingerprints(with_database(market_dsn, "support_check"))
    assert restored == table_fingerprints(market_dsn, ["support"])
    again = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), "restore",
                            "--tier", "support_schema", "--into-database", "support_check",
                            "--dsn", market_dsn], capture_output=True, text=True,
                           env={**os.environ, "MARKETOPS_BACKUP_KEY": KEY})
    assert again.returncode == 1 and "already has schema(s) support" in again.stderr
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute(b"drop database support_check with (force)")
