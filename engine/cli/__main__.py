"""`python -m engine.cli`, the form archive_command and restore_command settings use."""

from engine.app.cli import main

main()
