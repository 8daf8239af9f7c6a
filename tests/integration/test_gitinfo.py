"""The commit recorded with each run comes from the definitions' git checkout."""

import subprocess
from pathlib import Path

from runners.service.gitinfo import head_commit


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_head_commit_and_dirty_definitions(tmp_path: Path) -> None:
    assert head_commit(tmp_path) is None  # not a repository
    _git(tmp_path, "init", "-q")
    (tmp_path / "marketops.yaml").write_text("reports: {}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "x")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert head_commit(tmp_path) == head
    (tmp_path / "marketops.yaml").write_text("reports: {destination: x}\n")
    assert head_commit(tmp_path) == head + "+dirty"
    (tmp_path / "notes.txt").write_text("not a definition")
    (tmp_path / "marketops.yaml").write_text("reports: {}\n")
    assert head_commit(tmp_path) == head
