"""PostgreSQL type parsing and foreign-key compatibility."""

import pytest

from engine.dbschema.pgtypes import compatible, parse_type, same_storage


@pytest.mark.parametrize(("text", "sql"), [
    ("int", "integer"), ("INT8", "bigint"), ("numeric(12, 2)", "numeric(12,2)"),
    ("character varying(255)", "varchar(255)"), ("timestamp with time zone", "timestamptz"),
    ("text[]", "text[]"), ("double precision", "double precision"), ("bool", "boolean"),
])
def test_normalizes(text: str, sql: str) -> None:
    assert parse_type(text).sql() == sql


@pytest.mark.parametrize(("text", "needle"), [
    ("strng", "unknown PostgreSQL type"), ("integer(3)", "takes no modifier"),
    ("numeric(2,5)", "scale 5 is larger"), ("varchar(0)", "at least 1"),
    ("numeric(12", "unbalanced"), ("text;drop", "is not a PostgreSQL type"),
])
def test_rejects(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_type(text)


def test_compatibility() -> None:
    assert compatible(parse_type("bigint"), parse_type("bigserial"))
    assert same_storage(parse_type("bigint"), parse_type("bigserial"))
    assert compatible(parse_type("integer"), parse_type("bigint"))
    assert not same_storage(parse_type("integer"), parse_type("bigint"))
    assert not compatible(parse_type("text"), parse_type("bigint"))
    assert not compatible(parse_type("uuid"), parse_type("uuid[]"))
