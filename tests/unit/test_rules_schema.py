"""Schema rules: each broken once, located at the right line; the base project passes them."""

from pathlib import Path

from engine.validation.findings import Severity
from tests.helpers import SHOP, by_rule, check, line_of, where


def _shop(old: str, new: str) -> str:
    assert old in SHOP
    return SHOP.replace(old, new)


def test_missing_primary_key(tmp_path: Path) -> None:
    shop = _shop("      placed_at: {type: timestamptz, nullable: false}\n    primary_key: [id]\n",
                 "      placed_at: {type: timestamptz, nullable: false}\n")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-primary-key")
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, '  orders:')}"
    assert "shop.orders has no primary key" in finding.message


def test_primary_key_column_must_exist(tmp_path: Path) -> None:
    shop = _shop("    primary_key: [id]\n  orders:", "    primary_key: [uid]\n  orders:")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-primary-key")
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, 'primary_key: [uid]')}"
    assert "'uid'" in finding.message


def test_primary_key_column_cannot_be_declared_nullable(tmp_path: Path) -> None:
    shop = _shop("      id: {type: bigint, nullable: false}\n      email",
                 "      id: {type: bigint, nullable: true}\n      email")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-primary-key")
    assert finding.location.line == line_of(shop, "nullable: true")


def test_foreign_key_to_unknown_table(tmp_path: Path) -> None:
    shop = _shop("table: shop.customers", "table: shop.clients")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-foreign-key")
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, 'shop.clients')}"
    assert "unknown table shop.clients" in finding.message


def test_foreign_key_to_unknown_column(tmp_path: Path) -> None:
    shop = _shop("columns: [id]}", "columns: [ident]}")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    messages = [f.message for f in by_rule(result, "schema-foreign-key")]
    assert any("unknown column shop.customers.ident" in m for m in messages)


def test_foreign_key_from_unknown_column(tmp_path: Path) -> None:
    shop = _shop("- columns: [customer_id]", "- columns: [client_id]")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-foreign-key")
    assert finding.location.line == line_of(shop, "client_id")


def test_foreign_key_type_must_be_compatible(tmp_path: Path) -> None:
    shop = _shop("customer_id: {type: bigint", "customer_id: {type: text")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-foreign-key")
    assert finding.severity is Severity.ERROR
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, 'customer_id: {type: text')}"
    assert "text" in finding.message and "bigint" in finding.message


def test_foreign_key_integer_to_bigint_is_a_warning(tmp_path: Path) -> None:
    shop = _shop("customer_id: {type: bigint", "customer_id: {type: integer")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-foreign-key")
    assert finding.severity is Severity.WARNING
    assert result.passed() and not result.passed(strict=True)


def test_foreign_key_must_reference_a_key(tmp_path: Path) -> None:
    shop = _shop("columns: [customer_id]\n        references: {table: shop.customers, "
                 "columns: [id]}",
                 "columns: [placed_at]\n        references: {table: shop.customers, "
                 "columns: [created_at]}")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-foreign-key")
    assert "neither its primary key nor a unique constraint" in finding.message


def test_index_columns_exist(tmp_path: Path) -> None:
    shop = _shop("- columns: [placed_at]", "- columns: [placed]")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-columns-exist")
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, '[placed]')}"


def test_unique_columns_exist(tmp_path: Path) -> None:
    shop = _shop("    primary_key: [id]\n  orders:",
                 "    primary_key: [id]\n    unique: [[mail]]\n  orders:")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-columns-exist")
    assert finding.location.line == line_of(shop, "[[mail]]")


def test_duplicate_index(tmp_path: Path) -> None:
    shop = _shop("      - columns: [placed_at]\n",
                 "      - columns: [placed_at]\n      - columns: [placed_at]\n")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-duplicates")
    assert finding.location.line == line_of(shop, "- columns: [placed_at]", 2)


def test_duplicate_column_key_is_a_yaml_error(tmp_path: Path) -> None:
    shop = _shop("      region: {type: text}\n",
                 "      region: {type: text}\n      region: {type: text}\n")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "yaml-duplicate-key")
    assert finding.location.line == line_of(shop, "region:", 2)
    assert f"first defined at line {line_of(shop, 'region:')}" in finding.message


def test_unknown_type_suggests(tmp_path: Path) -> None:
    shop = _shop("region: {type: text}", "region: {type: txt}")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "model")
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, 'txt')}"
    assert "unknown PostgreSQL type 'txt'; did you mean 'text'?" in finding.message


def test_unquoted_comma_type_in_flow_mapping_gets_a_hint(tmp_path: Path) -> None:
    shop = _shop('{type: "numeric(12,2)"', "{type: numeric(12,2)")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    messages = " ".join(f.message for f in by_rule(result, "model"))
    assert 'quote it: "numeric(12,2)"' in messages


def test_schema_name_must_match_file(tmp_path: Path) -> None:
    shop = _shop("name: shop", "name: store")
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-name")
    assert where(finding) == "schema/shop.yaml:1"


def test_named_types_must_be_declared(tmp_path: Path) -> None:
    shop = _shop("      region: {type: text}", "      region: {type: shop.region}\n"
                 "      size: {type: shop.size}")
    shop = shop.replace("tables:\n", "types:\n  size: {enum: [s, m, l]}\ntables:\n", 1)
    result = check(tmp_path, {"schema/shop.yaml": shop})
    [finding] = by_rule(result, "schema-types")
    assert where(finding) == f"schema/shop.yaml:{line_of(shop, 'shop.region')}"
    assert finding.message.startswith("type shop.region is not declared")


def test_quoted_mixed_case_names_load_and_are_quoted_in_ddl(tmp_path: Path) -> None:
    from engine.dbschema.ddl import create_all

    shop = SHOP.replace("  orders:", '  Order:').replace(
        "references: {table: shop.customers", 'references: {table: "shop.\\"customers\\""')
    result = check(tmp_path, {"schema/shop.yaml": shop})
    assert [f for f in result.findings if f.rule.startswith("schema")] == []
    ddl = "\n".join(create_all(s.model for s in result.project.schemas.values()))
    assert 'CREATE TABLE shop."Order" (' in ddl
    assert 'ALTER TABLE shop."Order" ADD CONSTRAINT "Order_customer_id_fkey" FOREIGN KEY ' \
        "(customer_id) REFERENCES shop.customers (id);" in ddl
    from engine.dbschema.lineage import impact

    jobs = {d.job for d in impact(result.project, 'shop."Order".total')}
    assert "backup/nightly" in jobs
    bad = check(tmp_path, {"schema/shop.yaml": SHOP.replace(
        "references: {table: shop.customers", "references: {table: customers")})
    assert any("is not schema.table" in f.message for f in bad.findings)


def test_two_named_indexes_on_the_same_columns_are_a_warning(tmp_path: Path) -> None:
    """Of different names, as pulled from a real database (pagila has them): wasteful, not
    wrong; of the same name PostgreSQL refuses the second."""
    shop = _shop("      - columns: [placed_at]\n",
                 "      - {columns: [placed_at], name: a_idx}\n"
                 "      - {columns: [placed_at], name: b_idx}\n")
    [finding] = by_rule(check(tmp_path, {"schema/shop.yaml": shop}), "schema-duplicates")
    assert finding.severity is Severity.WARNING
    unnamed = _shop("      - columns: [placed_at]\n",
                    "      - columns: [placed_at]\n      - columns: [placed_at]\n")
    [finding] = by_rule(check(tmp_path, {"schema/shop.yaml": unnamed}), "schema-duplicates")
    assert finding.severity is Severity.ERROR
