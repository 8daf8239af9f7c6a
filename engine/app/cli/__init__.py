"""The `marketops` command, split by command group."""

from engine.app.cli.main import cli, main

__all__ = ["cli", "main"]
