"""Backup rules: scope, references, coverage, PII encryption, RPO, PITR, the vault, drills."""

from pathlib import Path

from engine.validation.findings import Severity
from tests.helpers import NIGHTLY, SHOP, by_rule, check, line_of, where
from tests.support.definitions import base_tier, wal_tier

TIER = "definitions/backups/nightly.yaml"


def _nightly(old: str, new: str) -> str:
    assert old in NIGHTLY
    return NIGHTLY.replace(old, new)


SCHEMAS_TIER = """\
title: Shop schema
owner: dba@corp.example
kind: logical_schemas
schemas: [shop, shp]
exclude_tables: [shop.nothing]
cron: "0 2 * * *"
destination: backups
encryption: {key: k1}
rpo: 1d
rto: 1h
"""

BASE_TIER = base_tier("Base backups", "0 3 * * 0", "8d")
WAL_TIER = wal_tier("14d", max_age="15d")

VAULT_TIER = """\
title: Vault
owner: security@corp.example
kind: audit_vault
tables: [shop.orders]
cron: "0 * * * *"
destination: vault
rpo: 2h
rto: 4h
"""


def test_scope_must_exist(tmp_path: Path) -> None:
    result = check(tmp_path, {"definitions/backups/shop.yaml": SCHEMAS_TIER})
    found = by_rule(result, "backup-scope")
    assert [f.location.line for f in found] == [line_of(SCHEMAS_TIER, "schemas:"),
                                                line_of(SCHEMAS_TIER, "exclude_tables")]
    assert "unknown schema 'shp'; did you mean 'shop'?" in found[0].message


def test_destination_and_key_must_exist(tmp_path: Path) -> None:
    tier = _nightly("destination: backups", "destination: backup").replace("k1", "k2")
    result = check(tmp_path, {TIER: tier})
    found = by_rule(result, "backup-references")
    assert [f.location.line for f in found] == [line_of(tier, "destination:"),
                                                line_of(tier, "encryption:")]
    assert "did you mean 'backups'?" in found[0].message


def test_every_table_needs_a_daily_tier(tmp_path: Path) -> None:
    tier = _nightly('cron: "0 1 * * *"', 'cron: "0 1 * * 0"').replace("rpo: 26h", "rpo: 8d")
    result = check(tmp_path, {TIER: tier})
    found = by_rule(result, "backup-coverage")
    assert [where(f) for f in found] == [f"schema/shop.yaml:{line_of(SHOP, 'customers:')}",
                                         f"schema/shop.yaml:{line_of(SHOP, '  orders:')}"]


def test_excluded_table_with_reason_is_covered(tmp_path: Path) -> None:
    tier = _nightly("rpo: 26h", "exclude_tables: [shop.orders]\nrpo: 26h")
    shop = SHOP.replace("  orders:\n", "  orders:\n    backup_exclude_reason: rebuilt nightly "
                        "from the payment provider's export\n")
    assert by_rule(check(tmp_path / "a", {TIER: tier}), "backup-coverage")
    assert by_rule(check(tmp_path / "b", {TIER: tier, "schema/shop.yaml": shop}),
                   "backup-coverage") == []


def test_pii_tier_must_be_encrypted(tmp_path: Path) -> None:
    tier = _nightly("encryption: {key: k1}\n", "")
    result = check(tmp_path, {TIER: tier})
    [finding] = by_rule(result, "backup-pii-encryption")
    assert where(finding) == f"{TIER}:{line_of(tier, 'kind:')}"
    assert "shop.customers.email" in finding.message


def test_tier_without_pii_needs_no_encryption(tmp_path: Path) -> None:
    result = check(tmp_path, {"definitions/backups/vault.yaml": VAULT_TIER})
    assert by_rule(result, "backup-pii-encryption") == []


def test_schedule_must_meet_rpo(tmp_path: Path) -> None:
    tier = _nightly("rpo: 26h", "rpo: 24h").replace('cron: "0 1 * * *"',
                                                    'cron: "0 2 * * *"\ntimezone: Europe/Berlin')
    result = check(tmp_path, {TIER: tier})
    [finding] = by_rule(result, "backup-rpo")
    assert where(finding) == f"{TIER}:{line_of(tier, 'rpo:')}"
    assert "25h" in finding.message  # the fall-back day is 25 hours long


def test_rpo_met_in_utc(tmp_path: Path) -> None:
    tier = _nightly("rpo: 26h", "rpo: 24h")
    assert by_rule(check(tmp_path, {TIER: tier}), "backup-rpo") == []


