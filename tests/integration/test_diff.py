"""`marketops diff` through the installed command, on a git repository of this repository's
definitions with two commits of realistic edits, and real backups at the destination."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest
from markdown_it import MarkdownIt

from runners.postgres.connection import connect, query
from tests.integration.conftest import copy_repository

KEY = str(pyrage.x25519.Identity.generate())
AT = "2026-12-03T06:00:00+01:00"

# In the base commit: a report a CRM colleague receives, with customers' e-mail addresses.
VIP = """\
title: VIP customers
description: One row per account with five or more orders placed in the previous month
  (Europe/Berlin); email, orders, spent = sum of the orders' total.
owner: crm@marketplace.example
cron: "0 8 1 * *"
timezone: Europe/Berlin
period: previous_month
sql: |
  select a.email, count(*) as orders, sum(o.total) as spent
  from users.accounts a
  join orders.orders o on o.account_id = a.id
  where o.placed_at >= :period_start and o.placed_at < :period_end
  group by a.email
  having count(*) >= 5
contains_pii: true
recipients:
  - email: crm@marketplace.example
"""


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), "-c", "user.name=Reviewer", "-c",
                           "user.email=reviewer@marketplace.example", *args],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETOPS_", "GITHUB_"))}
    yield {**clean, "MARKETOPS_BACKUP_KEY": KEY}


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def repo(tmp_path: Path, repo_root: Path, env: dict[str, str]) -> Path:
    """A definitions repository: `main` = this repository's definitions plus the VIP report;
    `feature`, checked out = a pull request on it."""
    root = copy_repository(repo_root, tmp_path / "defs", "TEST_PRIMARY_DSN")
    (root / ".gitignore").write_text("var/\n", encoding="utf-8")
    (root / "definitions/reports/vip_customers.yaml").write_text(VIP, encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "definitions")
    _git(root, "checkout", "-qb", "feature")
    reports, backups = root / "definitions/reports", root / "definitions/backups"
    _edit(backups / "content_schema.yaml", "retention: {keep_last: 7, keep_weekly: 4}",
          "retention: {keep_last: 1}")
    _edit(backups / "users_schema.yaml", "encryption: {key: backup-key}\n", "")
    _edit(reports / "vip_customers.yaml", "  - email: crm@marketplace.example",
          "  - email: crm@marketplace.example\n  - email: accounts@crm-agency.example")
    _edit(root / "marketops.yaml", "pii_allowed_domains: [marketplace.example]",
          "pii_allowed_domains: [marketplace.example, crm-agency.example]")
    _edit(root / "marketops.yaml", "${DATA_ALERTS_WEBHOOK_URL}", "${DATA_ALERTS_WEBHOOK_V2}")
    _edit(reports / "pnl_monthly.yaml", 'cron: "0 6 1 * *"', 'cron: "0 9 2 * *"')
    _edit(reports / "vip_customers.yaml", "sum(o.total) as spent", "sum(o.total) as revenue")
    _edit(reports / "vip_customers.yaml", "having count(*) >= 5", "having count(*) >= 2")
    _edit(root / "schema/orders.yaml",
          '      total: {type: "numeric(12,2)", nullable: false}\n',
          '      total: {type: "numeric(12,2)", nullable: false}\n'
          "      gift_message: {type: text}\n")
    # The support schema and the physical base backup weekly only, and the big support
    # messages table out of the nightly dump.
    _edit(backups / "support_schema.yaml", 'cron: "20 3 * * *"', 'cron: "20 3 * * 0"')
    _edit(backups / "support_schema.yaml", "rpo: 26h", "rpo: 8d")
    _edit(backups / "nightly_full.yaml", "rto: 1h", "rto: 1h\nexclude_tables: [support.messages]")
    _edit(backups / "base_weekly.yaml", 'cron: "30 2 * * *"', 'cron: "30 2 * * 0"')
    # Returned orders no longer count as purchases: every report reading the term changes.
    _edit(root / "definitions/glossary/purchases.sql",
          "where o.status in ('paid', 'shipped', 'delivered', 'returned')",
          "where o.status in ('paid', 'shipped', 'delivered')")
    _git(root, "commit", "-qam", "a pull request")
    return root


def _back_up_main(root: Path, env: dict[str, str]) -> list[str]:
    """Three real backups of content_schema, taken as main defines it; their ids."""
    _git(root, "checkout", "-q", "main")
    for day in ("2026-11-30", "2026-12-01", "2026-12-02"):
        made = _cli(root, env, "run", "backup/content_schema", "--at", f"{day}T04:00:00+01:00")
        assert made.returncode == 0, made.stdout + made.stderr
    listing = _cli(root, env, "backups", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    _git(root, "checkout", "-q", "feature")
    tier = next(t for t in json.loads(listing.stdout)["tiers"] if t["tier"] == "content_schema")
    return [b["backup_id"] for b in tier["backups"]]


def test_diff_of_a_pull_request(repo: Path, env: dict[str, str], market_dsn: str) -> None:
    env = {**env, "TEST_PRIMARY_DSN": market_dsn}
    stored = _back_up_main(repo, env)
    assert len(stored) == 3
    done = _cli(repo, env, "diff", "--base", "main", "--head", "feature", "--format", "json",
                "--at", AT)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(done.stdout)
    by = {(c["subject"], c["aspect"]): c for c in document["changes"]}

    retention = by[("backup/content_schema", "retention")]
    assert retention["danger"] == "deletes 2 stored backup(s)"
    deleted = [d.split()[1] for d in retention["details"] if d.startswith("deletes ")]
    assert deleted == [f"content_schema/{b}" for b in stored[:2]]

    pii = [c for c in document["changes"] if c["subject"] == "report/vip_customers"
           and c["aspect"] == "recipients"]
    assert [c["danger"] for c in pii] == ["personal data to a new domain crm-agency.example"]
    assert by[("report/vip_customers", "columns")]["summary"] == \
        "output columns: spent renamed revenue"
    schedule = by[("report/pnl_monthly", "schedule")]
    assert schedule["details"][1] == (
        'next runs after (Europe/Berlin, cron "0 9 2 * *"): 2027-01-02 09:00 CET, '
        "2027-02-02 09:00 CET, 2027-03-02 09:00 CET")
    assert [c["danger"] for c in document["changes"] if c["subject"] == "backup/users_schema"] \
        == ["encryption turned off", "holds personal data (users.accounts.email, "
            "users.addresses.city, users.addresses.line1 and 7 more) unencrypted"]
    assert by[("orders.orders", "column")]["summary"] == \
        "orders.orders.gift_message: column added (text)"
    assert by[("settings.webhooks.data-alerts", "webhooks")]["summary"] == \
        "webhooks.data-alerts.url: changed (a secret: not shown)"
    assert "DATA_ALERTS_WEBHOOK" not in done.stdout
    assert by[("settings.reports.pii_allowed_domains", "reports")]["danger"] == \
        "personal data may now go to crm-agency.example"

    assert by[("coverage", "coverage")]["summary"] == \
        "1 table(s) left in no daily tier: support.messages"
    assert by[("coverage", "coverage")]["danger"] == \
        "support.messages no longer backed up at least daily"
    assert by[("backup/nightly_full", "scope")]["summary"] == "tables leaving: support.messages"
    assert by[("backup/support_schema", "rpo")]["summary"] == "RPO: 26h -> 8d"
    assert by[("backup/support_schema", "schedule")]["details"][1] == (
        'next runs after (Europe/Berlin, cron "20 3 * * 0"): 2026-12-06 03:20 CET, '
        "2026-12-13 03:20 CET, 2026-12-20 03:20 CET")
    statuses: dict[str, set[str]] = {}
    for c in document["changes"]:
        statuses.setdefault(c["subject"], set()).add(c["status"])
    indirect = {s for s, found in statuses.items() if found == {"indirect"}}
    assert "report/pnl_monthly" not in indirect  # its own cron changed too: modified
    assert {"report/promo_roi", "report/retention_cohorts"} <= indirect
    assert all(by[(s, "glossary")]["summary"] == "reads changed glossary term(s) purchases"
               for s in indirect | {"report/pnl_monthly"})

    strict = _cli(repo, env, "diff", "--base", "main", "--head", "feature", "--strict",
                  "--at", AT)
    assert strict.returncode == 1
    assert strict.stdout.startswith("marketops diff: base main (")
    assert f"        deletes content_schema/{stored[0]} (finished " in strict.stdout
    assert "Traceback" not in strict.stderr

    # Both versions of the changed report, run for one slot (September 2026) and compared.
    ran = _cli(repo, env, "diff", "--base", "main", "--head", "feature", "--run", "--select",
               "report/vip_*", "--format", "json", "--at", "2026-10-15T12:00:00+02:00")
    assert ran.returncode == 0, ran.stderr
    [run] = [c for c in json.loads(ran.stdout)["changes"] if c["aspect"] == "run"]
    assert run["subject"] == "report/vip_customers"
    assert run["summary"] == "ran both versions for the slot 2026-10-01 08:00 CEST"
    with connect(market_dsn) as conn:
        counts = [r[0] for r in query(conn, """
            select count(*) from orders.orders o
            where o.placed_at >= '2026-09-01 00:00+02' and o.placed_at < '2026-10-01 00:00+02'
            group by o.account_id""")]
    five, two = [c for c in counts if c >= 5], [c for c in counts if c >= 2]
    assert len(two) > len(five)
    assert run["details"] == [
        f"rows: {len(five)} -> {len(two)}",
        f"on email, orders: {len(five)} row(s) alike, 0 only before, "
        f"{len(two) - len(five)} only after",
        f"sum of orders: {sum(five)} -> {sum(two)}"]


def test_the_default_base_is_the_merge_base_and_the_head_the_working_tree(
        repo: Path, env: dict[str, str]) -> None:
    _edit(repo / "definitions/reports/pnl_monthly.yaml", 'cron: "0 9 2 * *"',
          'cron: "0 10 2 * *"')  # uncommitted
    done = _cli(repo, env, "diff", "--format", "github", "--at", AT, "--simulate")
    assert done.returncode == 0, done.stderr
    main = _git(repo, "rev-parse", "main")
    assert done.stdout.splitlines()[2] == (
        f"base {main[:10]} (merge-base of HEAD and main) → head working tree")
    assert 'cron "0 10 2 \\* \\*"' in done.stdout
    html = MarkdownIt("commonmark").enable("table").render(done.stdout)
    assert "<h4>Reports</h4>" in html and "<h4>Backup tiers</h4>" in html
    assert "<h4>Schema</h4>" in html and "<h4>Settings</h4>" in html
    # --simulate: the stored backups are not read; a year of the schedule stands in.
    assert ("the destinations were not read (--simulate); simulated over a year of the "
            "schedule (365 runs)") in html
    assert "<em>" not in html and "<table>" not in html


def test_no_change_errors_and_directories(repo: Path, env: dict[str, str],
                                          tmp_path: Path) -> None:
    same = _cli(repo, env, "diff", "--base", "HEAD", "--head", "HEAD")
    assert (same.returncode, same.stdout.splitlines()[1]) == (0, "no changes")
    unknown = _cli(repo, env, "diff", "--base", "no-such-branch")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        f"error: unknown revision 'no-such-branch' in {repo}: not a branch, tag or commit "
        "here (fetch it first, e.g. git fetch origin main)"]
    broken = tmp_path / "broken"
    copy_repository(repo, broken)
    (broken / "definitions/backups/nightly_full.yaml").write_text("kind: [", encoding="utf-8")
    refused = _cli(repo, env, "diff", "--base", str(repo), "--head", str(broken))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1].startswith(
        f"error: head ({broken}): the definitions do not load: "
        "definitions/backups/nightly_full.yaml:")
    plain = tmp_path / "plain"  # not a git repository: two directories still compare
    copy_repository(repo, plain)
    _edit(plain / "definitions/backups/nightly_full.yaml", 'rpo: 26h', 'rpo: 25h')
    dirs = _cli(plain, env, "diff", "--base", str(repo), "--head", str(plain))
    assert dirs.returncode == 0, dirs.stderr
    assert "      RPO: 26h -> 25h" in dirs.stdout.splitlines()


def test_the_example_workflow_posts_the_comment(repo: Path, env: dict[str, str],
                                                repo_root: Path) -> None:
    import yaml

    workflow = yaml.safe_load((repo_root / "docs/examples/github-workflow.yml").read_text())
    steps = workflow["jobs"]["diff"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    runs = [s["run"] for s in steps if "run" in s]
    command = next(r for r in runs if r.startswith("marketops diff --format github"))
    assert any("--body-file marketops-diff.md" in r for r in runs)
    # The step as the runner executes it, in the pull request's checkout.
    path = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["sh", "-c", command], cwd=repo, capture_output=True, text=True,
                          env={**env, "PATH": path, "GITHUB_BASE_REF": "main"}, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    comment = (repo / "marketops-diff.md").read_text(encoding="utf-8")
    assert comment.startswith("### marketops diff\n")
    html = MarkdownIt("commonmark").render(comment)
    assert "<blockquote>" in html and "<code>report/vip_customers</code>" in html
    assert "dangerous: personal data to a new domain crm-agency.example" in html
