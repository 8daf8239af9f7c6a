"""marketops engine: the pure core (definitions, validation, database schemas, scheduling,
runs, backups and reports policy, as functions of their inputs), and in engine.app the
composition root, the only part that imports runners."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def logger(name: str) -> logging.Logger:
    """The `marketops.*` logger `name`. Library logging stays silent unless `marketops
    serve` (or a user) configures it; logging is imported here, on first use, not with
    `engine` (archive_command, started once per WAL segment, never logs)."""
    import logging

    parent = logging.getLogger("marketops")
    if not any(type(h) is logging.NullHandler for h in parent.handlers):
        parent.addHandler(logging.NullHandler())
    return logging.getLogger(name)