def test_wal_retention_must_cover_pitr_window(tmp_path: Path) -> None:
    result = check(tmp_path, {"definitions/backups/base.yaml": BASE_TIER,
                              "definitions/backups/wal.yaml": WAL_TIER})
    found = by_rule(result, "backup-pitr")
    assert [where(f) for f in found] == [
        f"definitions/backups/base.yaml:{line_of(BASE_TIER, 'retention:')}",
        f"definitions/backups/wal.yaml:{line_of(WAL_TIER, 'retention:')}"]
    assert "14d + 7d = 21d" in found[1].message


def test_wal_retention_ok(tmp_path: Path) -> None:
    wal = WAL_TIER.replace("max_age: 15d", "max_age: 22d")
    base = BASE_TIER.replace("keep_last: 2", "keep_last: 4")
    result = check(tmp_path, {"definitions/backups/base.yaml": base,
                              "definitions/backups/wal.yaml": wal})
    assert by_rule(result, "backup-pitr") == []


def test_wal_base_tier_must_be_physical(tmp_path: Path) -> None:
    wal = WAL_TIER.replace("base_tier: base", "base_tier: nightly")
    result = check(tmp_path, {"definitions/backups/wal.yaml": wal})
    [finding] = by_rule(result, "backup-references")
    assert "logical_full" in finding.message


def test_archive_timeout_above_rpo(tmp_path: Path) -> None:
    wal = WAL_TIER.replace("rpo: 5min", "rpo: 30s").replace(
        "pitr_window: 14d", "pitr_window: 14d\narchive_timeout: 60s")
    result = check(tmp_path, {"definitions/backups/base.yaml": BASE_TIER,
                              "definitions/backups/wal.yaml": wal})
    [finding] = by_rule(result, "backup-rpo")
    assert where(finding) == f"definitions/backups/wal.yaml:{line_of(wal, 'archive_timeout')}"
    assert finding.message == "archive_timeout 1min exceeds the RPO 30s"


def test_vault_must_not_share_the_main_destination(tmp_path: Path) -> None:
    vault = VAULT_TIER.replace("destination: vault", "destination: backups")
    result = check(tmp_path, {"definitions/backups/vault.yaml": vault})
    [finding] = by_rule(result, "backup-audit-vault")
    assert where(finding) == f"definitions/backups/vault.yaml:{line_of(vault, 'destination')}"


def test_vault_must_not_point_into_the_main_destination(tmp_path: Path) -> None:
    from tests.helpers import SETTINGS

    settings = SETTINGS.replace('vault: {url: "file://./var/vault"}',
                                'vault: {url: "file://./var/backups/vault"}')
    result = check(tmp_path, {"definitions/backups/vault.yaml": VAULT_TIER,
                              "marketops.yaml": settings})
    [finding] = by_rule(result, "backup-audit-vault")
    assert "points into 'backups'" in finding.message


def test_separate_vault_passes(tmp_path: Path) -> None:
    result = check(tmp_path, {"definitions/backups/vault.yaml": VAULT_TIER})
    assert by_rule(result, "backup-audit-vault") == []


def test_drill_checks_tiers_and_smoke_sql(tmp_path: Path) -> None:
    drill = ("title: Drill\nowner: dba@corp.example\nkind: restore_drill\ncron: \"0 4 * * 6\"\n"
             "tiers: [nightly, nightley]\nsmoke_queries:\n  - name: q\n"
             "    sql: select count(*) as n from shop.order\n")
    result = check(tmp_path, {"definitions/backups/drill.yaml": drill})
    references = by_rule(result, "backup-references")
    assert [f.location.line for f in references] == [line_of(drill, "tiers:")]
    [sql] = by_rule(result, "sql-unknown-table")
    assert where(sql) == f"definitions/backups/drill.yaml:{line_of(drill, 'shop.order')}"


def test_incremental_without_full_every_warns(tmp_path: Path) -> None:
    base = BASE_TIER.replace("rpo: 8d", "incremental: true\nrpo: 8d")
    result = check(tmp_path, {"definitions/backups/base.yaml": base})
    [finding] = by_rule(result, "backup-incremental")
    assert finding.severity is Severity.WARNING


def test_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    tier = _nightly("kind: logical_full", "kind: logical_ful")
    result = check(tmp_path, {TIER: tier})
    [finding] = by_rule(result, "model")
    assert finding.location.line == line_of(tier, "kind:")
    assert "logical_full" in finding.message
