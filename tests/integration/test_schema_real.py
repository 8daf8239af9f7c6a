"""Schemas written outside this project (tests/data/schemas): pull, diff, apply, diff again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.dbschema.ddl import create_all
from engine.dbschema.schema_yaml import render
from engine.dbschema.schemadiff import apply_statements, diff
from engine.definitions.loader import build_model
from engine.definitions.models.schema import Domain, EnumType, SchemaFile
from engine.definitions.project import build_catalog
from engine.definitions.yamlsource import parse_yaml
from engine.validation.sqlcheck import analyze
from runners.postgres.connection import connect, execute_script
from runners.postgres.introspect import Pulled, pull
from tests.integration.test_cli import run

DATA = Path(__file__).parent.parent / "data" / "schemas"
REAL = ["pagila-schema.sql", "chinook.sql", "northwind.sql"]


def _load(dsn: str, name: str) -> None:
    with connect(dsn, autocommit=True) as conn:
        conn.execute("do $$ begin if not exists (select from pg_roles where rolname = "
                     "'postgres') then create role postgres; end if; end $$")
        conn.execute((DATA / name).read_bytes())


def _pull(dsn: str) -> Pulled:
    with connect(dsn) as conn:
        return pull(conn)


@pytest.mark.parametrize("name", REAL)
def test_real_schema_round_trips(name: str, new_database: Callable[..., str]) -> None:
    source = new_database()
    _load(source, name)
    pulled = _pull(source)
    assert pulled.schemas
    # The YAML written reads back to the same models...
    for schema_name, schema in pulled.schemas.items():
        doc, findings = parse_yaml(f"{schema_name}.yaml", render(schema))
        assert findings == [] and doc is not None
        model, problems = build_model(doc, SchemaFile)
        assert problems == [], problems
        assert model == schema
    # ...matches the database it came from...
    assert [str(d) for d in diff(pulled.schemas, _pull(source).schemas)] == []
    # ...and builds the same database from nothing (whose public schema already exists).
    target = new_database()
    execute_script(target, apply_statements(pulled.schemas, _pull(target).schemas))
    assert [str(d) for d in diff(pulled.schemas, _pull(target).schemas)] == []
    assert apply_statements(pulled.schemas, _pull(target).schemas) == []
    # schema ddl gives the same script for an empty database.
    third = new_database()
    execute_script(third, create_all(pulled.schemas.values()))
    assert [str(d) for d in diff(pulled.schemas, _pull(third).schemas)] == []


def test_pagila_is_pulled_in_full(new_database: Callable[..., str]) -> None:
    dsn = new_database()
    _load(dsn, "pagila-schema.sql")
    pulled = _pull(dsn)
    public = pulled.schemas["public"]
    assert public.extensions == ["vector"]
    rating, bigint = public.types["mpaa_rating"], public.types["b\u0131g\u0131nt"]
    assert isinstance(rating, EnumType) and rating.enum == ["G", "PG", "PG-13", "R", "NC-17"]
    assert isinstance(bigint, Domain) and bigint.domain == "bigint"
    assert public.tables["film"].columns["rating"].type == "public.mpaa_rating"
    assert public.tables["payment"].partition_by == "RANGE (payment_date)"
    assert public.tables["payment_p2022_01"].partition_of == "payment"
    assert public.views["rental_by_category"].materialized
    assert "group_concat(text)" in public.functions
    assert "customer_customer_id_seq" in public.sequences
    assert "public.film_embedding: index film_embedding_embedding_hnsw_idx uses hnsw; " \
        "skipped" in pulled.notes
    assert "public.actor: trigger last_updated cannot be described in YAML; not pulled " \
        "(apply will not create it)" in pulled.notes


@pytest.mark.parametrize("name", REAL)
def test_real_views_validate_as_reports(name: str, new_database: Callable[..., str]) -> None:
    """Each view's definition, as PostgreSQL prints it for a session whose search_path is
    public (unqualified names, user aggregates), passes the report SQL checks."""
    dsn = new_database()
    _load(dsn, name)
    pulled = _pull(dsn)
    catalog = build_catalog(list(pulled.schemas.values()))
    with connect(dsn) as conn:
        conn.execute("set search_path = public")
        views = conn.execute("select c.relname, pg_get_viewdef(c.oid, true) from pg_class c "
                             "where c.relkind in ('v', 'm') and c.relnamespace = "
                             "'public'::regnamespace order by 1").fetchall()
    for view, definition in views:
        analysis = analyze(definition, catalog)
        assert analysis.problems == [], (view, analysis.problems)
        assert analysis.outputs == list(pulled.schemas["public"].views[view].columns)


def _add_backup_tier(root: Path, schema: str) -> None:
    """What a team adds before validate passes: a daily backup tier for the adopted schema."""
    (root / "marketops.yaml").write_text(
        "destinations:\n  backups:\n    url: file://./var/backups\n"
        "keys:\n  backup-key: ${BACKUP_KEY}\n")
    (root / "definitions" / "backups").mkdir(parents=True)
    (root / "definitions" / "backups" / "daily.yaml").write_text(
        f"title: Daily\nowner: dba@example.com\nkind: logical_schemas\nschemas: [{schema}]\n"
        "cron: \"0 3 * * *\"\ntimezone: UTC\ndestination: backups\n"
        "encryption: {key: backup-key}\nretention: {keep_last: 7}\nrpo: 26h\nrto: 2h\n")


@pytest.mark.parametrize("name", REAL)
def test_cli_adopts_a_real_schema(name: str, new_database: Callable[..., str],
                                  tmp_path: Path) -> None:
    """pull, validate (once a backup tier covers it), diff; apply into an empty database,
    diff again: all through the CLI, all clean."""
    source, target = new_database(), new_database()
    _load(source, name)
    pulled = run("schema", "pull", "--dsn", source, cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    _add_backup_tier(tmp_path, "public")
    for command in (("validate",), ("schema", "diff", "--dsn", source),
                    ("schema", "apply", "--dsn", target), ("schema", "diff", "--dsn", target)):
        result = run(*command, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stdout[-2000:] + result.stderr)
        assert "Traceback" not in result.stdout + result.stderr


ORMS_DDL = """
create schema shop;
create type shop."Status" as enum ('new', 'paid', 'shipped');
create table shop."Customer" ("Id" serial primary key, "Email" text not null unique);
create table shop."Order" (
    "Id" bigint generated always as identity primary key,
    "CustomerId" integer not null references shop."Customer"("Id"),
    status shop."Status" not null default 'new',
    net numeric(12,2) not null check (net >= 0),
    gross numeric(12,2) generated always as (net * 1.2) stored
);
create view shop."OrderTotals" as
    select "CustomerId", sum(gross) as total from shop."Order" group by "CustomerId";
