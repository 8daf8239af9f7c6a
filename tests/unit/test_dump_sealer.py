"""Logical dumps are sealed as pg_dump reports each data file written, not after it ends."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from runners.codec import Sealing
from runners.logical import _DumpSealer, _Listener
from runners.storage import Store, StoreSpec

# Stands in for pg_dump's stderr: reports item 7 written, then holds until told to finish.
FAKE_PG_DUMP = """
import sys, time, pathlib
print("pg_dump: dumping contents of table t", file=sys.stderr, flush=True)
print("pg_dump: finished item 7 TABLE DATA t", file=sys.stderr, flush=True)
go = pathlib.Path(sys.argv[1])
while not go.exists():
    time.sleep(0.01)
print("pg_dump: error: query failed: boom", file=sys.stderr, flush=True)
"""


def test_a_reported_data_file_is_sealed_while_pg_dump_still_runs(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "7.dat").write_bytes(b"1\ta\n2\tb\n3\tc\n\\.\n\n")
    (dump / "toc.dat").write_bytes(b"toc")
    store = Store(StoreSpec("d", f"file://{tmp_path / 'dest'}"))
    go = tmp_path / "go"
    process = subprocess.Popen([sys.executable, "-c", FAKE_PG_DUMP, str(go)],
                               stderr=subprocess.PIPE, text=True)
    sealer = _DumpSealer(store, "tier/b1", dump, "zstd", Sealing("zstd", 3))
    listener = _Listener(process, sealer)
    sealed = tmp_path / "dest" / "tier" / "b1" / "7.dat.zst"
    deadline = time.monotonic() + 20
    while not sealed.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sealed.exists() and process.poll() is None  # sealed before "pg_dump" ended
    assert not (tmp_path / "dest" / "tier" / "b1" / "toc.dat.zst").exists()
    go.touch()
    listener.join()
    process.wait()
    files, rows = sealer.finish()
    assert [f.name for f in files] == ["7.dat.zst", "toc.dat.zst"]
    assert rows["7.dat"] == 3
    assert listener.problems() == "pg_dump: error: query failed: boom\n"
