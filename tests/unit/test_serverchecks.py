"""What a server must change before it archives WAL through marketops."""

from pathlib import Path

from engine.app.tiers.backup import archive_command
from engine.backups.serverchecks import server_problems

READY = {"wal_level": "replica", "max_wal_senders": "10", "archive_mode": "on"}


def test_the_archive_command_wal_setup_sets_is_accepted() -> None:
    for command in (archive_command(Path("/srv/repo")), "marketops --root /r wal-push %p"):
        assert server_problems({**READY, "archive_command": command}, incremental=False,
                               archiving=True) == []


def test_another_archive_command_is_named() -> None:
    [problem] = server_problems({**READY, "archive_command": "cp %p /mnt/wal/%f"},
                                incremental=False, archiving=True)
    assert problem.startswith("set archive_command = ")
