"""GrowingFile: a file read while a real process is still appending to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runners.storage.growing import GrowingFile

WRITER = """
import sys, time
with open(sys.argv[1], "wb", buffering=0) as out:
    for i in range(int(sys.argv[2])):
        out.write(bytes([i % 251]) * 70_000)
        time.sleep(0.01)
"""


def _start(path: Path, bursts: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(bursts)], text=True)


def test_reads_everything_the_process_wrote_while_it_wrote(tmp_path: Path) -> None:
    target = tmp_path / "base.tar"
    process = _start(target, 12)
    chunks = []
    with GrowingFile(target, lambda: process.poll() is not None) as growing:
        while chunk := growing.read(50_000):
            chunks.append(chunk)
    process.wait()
    assert b"".join(chunks) == target.read_bytes()
    assert len(b"".join(chunks)) == 12 * 70_000
    assert len(chunks) > 12  # read in pieces as it grew, not once at the end


def test_a_process_that_never_creates_the_file_reads_as_empty(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"], text=True)
    with GrowingFile(tmp_path / "never.tar", lambda: process.poll() is not None) as growing:
        assert growing.read(1024) == b""
    assert process.wait() == 0
