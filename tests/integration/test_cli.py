"""The installed `marketops` command, run the way users and CI run it."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REVENUE, line_of, write_project

ROOT = Path(__file__).resolve().parents[2]
MARKETOPS = shutil.which("marketops", path=str(Path(sys.executable).parent)) or "marketops"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETOPS_")}
    return subprocess.run([MARKETOPS, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def test_validate_the_repository() -> None:
    result = run("validate")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("valid: ")


def test_validate_a_broken_project_lists_every_problem(tmp_path: Path) -> None:
    report = REVENUE.replace("owner:", "ownr:").replace("sum(o.total)", "sum(o.totl)")
    write_project(tmp_path, {"definitions/reports/revenue.yaml": report,
                             "schema/empty.yaml": ""})
    result = run("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    out = result.stdout
    assert f"definitions/reports/revenue.yaml:{line_of(report, 'ownr:')}:1: error: unknown key " \
        "'ownr'; did you mean 'owner'?" in out
    assert "schema/empty.yaml:1:1: error: the file is empty" in out


def test_validate_json_and_github(tmp_path: Path) -> None:
    write_project(tmp_path, {"definitions/reports/revenue.yaml": REVENUE.replace("owner:", "o:")})
    result = run("validate", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["valid"] is False
    result = run("validate", "--format", "github", cwd=tmp_path)
    assert result.stdout.startswith("::error file=definitions/reports/revenue.yaml,line=")


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    write_project(tmp_path, {"definitions/reports/revenue.yaml": REVENUE.replace(
        "recipients:", "params: {unused: 1}\nrecipients:")})
    assert run("validate", cwd=tmp_path).returncode == 0
    assert run("validate", "--strict", cwd=tmp_path).returncode == 1


def test_impact() -> None:
    result = run("impact", "users.accounts.email")
    assert result.returncode == 0, result.stderr
    assert "backup/nightly_full" in result.stdout
    bad = run("impact", "users.acount")
    assert bad.returncode == 2  # a usage mistake
    assert bad.stderr.strip().startswith("error: unknown table users.acount")
    assert "Traceback" not in bad.stderr


def test_jsonschema_check_is_current() -> None:
    result = run("jsonschema", "--check")
    assert result.returncode == 0, result.stderr


def test_jsonschema_writes_files(tmp_path: Path) -> None:
    result = run("jsonschema", "--out", str(tmp_path / "out"))
    assert result.returncode == 0
    schema = json.loads((tmp_path / "out" / "report.schema.json").read_text())
    assert "cron" in schema["properties"]
    assert schema["properties"]["owner"]["description"]


@pytest.mark.parametrize("command", ["validate", "impact", "jsonschema", "demo"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0 and "Example:" in result.stdout


def test_root_option_and_missing_definitions(tmp_path: Path) -> None:
    result = run("--root", str(tmp_path), "validate")
    assert result.returncode == 0
    assert "0 schemas" in result.stdout
