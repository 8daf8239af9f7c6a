"""The SQL analysis on its own: what a query reads, returns and exposes."""

from engine.validation.sqlcheck import DeclaredSchema, analyze

CATALOG = DeclaredSchema(
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


PATHED = DeclaredSchema(
    {"shop": {"customers": {"id": "bigint", "email": "text"}},
     "public": {"payment": {"id": "bigint", "amount": "numeric"},
                "customers": {"id": "bigint", "name": "text"}},
     "app": {"Order": {"Id": "bigint", "CustomerId": "bigint"}}},
    frozenset(), ("public", "shop"), frozenset({"public.last_day"}),
    frozenset({"public.last_day", "public.rewards"}))


def test_unqualified_names_resolve_through_the_search_path() -> None:
    analysis = analyze("select p.amount from payment p", PATHED)
    assert analysis.ok, analysis.problems
    assert analysis.tables == {("public", "payment")}
    # PostgreSQL reads the first schema on the path that has it, and we say so.
    ambiguous = analyze("select c.id from customers c", PATHED)
    assert [p.rule for p in ambiguous.problems] == ["sql-ambiguous-table"]
    assert "PostgreSQL reads public.customers" in ambiguous.problems[0].message
    missing = analyze('select 1 from "Order"', PATHED)
    assert missing.problems[0].message == (
        "unknown table 'Order': not in any schema on the search_path (public, shop); qualify "
        "it (schema.table); did you mean app.Order?")


def test_quoted_names_keep_their_case_and_unquoted_ones_fold() -> None:
    assert analyze('select o."CustomerId" from app."Order" o', PATHED).ok
    folded = analyze("select o.CustomerId from app.\"Order\" o", PATHED)
    assert [p.message for p in folded.problems] == [
        'unknown column app.Order.customerid; did you mean "CustomerId"? (a mixed-case name '
        "must be quoted)"]


def test_every_unknown_table_and_column_in_one_pass() -> None:
    analysis = analyze("select p.amout, x.y from public.payment p join public.nope x "
                       "on x.id = p.id", PATHED)
    assert [p.message for p in analysis.problems] == [
        "unknown table public.nope: not declared in schema/public.yaml",
        "unknown column public.payment.amout; did you mean amount?"]


def test_user_functions_only_when_declared_safe() -> None:
    assert analyze("select public.last_day(now()) as d", PATHED).ok
    assert analyze("select last_day(now()) as d", PATHED).ok
    for sql in ("select public.rewards(1) as r", "select rewards(1) as r"):
        problems = analyze(sql, PATHED).problems
        assert [p.rule for p in problems] == ["sql-read-only"], sql
        assert "public.rewards() is not declared safe" in problems[0].message
    assert not analyze("select other.f(1) as r", PATHED).ok
