"""Backups to s3:// (moto's standalone S3 server on loopback): dump, list, verify, restore,
retention, WAL push/fetch, and an interrupted upload that never appears."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.app.context import store_for
from engine.app.executor import run_backup
from engine.app.inventory import verify_tier
from engine.app.tiers.backup import catalog_of
from engine.app.tiers.restore import restore_database
from engine.scheduling.jobs import jobs
from engine.validation.validate import validate
from runners.backup.wal import fetch, push, stored_names
from runners.storage.sealing import generate_key
from runners.storage.stores import Store
from tests.backupcheck import table_fingerprints
from tests.integration.conftest import copy_repository


def test_logical_backup_and_wal_on_s3(tmp_path: Path, repo_root: Path, s3_endpoint: str,
                                      market_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket="backups")
    root = copy_repository(repo_root, tmp_path / "repo")
    settings = (root / "marketops.yaml").read_text(encoding="utf-8").replace(
        "    url: file://./var/backups\n",
        f'    url: s3://backups/marketplace\n    endpoint_url: "{s3_endpoint}"\n'
        '    region: us-east-1\n    access_key_id: "${S3_KEY}"\n'
        '    secret_access_key: "${S3_SECRET}"\n')
    assert "s3://backups" in settings
    (root / "marketops.yaml").write_text(settings, encoding="utf-8")
    monkeypatch.setenv("S3_KEY", "testing")
    monkeypatch.setenv("S3_SECRET", "testing")
    monkeypatch.setenv("MARKETOPS_BACKUP_KEY", generate_key()[0])
    defs = validate(root)
    assert defs.passed(), [e.message for e in defs.errors]

    job = jobs(defs.project)["backup/orders_payments"]
    first = run_backup(root, defs, job, market_dsn)
    second = run_backup(root, defs, job, market_dsn)
    catalog = catalog_of(root, defs, "orders_payments")
    assert [m.backup_id for m in catalog.complete] == [first["backup_id"], second["backup_id"]]
    problems, checked = verify_tier(root, defs, "orders_payments", every=True)
    assert problems == [] and len(checked) == 2
    done = restore_database(root, defs, "orders_payments", "from_s3", server_dsn=market_dsn)
    assert table_fingerprints(done.dsn) == table_fingerprints(market_dsn, ["orders", "payments"])

    # An upload that fails half-way publishes nothing.
    store: Store = store_for(root, defs, "backups")
    with pytest.raises(RuntimeError), store.writer("orders_payments/broken/file.bin") as sink:
        sink.write(os.urandom(6 << 20))
        raise RuntimeError("interrupted")
    assert not store.exists("orders_payments/broken/file.bin")
    assert len(catalog_of(root, defs, "orders_payments").complete) == 2

    # WAL archiving through the same destination.
    segment = tmp_path / "000000010000000000000042"
    segment.write_bytes(os.urandom(1 << 16))
    key = os.environ["MARKETOPS_BACKUP_KEY"]
    from runners.storage.sealing import Sealing

    sealing = Sealing("zstd", 3, "backup-key", key)
    assert push(store, "wal_archive", segment, sealing) is True
    assert push(store, "wal_archive", segment, sealing) is False  # same file: no-op
    assert stored_names(store, "wal_archive") == [segment.name]
    fetch(store, "wal_archive", segment.name, tmp_path / "back", key)
    assert (tmp_path / "back").read_bytes() == segment.read_bytes()
