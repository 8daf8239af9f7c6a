"""`marketops verify` against damage a DBA would inflict, through the CLI: the audit vault
truncated, rewritten and re-hashed, missing a batch; a row committed after its id was
allocated; (with a physical cluster) a WAL segment with a flipped byte or other contents, and
a damaged full backup under a newer incremental."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest

from engine.backups.auditchain import chain_hash
from runners.postgres.connection import connect
from runners.storage.sealing import seal, unseal
from tests.integration.conftest import copy_repository
from tests.integration.test_backup_physical import (
    Cluster,
    archiving_cluster,
)

KEY = str(pyrage.x25519.Identity.generate())
PHYSICAL_KEY = str(pyrage.x25519.Identity.generate())
TABLE = "admin.audit_log"


def _cli(root: Path, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def vault(tmp_path: Path, repo_root: Path, market_dsn: str
          ) -> Iterator[tuple[Path, dict[str, str]]]:
    """This repository's definitions with the primary (and the ledger in it) the test's
    database; the environment the CLI needs."""
    root = copy_repository(repo_root, tmp_path / "repo", "TEST_PRIMARY_DSN")
    yield root, {"TEST_PRIMARY_DSN": market_dsn, "MARKETOPS_BACKUP_KEY": KEY}


def _folder(root: Path) -> Path:
    return root / "var" / "audit-vault" / "audit_vault" / TABLE


def _append(dsn: str, rows: int, action: str = "test.append") -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("insert into admin.audit_log (admin_id, action, entity_type, occurred_at) "
                     "select admin_id, %s, 'test', now() from admin.audit_log limit %s",
                     (action, rows))


def _rows(batch: Path) -> tuple[dict[str, object], bytes]:
    manifest = json.loads((batch / "manifest.json").read_text())
    stored = batch / manifest["files"][0]["name"]
    raw = io.BytesIO()
    with stored.open("rb") as source:
        unseal(source, raw, codec=manifest["codec"], key=KEY)  # type: ignore[arg-type]
    return manifest, raw.getvalue()


def _vault_ids(root: Path) -> list[int]:
    ids = []
    for batch in sorted(p for p in _folder(root).iterdir() if p.is_dir()):
        _, raw = _rows(batch)
        ids += [int(r["id"]) for r in csv.DictReader(io.StringIO(raw.decode()))]
    return ids


def _run(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _cli(root, "run", "backup/audit_vault", env=env)


def test_verify_audit_detects_a_truncated_rewritten_or_gapped_vault(
        vault: tuple[Path, dict[str, str]], market_dsn: str) -> None:
    root, env = vault
    for rows in (0, 5, 6, 7):  # four runs, four batches
        if rows:
            _append(market_dsn, rows)
        ran = _run(root, env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
    batches = sorted(p for p in _folder(root).iterdir() if p.is_dir())
    assert len(batches) == 4
    ok = _cli(root, "verify", "audit", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "4 batch(es), chain intact, anchored at #4" in ok.stdout
    newest = batches[-1]

    # The newest batch deleted: the chain that is left is consistent, the head says more.
    held = root / "held"
    shutil.move(newest, held)
    gone = _cli(root, "verify", "audit", env=env)
    assert gone.returncode == 1
    assert "records 4 batch(es)" in gone.stdout and "batch #4 was deleted" in gone.stdout
    refused = _run(root, env)  # and the next run refuses to paper over it
    assert refused.returncode == 1
    assert "broken, refusing to extend" in refused.stdout + refused.stderr
    shutil.move(held, newest)
    assert _cli(root, "verify", "audit", env=env).returncode == 0

    # The newest batch truncated.
    manifest, raw = _rows(newest)
    data_file = newest / str(manifest["files"][0]["name"])  # type: ignore[index]
    saved = data_file.read_bytes()
    data_file.write_bytes(saved[: len(saved) // 2])
    cut = _cli(root, "verify", "audit", env=env)
    assert cut.returncode == 1 and newest.name in cut.stdout, cut.stdout
    data_file.write_bytes(saved)

    # The newest batch rewritten (one action erased) and re-hashed consistently: its
    # manifest, digests and chain hash all agree, only the head outside the vault differs.
    saved_manifest = (newest / "manifest.json").read_bytes()
    forged = raw.replace(b"test.append", b"test.nothing", 1)
    assert forged != raw
    with data_file.open("wb") as sink:
        sealed = seal(io.BytesIO(forged), sink, codec=str(manifest["codec"]), key=KEY)
    details = dict(manifest["details"])  # type: ignore[call-overload]
    manifest["files"] = [{**manifest["files"][0], "raw_size": sealed.raw_size,  # type: ignore[index]
                          "raw_sha256": sealed.raw_sha256, "stored_size": sealed.stored_size,
                          "stored_sha256": sealed.stored_sha256}]
    details["chain_hash"] = chain_hash(details["prev_hash"], details["seq"], details["first_id"],
                                       details["last_id"], details["rows"], sealed.raw_sha256)
    manifest["details"] = details
    (newest / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    rewritten = _cli(root, "verify", "audit", env=env)
    assert rewritten.returncode == 1
    assert newest.name in rewritten.stdout and "rewritten" in rewritten.stdout, rewritten.stdout
    assert len([line for line in rewritten.stdout.splitlines() if "FAILED" in line]) == 1
    data_file.write_bytes(saved)
    (newest / "manifest.json").write_bytes(saved_manifest)

    # A batch in the middle deleted.
    middle = batches[1]
    shutil.move(middle, held)
    gap = _cli(root, "verify", "audit", env=env)
    assert gap.returncode == 1 and "missing" in gap.stdout, gap.stdout
    shutil.move(held, middle)
    assert _cli(root, "verify", "audit", env=env).returncode == 0

    # The ledger's head removed: nothing vouches for the newest batch any more, until a
    # person adopts the chain as it stands (for a vault older than the heads).
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("delete from marketops.audit_heads")
    headless = _cli(root, "verify", "audit", env=env)
    assert headless.returncode == 1 and "records no chain head" in headless.stdout
    assert _run(root, env).returncode == 1
    adopted = _cli(root, "verify", "audit", "--adopt", env=env)
    assert adopted.returncode == 0 and "now anchored at #4" in adopted.stdout, adopted.stdout
    assert _run(root, env).returncode == 0
    assert "anchored at #4" in _cli(root, "verify", "audit", env=env).stdout


def test_a_row_committed_after_a_later_id_is_still_exported(
        vault: tuple[Path, dict[str, str]], market_dsn: str) -> None:
    root, env = vault
    assert _run(root, env).returncode == 0
    with connect(market_dsn) as late:
        early_id = late.execute(
            "insert into admin.audit_log (admin_id, action, entity_type, occurred_at) select "
            "admin_id, 'test.late', 'test', now() from admin.audit_log limit 1 returning id"
        ).fetchone()[0]  # allocated now, committed only after the export has looked
        _append(market_dsn, 3, "test.after")
        with connect(market_dsn, autocommit=True) as watch:
            newest = watch.execute("select max(id) from admin.audit_log").fetchone()[0]
        assert newest > early_id
        export = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(root),
                                   "run", "backup/audit_vault"], env={**os.environ, **env},
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            with connect(market_dsn, autocommit=True) as watch:
                while time.monotonic() < deadline and export.poll() is None:
                    waiting = watch.execute(
                        "select count(*) from pg_stat_activity where application_name = "
                        "'marketops audit vault'").fetchone()[0]
                    if waiting:
                        break
                    time.sleep(0.05)
            time.sleep(0.5)
            late.commit()
            out, err = export.communicate(timeout=120)
        finally:
            if export.poll() is None:
                export.kill()
    assert export.returncode == 0, out + err
    ids = _vault_ids(root)
    assert early_id in ids and newest in ids
    assert len(ids) == len(set(ids))
    with connect(market_dsn) as conn:
        total = conn.execute("select count(*) from admin.audit_log").fetchone()[0]
    assert len(ids) == total
    assert _cli(root, "verify", "audit", env=env).returncode == 0


# -- a physical cluster archiving through marketops ------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with archiving_cluster(tmp_path_factory.mktemp("verify") / "repo", PHYSICAL_KEY,
                           {}) as project:
        yield project


def _flip(path: Path, at: float = 0.5) -> bytes:
    saved = path.read_bytes()
    data = bytearray(saved)
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))
    return saved


def test_verify_wal_archive_reads_every_segment_and_names_a_damaged_one(
        cluster: Cluster) -> None:
    cluster.sql("insert into marks select g, 'wal ' || g from generate_series(1, 2000) g")
    first = cluster.switch_and_wait()
    cluster.sql("insert into marks values (100001, 'next segment')")
    second = cluster.switch_and_wait()
    ok = _cli(cluster.root, "verify", "wal")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "re-read, each matches the checksum recorded when it was stored" in ok.stdout
    archive = cluster.root / "var" / "backups" / "wal"
    stored = {p.name[:24]: p for p in archive.rglob("*")
              if p.is_file() and p.parent.name != "keys" and len(p.name) > 24}

    # One flipped byte: found, named, exit 3 (its name alone shows no gap).
    saved = _flip(stored[first])
    try:
        flipped = _cli(cluster.root, "verify", "wal")
        assert flipped.returncode == 3, flipped.stdout + flipped.stderr
        assert "1 stored file(s) damaged or missing" in flipped.stderr
        failed = [line for line in flipped.stdout.splitlines() if line.startswith("FAILED")]
        assert len(failed) == 1 and first in failed[0], flipped.stdout
        assert "no gap" in flipped.stdout  # what verify said before, and still true
    finally:
        stored[first].write_bytes(saved)

    # Another segment's (intact, validly sealed) contents under this one's name.
    stored[first].write_bytes(stored[second].read_bytes())
    try:
        swapped = _cli(cluster.root, "verify", "wal")
        assert swapped.returncode == 3 and first in swapped.stdout
        assert "do not match the checksum recorded when it was stored" in swapped.stdout
    finally:
        stored[first].write_bytes(saved)
    assert _cli(cluster.root, "verify", "wal").returncode == 0

    # Missing between two stored ones: a gap (the archiver may never have stored it), exit 1;
    # with no base backup yet, the archive starts at its oldest stored segment.
    held = cluster.root / "held-segment"
    stored[first].rename(held)
    try:
        gap = _cli(cluster.root, "verify", "wal")
        assert gap.returncode == 1 and "gap" in gap.stdout, gap.stdout + gap.stderr
    finally:
        held.rename(stored[first])


def test_verify_tier_checks_the_full_a_newer_incremental_builds_on(cluster: Cluster) -> None:
    from engine.app.tiers.backup import take_backup

    full = take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    cluster.sql("insert into marks select g, 'incremental ' || g from generate_series("
                "200001, 203000) g")
    newest = take_backup(cluster.root, cluster.result, cluster.job("base"), cluster.dsn)
    assert newest.backup_type == "incremental" and newest.parent_id == full.backup_id
    ok = _cli(cluster.root, "verify", "base")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"base/{newest.backup_id} (incremental)" in ok.stdout
    assert "with the 1 backup(s) it builds on" in ok.stdout

    victim = max(full.files, key=lambda f: f.stored_size)
    path = cluster.root / "var" / "backups" / "base" / full.backup_id / victim.name
    saved = _flip(path, 0.3)
    try:
        damaged = _cli(cluster.root, "verify", "base")  # the newest only, not --all
        assert damaged.returncode == 3, damaged.stdout + damaged.stderr
        assert f"base/{full.backup_id}/{victim.name}" in damaged.stdout
        assert (f"base/{newest.backup_id}: cannot be restored: base/{full.backup_id} that it "
                "builds on is damaged") in damaged.stdout, damaged.stdout
        # Read once even when --all reaches it twice (for itself and for the incremental).
        every = _cli(cluster.root, "verify", "base", "--all")
        assert every.returncode == 3
        assert every.stdout.count(f"base/{full.backup_id}/{victim.name}") == 1
    finally:
        path.write_bytes(saved)
    assert _cli(cluster.root, "verify", "base").returncode == 0


def test_a_signed_head_catches_the_ledger_edited_to_match_a_truncated_vault(
        vault: tuple[Path, dict[str, str]], market_dsn: str) -> None:
    root, env = vault
    assert _run(root, env).returncode == 0  # an unsigned head, before the key is set
    settings = root / "marketops.yaml"
    text = settings.read_text()
    settings.write_text(text.replace("keys:\n", "keys:\n  audit-anchor: ${AUDIT_ANCHOR_KEY}\n"))
    env = {**env, "AUDIT_ANCHOR_KEY": "a separate secret"}
    unsigned = _run(root, env)
    assert unsigned.returncode == 1 and "is not signed" in unsigned.stdout + unsigned.stderr
    signed = _cli(root, "verify", "audit", "--adopt", env=env)
    assert signed.returncode == 0 and "now anchored at #1" in signed.stdout, signed.stdout
    _append(market_dsn, 4)
    assert _run(root, env).returncode == 0
    assert _cli(root, "verify", "audit", env=env).returncode == 0
    first, second = sorted(p for p in _folder(root).iterdir() if p.is_dir())
    kept = json.loads((first / "manifest.json").read_text())["details"]
    # Whoever can write both the vault and the ledger, but not read the anchor key.
    shutil.rmtree(second)
    with connect(market_dsn, autocommit=True) as conn:
        conn.execute("update marketops.audit_heads set batches = 1, last_hash = %s, "
                     "last_id = %s", (kept["chain_hash"], kept["last_id"]))
    edited = _cli(root, "verify", "audit", env=env)
    assert edited.returncode == 1
    assert "does not match its signature: the ledger row was edited" in edited.stdout
    refused = _run(root, env)
    assert refused.returncode == 1 and "edited" in refused.stdout + refused.stderr


def test_a_wrong_key_is_told_from_a_damaged_file_for_base_backups_and_wal(
        cluster: Cluster, tmp_path: Path) -> None:


    full = cluster.full_backup()
    assert str(full.details["key_fingerprint"]).startswith("sha256:")
    other = {"MARKETOPS_TEST_BACKUP_KEY": str(pyrage.x25519.Identity.generate())}
    into = tmp_path / "into"

    wrong = _cli(cluster.root, "restore", "--tier", "base", "--backup", full.backup_id,
                 "--target", "immediate", "--into", str(into), env=other)
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert f"wrong key: base/{full.backup_id} was encrypted with key 'k1'" in wrong.stderr
    assert not into.exists()

    victim = max(full.files, key=lambda f: f.stored_size)
    path = cluster.root / "var" / "backups" / "base" / full.backup_id / victim.name
    saved = _flip(path, 0.3)
    try:
        damaged = _cli(cluster.root, "restore", "--tier", "base", "--backup", full.backup_id,
                       "--target", "immediate", "--into", str(into))
        assert damaged.returncode == 3, damaged.stdout + damaged.stderr
        assert f"base/{full.backup_id}/{victim.name}" in damaged.stderr
        assert "wrong key" not in damaged.stderr
        assert not into.exists() and f"removed {into} (keep it with --keep-on-failure)" in \
            damaged.stderr
        kept = _cli(cluster.root, "restore", "--tier", "base", "--backup", full.backup_id,
                    "--target", "immediate", "--into", str(into), "--keep-on-failure")
        assert kept.returncode == 3, kept.stdout + kept.stderr
        assert f"kept {into} as it is (--keep-on-failure" in kept.stderr
        assert into.is_dir() and any(into.iterdir())
        shutil.rmtree(into)
    finally:
        path.write_bytes(saved)

    # The WAL archive records its key's fingerprint beside its segments.
    by_key = _cli(cluster.root, "verify", "wal", env=other)
    assert "wrong key:" in by_key.stdout and "in the archive (wal)" in by_key.stdout
    archive = cluster.root / "var" / "backups" / "wal"
    assert len(list((archive / "keys").iterdir())) == 1
    segment = sorted(p for p in archive.rglob("*") if p.is_file() and p.parent.name != "keys"
                     and len(p.name) > 24)[-1]
    saved = _flip(segment, 0.9)
    try:
        broken = _cli(cluster.root, "verify", "wal")
        assert broken.returncode == 3, broken.stdout + broken.stderr
        assert segment.name[:24] in broken.stdout and "wrong key" not in broken.stdout
    finally:
        segment.write_bytes(saved)
