"""The new user's and the on-call engineer's day, through the installed command: the demo's
port, progress lines, the demo key after the demo, and what a failing delivery says."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.conftest import copy_repository
from tests.integration.test_cli import MARKETOPS


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: no MARKETOPS_* from this test process unless given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    return subprocess.run([MARKETOPS, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**clean, **(env or {})}, check=False)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _with_port(root: Path, port: int) -> None:
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + f"embedded:\n  port: {port}\n")


def test_a_taken_port_moves_the_server_and_later_commands_find_it(
        tmp_path: Path, repo_root: Path, taken_port: int) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    _with_port(root, taken_port)
    try:
        started = run("db", "start", cwd=root)
        assert started.returncode == 0, started.stderr
        assert f"port {taken_port} on 127.0.0.1 is taken by another program" in started.stderr
        moved = int(started.stderr.split("uses port ")[1].split()[0])
        assert moved != taken_port
        assert f"127.0.0.1:{moved}/" in started.stdout
        # Each later command finds the same server, running or not.
        assert run("db", "dsn", cwd=root).stdout.strip().endswith(f":{moved}/marketplace")
        status = run("db", "status", cwd=root)
        assert status.returncode == 0 and f":{moved}/" in status.stdout
        assert run("db", "stop", cwd=root).stdout.strip() == "stopped"
        assert f":{moved}/" in run("db", "status", cwd=root).stdout
        again = run("db", "start", cwd=root)
        assert again.returncode == 0 and f":{moved}/" in again.stdout, again.stderr
    finally:
        run("db", "stop", cwd=root)


def test_an_asked_for_port_is_used_and_a_taken_one_is_refused(
        tmp_path: Path, repo_root: Path, taken_port: int) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    _with_port(root, free_port())
    refused = run("db", "start", cwd=root, env={"MARKETOPS_EMBEDDED_PORT": str(taken_port)})
    assert refused.returncode != 0
    assert f"port {taken_port} on 127.0.0.1 is used by another program" in refused.stderr
    assert "MARKETOPS_EMBEDDED_PORT" in refused.stderr and "Traceback" not in refused.stderr
    wanted = free_port()
    try:
        started = run("db", "start", cwd=root, env={"MARKETOPS_EMBEDDED_PORT": str(wanted)})
        assert started.returncode == 0 and f":{wanted}/" in started.stdout, started.stderr
        assert f":{wanted}/" in run("db", "dsn", cwd=root).stdout
    finally:
        run("db", "stop", cwd=root)
    bad = run("db", "dsn", cwd=root, env={"MARKETOPS_EMBEDDED_PORT": "eighty"})
    assert bad.returncode != 0 and "MARKETOPS_EMBEDDED_PORT=eighty is not a port" in bad.stderr


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run with stderr on a pseudo-terminal, as a person at a shell sees it."""
    import pty

    master, slave = pty.openpty()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    process = subprocess.Popen([MARKETOPS, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                               stderr=slave, env={**clean, "TERM": "xterm", "COLUMNS": "100"})
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_demo_data_shows_progress_on_a_terminal_and_nothing_extra_elsewhere(
        new_database: Callable[..., str], tmp_path: Path, repo_root: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    dsn = new_database()
    plain = run("demo-data", "--dsn", dsn, "--scale", "0.0005", cwd=root)
    assert plain.returncode == 0, plain.stderr
    # Off a terminal (a pipe, CI) nothing but what the command itself says, as pgBackRest
    # and dbt do: no progress lines, no terminal codes.
    assert plain.stderr == ""
    assert "generated demo data in " in plain.stdout  # what it did is still said, on stdout
    code, screen = _on_a_terminal(["demo-data", "--dsn", dsn, "--scale", "0.0005"], root)
    assert code == 0, screen
    from runners.demo.data import steps

    assert "\x1b[" in screen and f"/{len(steps())} steps" in screen  # a live bar
    assert "demo data (scale 0.0005): " in screen and " rows in 109 tables (" in screen


MAILED = """\
title: Mailed
description: One row, mailed and posted.
owner: ops@corp.example
cron: "0 6 * * *"
timezone: Europe/Berlin
period: previous_day
sql: select count(*) as n from shop.orders o
recipients:
  - email: a@corp.example
  - webhook: ops
  - destination: archive
run: {retries: 2, retry_backoff: 1min}
"""

SLOW = """\
title: Slow
description: Counts far too long for its timeout.
owner: ops@corp.example
cron: "0 6 * * *"
timezone: UTC
period: previous_day
sql: select count(*) as n from generate_series(1, 400000000) g
limits: {statement_timeout: 1s}
recipients:
  - destination: archive
"""


def _shop_project(root: Path, **reports: str) -> Path:
    """test_service's one-table shop (its primary from ${TEST_PRIMARY_DSN}) with these reports
    instead of its tick, mail to a port nobody listens on and a webhook nobody answers."""
    from tests.integration.test_service import make_project

    make_project(root, every=60)
    for name, text in reports.items():
        (root / "definitions" / "reports" / f"{name}.yaml").write_text(text)
    if reports:
        (root / "definitions" / "reports" / "tick.yaml").unlink()
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text() + (
        f"smtp: {{host: 127.0.0.1, port: {free_port()}, starttls: false, "
        "sender: reports@corp.example}\n"
        "webhooks:\n  ops: {url: \"${OPS_HOOK}\"}\n"))
    return root


def test_run_takes_its_database_from_dsn_or_marketops_dsn(tmp_path: Path, shop_dsn: str) -> None:
    root = _shop_project(tmp_path / "repo")
    unset = run("run", "report/tick", cwd=root)
    assert unset.returncode == 2 and "TEST_PRIMARY_DSN" in unset.stderr, unset.stderr
    by_option = run("run", "report/tick", "--dsn", shop_dsn, cwd=root)
    assert by_option.returncode == 0, by_option.stdout + by_option.stderr
    assert ": succeeded" in by_option.stdout
    directory = Path(by_option.stdout.split("directory: ")[1].splitlines()[0].strip())
    # The archive destination is reports/: outputs go to reports/<id>/<period>, not doubled.
    assert directory.parent == root / "reports" / "tick" and (directory / "tick.csv").is_file()
    by_variable = run("run", "report/tick", cwd=root, env={"MARKETOPS_DSN": shop_dsn})
    assert by_variable.returncode == 0, by_variable.stdout + by_variable.stderr
    from runners.postgres.connection import connect

    with connect(shop_dsn) as conn:  # the ledger is in the --dsn database too
        [(attempts,)] = conn.execute("select sum(attempt) from marketops.runs "
                                     "where job = 'report/tick'").fetchall()
    assert attempts == 2


def test_a_delivery_that_cannot_connect_says_why_and_when_it_is_retried(
        tmp_path: Path, shop_dsn: str) -> None:
    root = _shop_project(tmp_path / "repo", mailed=MAILED)
    hook = free_port()
    result = run("run", "report/mailed", "--dsn", shop_dsn, cwd=root,
                 env={"OPS_HOOK": f"http://127.0.0.1:{hook}/secret-token"})
    assert result.returncode == 1, result.stdout + result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith("report/mailed slot ") and "+01:00: retrying: 2 deliveries failed: " \
        in line, line
    assert "email:a@corp.example (SMTP 127.0.0.1:" in line and "Connection refused" in line
    assert "webhook:ops (webhook unreachable: Connection refused)" in line, line
    assert "for now" not in line and "secret-token" not in result.stdout + result.stderr
    # When, in the job's zone, and what takes the next attempt (retry_backoff 1min +-50%).
    when = line.split("next attempt at ")[1]
    assert " CET (in " in when and ("s)" in when or "min)" in when), line
    assert "taken by `marketops serve` or the next `marketops run` of this slot" in line
    # The archive copy went out; nothing else failed for good.
    assert len(list((root / "reports" / "mailed").glob("*/mailed.csv"))) == 1


def test_a_timed_out_report_says_its_timeout_as_written_and_leaves_no_directory(
        tmp_path: Path, shop_dsn: str) -> None:
    root = _shop_project(tmp_path / "repo", slow=SLOW)
    result = run("run", "report/slow", "--dsn", shop_dsn, cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "report/slow exceeded its statement timeout (1s)" in result.stdout, result.stdout
    assert "0:00:01" not in result.stdout
    assert not (root / "reports" / "slow").exists()
    assert not (root / "reports").exists() or not any((root / "reports").iterdir())


def test_serve_logs_a_due_retry_as_a_retry_with_its_cause(tmp_path: Path,
                                                          shop_dsn: str) -> None:
    import json

    from tests.integration.test_service import start_replica, stop, wait_for

    often = MAILED.replace('"0 6 * * *"', '"* * * * * */5"').replace(
        "previous_day", "{rolling: 1h}").replace(
        "retry_backoff: 1min", "retry_backoff: 1s").replace("  - webhook: ops\n", "")
    root = _shop_project(tmp_path / "repo", mailed=often)
    replica = start_replica(root, shop_dsn, "solo")

    def attempts() -> int:
        from runners.postgres.connection import connect

        try:
            with connect(shop_dsn) as conn:
                return int(conn.execute("select coalesce(max(attempt), 0) from marketops.runs"
                                        ).fetchone()[0])
        except Exception:  # the ledger is not there yet
            return 0

    try:
        wait_for(lambda: attempts() >= 2, 90)
    except AssertionError:
        raise AssertionError(stop([replica])) from None
    [log] = stop([replica])
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    retried = [e for e in events if e["message"] == "retrying run"]
    assert retried and retried[0]["attempt"] == 2, log
    assert not [e for e in events if e["message"] == "took over run"], log
    failed = next(e["message"] for e in events if e["message"].startswith("run retrying"))
    assert "1 delivery failed: email:a@corp.example (SMTP 127.0.0.1:" in failed, failed
    assert "Connection refused" in failed and "(next attempt in " in failed, failed


def test_every_command_reading_keys_falls_back_to_the_demo_key_in_the_demo_project(
        tmp_path: Path, repo_root: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    _with_port(root, free_port())
    try:
        filled = run("demo-data", "--scale", "0.0005", cwd=root)
        assert filled.returncode == 0, filled.stderr
        missing = run("run", "backup/users_schema", cwd=root)
        assert missing.returncode == 1
        assert "refers to ${MARKETOPS_BACKUP_KEY}, which is not set in the environment, and " \
            f"there is no demo key ({root / 'var' / 'demo-backup.key'}, written by " \
            "`marketops demo`)" in missing.stdout, missing.stdout + missing.stderr
        key = run("keygen", cwd=root).stdout.strip()
        (root / "var" / "demo-backup.key").write_text(key + "\n")
        backed = run("run", "backup/users_schema", cwd=root)
        assert backed.returncode == 0, backed.stdout + backed.stderr
        verified = run("verify", "users_schema", cwd=root)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        restored = run("restore", "--tier", "users_schema", "--into-database", "users_check",
                       cwd=root)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "row counts match the manifest" in restored.stdout
        # The variable, when set, wins: a different key is the wrong key for this backup.
        other = run("keygen", cwd=root).stdout.strip()
        wrong = run("restore", "--tier", "users_schema", "--into-database", "users_again",
                    cwd=root, env={"MARKETOPS_BACKUP_KEY": other})
        assert wrong.returncode == 2 and "wrong key" in wrong.stderr, wrong.stderr
    finally:
        run("db", "stop", cwd=root)
    # Not the demo's project (its primary is no embedded server): no fallback, one clear line.
    settings = root / "marketops.yaml"
    settings.write_text(settings.read_text().replace("dsn: embedded ", "dsn: ${ELSEWHERE} "))
    elsewhere = run("restore", "--tier", "users_schema", "--into-database", "x", cwd=root,
                    env={"ELSEWHERE": "postgresql://nobody@127.0.0.1:1/x"})
    assert elsewhere.returncode == 2, elsewhere.stderr
    assert elsewhere.stderr.strip() == "error: keys.backup-key refers to " \
        "${MARKETOPS_BACKUP_KEY}, which is not set in the environment", elsewhere.stderr


def test_a_new_users_path_from_the_readme(tmp_path: Path, repo_root: Path) -> None:
    """demo, then status, restore, run of a report and serve, as the README and the demo's
    closing lines say, with no MARKETOPS_BACKUP_KEY and no mail server."""
    import json
    import signal
    import time
    import urllib.request

    root = copy_repository(repo_root, tmp_path / "repo")
    port = free_port()
    try:
        demo = run("demo", "--scale", "0.001", "--port", str(port), cwd=root)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout
        assert "  marketops status " in out and "  marketops serve " in out
        assert "marketops restore --tier users_schema --into-database users_check" in out
        assert "marketops run report/pnl_monthly " in out
        assert f"data directory: {root / 'var' / 'pg'}  (" in out and " MB)" in out
        table = [line for line in out.splitlines() if line.startswith(("tier ", "drill:"))]
        assert len(table) == 5 and max(len(line) for line in table) < 132, out  # was ~290
        status = run("status", cwd=root)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "report/pnl_monthly" in status.stdout and "Europe/Berlin" in status.stdout
        restored = run("restore", "--tier", "users_schema", "--into-database", "users_check",
                       cwd=root)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        mails = len(list((root / "var" / "mailbox").glob("*.eml")))
        report = run("run", "report/pnl_monthly", "--at", "2026-11-01T06:00+01:00", cwd=root)
        assert report.returncode == 0, report.stdout + report.stderr
        assert "email:finance@marketplace.example: sent" in report.stdout, report.stdout
        assert len(list((root / "var" / "mailbox").glob("*.eml"))) > mails  # none replaced
        http = free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
        serve = subprocess.Popen([MARKETOPS, "serve", "--port", str(http)], cwd=root,
                                 env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        try:
            deadline, code = time.monotonic() + 60, 0
            while time.monotonic() < deadline and code != 200:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz",
                                                timeout=2) as answer:
                        code = answer.status
                except OSError:
                    time.sleep(0.5)
            assert code == 200
        finally:
            serve.send_signal(signal.SIGTERM)
            output, log = serve.communicate(timeout=60)
        assert serve.returncode == 0, log
        assert output == "" and log and all(json.loads(line) for line in log.splitlines())
    finally:
        run("db", "stop", cwd=root)


def test_metrics_are_prometheus_client_s_own_and_parse(tmp_path: Path, shop_dsn: str) -> None:
    import time
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from tests.integration.test_service import start_replica, stop, wait_for

    often = MAILED.replace('"0 6 * * *"', '"* * * * * */3"').replace(
        "previous_day", "{rolling: 1h}").replace("retry_backoff: 1min", "retry_backoff: 1h")
    root = _shop_project(tmp_path / "repo", mailed=often)
    http = free_port()
    replica = start_replica(root, shop_dsn, "scraped", port=http)

    def scrape() -> dict[str, list[tuple[str, dict[str, str], float]]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as page:
                assert page.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = page.read().decode()
        except OSError:
            return {}
        return {f.name: [(s.name, s.labels, s.value) for s in f.samples]
                for f in text_string_to_metric_families(text)}

    try:
        wait_for(lambda: any(s[1].get("status") == "retrying" for s in
                             scrape().get("marketops_runs", [])), 60)
        time.sleep(1)
        found = scrape()
    except AssertionError:
        raise AssertionError(stop([replica])) from None
    finally:
        stop([replica])
    runs = {(s[1]["job"], s[1]["status"]): s[2] for s in found["marketops_runs"]
            if s[0] == "marketops_runs_total"}
    assert runs[("report/mailed", "retrying")] >= 1
    counts = [s for s in found["marketops_run_duration_seconds"]
              if s[0] == "marketops_run_duration_seconds_count"]
    assert counts and counts[0][1]["job"] == "report/mailed" and counts[0][2] >= 1
    assert any(s[0] == "marketops_run_duration_seconds_bucket" and s[1]["le"] == "+Inf"
               for s in found["marketops_run_duration_seconds"])
    deliveries = {(s[1]["kind"], s[1]["outcome"]): s[2] for s in found["marketops_deliveries"]
                  if s[0] == "marketops_deliveries_total"}
    assert deliveries[("email", "retrying")] >= 1
    assert deliveries[("webhook", "failed")] >= 1  # its URL variable is not set: for good
    assert deliveries[("destination", "sent")] >= 1
    [build] = found["marketops_build_info"]
    assert build[0] == "marketops_build_info" and build[1]["version"] == "0.1.0"
    assert found["process_resident_memory_bytes"][0][2] > 0
    assert "process_cpu_seconds" in found
    healthy = {s[1]["job"]: s[2] for s in found["marketops_job_healthy"]}
    assert healthy == {"report/mailed": 0.0}  # retrying needs attention
    assert "marketops_delivery_failures" not in found  # the old gauge is gone


def test_plan_names_each_job_s_zone_and_groups_the_wal_health_checks(
        tmp_path: Path, repo_root: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    window = ("--from", "2026-03-28T00:00Z", "--until", "2026-04-01T00:00Z")
    grouped = run("plan", *window, cwd=root)
    assert grouped.returncode == 0, grouped.stderr
    lines = grouped.stdout.splitlines()
    assert lines[-1] == "1415 slot(s), 1152 of them WAL health checks on 1 line(s)"
    assert "backup/wal_archive: 1152 WAL health checks (*/5 * * * *), " \
        "2026-03-28T00:05:00+00:00 UTC .. 2026-04-01T00:00:00+00:00 UTC  (--all lists each)" \
        in lines
    assert len(lines) == 2 * (1415 - 1152) + 2
    # Across the spring-forward night, each job's own offset and zone, named.
    assert any(line.startswith("2026-03-30T06:00:00+02:00 Europe/Berlin  report/") for line in
               lines), lines[:20]
    assert any(line.startswith("2026-03-28T06:00:00+01:00 Europe/Berlin  report/") for line in
               lines)
    every = run("plan", *window, "--all", cwd=root)
    assert every.stdout.splitlines()[-1] == "1415 slot(s)"
    assert every.stdout.count("  backup/wal_archive\n") == 1152
    utc = run("plan", *window, "--utc", cwd=root).stdout.splitlines()
    slots = [line for line in utc if line[10:11] == "T"]
    assert slots and all(line[:25].endswith("+00:00") for line in slots), slots[:3]


def test_plan_takes_dbt_selectors(tmp_path: Path, repo_root: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")
    window = ("--from", "2026-03-28T00:00Z", "--until", "2026-04-02T00:00Z")
    finance = run("plan", *window, "--select", "tag:finance", cwd=root)
    assert finance.returncode == 0, finance.stderr
    jobs = {line.split()[2] for line in finance.stdout.splitlines() if line[10:11] == "T"}
    assert jobs == {"report/pnl_monthly", "report/promo_roi"}
    both = run("plan", *window, "--select", "tag:finance,report/pnl*", "--select",
               "kind:logical_full", cwd=root)
    jobs = {line.split()[2] for line in both.stdout.splitlines() if line[10:11] == "T"}
    assert jobs == {"report/pnl_monthly", "backup/nightly_full"}, both.stdout
    none = run("plan", "--select", "tag:nope", cwd=root)
    assert none.returncode == 2 and none.stderr.startswith(
        "error: --select tag:nope selects no job (jobs: ") and "Traceback" not in none.stderr


def test_run_select_runs_each_picked_job_and_fails_when_one_does(tmp_path: Path,
                                                                 shop_dsn: str) -> None:
    quick = SLOW.replace("Slow", "Quick").replace(
        "generate_series(1, 400000000) g", "generate_series(1, 10) g").replace(
        "Counts far too long for its timeout.", "Counts ten.")
    root = _shop_project(tmp_path / "repo", slow=SLOW, quick=quick)
    both = run("run", "--select", "report/*", "--dsn", shop_dsn, cwd=root)
    assert both.returncode == 1, both.stdout + both.stderr  # slow timed out
    lines = [line for line in both.stdout.splitlines() if line.startswith("report/")]
    assert [line.split()[0] for line in lines] == ["report/quick", "report/slow"]
    assert ": succeeded" in lines[0] and ": failed: " in lines[1]
    one = run("run", "--select", "report/q*", "--dsn", shop_dsn, cwd=root)
    assert one.returncode == 0 and one.stdout.startswith("report/quick slot "), one.stdout
    neither = run("run", cwd=root)
    assert neither.returncode == 2
    assert "say which job: marketops run JOB (or --select tag:finance)" in neither.stderr


def test_backfill_select_backfills_each_picked_report_and_leaves_backups_out(
        tmp_path: Path, shop_dsn: str) -> None:
    quick = SLOW.replace("Slow", "Quick").replace(
        "generate_series(1, 400000000) g", "generate_series(1, 10) g").replace(
        "Counts far too long for its timeout.", "Counts ten.")
    root = _shop_project(tmp_path / "repo", slow=SLOW, quick=quick)
    (root / "definitions" / "backups").mkdir()
    (root / "definitions" / "backups" / "nightly.yaml").write_text(
        "title: Nightly\nowner: dba@corp.example\nkind: logical_full\ncron: \"0 1 * * *\"\n"
        "timezone: UTC\ndestination: archive\nretention: {keep_last: 1}\nrpo: 26h\nrto: 1h\n")
    window = ("--from", "2026-03-01T00:00Z", "--until", "2026-03-03T00:00Z")
    env = {"TEST_PRIMARY_DSN": shop_dsn}
    picked = run("backfill", "--select", "report/q*", "--select", "kind:backup", *window,
                 cwd=root, env=env)
    assert picked.returncode == 0, picked.stdout + picked.stderr
    assert "backup/nightly: a backup is of the database as it is now, not backfilled" \
        in picked.stderr
    lines = picked.stdout.splitlines()
    assert lines[:2] == ["2026-03-01T06:00:00+00:00: succeeded (1 rows)",
                         "2026-03-02T06:00:00+00:00: succeeded (1 rows)"], lines
    assert lines[-1] == "2 slot(s), 0 failed"
    both = run("backfill", "--select", "report/*", *window, cwd=root, env=env)
    assert both.returncode == 1, both.stdout + both.stderr  # slow times out each day
    named = [line.split()[0] for line in both.stdout.splitlines()[:-1]]
    assert named == ["report/quick"] * 2 + ["report/slow"] * 2, both.stdout
    assert both.stdout.splitlines()[-1] == "4 slot(s), 2 failed, 2 reports"
    only_backups = run("backfill", "--select", "kind:backup", *window, cwd=root, env=env)
    assert only_backups.returncode == 2 and "picks no report; backups cannot be backfilled" \
        in only_backups.stderr and "Traceback" not in only_backups.stderr
    neither = run("backfill", *window, cwd=root, env=env)
    assert neither.returncode == 2
    assert "say which job: marketops backfill JOB (or --select tag:finance)" in neither.stderr


def test_shell_completion_offers_commands_and_job_ids(tmp_path: Path, repo_root: Path) -> None:
    root = copy_repository(repo_root, tmp_path / "repo")

    def complete(words: str) -> list[str]:
        done = run(cwd=root, env={"_MARKETOPS_COMPLETE": "bash_complete", "COMP_WORDS": words,
                                  "COMP_CWORD": str(len(words.split()) - 1)})
        assert done.returncode == 0, done.stderr
        return [line.split(",", 1)[1] for line in done.stdout.splitlines()]

    assert "restore" in complete("marketops re") and complete("marketops stat") == ["status"]
    assert complete("marketops run report/p") == ["report/pnl_monthly",
                                                  "report/problem_products", "report/promo_roi"]
    assert complete("marketops backfill backup/n") == ["backup/nightly_full"]
    assert complete("marketops plan --job backup/w") == ["backup/wal_archive"]
    script = run(cwd=root, env={"_MARKETOPS_COMPLETE": "bash_source"})
    assert "_marketops_completion()" in script.stdout


def test_suspend_and_resume_are_held_in_the_ledger_and_shown_in_status(
        tmp_path: Path, shop_dsn: str) -> None:
    import time

    from runners.postgres.connection import connect
    from tests.integration.test_service import make_project, start_replica, stop, wait_for

    root = make_project(tmp_path / "repo", every=2)
    env = {"TEST_PRIMARY_DSN": shop_dsn}

    def rows(status: str) -> list[tuple[object, str | None]]:
        try:
            with connect(shop_dsn) as conn:
                return conn.execute("select slot, error from marketops.runs where job = "
                                    "'report/tick' and status = %s order by slot",
                                    (status,)).fetchall()
        except Exception:  # the ledger is not there yet
            return []

    unknown = run("suspend", "report/nope", cwd=root, env=env)
    assert unknown.returncode == 2 and "unknown job report/nope" in unknown.stderr
    replica = start_replica(root, shop_dsn, "held")
    try:
        wait_for(lambda: len(rows("succeeded")) >= 1, 60)
        held = run("suspend", "report/tick", "--reason", "shop migration", cwd=root, env=env)
        assert held.returncode == 0, held.stderr
        assert held.stdout.strip() == "report/tick suspended: shop migration; " \
            "`marketops resume report/tick` schedules it again"
        again = run("suspend", "report/tick", cwd=root, env=env)
        assert again.stdout.strip() == "report/tick was suspended already"
        time.sleep(3)  # a slot that was starting as the command ran may still finish
        ran = len(rows("succeeded"))
        wait_for(lambda: len(rows("skipped")) >= 3, 30)
        assert len(rows("succeeded")) == ran  # nothing ran while suspended
        assert all(error == "suspended: shop migration" for _, error in rows("skipped"))
        status = run("status", cwd=root, env=env)
        line = next(x for x in status.stdout.splitlines() if x.startswith("report/tick"))
        assert "suspended since " in line and " by " in line and ": shop migration" in line
        assert "late" not in line, line
        resumed = run("resume", "report/tick", cwd=root, env=env)
        assert resumed.stdout.strip() == "report/tick resumed"
        wait_for(lambda: len(rows("succeeded")) > ran, 30)
        assert run("resume", "report/tick", cwd=root, env=env).stdout.strip() == \
            "report/tick was not suspended"
    finally:
        stop([replica])


def test_check_forces_a_wal_switch_and_finds_the_segment_archived(tmp_path: Path) -> None:
    from runners.postgres.connection import connect
    from tests.integration.test_backup_physical import KEY, archiving_cluster

    with archiving_cluster(tmp_path / "repo", KEY, {}) as cluster:
        env = {"MARKETOPS_TEST_BACKUP_KEY": KEY}
        done = run("check", "--dsn", cluster.dsn, cwd=cluster.root, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("WAL archiving works: 0000000"), done.stdout
        segment = done.stdout.split()[3]
        stored = [p.name for p in (cluster.root / "var" / "backups").rglob(f"{segment}-*")]
        assert stored, segment
        # The archive refuses the server's writes: archive_command fails, and check says so.
        folders = [cluster.root / "var" / "backups" / "wal",
                   *(p for p in (cluster.root / "var" / "backups" / "wal").rglob("*")
                     if p.is_dir())]
        for folder in folders:
            folder.chmod(0o555)
        try:
            failed = run("check", "--dsn", cluster.dsn, "--timeout", "30", cwd=cluster.root,
                         env=env)
        finally:
            for folder in folders:
                folder.chmod(0o755)
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert "archive_command failed on 0000000" in failed.stderr, failed.stderr
        with connect(cluster.dsn, autocommit=True) as conn:
            conn.execute("alter system set archive_command = '/bin/true'")
            conn.execute("select pg_reload_conf()")
        foreign = run("check", "--dsn", cluster.dsn, cwd=cluster.root, env=env)
        assert foreign.returncode == 1 and "the primary cannot archive WAL for wal: set " \
            "archive_command = 'marketops --root <repo> wal-push %p'" in foreign.stderr


BERLIN_DRILL = """\
title: Drill of the base backups, scheduled in Berlin
owner: dba@corp.example
kind: restore_drill
cron: "0 4 * * 6"
timezone: Europe/Berlin
tiers: [base]
"""


def test_a_drill_says_its_replay_point_in_its_own_zone_named(tmp_path: Path) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from engine.app.executor import run_backup
    from tests.integration.test_backup_physical import KEY, archiving_cluster

    with archiving_cluster(tmp_path / "repo", KEY,
                           {"definitions/backups/drill.yaml": BERLIN_DRILL}) as cluster:
        cluster.full_backup()
        [(committed,)] = cluster.sql("insert into marks values (1, 'replayed') returning now()")
        cluster.switch_and_wait()
        outputs = run_backup(cluster.root, cluster.result, cluster.job("drill"), cluster.dsn)
    checked = outputs["tiers"]["base"]["checked"]
    assert checked.startswith("WAL replayed to the end of the archive: last replayed commit "
                              "at "), checked
    assert "+00" not in checked and "UTC" not in checked
    shown = checked.split("last replayed commit at ")[1].split(";")[0]
    assert isinstance(committed, datetime)
    berlin = committed.astimezone(ZoneInfo("Europe/Berlin"))
    # The insert's commit, read in Berlin (to the second; the commit lands just after now()).
    assert shown in {f"{at:%Y-%m-%d %H:%M:%S} {at.tzname()}"
                     for at in (berlin, berlin + timedelta(seconds=1))}, checked
