"""Sealing: zstd/gzip/none x age, digests on both sides, damage and wrong keys refused."""

from __future__ import annotations

import io
import os

import pytest

from engine.errors import BackupError
from runners.storage.sealing import decompressing, generate_key, seal, unseal

KEY = generate_key()[0]
DATA = os.urandom(300_000) + b"compressible " * 50_000


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("key", [None, KEY])
def test_round_trip(codec: str, key: str | None) -> None:
    sink = io.BytesIO()
    sealed = seal(io.BytesIO(DATA), sink, codec=codec, key=key)
    assert sealed.raw_size == len(DATA) and sealed.stored_size == len(sink.getvalue())
    if codec != "none":
        assert sealed.stored_size < len(DATA)
    out = io.BytesIO()
    back = unseal(io.BytesIO(sink.getvalue()), out, codec=codec, key=key)
    assert out.getvalue() == DATA
    assert (back.raw_sha256, back.stored_sha256) == (sealed.raw_sha256, sealed.stored_sha256)


def test_wrong_key_and_damage_are_refused() -> None:
    sink = io.BytesIO()
    seal(io.BytesIO(DATA), sink, codec="zstd", key=KEY)
    with pytest.raises(BackupError, match="decrypt"):
        unseal(io.BytesIO(sink.getvalue()), io.BytesIO(), codec="zstd", key=generate_key()[0])
    damaged = bytearray(sink.getvalue())
    damaged[len(damaged) // 2] ^= 1
    with pytest.raises(BackupError, match=r"damaged|decrypt"):
        unseal(io.BytesIO(bytes(damaged)), io.BytesIO(), codec="zstd", key=KEY)


def test_public_recipient_encrypts_but_cannot_restore() -> None:
    secret, public = generate_key()
    sink = io.BytesIO()
    seal(io.BytesIO(b"x" * 1000), sink, codec="zstd", key=public)
    with pytest.raises(BackupError, match="secret key"):
        unseal(io.BytesIO(sink.getvalue()), io.BytesIO(), codec="zstd", key=public)
    out = io.BytesIO()
    unseal(io.BytesIO(sink.getvalue()), out, codec="zstd", key=secret)
    assert out.getvalue() == b"x" * 1000


def test_rows_of_a_copy_data_file() -> None:
    from runners.storage.sealing import copy_rows

    data = b"1\ta\n2\tb\\nwith an escaped newline\n\\.\n\n\n"
    sink = io.BytesIO()
    sealed = seal(io.BytesIO(data), sink, codec="zstd", count_lines=True)
    assert copy_rows(sealed.raw_lines, sealed.raw_tail) == 2
    assert seal(io.BytesIO(data), io.BytesIO(), codec="zstd").raw_lines == 0  # not asked
    assert copy_rows(*_lines(b"\\.\n\n")) == 0
    assert copy_rows(*_lines(b"x\ny\n")) == 2  # no terminator: every line counts


def _lines(data: bytes) -> tuple[int, bytes]:
    return data.count(b"\n"), data[-16:]


@pytest.mark.parametrize("codec", ["zstd", "gzip", "none"])
def test_decompressing_reads_what_a_tool_compressed_across_frames(codec: str) -> None:
    """pg_basebackup's workers may end one zstd frame and start another: all are read."""
    import gzip as gzip_module

    import zstandard

    parts = [b"first frame\n" * 1000, b"second frame\n" * 1000]
    if codec == "zstd":
        blob = b"".join(zstandard.ZstdCompressor().compress(p) for p in parts)
    elif codec == "gzip":
        blob = gzip_module.compress(b"".join(parts))
    else:
        blob = b"".join(parts)
    reader, chunks = decompressing(io.BytesIO(blob), codec), []
    while chunk := reader.read(4096):  # as tarfile reads: a block at a time
        chunks.append(chunk)
    assert b"".join(chunks) == b"".join(parts)
