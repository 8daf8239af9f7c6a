"""Database commands as a user runs them: demo, db, schema apply/diff/pull/ddl."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.postgres.connection import connect
from tests.conftest import free_port
from tests.integration.test_cli import run
from tests.mailbox import http_sink, smtp_server


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Iterator[Path]:
    """A copy of the repository's definitions whose embedded server has its own port."""
    root = tmp_path_factory.mktemp("demo")
    for name in ("schema", "definitions", "jsonschema"):
        shutil.copytree(repo_root / name, root / name)
    smtp_port, hook_port = free_port(), free_port()
    settings = (repo_root / "marketops.yaml").read_text().replace("port: 2525",
                                                                  f"port: {smtp_port}")
    (root / "marketops.yaml").write_text(settings + f"embedded:\n  port: {free_port()}\n")
    os.environ["DATA_ALERTS_WEBHOOK_URL"] = f"http://127.0.0.1:{hook_port}/hook"
    with smtp_server(smtp_port), http_sink(hook_port):
        yield root
    del os.environ["DATA_ALERTS_WEBHOOK_URL"]
    run("db", "stop", cwd=root)


def test_demo_end_to_end(demo_root: Path) -> None:
    result = run("demo", "--scale", "0.001", cwd=demo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "12 schemas, 109 tables" in out
    assert "total" in out and 'connect:        psql "postgresql://postgres@127.0.0.1:' in out
    assert str(demo_root / "var" / "pg") in out
    # Every report ran for its latest period and reached its recipients.
    lines = [line for line in out.splitlines() if line.startswith("report/")]
    assert len(lines) == 15 and all(" succeeded " in line for line in lines), out
    mails = sorted((demo_root / "var" / "mailbox").glob("*.eml"))
    assert len(mails) >= 15
    assert b"Content-Type: text/html" in mails[0].read_bytes()
    # In the readable form: the period in words, labels, formatted money.
    messages = [email.message_from_bytes(m.read_bytes(), policy=email.policy.default)
                for m in mails]
    subjects = {str(m["Subject"]).split(": ", 1)[0].removeprefix("[ALERT] "): m
                for m in messages}
    assert all(re.search(r"\d{4}-\d{2}-\d{2}", str(m["Subject"])) is None for m in messages)
    pnl = subjects["Monthly P&L"]
    assert re.fullmatch(r"(\[ALERT\] )?Monthly P&L: [A-Z][a-z]+ \d{4}", str(pnl["Subject"]))
    text = pnl.get_body(preferencelist=("plain",)).get_content()
    assert re.search(r"^Net revenue +€[\d,]+\.\d\d\r?$", text, re.M), text
    assert re.search(r"^- Contribution \u2212?€[\d,]+\.\d\d \([▲▼=]", text, re.M), text
    assert (demo_root / "var" / "mailbox" / "webhooks.jsonl").read_text().count("\n") >= 3
    # Every backup tier ran once and verified; the drill restored four tiers within RTO.
    tiers = {line.split()[0]: line for line in out.splitlines()
             if line.split() and line.split()[0] in {
                 "base_weekly", "nightly_full", "users_schema", "orders_payments",
                 "catalog_hourly", "support_schema", "analytics_daily", "content_schema",
                 "audit_vault", "wal_archive"}}
    assert len(tiers) == 10, out
    assert all(" succeeded " in line and (" yes " in line or "chain ok" in line)
               for name, line in tiers.items() if name != "wal_archive"), out
    assert "no gap" in tiers["wal_archive"], out
    drills = [line for line in out.splitlines() if line.startswith("drill:")]
    assert len(drills) == 4 and all(" succeeded " in d and "/ RTO" in d for d in drills), out
    assert any("WAL replayed to" in d for d in drills), out
    # The PITR drill's replay point, on its own line, in the drill job's zone (Europe/Berlin).
    replayed = [line for line in out.splitlines() if "last replayed commit at " in line]
    assert replayed and all(re.search(r"commit at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T;", r)
                            and "+00" not in r for r in replayed), out
    # Reused on a second run, and the data is replaced, not doubled.
    again = run("demo", "--scale", "0.001", cwd=demo_root)
    assert again.returncode == 0, again.stderr
    assert "(0 DDL statements applied)" in again.stdout
    status = run("db", "status", cwd=demo_root)
    assert status.returncode == 0 and status.stdout.startswith("running")
    diff = run("schema", "diff", cwd=demo_root)
    assert diff.returncode == 0, diff.stdout
    assert diff.stdout.startswith("no drift")


def test_after_the_demo_a_restore_to_the_end_of_the_archive_needs_no_key_exported(
        demo_root: Path, tmp_path: Path) -> None:
    # The demo encrypted with var/demo-backup.key (run() passes no MARKETOPS_ variable); the
    # restored server fetches WAL as its own user, who cannot read that file.
    into = tmp_path / "latest"
    # Where recovery stopped reads in the backup tier's own zone, named, not PostgreSQL's +00.
    tier = demo_root / "definitions" / "backups" / "base_weekly.yaml"
    declared = tier.read_text()
    tier.write_text(declared.replace("timezone: UTC", "timezone: Europe/Berlin"))
    try:
        done = run("restore", "--tier", "base_weekly", "--into", str(into), cwd=demo_root)
    finally:
        tier.write_text(declared)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recovered to:   the end of the archive" in done.stdout, done.stdout
    reached = [line for line in done.stdout.splitlines() if line.startswith("recovered to:")]
    assert re.search(r"commit at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T;", reached[0]) \
        and "+00" not in reached[0], done.stdout
    assert "Traceback" not in done.stderr
    stop = re.search(r"^stop it with: +(.+)$", done.stdout, re.M)
    assert stop is not None
    subprocess.run(stop.group(1).split(), check=True, capture_output=True)


def test_after_a_stop_the_demo_servers_archiving_still_seals_with_the_demo_key(
        demo_root: Path) -> None:
    # A server started again by any command (here `check`) archives as its own user, who
    # cannot read var/demo-backup.key: it must inherit the key as under `serve` and the demo.
    assert run("db", "stop", cwd=demo_root).returncode == 0
    checked = run("check", cwd=demo_root)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WAL archiving works" in checked.stdout


def test_after_a_restart_a_stale_archiver_record_is_not_read_as_lag(demo_root: Path) -> None:
    # A restart can bring pg_stat_archiver back older than the archive (the s10 demo's said
    # ...0E with ...16 stored): here the statistics file of an earlier stop is what the
    # server reads again, while ten segments archived since are in the archive and .done.
    from runners.backup.wal import wait_for_archiver

    assert run("db", "stop", cwd=demo_root).returncode == 0
    stats = demo_root / "var" / "pg" / "pg_stat" / "pgstat.stat"
    earlier = stats.read_bytes()
    assert run("db", "start", cwd=demo_root).returncode == 0
    dsn = run("db", "dsn", cwd=demo_root).stdout.strip()
    with connect(dsn, autocommit=True) as conn:
        before = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()
        for i in range(10):  # the last switch is wait_for_archiver's
            # WAL to switch out, and no table left for the schema tests to find.
            conn.execute("select pg_logical_emit_message(false, 'marketops', %s)", (str(i),))
            if i < 9:
                conn.execute("select pg_switch_wal()")
    assert wait_for_archiver(dsn, timeout=100)
    assert run("db", "stop", cwd=demo_root).returncode == 0
    stats.write_bytes(earlier)  # in place: the file stays the server user's
    assert run("db", "start", cwd=demo_root).returncode == 0
    with connect(dsn, autocommit=True) as conn:
        assert conn.execute("select last_archived_wal from pg_stat_archiver").fetchone() \
            == before
    status = run("status", cwd=demo_root)
    wal = [line for line in status.stdout.splitlines() if line.startswith("backup/wal_archive")]
    assert wal and wal[0].rstrip().endswith(" ok"), status.stdout + status.stderr


def test_schema_diff_reports_drift_and_exits_1(demo_root: Path) -> None:
    dsn = run("db", "dsn", cwd=demo_root).stdout.strip()
    run("db", "start", cwd=demo_root)
    with connect(dsn, autocommit=True) as conn:
        conn.execute("alter table content.pages add column draft boolean")
    try:
        result = run("schema", "diff", "--dsn", dsn, cwd=demo_root)
        assert result.returncode == 1
        assert "content.pages.draft: extra column (boolean)" in result.stdout
    finally:
        with connect(dsn, autocommit=True) as conn:
            conn.execute("alter table content.pages drop column draft")


def test_schema_pull_refuses_to_overwrite(demo_root: Path, tmp_path: Path) -> None:
    refused = run("schema", "pull", cwd=demo_root)
    assert refused.returncode == 2 and "use --force" in refused.stderr
    pulled = run("schema", "pull", "--out", str(tmp_path / "pulled"), cwd=demo_root)
    assert pulled.returncode == 0, pulled.stderr
    assert len(list((tmp_path / "pulled").glob("*.yaml"))) == 12


def test_schema_ddl_prints_dependency_order(demo_root: Path) -> None:
    result = run("schema", "ddl", cwd=demo_root)
    assert result.returncode == 0
    text = result.stdout
    assert text.index("CREATE SCHEMA IF NOT EXISTS admin;") < \
        text.index("CREATE TABLE admin.admins")
    assert text.rindex("CREATE TABLE") < text.index("FOREIGN KEY")


def test_database_down_is_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    result = run("schema", "diff", "--dsn", f"postgresql://nobody@127.0.0.1:{port}/x")
    assert result.returncode == 4  # cannot reach the database
    assert result.stderr.startswith(f"error: cannot connect to postgresql://nobody@127.0.0.1:{port}/x")
    assert "Traceback" not in result.stderr


def test_password_in_dsn_is_masked(tmp_path: Path) -> None:
    port = free_port()
    result = run("schema", "diff", "--dsn", f"postgresql://app:s3cr3t@127.0.0.1:{port}/x")
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "app:***@" in result.stderr


def test_run_a_report_twice_for_the_same_slot(demo_root: Path) -> None:
    run("demo", "--scale", "0.001", cwd=demo_root)
    first = run("run", "report/funnel_conversion", cwd=demo_root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "succeeded" in first.stdout
    directory = Path(first.stdout.split("directory: ")[1].splitlines()[0].strip())
    csv_before = (directory / "funnel_conversion.csv").read_bytes()
    assert csv_before.count(b"\n") > 1
    second = run("run", "report/funnel_conversion", cwd=demo_root)
    assert second.returncode == 0, second.stderr
    assert (directory / "funnel_conversion.csv").read_bytes() == csv_before
    dsn = run("db", "dsn", cwd=demo_root).stdout.strip()
    slot_rows = "select status, attempt, trigger from marketops.runs " \
        "where job = 'report/funnel_conversion' and outputs->>'directory' = %s"
    with connect(dsn) as conn:
        [(status, attempt, trigger)] = conn.execute(slot_rows, (str(directory),)).fetchall()
    assert (status, trigger) == ("succeeded", "manual")
    third = run("run", "report/funnel_conversion", cwd=demo_root)
    assert third.returncode == 0
    with connect(dsn) as conn:
        assert conn.execute(slot_rows, (str(directory),)).fetchall() == [
            ("succeeded", attempt + 1, "manual")]  # the same slot, one row, one more attempt


def test_run_goes_on_past_a_broken_unrelated_report(demo_root: Path) -> None:
    run("demo", "--scale", "0.001", cwd=demo_root)
    other = demo_root / "definitions/reports/assortment.yaml"
    text = other.read_text()
    other.write_text(text.replace("\ncron:", "\ncronn:", 1))
    try:
        assert run("validate", cwd=demo_root).returncode == 1
        done = run("run", "report/funnel_conversion", cwd=demo_root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "succeeded" in done.stdout
        [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
        assert "definitions/reports/assortment.yaml" in warning
        assert "does not read" in warning
        broken = run("run", "report/assortment", cwd=demo_root)
        assert broken.returncode == 2, broken.stdout + broken.stderr
        assert "definitions/reports/assortment.yaml" in broken.stderr
        assert "Traceback" not in broken.stderr
    finally:
        other.write_text(text)


def test_run_refuses_what_cannot_run_with_one_clear_line(demo_root: Path) -> None:
    backfill = run("backfill", "backup/nightly_full", "--from", "2026-01-01T00:00Z",
                   "--until", "2026-01-03T00:00Z", cwd=demo_root)
    assert backfill.returncode == 2 and "cannot be backfilled" in backfill.stderr
    env_key = os.environ.pop("MARKETOPS_BACKUP_KEY", None)
    try:
        keyless = run("run", "backup/users_schema", cwd=demo_root)
    finally:
        if env_key is not None:
            os.environ["MARKETOPS_BACKUP_KEY"] = env_key
    # The demo's project: without the variable, the demo's key (var/demo-backup.key), as
    # `serve` and the demo use it (test_operator_day has the project that has no such key).
    assert keyless.returncode == 0, keyless.stdout + keyless.stderr
    assert "Traceback" not in keyless.stderr
    unknown = run("run", "report/nope", cwd=demo_root)
    assert unknown.returncode == 2 and "unknown job report/nope" in unknown.stderr


def test_backfill_runs_each_past_slot_once(demo_root: Path) -> None:
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(
        days=1)
    start = end - timedelta(days=3)
    run("demo", "--scale", "0.001", cwd=demo_root)
    args = ("backfill", "report/funnel_conversion", "--from", start.isoformat(),
            "--until", end.isoformat())
    result = run(*args, cwd=demo_root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("3 slot(s), 0 failed")
    dsn = run("db", "dsn", cwd=demo_root).stdout.strip()

    def attempts() -> list[int]:
        with connect(dsn) as conn:
            return [r[0] for r in conn.execute(
                "select attempt from marketops.runs where job = 'report/funnel_conversion' "
                "and slot > %s and slot <= %s order by slot", (start, end)).fetchall()]

    before = attempts()
    assert len(before) == 3
    again = run(*args, cwd=demo_root)
    assert again.returncode == 0
    assert attempts() == [a + 1 for a in before]  # each slot once more, none added
    future = run("backfill", "report/funnel_conversion", "--from", start.isoformat(),
                 "--until", (datetime.now(UTC) + timedelta(days=2)).isoformat(), cwd=demo_root)
    assert future.returncode == 2 and "in the future" in future.stderr


def test_wal_setup_opens_the_spool_and_the_server_archives_asynchronously(
        demo_root: Path) -> None:
    import time

    tier = demo_root / "definitions" / "backups" / "wal_archive.yaml"
    tier.write_text(tier.read_text() + "archive_async: {process_max: 2}\n")
    done = run("wal-setup", "--apply", cwd=demo_root)
    assert done.returncode == 0, done.stdout + done.stderr
    spool = demo_root / ".marketops" / "spool" / "wal_archive"
    assert spool.is_dir()
    if os.geteuid() == 0:  # the embedded server runs as its own user, who writes the spool
        assert spool.stat().st_uid != 0
    port = re.search(r"embedded:\n  port: (\d+)", (demo_root / "marketops.yaml").read_text())
    assert port is not None
    with connect(f"postgresql://postgres@127.0.0.1:{port.group(1)}/marketplace",
                 autocommit=True) as conn:
        conn.execute("create table if not exists wal_async_probe (id int)")
        conn.execute("insert into wal_async_probe values (1)")
        row = conn.execute("select pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment = str(row[0])
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            archived = conn.execute("select last_archived_wal from pg_stat_archiver").fetchone()
            if archived and archived[0] and str(archived[0]) >= segment:
                break
            time.sleep(0.2)
    log = spool / "pusher.log"
    assert log.exists() and f"{segment}: stored" in log.read_text(), \
        log.read_text()[-1000:] if log.exists() else "no pusher log"
    status = run("status", cwd=demo_root)
    assert "async queue:" in status.stdout, status.stdout + status.stderr