"""


def test_cli_adopts_a_database_with_quoted_mixed_case_names(
        new_database: Callable[..., str], tmp_path: Path) -> None:
    source, target = new_database(), new_database()
    with connect(source, autocommit=True) as conn:
        conn.execute(ORMS_DDL.encode())
    pulled = run("schema", "pull", "--dsn", source, "--out", str(tmp_path / "schema"),
                 cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    text = (tmp_path / "schema" / "shop.yaml").read_text()
    assert 'references: {table: "shop.\\"Customer\\"", columns: [Id]}' in text
    assert 'generated: "(net * 1.2)"' in text and "identity: always" in text
    _add_backup_tier(tmp_path, "shop")
    for command in (("schema", "diff", "--dsn", source), ("schema", "apply", "--dsn", target),
                    ("schema", "diff", "--dsn", target), ("schema", "apply", "--dsn", target)):
        result = run(*command, cwd=tmp_path)
        assert "Traceback" not in result.stdout + result.stderr
        assert result.returncode == 0, (command, result.stdout + result.stderr)
    report = ('select t."CustomerId", t.total, c."Email" from "OrderTotals" t '
              'join "Customer" c on c."Id" = t."CustomerId"')
    catalog = build_catalog(list(_pull(target).schemas.values()), ["shop"])
    assert analyze(report, catalog).problems == []
    wrong = analyze('select "customerid", totl from "OrderTotals"', catalog)
    assert [p.message for p in wrong.problems] == [
        "unknown column 'customerid' (reading shop.\"OrderTotals\"); did you mean \"CustomerId\"? "
        "(a mixed-case name must be quoted)",
        "unknown column 'totl' (reading shop.\"OrderTotals\"); did you mean total?"]


KITCHEN_SINK = """
create extension citext;
create schema crm;
create type crm.tier as enum ('free', 'pro');
create domain crm.positive as numeric(12,2) check (value > 0);
create domain crm.price as crm.positive not null default 1;
create sequence crm.invoice_no as integer start with 1000 increment by 10 cycle;
create table crm.accounts (
    id integer generated by default as identity primary key,
    email public.citext not null unique,
    tier crm.tier not null default 'free',
    price crm.price,
    doubled integer generated always as (id * 2) virtual,
    invoice integer default nextval('crm.invoice_no'),
    constraint sane check (price < 1000000)
);
alter sequence crm.invoice_no owned by crm.accounts.invoice;
create table crm.events (at date not null, region text not null, what text)
    partition by list (region);
