"""The SQL analysis on its own: what a query reads, returns and exposes."""

from engine.sqlcheck import Catalog, analyze

CATALOG = Catalog(
    {"shop": {"customers": {"id": "bigint", "email": "text", "region": "text"},
              "orders": {"id": "bigint", "customer_id": "bigint", "total": "numeric"}}},
    frozenset({("shop", "customers", "email")}),
)


def test_reads_and_outputs() -> None:
    analysis = analyze("select c.region, sum(o.total) as revenue from shop.orders o "
                       "join shop.customers c on c.id = o.customer_id group by 1", CATALOG)
    assert analysis.ok
    assert analysis.outputs == ["region", "revenue"]
    assert analysis.tables == {("shop", "orders"), ("shop", "customers")}
    assert ("shop", "orders", "customer_id") in analysis.columns
    assert analysis.exposed["revenue"] == set()  # a sum reveals no single value
    assert analysis.exposed["region"] == {("shop", "customers", "region")}


def test_star_is_expanded_against_the_catalog() -> None:
    analysis = analyze("select * from shop.customers", CATALOG)
    assert analysis.outputs == ["id", "email", "region"]
    assert analysis.exposed["email"] == {("shop", "customers", "email")}


def test_exposure_through_subquery_union_and_functions() -> None:
    analysis = analyze("select lower(s.e) as e from (select c.email as e from shop.customers c "
                       "union all select c.region from shop.customers c) s", CATALOG)
    assert analysis.exposed["e"] == {("shop", "customers", "email"),
                                     ("shop", "customers", "region")}


def test_min_max_reveal_values() -> None:
    analysis = analyze("select max(c.email) as m from shop.customers c", CATALOG)
    assert analysis.exposed["m"] == {("shop", "customers", "email")}


def test_correlated_subquery_columns_resolve_outside() -> None:
    analysis = analyze("select c.id from shop.customers c where exists (select 1 from "
                       "shop.orders o where o.customer_id = c.id and total > 0)", CATALOG)
    assert analysis.ok, analysis.problems


def test_ctes_are_not_unknown_tables() -> None:
    analysis = analyze("with big as (select o.id from shop.orders o where o.total > 100) "
                       "select count(*) as n from big", CATALOG)
    assert analysis.ok and analysis.outputs == ["n"]


def test_parameters_positions() -> None:
    analysis = analyze("select o.id\nfrom shop.orders o\nwhere o.total > :min and o.id::text "
                       "<> :x", CATALOG)
    assert analysis.parameters == {"min": (3, 17), "x": (3, 40)}


def test_counting_with_filters_and_case_conditions_hides_values() -> None:
    analysis = analyze("select count(*) filter (where c.email like '%@x') as n, "
                       "case when c.email is null then 'none' else 'some' end as has_email "
                       "from shop.customers c", CATALOG)
    assert analysis.exposed == {"n": set(), "has_email": set()}
    shown = analyze("select case when c.id > 0 then c.email end as e from shop.customers c",
                    CATALOG)
    assert shown.exposed["e"] == {("shop", "customers", "email")}
