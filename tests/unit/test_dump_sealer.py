"""Logical dumps are sealed beside pg_dump: a table's data file from the moment it appears,
complete when pg_dump reports the item finished; not after pg_dump ends."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

from runners.backup.logical import _DumpSealer, _Listener
from runners.storage.sealing import Sealing, unseal
from runners.storage.stores import Store, StoreSpec

# Stands in for pg_dump: writes 7.dat in bursts (holding halfway until told to go on),
# reports item 7, then holds until told to finish.
FAKE_PG_DUMP = """
import sys, time, pathlib
dump, half, go = (pathlib.Path(a) for a in sys.argv[1:4])
print("pg_dump: dumping contents of table t", file=sys.stderr, flush=True)
with open(dump / "7.dat", "wb", buffering=0) as out:
    for i in range(20):
        out.write(b"".join(b"%d\\trow %d\\n" % (i * 1000 + n, n) for n in range(1000)))
        while i == 9 and not half.exists():  # half written: wait until sealing has begun
            time.sleep(0.01)
    out.write(b"\\\\.\\n\\n")
print("pg_dump: finished item 7 TABLE DATA t", file=sys.stderr, flush=True)
while not go.exists():
    time.sleep(0.01)
(dump / "toc.dat").write_bytes(b"toc")
print("pg_dump: error: query failed: boom", file=sys.stderr, flush=True)
"""


def test_a_data_file_is_sealed_as_pg_dump_writes_it(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    store = Store(StoreSpec("d", f"file://{tmp_path / 'dest'}"))
    half, go = tmp_path / "half", tmp_path / "go"
    process = subprocess.Popen([sys.executable, "-c", FAKE_PG_DUMP, str(dump), str(half),
                                str(go)], stderr=subprocess.PIPE, text=True)
    sealer = _DumpSealer(store, "tier/b1", dump, "zstd", Sealing("zstd", 3))
    listener = _Listener(process, sealer)
    folder = tmp_path / "dest" / "tier" / "b1"
    deadline = time.monotonic() + 20
    while not list(folder.glob(".7.dat.zst.partial*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    # The file is half written and not reported yet: sealing has begun all the same.
    assert list(folder.glob(".7.dat.zst.partial*")) and not (folder / "7.dat.zst").exists()
    half.touch()
    sealed = folder / "7.dat.zst"
    deadline = time.monotonic() + 20
    while not sealed.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sealed.exists() and process.poll() is None  # sealed before "pg_dump" ended
    while (dump / "7.dat").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not (dump / "7.dat").exists() and process.poll() is None  # its plaintext too
    go.touch()
    listener.join()
    process.wait()
    files, rows = sealer.finish()
    assert [f.name for f in files] == ["7.dat.zst", "toc.dat.zst"]
    assert rows["7.dat"] == 20_000
    restored = io.BytesIO()
    with sealed.open("rb") as source:
        unseal(source, restored, codec="zstd")  # type: ignore[arg-type]
    written = b"".join(b"%d\trow %d\n" % (i * 1000 + n, n) for i in range(20)
                       for n in range(1000)) + b"\\.\n\n"
    assert restored.getvalue() == written
    # Once sealed, the plaintext is gone from staging: it does not wait for the dump's end.
    assert not (dump / "7.dat").exists() and not (dump / "toc.dat").exists()
    assert listener.problems() == "pg_dump: error: query failed: boom\n"
