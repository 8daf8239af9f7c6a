"""`marketops = engine.cli:main`: kept so installed scripts and archive_command settings work."""

from engine.app.cli import main

__all__ = ["main"]
