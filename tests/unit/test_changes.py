"""`marketops diff`'s core: the consequences of going from one definition set to another."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from markdown_it import MarkdownIt

from engine.backups.retention import BackupInfo
from engine.definitions.changes import (
    Change,
    Side,
    compare,
    dangerous,
    render_markdown,
    render_text,
)
from engine.definitions.loader import load_project
from engine.definitions.project import Project
from tests.helpers import NIGHTLY, REVENUE, SETTINGS, SHOP, write_project
from tests.unit.test_glossary import SALES, _report

NOW = datetime(2026, 12, 3, 5, 0, tzinfo=UTC)  # a Thursday; 06:00 in Berlin


def _project(root: Path, overrides: dict[str, str | None] | None = None) -> Project:
    project, findings = load_project(write_project(root, overrides))
    assert not [f for f in findings if f.is_error], findings
    return project


def _diff(tmp_path: Path, head: dict[str, str | None], base: dict[str, str | None] | None = None,
          stored: dict[str, list[BackupInfo]] | None = None) -> list[Change]:
    old = _project(tmp_path / "base", base)
    new = _project(tmp_path / "head", {**(base or {}), **head})
    return compare(Side("base", old, stored or {}), Side("head", new), NOW)


def _about(changes: list[Change], subject: str, aspect: str | None = None) -> list[Change]:
    return [c for c in changes if c.subject == subject and (aspect is None or c.aspect == aspect)]


def test_the_same_definitions_change_nothing(tmp_path: Path) -> None:
    assert _diff(tmp_path, {}) == []


def test_output_columns_added_removed_and_renamed(tmp_path: Path) -> None:
    sql = REVENUE.replace("select c.region, sum(o.total) as revenue",
                          "select c.region as area, sum(o.total) as revenue, count(*) as orders")
    changes = _diff(tmp_path / "a", {"definitions/reports/revenue.yaml": sql})
    [columns] = _about(changes, "report/revenue", "columns")
    assert columns.summary == "output columns: + orders, region renamed area"
    assert columns.details == ("readers of region (sheets, scripts) break",)
    [sql_change] = _about(changes, "report/revenue", "sql")
    assert "-select c.region, sum(o.total) as revenue" in sql_change.diff

    sql = REVENUE.replace("sum(o.total) as revenue", "sum(o.total) as net_revenue")
    changes = _diff(tmp_path / "b", {"definitions/reports/revenue.yaml": sql})
    [columns] = _about(changes, "report/revenue", "columns")
    assert columns.summary == "output columns: revenue renamed net_revenue"

    sql = REVENUE.replace("select c.region,", "select").replace("group by c.region", "").replace(
        "join shop.customers c on c.id = o.customer_id", "")
    changes = _diff(tmp_path / "c", {"definitions/reports/revenue.yaml": sql})
    [columns] = _about(changes, "report/revenue", "columns")
    assert columns.summary == "output columns: - region"
    [tables] = _about(changes, "report/revenue", "tables")
    assert tables.summary == "tables read: - shop.customers"
    assert not dangerous(changes)


def test_a_schedule_change_shows_the_next_runs_before_and_after_in_the_reports_zone(
        tmp_path: Path) -> None:
    head = REVENUE.replace('cron: "0 6 * * *"', 'cron: "30 7 * * 1"').replace(
        "period: previous_day", "period: previous_week")
    changes = _diff(tmp_path, {"definitions/reports/revenue.yaml": head})
    [schedule] = _about(changes, "report/revenue", "schedule")
    assert schedule.summary == ('schedule: "0 6 * * *" Europe/Berlin -> "30 7 * * 1" '
                                "Europe/Berlin")
    assert schedule.details == (
        'next runs before (Europe/Berlin, cron "0 6 * * *"): 2026-12-04 06:00 CET, '
        "2026-12-05 06:00 CET, 2026-12-06 06:00 CET",
        'next runs after (Europe/Berlin, cron "30 7 * * 1"): 2026-12-07 07:30 CET, '
        "2026-12-14 07:30 CET, 2026-12-21 07:30 CET")
    [period] = _about(changes, "report/revenue", "period")
    assert period.summary == "period: previous day -> previous week"
    assert period.details[1] == ("after: the run at 2026-12-07 07:30 CET covers 2026-11-30 "
                                 "00:00 CET .. 2026-12-07 00:00 CET")


PII_REPORT = REVENUE.replace("select c.region,", "select c.email, c.region,").replace(
    "group by c.region", "group by c.email, c.region").replace(
    "recipients:", "contains_pii: true\nrecipients:")


def test_personal_data_to_a_new_domain_is_dangerous_a_new_colleague_is_not(
        tmp_path: Path) -> None:
    head = PII_REPORT.replace("  - email: finance@corp.example",
                              "  - email: finance@corp.example\n"
                              "  - email: controller@corp.example\n"
                              "  - email: analyst@agency.example")
    changes = _diff(tmp_path, {"definitions/reports/revenue.yaml": head},
                    base={"definitions/reports/revenue.yaml": PII_REPORT})
    added = _about(changes, "report/revenue", "recipients")
    outsider = next(c for c in added if "analyst@agency.example" in c.summary)
    assert outsider.summary == ("recipient added: analyst@agency.example: personal data "
                                "(email) reaches a new domain agency.example")
    assert outsider.danger == "personal data to a new domain agency.example"
    colleague = next(c for c in added if "controller@corp.example" in c.summary)
    assert colleague.danger is None and "reaches a new recipient" in colleague.summary


def test_a_report_that_starts_returning_personal_data(tmp_path: Path) -> None:
    changes = _diff(tmp_path, {"definitions/reports/revenue.yaml": PII_REPORT})
    [pii] = _about(changes, "report/revenue", "pii")
    assert pii.summary == "now returns personal data: email"
    assert pii.danger


def test_a_changed_glossary_term_modifies_its_reports_indirectly(tmp_path: Path) -> None:
    report = _report("select s.region, sum(s.total) as revenue from sales s group by s.region")
    base = {"definitions/glossary/sales.yaml": SALES, "definitions/reports/revenue.yaml": report}
    changes = _diff(tmp_path, {"definitions/glossary/sales.yaml": SALES.replace(
        "o.total > 0", "o.total > 10")}, base=base)
    [term] = _about(changes, "report/revenue")
    assert (term.status, term.aspect) == ("indirect", "glossary")
    assert term.summary == "reads changed glossary term(s) sales"
    assert "(indirectly, through the glossary)" in render_text(changes, "b", "h")


def test_a_new_report_lists_its_runs_columns_and_where_personal_data_goes(
        tmp_path: Path) -> None:
    changes = _diff(tmp_path, {"definitions/reports/emails.yaml": PII_REPORT})
    [new] = _about(changes, "report/emails")
    assert new.status == "added"
    assert "columns: email, region, revenue" in new.details
    assert new.danger == "sends personal data to corp.example"


BACKUPS = [BackupInfo(f"2026112{d}T000000Z", datetime(2026, 11, 20 + d, 0, 5, tzinfo=UTC))
           for d in range(1, 10)]


def test_a_retention_change_names_the_stored_backups_it_would_delete(tmp_path: Path) -> None:
    head = NIGHTLY.replace("rto: 1h", "rto: 1h\nretention: {keep_last: 3}")
    changes = _diff(tmp_path, {"definitions/backups/nightly.yaml": head},
                    stored={"nightly": BACKUPS[:8]})
    [retention] = _about(changes, "backup/nightly", "retention")
    assert retention.summary == "retention: keep_last 7 -> keep_last 3"
    assert retention.details == (
        "of the 8 backup(s) stored now, the new policy keeps 3 (the old keeps 7)",
        "deletes nightly/20261122T000000Z (finished 2026-11-22 00:05 UTC)",
        "deletes nightly/20261123T000000Z (finished 2026-11-23 00:05 UTC)",
        "deletes nightly/20261124T000000Z (finished 2026-11-24 00:05 UTC)",
        "deletes nightly/20261125T000000Z (finished 2026-11-25 00:05 UTC)")
    assert retention.danger == "deletes 4 stored backup(s)"


def test_a_longer_retention_deletes_nothing(tmp_path: Path) -> None:
    head = NIGHTLY.replace("rto: 1h", "rto: 1h\nretention: {keep_last: 8}")
    changes = _diff(tmp_path, {"definitions/backups/nightly.yaml": head},
                    stored={"nightly": BACKUPS[:8]})
    [retention] = _about(changes, "backup/nightly", "retention")
    assert retention.danger is None
    assert "keeps nightly/20261121T000000Z, which the old policy deletes" in retention.details


def test_without_stored_backups_retention_is_simulated_over_a_year(tmp_path: Path) -> None:
    head = NIGHTLY.replace("rto: 1h", "rto: 1h\nretention: {keep_last: 2}")
    changes = _diff(tmp_path, {"definitions/backups/nightly.yaml": head})
    [retention] = _about(changes, "backup/nightly", "retention")
    assert retention.details[0] == ("no stored backups were found; simulated over a year of "
                                    "the schedule (365 runs):")
    assert retention.details[1:] == (
        "the old policy keeps 7 backup(s), the oldest from 2026-11-27 01:00 UTC (6 days ago)",
        "the new policy keeps 2 backup(s), the oldest from 2026-12-02 01:00 UTC (28 hours ago)")
    assert retention.danger == "the oldest backup kept goes from 6 days ago to 28 hours ago"


def test_encryption_off_and_coverage_lost_are_dangerous(tmp_path: Path) -> None:
    head = NIGHTLY.replace("encryption: {key: k1}\n", "").replace('"0 1 * * *"', '"0 1 * * 0"')
    changes = _diff(tmp_path, {"definitions/backups/nightly.yaml": head})
    risky = {(c.subject, c.aspect): c.danger for c in dangerous(changes)}
    assert risky == {
        ("backup/nightly", "encryption"): "holds personal data (shop.customers.email) "
                                          "unencrypted",
        ("coverage", "coverage"): "shop.customers, shop.orders no longer backed up at least "
                                  "daily"}
    turned_off = [c for c in _about(changes, "backup/nightly", "encryption")
                  if c.summary.startswith("encryption turned off")]
    assert turned_off[0].danger == "encryption turned off"
    [lost] = _about(changes, "coverage")
    assert lost.summary == ("2 table(s) left in no daily tier: shop.customers, shop.orders")
    [schedule] = _about(changes, "backup/nightly", "schedule")
    assert schedule.details[-1] == "longest gap between two runs over a year: 7d"


def test_destination_rpo_and_scope_changes(tmp_path: Path) -> None:
    settings = SETTINGS.replace('  archive: {url: "file://./var/reports"}',
                                '  archive: {url: "file://./var/reports"}\n'
                                '  offsite: {url: "s3://corp-backups/marketops"}')
    head = NIGHTLY.replace("destination: backups", "destination: offsite").replace(
        "rpo: 26h", "rpo: 25h").replace("rto: 1h", "rto: 1h\nexclude_tables: [shop.orders]")
    changes = _diff(tmp_path, {"definitions/backups/nightly.yaml": head,
                               "marketops.yaml": settings}, stored={"nightly": BACKUPS[:2]})
    by_aspect = {c.aspect: c for c in _about(changes, "backup/nightly")}
    assert by_aspect["destination"].summary == (
        "destination: backups -> offsite (file://./var/backups -> s3://corp-backups/marketops)")
    assert by_aspect["destination"].details[0] == (
        "the 2 backup(s) stored at backups are no longer listed, pruned or restored from")
    assert by_aspect["rpo"].summary == "RPO: 26h -> 25h"
    assert by_aspect["scope"].summary == "tables leaving: shop.orders"
    [setting] = _about(changes, "settings.destinations.offsite")
    assert setting.details == ("used by backup/nightly",)


def test_schema_changes_with_their_migrations_and_dependents(tmp_path: Path) -> None:
    head = SHOP.replace("      region: {type: text}\n", "").replace(
        'total: {type: "numeric(12,2)", nullable: false}',
        'total: {type: "numeric(14,2)", nullable: false}\n      coupon: {type: text}')
    report = REVENUE.replace("select c.region,", "select").replace("group by c.region", "")
    changes = _diff(tmp_path, {"schema/shop.yaml": head,
                               "definitions/reports/revenue.yaml": report})
    schema = {c.summary: c for c in changes if c.section == "schema"}
    dropped = schema["shop.customers.region: column removed (was text)"]
    assert dropped.details == ("affects report/revenue, backup/nightly",
                               "needs a migration: ALTER TABLE shop.customers DROP COLUMN "
                               "region;")
    assert dropped.danger == "drops column shop.customers.region with its data"
    retyped = schema["shop.orders.total: type: numeric(12,2) -> numeric(14,2)"]
    assert retyped.details[-1] == ("needs a migration: ALTER TABLE shop.orders ALTER COLUMN "
                                   "total TYPE numeric(14,2) USING total::numeric(14,2);")
    assert retyped.danger == "retypes shop.orders.total, which 2 job(s) read"
    added = schema["shop.orders.coupon: column added (text)"]
    assert added.details[-1] == "marketops schema apply makes it"
    assert schema["marketops schema apply runs 1 statement(s)"].details == (
        "ALTER TABLE shop.orders ADD COLUMN coupon text;",)


def test_a_column_losing_its_pii_tag_is_dangerous(tmp_path: Path) -> None:
    changes = _diff(tmp_path, {"schema/shop.yaml": SHOP.replace(", pii: email", "")})
    [tag] = [c for c in changes if c.aspect == "pii"]
    assert tag.summary == "shop.customers.email: no longer personal data"
    assert tag.danger == "shop.customers.email loses its pii tag"


def test_settings_never_show_secrets(tmp_path: Path) -> None:
    settings = SETTINGS.replace("${OPS_WEBHOOK}", "${OPS_WEBHOOK_V2}").replace(
        "k1: ${BACKUP_KEY}", "k1: ${BACKUP_KEY_2026}").replace(
        "pii_allowed_domains: [corp.example]", "pii_allowed_domains: [corp.example, "
        "agency.example]") + "databases:\n  reports: {dsn: \"host=replica dbname=shop\"}\n"
    changes = _diff(tmp_path, {"marketops.yaml": settings})
    text = render_text(changes, "b", "h") + render_markdown(changes, "b", "h")
    assert "OPS_WEBHOOK" not in text and "BACKUP_KEY" not in text
    summaries = {c.summary: c.danger for c in changes}
    assert summaries == {
        "databases.reports.dsn: none -> host=replica dbname=shop": None,
        "keys.k1: changed (a secret: not shown)": None,
        'reports.pii_allowed_domains: ["corp.example"] -> ["corp.example", "agency.example"]':
            "personal data may now go to agency.example",
        "webhooks.ops.url: changed (a secret: not shown)": None}


def test_the_github_comment_renders_as_markdown(tmp_path: Path) -> None:
    head = REVENUE.replace("title: Daily revenue", "title: Revenue <b>|</b> *all* regions")
    head = head.replace("sum(o.total) as revenue", "sum(o.total) as net_revenue")
    nightly = NIGHTLY.replace("encryption: {key: k1}\n", "")
    changes = _diff(tmp_path, {"definitions/reports/revenue.yaml": head,
                               "definitions/backups/nightly.yaml": nightly})
    text = render_markdown(changes, "base main (1a2b3c4)", "head HEAD")
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)
    assert "<h3>marketops diff</h3>" in html
    assert "<h4>Reports</h4>" in html and "<h4>Backup tiers</h4>" in html
    # Free text shows as written: no HTML, emphasis or table cells from a title.
    assert "Revenue &lt;b&gt;|&lt;/b&gt; *all* regions" in html
    assert "<b>" not in html and "<em>" not in html and "<table>" not in html
    assert "<code>report/revenue</code>" in html
    assert '<pre><code class="language-diff">' in html
    assert "+select c.region, sum(o.total) as net_revenue" in html
    assert html.count("<blockquote>") == 1 and "[!CAUTION]" in html
    assert "⚠️ <strong>dangerous: encryption turned off</strong>" in html


def test_text_output_groups_by_section_and_lists_dangers_first(tmp_path: Path) -> None:
    nightly = NIGHTLY.replace("encryption: {key: k1}\n", "")
    changes = _diff(tmp_path, {"definitions/backups/nightly.yaml": nightly,
                               "definitions/reports/other.yaml": REVENUE})
    text = render_text(changes, "base x", "head y")
    lines = text.splitlines()
    assert lines[:2] == ["marketops diff: base x -> head y",
                         "changed: 1 reports, 1 backup tiers; 2 dangerous"]
    assert lines.index("Dangerous:") < lines.index("Reports") < lines.index("Backup tiers")
    assert "  + report/other" in lines and "  ~ backup/nightly" in lines
    assert "    ! encryption turned off (was key k1)" in lines


def test_removed_and_disabled(tmp_path: Path) -> None:
    changes = _diff(tmp_path, {"definitions/reports/revenue.yaml": None,
                               "definitions/backups/nightly.yaml": NIGHTLY + "enabled: false\n"},
                    base={"definitions/reports/revenue.yaml": REVENUE})
    [removed] = _about(changes, "report/revenue")
    assert removed.summary == ('removed: "Daily revenue" stops; finance@corp.example no '
                               "longer receive it")
    assert [c.summary for c in _about(changes, "backup/nightly")] == ["disabled: stops running"]
    assert [c.danger for c in _about(changes, "coverage")] == [
        "shop.customers, shop.orders no longer backed up at least daily"]


def test_row_differences_count_rows_on_the_shared_columns_and_sum_the_numbers() -> None:
    from decimal import Decimal

    from engine.definitions.changes import row_differences

    before = (["region", "revenue", "late"], [("north", Decimal("10.50"), True),
                                              ("south", Decimal("4.00"), False)])
    after = (["region", "revenue"], [("north", 10.5), ("south", 5.25), ("west", None)])
    assert row_differences(before, after) == [
        "rows: 2 -> 3",
        "on region, revenue: 1 row(s) alike, 1 only before, 2 only after",
        "sum of revenue: 14.50 -> 15.75"]
    assert row_differences(before, before)[1:] == [
        "on region, revenue, late: 2 row(s) alike, 0 only before, 0 only after"]


def test_limits_formats_and_owner_show_as_written(tmp_path: Path) -> None:
    head = REVENUE.replace("recipients:", "formats: [csv, xlsx]\nlimits: {statement_timeout: "
                           "90s, max_rows: 5000}\nrecipients:").replace(
        "owner: finance@corp.example", "owner: controlling@corp.example")
    changes = _diff(tmp_path, {"definitions/reports/revenue.yaml": head})
    assert [c.summary for c in _about(changes, "report/revenue")] == [
        'formats: ["csv", "html"] -> ["csv", "xlsx"]',
        "limits.max_rows: 1000000 -> 5000",
        "limits.statement_timeout: 5min -> 1min 30s",
        "owner: finance@corp.example -> controlling@corp.example"]
