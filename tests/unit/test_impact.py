"""`marketops impact`: the reports and tiers a schema change touches."""

from pathlib import Path

import pytest

from engine.dbschema.lineage import impact
from engine.errors import UsageError
from tests.helpers import check

DRILL = ("title: Drill\nowner: dba@corp.example\nkind: restore_drill\ncron: \"0 4 * * 6\"\n"
         "tiers: [nightly]\n")


def test_table_and_column_impact(tmp_path: Path) -> None:
    project = check(tmp_path, {"definitions/backups/drill.yaml": DRILL}).project
    jobs = {d.job: d.how for d in impact(project, "shop.orders")}
    assert jobs == {"report/revenue": "reads the table",
                    "backup/nightly": "backs it up (logical_full)",
                    "backup/drill": "restores it in drills of nightly"}
    column = {d.job: d.how for d in impact(project, "shop.customers.region")}
    assert column["report/revenue"] == "returns it as 'region'"
    assert {d.job: d.how for d in impact(project, "shop.orders.customer_id")}[
        "report/revenue"] == "reads the column"
    assert "report/revenue" not in {d.job for d in impact(project, "shop.customers.email")}


def test_unknown_target(tmp_path: Path) -> None:
    project = check(tmp_path).project
    with pytest.raises(UsageError, match=r"did you mean shop\.orders"):
        impact(project, "shop.order")
    with pytest.raises(UsageError, match="did you mean total"):
        impact(project, "shop.orders.totl")
    with pytest.raises(UsageError, match=r"schema\.table"):
        impact(project, "orders")


def test_impact_follows_glossary_terms(tmp_path: Path) -> None:
    from tests.unit.test_glossary import SALES, _report

    project = check(tmp_path, {
        "definitions/glossary/sales.yaml": SALES,
        "definitions/reports/revenue.yaml": _report(
            "select s.region, sum(s.total) as revenue from sales s group by s.region"),
    }).project
    column = {d.job: d.how for d in impact(project, "shop.customers.region")}
    assert column == {"glossary/sales": "reads the column",
                      "report/revenue": "returns it as 'region' (through glossary sales)",
                      "backup/nightly": "backs it up (logical_full)"}
    assert {d.job: d.how for d in impact(project, "shop.orders.total")}[
        "report/revenue"] == "reads the column (through glossary sales)"
    assert {d.job: d.how for d in impact(project, "glossary/sales")} == {
        "report/revenue": "reads it"}
    with pytest.raises(UsageError, match="did you mean glossary/sales"):
        impact(project, "glossary/sale")


def test_impact_and_pii_follow_views(tmp_path: Path) -> None:
    from tests.helpers import REVENUE, SHOP

    shop = SHOP + """\
views:
  customer_list:
    columns:
      id: {type: bigint}
      contact: {type: text}
    definition: select c.id, c.email as contact from shop.customers c
"""
    report = REVENUE.replace(
        REVENUE[REVENUE.index("sql: |"):REVENUE.index("group by c.region\n") + 18],
        "sql: select l.contact from customer_list l\n")
    result = check(tmp_path, {"schema/shop.yaml": shop,
                              "marketops.yaml": None,
                              "definitions/reports/revenue.yaml": report})
    project = result.project
    assert project.settings.reports.search_path == ["public"]
    assert any("not in any schema on the search_path" in f.message for f in result.findings)
    qualified = report.replace("from customer_list l", "from shop.customer_list l")
    result = check(tmp_path, {"schema/shop.yaml": shop,
                              "definitions/reports/revenue.yaml": qualified})
    jobs = {d.job: d.how for d in impact(result.project, "shop.customers.email")}
    assert jobs["report/revenue"] == "returns it as 'contact'"
    assert "report/revenue" in {d.job for d in impact(result.project, "shop.customer_list")}
    pii = [f for f in result.findings if f.rule == "report-pii"]
    assert pii and "contact" in pii[0].message
