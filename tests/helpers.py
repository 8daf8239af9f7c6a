"""A small, valid definitions repository that tests copy and break one piece at a time."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.validation.findings import Finding
from engine.validation.validate import ValidationResult, validate

SETTINGS = """\
destinations:
  backups: {url: "file://./var/backups"}
  vault: {url: "file://./var/vault"}
  archive: {url: "file://./var/reports"}
keys:
  k1: ${BACKUP_KEY}
webhooks:
  ops: {url: "${OPS_WEBHOOK}"}
  trusted: {url: "${TRUSTED_WEBHOOK}", allow_pii: true}
reports:
  destination: archive
  pii_allowed_domains: [corp.example]
roles: {reports: marketops_reports}
"""

SHOP = """\
name: shop
owner: shop@corp.example
description: A tiny shop.
tables:
  customers:
    description: Customers.
    columns:
      id: {type: bigint, nullable: false}
      email: {type: text, nullable: false, pii: email}
      region: {type: text}
      created_at: {type: timestamptz, nullable: false}
    primary_key: [id]
  orders:
    columns:
      id: {type: bigint, nullable: false}
      customer_id: {type: bigint, nullable: false}
      total: {type: "numeric(12,2)", nullable: false}
      placed_at: {type: timestamptz, nullable: false}
    primary_key: [id]
    foreign_keys:
      - columns: [customer_id]
        references: {table: shop.customers, columns: [id]}
    indexes:
      - columns: [placed_at]
"""

REVENUE = """\
title: Daily revenue
description: Revenue per region.
owner: finance@corp.example
cron: "0 6 * * *"
timezone: Europe/Berlin
period: previous_day
sql: |
  select c.region, sum(o.total) as revenue
  from shop.orders o
  join shop.customers c on c.id = o.customer_id
  where o.placed_at >= :period_start and o.placed_at < :period_end
  group by c.region
recipients:
  - email: finance@corp.example
"""

NIGHTLY = """\
title: Nightly full
owner: dba@corp.example
kind: logical_full
cron: "0 1 * * *"
destination: backups
encryption: {key: k1}
rpo: 26h
rto: 1h
"""

BASE: dict[str, str] = {
    "marketops.yaml": SETTINGS,
    "schema/shop.yaml": SHOP,
    "definitions/reports/revenue.yaml": REVENUE,
    "definitions/backups/nightly.yaml": NIGHTLY,
}


def write_project(root: Path, overrides: dict[str, str | None] | None = None) -> Path:
    """Write BASE (with `overrides`; None deletes a file) under `root`."""
    files: dict[str, str | None] = {**BASE, **(overrides or {})}
    for name, text in files.items():
        if text is None:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def check(root: Path, overrides: dict[str, str | None] | None = None) -> ValidationResult:
    """Write a project and validate it."""
    return validate(write_project(root, overrides), debug=True)


def by_rule(defs: ValidationResult, rule: str) -> list[Finding]:
    """The findings of one rule."""
    return [f for f in defs.findings if f.rule == rule]


def where(finding: Finding) -> str:
    """file:line of a finding."""
    return f"{finding.location.file}:{finding.location.line}"


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing `needle` in `text`."""
    seen = 0
    for number, line in enumerate(textwrap.dedent(text).splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")
