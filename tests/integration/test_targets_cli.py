"""`--target prod` through the CLI: the target's database, destinations and archive_command."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.app.roles import apply as apply_roles
from engine.dbschema.ddl import create_all
from engine.validation.validate import validate
from runners.demo.mailbox import free_port
from runners.postgres.connection import connect, execute_script
from runners.storage.sealing import generate_key
from tests.helpers import SETTINGS, line_of, write_project
from tests.mailbox import smtp_server
from tests.support.definitions import all_time_revenue, base_tier, wal_tier

REVENUE = all_time_revenue()
BASE_TIER = base_tier("Physical base", "30 2 * * *", "25h")
WAL = wal_tier("1d")


def _settings(smtp_port: int) -> str:
    return SETTINGS + f"""\
smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, sender: ops@corp.example}}
databases:
  primary: {{dsn: "${{DEV_DSN}}"}}
targets:
  prod:
    databases:
      primary: {{dsn: "${{PROD_DSN}}"}}
    destinations:
      backups: {{url: "file://./var/prod-backups"}}
      archive: {{url: "file://./var/prod-reports"}}
"""


def _cli(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", "--root", str(root), *args],
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def _shop(dsn: str, root: Path, region: str, total: str) -> None:
    defs = validate(root)
    execute_script(dsn, create_all(s.model for s in defs.project.schemas.values()))
    apply_roles(defs, dsn)  # as after `schema apply`: reports connect as roles.reports
    with connect(dsn, autocommit=True) as conn:
        conn.execute("insert into shop.customers values (1, 'a@corp.example', %s, now())",
                     (region,))
        conn.execute("insert into shop.orders values (1, 1, %s, now())", (total,))


def test_target_prod_reads_its_database_and_writes_its_destinations(
        tmp_path: Path, new_database: Callable[..., str]) -> None:
    smtp_port = free_port()
    root = write_project(tmp_path / "repo", {
        "marketops.yaml": _settings(smtp_port),
        "definitions/reports/revenue.yaml": REVENUE,
        "definitions/backups/base.yaml": BASE_TIER,
        "definitions/backups/wal.yaml": WAL,
    })
    dev_dsn, prod_dsn = new_database(), new_database()
    _shop(dev_dsn, root, "dev-land", "1.00")
    _shop(prod_dsn, root, "prod-land", "42.00")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "DEV_DSN": dev_dsn, "PROD_DSN": prod_dsn, "BACKUP_KEY": generate_key()[0],
           "OPS_WEBHOOK": "http://127.0.0.1:9/x", "TRUSTED_WEBHOOK": "http://127.0.0.1:9/y"}

    with smtp_server(smtp_port) as mails:
        report = _cli(root, env, "--target", "prod", "run", "report/revenue")
    assert report.returncode == 0, report.stdout + report.stderr
    directory = Path(report.stdout.split("directory: ")[1].splitlines()[0].strip())
    assert directory.is_relative_to(root / "var" / "prod-reports")
    csv = (directory / "revenue.csv").read_text(encoding="utf-8")
    assert "prod-land" in csv and "42" in csv and "dev-land" not in csv
    assert len(mails) == 1
    with connect(prod_dsn) as conn:  # the ledger is the target's too
        assert conn.execute("select count(*) from marketops.runs").fetchone() == (1,)

    backup = _cli(root, {**env, "MARKETOPS_TARGET": "prod"}, "run", "backup/nightly")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert list((root / "var" / "prod-backups" / "nightly").rglob("*.age"))
    assert not (root / "var" / "backups").exists()

    status = _cli(root, env, "--target", "prod", "status")
    assert status.stdout.splitlines()[0] == "target: prod (marketops.yaml)"
    plain = _cli(root, env, "plan")
    assert plain.returncode == 0 and not plain.stdout.startswith("target:")

    # archive_command as wal-setup sets it: run by PostgreSQL without MARKETOPS_TARGET, it
    # still archives to the target's destination.
    setup = _cli(root, env, "--target", "prod", "wal-setup")
    assert setup.returncode == 0, setup.stderr
    [line] = [x for x in setup.stdout.splitlines() if x.startswith("archive_command = ")]
    command = line.removeprefix("archive_command = ").strip("'")
    assert '--target "prod"' in command and "-m engine.app.walpush " in command
    # Compiled for the fast path from prod's settings, under prod's own name.
    compiled = json.loads((root / ".marketops/cache/archive-prod.json").read_text())
    assert compiled["target"] == "prod" and compiled["url"].endswith("/var/prod-backups")
    assert not (root / ".marketops/cache/archive.json").exists()
    segment = tmp_path / "000000010000000000000001"
    segment.write_bytes(b"wal" * 1000)
    pushed = subprocess.run(command.replace("%p", shlex.quote(str(segment))), shell=True,
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert pushed.returncode == 0, pushed.stderr
    assert [p.name.split("-")[0] for p in (root / "var" / "prod-backups" / "wal").rglob("*.age")
            if p.name.startswith("0000")] == [segment.name]

    unknown = _cli(root, env, "--target", "prd", "run", "report/revenue")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        f"error: unknown target 'prd' (from --target): marketops.yaml:"
        f"{line_of(_settings(smtp_port), 'targets:')} declares targets: prod")


def test_validate_reports_a_mistake_only_one_target_has(tmp_path: Path) -> None:
    settings = _settings(2525) + "  staging:\n    keys:\n      k1: hunter2\n"
    root = write_project(tmp_path, {"marketops.yaml": settings})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    result = _cli(root, env, "validate")
    assert result.returncode == 1
    errors = [x for x in result.stdout.splitlines() if ": error: " in x]
    assert len(errors) == 1, result.stdout
    assert errors[0].startswith(f"marketops.yaml:{line_of(settings, 'k1: hunter2')}:")
    assert "target staging: keys.k1" in errors[0] and "hunter2" not in errors[0]
    assert _cli(root, env, "--target", "prod", "plan").returncode == 0  # prod is fine
    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "--root", str(root), "--target", "s"],
        env={**env, "_MARKETOPS_COMPLETE": "bash_complete", "COMP_CWORD": "4",
             "COMP_WORDS": f"marketops --root {root} --target s"},
        capture_output=True, text=True, timeout=60, check=False)
    assert completed.stdout.split() == ["plain,staging"]
    unknown = _cli(root, {**env, "MARKETOPS_TARGET": "nope"}, "plan")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: unknown target 'nope' (from MARKETOPS_TARGET): ")


def test_serve_names_the_target_in_its_start_line(tmp_path: Path, shop_dsn: str) -> None:
    root = write_project(tmp_path / "repo", {
        "marketops.yaml": _settings(2525),
        "definitions/reports/revenue.yaml": REVENUE + "enabled: false\n",  # nothing to run
    })
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")},
           "PROD_DSN": shop_dsn, "MARKETOPS_TARGET": "prod",
           "BACKUP_KEY": generate_key()[0]}
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        serve = subprocess.Popen([sys.executable, "-m", "engine.cli", "--root", str(root),
                                  "serve", "--port", "0", "--worker", "w"],
                                 env=env, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while "serving: " not in log.read_text() and serve.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = [json.loads(x) for x in log.read_text().splitlines() if "serving: " in x]
        assert lines, log.read_text()
        assert lines[0]["message"].startswith("serving: worker w, target prod; ")
    finally:
        serve.terminate()
        serve.wait(30)
