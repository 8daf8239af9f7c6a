"""runners.storage.guard: what a process held is cleaned up by its watcher when the process
is killed outright, and what it released is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CHILD = """
import os, subprocess, sys, time
from pathlib import Path
from runners.storage import guard
from runners.storage.stores import make_staging

held = make_staging(Path(sys.argv[1]), "nightly_full", 7)
(held / "3617.dat").write_text("plaintext")
kept = make_staging(Path(sys.argv[1]), "drill-x", 8)
guard.release(kept)
tool = subprocess.Popen(["sleep", "300"], process_group=0)
guard.watch(tool)  # type: ignore[arg-type]
print(held, kept, tool.pid, flush=True)
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_process_leaves_no_staging_and_no_tool_running(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).parents[2])
    assert child.stdout is not None
    held, kept, tool = child.stdout.readline().split()
    assert Path(held).is_dir() and _alive(int(tool))
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    deadline = time.monotonic() + 10
    while (Path(held).exists() or _alive(int(tool))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(held).exists()
    assert not _alive(int(tool))
    assert Path(kept).is_dir()  # released: not the watcher's any more


def test_a_process_that_ends_normally_has_its_released_directories_left(
        tmp_path: Path) -> None:
    script = ("import sys; from pathlib import Path; from runners.storage import guard; "
              "from runners.storage.stores import scratch\n"
              "with scratch(Path(sys.argv[1]), 'x') as w: (w / 'f').write_text('x')\n"
              "d = Path(sys.argv[1]) / 'mine'; d.mkdir(); guard.protect(d); guard.release(d)")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                          text=True, cwd=Path(__file__).parents[2], timeout=60)
    assert done.returncode == 0, done.stderr
    time.sleep(0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert os.listdir(tmp_path / "mine") == []
