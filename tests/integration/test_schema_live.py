"""The declared schema against a real PostgreSQL 18: DDL, apply, pull, diff."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.dbschema.ddl import create_all
from engine.dbschema.schema_yaml import render
from engine.dbschema.schemadiff import apply_statements, diff
from engine.definitions.loader import build_model
from engine.definitions.models.schema import SchemaFile
from engine.definitions.yamlsource import parse_yaml
from engine.validation.validate import validate
from runners.postgres.connection import connect, execute_script
from runners.postgres.introspect import pull


def _declared(root: Path) -> dict[str, SchemaFile]:
    defs = validate(root)
    assert defs.passed(), defs.findings
    return {name: loaded.model for name, loaded in defs.project.schemas.items()}


def _live(dsn: str, names: list[str] | None = None) -> dict[str, SchemaFile]:
    with connect(dsn) as conn:
        return pull(conn, names).schemas


def test_ddl_applies_cleanly_and_pull_gives_it_back(repo_root: Path,
                                                    new_database: Callable[..., str]) -> None:
    dsn = new_database()
    declared = _declared(repo_root)
    execute_script(dsn, create_all(declared.values()))
    assert diff(declared, _live(dsn)) == []


def test_apply_is_idempotent(repo_root: Path, new_database: Callable[..., str]) -> None:
    dsn = new_database()
    declared = _declared(repo_root)
    first = apply_statements(declared, _live(dsn))
    assert first
    execute_script(dsn, first)
    assert apply_statements(declared, _live(dsn)) == []
    assert diff(declared, _live(dsn)) == []


def test_hand_made_drift_is_reported_exactly(repo_root: Path,
                                             new_database: Callable[..., str]) -> None:
    dsn = new_database()
    declared = _declared(repo_root)
    execute_script(dsn, create_all(declared.values()))
    with connect(dsn, autocommit=True) as conn:
        conn.execute("alter table users.profiles drop column phone")
        conn.execute("alter table orders.orders alter column status type varchar(20)")
        conn.execute("create table users.scratch (id int primary key)")
        conn.execute("drop index orders.orders_placed_at_idx")
        conn.execute("alter table users.accounts alter column region_id drop not null")
    found = sorted(str(d) for d in diff(declared, _live(dsn)))
    assert found == sorted([
        "users.profiles.phone: missing column (text)",
        "orders.orders.status: type differs: declared text, live varchar(20)",
        "users.scratch: extra table",
        "orders.orders: missing index (btree (placed_at))",
        "users.accounts.region_id: nullable differs: declared false, live true",
    ])
    # apply restores what is missing and leaves what needs a migration.
    execute_script(dsn, apply_statements(declared, _live(dsn)))
    left = sorted(d.kind for d in diff(declared, _live(dsn)))
    assert left == ["extra table", "nullable", "type"]


FOREIGN_DDL = """
create schema shop;
comment on schema shop is 'Made by hand, not by marketops';
create table shop.customers (
    id serial primary key,
    email varchar(200) not null unique,
    created timestamp with time zone not null default current_timestamp,
    score numeric(5,1) default 0,
    tags text[]
);
create table shop.orders (
    order_no bigint generated always as identity,
    customer integer not null references shop.customers(id) on delete cascade,
    amount double precision,
    note text,
    primary key (order_no)
);
comment on table shop.orders is 'Orders: one row each';
comment on column shop.orders.note is 'free text, may hold "quotes" and: colons';
create index orders_by_customer on shop.orders (customer, order_no);
create index open_orders on shop.orders (order_no) where note is null;
create index lower_note on shop.orders (lower(note));
create table public.loose (k text primary key);
"""


def test_pull_a_database_marketops_did_not_create(new_database: Callable[..., str],
                                                  tmp_path: Path) -> None:
    dsn = new_database()
    with connect(dsn, autocommit=True) as conn:
        conn.execute(FOREIGN_DDL.encode())
    pulled = None
    with connect(dsn) as conn:
        pulled = pull(conn)
    assert set(pulled.schemas) == {"shop", "public"}
    assert any("expression index lower_note" in n for n in pulled.notes)
    shop = pulled.schemas["shop"]
    assert shop.tables["customers"].columns["email"].type == "varchar(200)"
    assert shop.tables["orders"].columns["order_no"].identity
    assert [i.name for i in shop.tables["orders"].indexes] == ["open_orders",
                                                               "orders_by_customer"]
    # The YAML written reads back to the same models, and matches the live database.
    for name, schema in pulled.schemas.items():
        doc, findings = parse_yaml(f"{name}.yaml", render(schema))
        assert findings == [] and doc is not None
        model, problems = build_model(doc, SchemaFile)
        assert problems == [] and model == schema
    assert diff(pulled.schemas, _live(dsn)) == []
