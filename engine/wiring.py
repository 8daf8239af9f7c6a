"""The composition root's helpers: settings resolved into connections and runners."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from engine.errors import DefinitionError, UsageError
from engine.validate import ValidationResult, validate
from runners.postgres import EmbeddedServer

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


def resolve_env(value: str, what: str) -> str:
    """`${VAR}` -> the variable's value; a clear error naming the variable when unset."""
    match = _ENV_REF.match(value)
    if not match:
        return value
    resolved = os.environ.get(match.group(1))
    if not resolved:
        raise UsageError(f"{what} refers to ${{{match.group(1)}}}, which is not set in the "
                         "environment")
    return resolved


def valid_definitions(root: Path) -> ValidationResult:
    """The definitions, refusing to go on when any is invalid (nothing is half-applied)."""
    result = validate(root)
    if not result.passed():
        first = result.errors[0]
        raise DefinitionError(f"{len(result.errors)} definition error(s), first: {first.location}:"
                              f" {first.message}; run marketops validate")
    return result


@dataclass(frozen=True)
class Target:
    """Where a command connects, and the embedded server when that is what it is."""

    dsn: str
    server: EmbeddedServer | None = None


def embedded_server(root: Path, result: ValidationResult) -> EmbeddedServer:
    settings = result.project.settings.embedded
    data_dir = Path(settings.data_dir)
    if not data_dir.is_absolute():
        data_dir = (root / data_dir).resolve()
    return EmbeddedServer(data_dir, settings.port, settings.database)


def primary_target(root: Path, result: ValidationResult, dsn_override: str | None) -> Target:
    """The primary database: --dsn / MARKETOPS_DSN, else settings; `embedded` starts it."""
    dsn = dsn_override or result.project.settings.databases.primary.dsn
    if dsn == "embedded":
        from runners.database import ensure_database

        server = embedded_server(root, result)
        server.start()
        ensure_database(server.dsn("postgres"), server.database)
        return Target(server.dsn(), server)
    return Target(resolve_env(dsn, "databases.primary.dsn"))


@dataclass(frozen=True)
class DemoDataSummary:
    """Rows generated per table, where, and how long it took."""

    dsn: str
    rows: dict[str, int]
    seconds: float
    applied_statements: int


def apply_schema(result: ValidationResult, dsn: str) -> int:
    """Create whatever the declared schema lacks in `dsn`; the number of statements run."""
    from engine.schemadiff import apply_statements
    from runners.database import connect, execute_script
    from runners.introspect import pull

    declared = {name: s.model for name, s in result.project.schemas.items()}
    with connect(dsn) as conn:
        live = pull(conn, list(declared)).schemas
    statements = apply_statements(declared, live)
    if statements:
        execute_script(dsn, statements)
    return len(statements)


def demo_data(root: Path, dsn_override: str | None, *, scale: float, seed: int,
              until: date | None) -> DemoDataSummary:
    """Apply the schema where needed, then replace every declared table's rows."""
    from runners.demodata import generate

    result = valid_definitions(root)
    target = primary_target(root, result, dsn_override)
    applied = apply_schema(result, target.dsn)
    tables = [f"{s}.{t}" for s, loaded in result.project.schemas.items()
              for t in loaded.model.tables]
    generated = generate(target.dsn, tables, scale=scale, seed=seed, until=until)
    return DemoDataSummary(target.dsn, generated.rows, generated.seconds, applied)
