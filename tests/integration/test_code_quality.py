"""ruff, mypy --strict and the import contracts gate every change, through the same test command
as everything else."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_engine_and_runners() -> None:
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert set(files) >= {"engine", "runners"}
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold() -> None:
    # lint-imports is a script, not a module: run the one installed beside this interpreter.
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_contract_names_every_core_module() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    core = next(c for c in contracts["contracts"] if c["id"] == "core")
    engine = ROOT / "engine"
    present = {f"engine.{p.stem}" for p in engine.glob("*.py") if p.stem != "__init__"}
    present |= {f"engine.{p.parent.name}" for p in engine.glob("*/__init__.py")}
    assert set(core["source_modules"]) == present - {"engine.app", "engine.cli"}