create table crm.events_eu partition of crm.events for values in ('eu')
    partition by range (at);
create table crm.events_eu_2026 partition of crm.events_eu
    for values from ('2026-01-01') to ('2027-01-01');
create table crm.events_other partition of crm.events default;
create index on crm.events (at);
create function crm.cents(numeric) returns bigint language sql immutable
    as 'select ($1 * 100)::bigint';
create materialized view crm.by_tier as
    select tier, count(*) as n, sum(crm.cents(price)) as cents from crm.accounts group by tier;
create unique index by_tier_tier on crm.by_tier (tier);
comment on materialized view crm.by_tier is 'Accounts per tier';
create extension btree_gist;
create table crm.bookings (room int, during tstzrange,
    exclude using gist (room with =, during with &&));
create type crm.money_pair as (amount numeric, currency text);
create view crm.pros as select a.id, a.email from crm.by_tier t
    join crm.accounts a on a.tier = t.tier where t.tier = 'pro';
"""


def test_every_described_feature_round_trips(new_database: Callable[..., str]) -> None:
    source, target = new_database(), new_database()
    with connect(source, autocommit=True) as conn:
        conn.execute(KITCHEN_SINK.encode())
    pulled = _pull(source)
    assert pulled.notes == ["crm.bookings: exclusion constraint bookings_room_during_excl "
                            "cannot be described in YAML; not pulled",
                            "crm.money_pair: composite type cannot be described in YAML; not "
                            "pulled (apply will not create it)"]
    crm = pulled.schemas["crm"]
    assert pulled.schemas["public"].extensions == ["btree_gist", "citext"]
    assert crm.tables["accounts"].columns["doubled"].virtual
    assert crm.tables["events_eu"].partition_by == "RANGE (at)"
    assert crm.sequences["invoice_no"].owned_by == "accounts.invoice"
    assert crm.functions["cents(numeric)"].volatility == "immutable"
    for name, schema in pulled.schemas.items():
        doc, _ = parse_yaml(f"{name}.yaml", render(schema))
        assert doc is not None and build_model(doc, SchemaFile) == (schema, [])
    assert [str(d) for d in diff(pulled.schemas, _pull(source).schemas)] == []
    execute_script(target, apply_statements(pulled.schemas, _pull(target).schemas))
    assert [str(d) for d in diff(pulled.schemas, _pull(target).schemas)] == []
    catalog = build_catalog(list(pulled.schemas.values()), ["crm"])
    report = analyze("select t.tier, t.cents, crm.cents(a.price) as c from by_tier t "
                     "join pros p on true join accounts a on a.id = p.id", catalog)
    assert report.problems == []
