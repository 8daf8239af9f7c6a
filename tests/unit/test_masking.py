"""One masking function for every secret form: DSNs, webhook URLs, values from the environment."""

from __future__ import annotations

import logging

import pytest

from engine.masking import describe_error, literal_password, mask, remember
from engine.runs.logs import JsonFormatter, mask_records
from engine.validation.findings import Finding, Location
from runners.postgres.connection import mask_dsn

SECRET = "KvTail-9f3a"


@pytest.mark.parametrize(("text", "shown"), [
    (f"postgresql://app:{SECRET}@db:5432/shop", "postgresql://app:***@db:5432/shop"),
    (f"postgres://app:p@ss{SECRET}@db/shop", "postgres://app:***@db/shop"),
    (f"host=db password={SECRET} user=app", "host=db password=*** user=app"),
    (f"host=db password='a b {SECRET}' user=app", "host=db password=*** user=app"),
    (f"host=db password = 'it\\'s {SECRET}' user=app", "host=db password = *** user=app"),
    (f"host=db password=x'{SECRET} user=app", "host=db password=*** user=app"),
    (f"host=db password='a {SECRET}", "host=db password=***"),
    (f"postgresql://app@db/shop?password={SECRET}&sslmode=require",
     "postgresql://app@db/shop?password=***&sslmode=require"),
    (f"postgresql://app@db/shop?sslmode=require&sslpassword={SECRET}",
     "postgresql://app@db/shop?sslmode=require&sslpassword=***"),
    (f"https://hooks.slack.com/services/T0/B0/{SECRET}", "https://hooks.slack.com/***"),
    (f"posting to http://127.0.0.1:9/hook?token={SECRET} failed",
     "posting to http://127.0.0.1:9/*** failed"),
    (f"cannot connect to host=db password='{SECRET} x': refused",
     "cannot connect to host=db password=***: refused"),
])
def test_every_form_is_masked(text: str, shown: str) -> None:
    assert mask(text) == shown
    assert mask_dsn(text) == shown  # the runners' name for the same function


def test_text_without_secrets_is_unchanged() -> None:
    text = "bypass=1 host=db user=app dbname=shop file:///var/reports/x.csv s3://bucket/p"
    assert mask(text) == text


def test_a_value_read_from_the_environment_is_masked_in_any_shape() -> None:
    remember(f"hooks.example.invalid/services/{SECRET}-env")
    text = f"unknown url type: 'hooks.example.invalid/services/{SECRET}-env'"
    assert mask(text) == "unknown url type: '***'"
    remember("short")  # too short to mask safely: ordinary words stay
    assert mask("a short note") == "a short note"


def test_literal_passwords_in_every_dsn_form() -> None:
    assert literal_password("postgresql://u:p@h/db") is not None
    assert literal_password("postgresql://u@h/db?password=x") is not None
    assert literal_password("host=h password='a b'") is not None
    assert literal_password("postgresql://u@h/db?sslmode=require") is None
    assert literal_password("host=h user=u passfile=/p") is None


def test_an_unexpected_error_is_its_type_and_masked_message() -> None:
    exc = ValueError(f"bad dsn host=h password={SECRET}\nsecond line")
    assert describe_error(exc) == "ValueError: bad dsn host=h password=*** second line"
    assert describe_error(KeyError()) == "KeyError"


def test_log_records_are_masked_for_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    mask_records()
    log = logging.getLogger("marketops.test")
    with caplog.at_level(logging.INFO, logger="marketops.test"):
        try:
            raise RuntimeError(f"password={SECRET}")
        except RuntimeError:
            log.exception("connecting to %s", f"postgresql://u:{SECRET}@h/db")
    [record] = caplog.records
    line = JsonFormatter().format(record)
    assert SECRET not in line and SECRET not in caplog.text
    assert "postgresql://u:***@h/db" in line and "password=***" in line


def test_findings_are_one_line() -> None:
    finding = Finding(Location("f.yaml"), "'a@b.example\nerror: forged\x1b[31m' is bad", "x")
    assert finding.message == "'a@b.example\\nerror: forged\\x1b[31m' is bad"


def test_a_dsn_from_the_environment_keeps_its_host_but_not_its_password() -> None:
    from engine.masking import mask, remember

    remember("postgresql://app:Rem3mberedPw@db.internal:5432/shop")
    remember("host=db2 user=x password='sp ace d pw'")
    text = mask("cannot connect to db.internal:5432/shop (Rem3mberedPw; sp ace d pw)")
    assert text == "cannot connect to db.internal:5432/shop (***; ***)"


def test_an_env_reference_names_its_variable_and_nothing_else_is_one() -> None:
    from engine.definitions.models.base import env_reference

    assert env_reference("${SMTP_PASSWORD}") == "SMTP_PASSWORD"
    assert env_reference("${_X1}") == "_X1"
    for value in ("SMTP_PASSWORD", "${1X}", "${A}b", "a${A}", "${A-B}", "$A", ""):
        assert env_reference(value) is None, value
