"""Logical tiers: pg_dump from one snapshot, sealed (zstd, age), restored, compared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyrage
import pytest

from engine.errors import BackupError, MarketopsError
from runners.backup.logical import LogicalRequest, backup_logical, read_manifest, restore_logical
from runners.postgres.connection import connect, with_database
from runners.postgres.embedded import embedded_bin_dir
from runners.postgres.toolset import discover
from runners.storage.sealing import Sealing
from runners.storage.stores import Store, StoreSpec
from tests.backupcheck import table_fingerprints

KEY = str(pyrage.x25519.Identity.generate())




def _request(dsn: str, tmp_path: Path, **changes: object) -> LogicalRequest:
    fields: dict[str, object] = dict(
        tier="nightly_full", kind="logical_full", dsn=dsn, toolset=discover(embedded_bin_dir()),
        store=Store(StoreSpec("backups", f"file://{tmp_path / 'dest'}")),
        sealing=Sealing("zstd", 3, "backup-key", KEY), staging=tmp_path / "staging")
    fields.update(changes)
    return LogicalRequest(**fields)  # type: ignore[arg-type]


def test_full_backup_restores_every_table_identically(market_dsn: str, tmp_path: Path,
                                                      new_database: Callable[..., str]) -> None:
    request = _request(market_dsn, tmp_path, exclude_data=["analytics.daily_kpis"])
    manifest = backup_logical(request)
    source = table_fingerprints(market_dsn)
    assert len(manifest.row_counts) == len(source) - 1  # daily_kpis data excluded
    assert all(manifest.row_counts[t] == source[t][0] for t in manifest.row_counts)
    assert sum(manifest.row_counts.values()) > 10_000
    assert all(f.name.endswith(".zst.age") for f in manifest.files)
    assert manifest.encrypted_with == "backup-key" and manifest.codec == "zstd"
    stored = read_manifest(request.store, "nightly_full", manifest.backup_id)
    assert stored == manifest
    target = new_database()
    restore_logical(request.store, manifest, key=KEY, toolset=request.toolset,
                    target_dsn=target, staging=tmp_path / "restore")
    restored = table_fingerprints(target)
    assert {t: v for t, v in restored.items() if t != "analytics.daily_kpis"} == \
        {t: v for t, v in source.items() if t != "analytics.daily_kpis"}
    assert restored["analytics.daily_kpis"][0] == 0


def test_schema_tier_restores_alone_into_a_scratch_database(
        market_dsn: str, tmp_path: Path, new_database: Callable[..., str]) -> None:
    request = _request(market_dsn, tmp_path, tier="orders_payments", kind="logical_schemas",
                       schemas=["orders", "payments"], sealing=Sealing("gzip", 6))
    manifest = backup_logical(request)
    assert {t.split(".")[0] for t in manifest.row_counts} == {"orders", "payments"}
    external = manifest.details["external_foreign_keys"]
    assert external and set(external.values()) <= {"users", "product", "ref", "logistics",
                                                    "marketing", "inventory"}
    target = new_database()
    done = restore_logical(request.store, manifest, key=None, toolset=request.toolset,
                           target_dsn=target, staging=tmp_path / "restore")
    assert sorted(done.skipped_foreign_keys) == sorted(external)
    assert table_fingerprints(target) == table_fingerprints(market_dsn, ["orders", "payments"])
    with pytest.raises(BackupError, match="already has schema"):
        restore_logical(request.store, manifest, key=None, toolset=request.toolset,
                        target_dsn=target, staging=tmp_path / "restore")


def test_schemas_are_dumped_from_one_snapshot(market_dsn: str, tmp_path: Path) -> None:
    # Row counts come from the exported snapshot pg_dump also reads: a row inserted after the
    # snapshot is taken is in neither.
    request = _request(market_dsn, tmp_path, tier="users_only", kind="logical_schemas",
                       schemas=["users"], sealing=Sealing("none"))
    manifest = backup_logical(request)
    assert manifest.details["snapshot"]
    with connect(market_dsn) as conn:
        live = conn.execute("select count(*) from users.accounts").fetchone()[0]
    assert manifest.row_counts["users.accounts"] == live


def test_a_damaged_file_and_a_wrong_key_are_caught(market_dsn: str, tmp_path: Path,
                                                   new_database: Callable[..., str]) -> None:
    request = _request(market_dsn, tmp_path, tier="support", kind="logical_schemas",
                       schemas=["support"])
    manifest = backup_logical(request)
    other = str(pyrage.x25519.Identity.generate())
    with pytest.raises(BackupError, match="wrong key"):
        restore_logical(request.store, manifest, key=other, toolset=request.toolset,
                        target_dsn=new_database(), staging=tmp_path / "r1")
    biggest = max(manifest.files, key=lambda f: f.stored_size)
    path = tmp_path / "dest" / "support" / manifest.backup_id / biggest.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=r"damaged|decrypt"):
        restore_logical(request.store, manifest, key=KEY, toolset=request.toolset,
                        target_dsn=new_database(), staging=tmp_path / "r2")


def test_database_down_is_a_clear_error(tmp_path: Path, pg_admin_dsn: str) -> None:
    from runners.demo.mailbox import free_port

    dead = with_database(pg_admin_dsn, "x").replace(
        pg_admin_dsn.split("@")[1].split("/")[0], f"127.0.0.1:{free_port()}")
    with pytest.raises(MarketopsError) as info:
        backup_logical(_request(dead, tmp_path))
    assert "Traceback" not in str(info.value)
    assert not any((tmp_path / "dest").rglob("manifest.json"))


def test_a_backup_stored_as_is_restores_and_a_damaged_file_is_refused(
        market_dsn: str, tmp_path: Path, new_database: Callable[..., str]) -> None:
    """Uncompressed, unencrypted files on a local destination are linked, not copied, into
    the restore's scratch directory: checked all the same, and left as they were."""
    request = _request(market_dsn, tmp_path, tier="support_plain", kind="logical_schemas",
                       schemas=["support"], sealing=Sealing("none"))
    manifest = backup_logical(request)
    target = new_database()
    restore_logical(request.store, manifest, key=None, toolset=request.toolset,
                    target_dsn=target, staging=tmp_path / "r1")
    assert table_fingerprints(target) == table_fingerprints(market_dsn, ["support"])
    from runners.storage.verify import verify_backup

    assert verify_backup(request.store, manifest) == []  # the restore left them untouched
    biggest = max(manifest.files, key=lambda f: f.stored_size)
    path = tmp_path / "dest" / "support_plain" / manifest.backup_id / biggest.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged"):
        restore_logical(request.store, manifest, key=None, toolset=request.toolset,
                        target_dsn=new_database(), staging=tmp_path / "r2")
