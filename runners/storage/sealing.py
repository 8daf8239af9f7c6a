"""Streaming compression (zstd, gzip) and age encryption of one file, hashing as it goes.

The embedded PostgreSQL tools are built with zlib only, so zstd happens here, in the storage
layer, for every tier. Each stored file records the codec in the manifest and two digests: of
the raw bytes (what a restore must reproduce) and of the stored bytes (what verify re-reads).
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol, cast

import pyrage
import zstandard

from engine.errors import BackupError, DamagedBackupError

CHUNK = 1 << 20
EXTENSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}


class _Stream(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


@dataclass(frozen=True)
class Sealing:
    """How files are stored: codec, level, and the encryption key (name and value)."""

    codec: str = "zstd"
    level: int = 3
    key_name: str | None = None
    key: str | None = None
    threads: int = 2


@dataclass(frozen=True)
class Sealed:
    """Sizes and sha256 digests of one file before and after sealing."""

    raw_size: int
    raw_sha256: str
    stored_size: int
    stored_sha256: str
    raw_lines: int = 0  # newlines in the raw bytes, when counted (COPY data: one per row)
    raw_tail: bytes = b""  # the last bytes of the raw data


class Discard:
    """A sink for bytes that are only hashed and counted (stored by other means)."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass


class _HashingReader:
    def __init__(self, source: BinaryIO, *, count_lines: bool = False) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        self.size = 0
        self.count_lines = count_lines
        self.lines = 0
        self.tail = b""

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size if size and size > 0 else CHUNK)
        self.digest.update(data)
        self.size += len(data)
        if self.count_lines:  # a full pass over the bytes: only COPY data needs it
            self.lines += data.count(b"\n")
        if data:
            self.tail = (self.tail + data[-16:])[-16:]
        return data

    def readable(self) -> bool:
        return True


class _HashingWriter:
    def __init__(self, sink: BinaryIO, *, hashing: bool = True) -> None:
        self.sink = sink
        self.hashing = hashing
        self.digest = hashlib.sha256()
        self.size = 0
        self.error: OSError | None = None  # pyrage wraps it; re-raised as it was

    def write(self, data: bytes) -> int:
        if self.hashing:
            self.digest.update(data)
        self.size += len(data)
        try:
            self.sink.write(data)
        except OSError as exc:
            self.error = exc
            raise
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.sink.flush()


class _CompressingReader:
    """Pulls raw bytes and yields them compressed (pyrage reads its input, it is not fed)."""

    def __init__(self, source: _HashingReader, stream: _Stream | None) -> None:
        self.source = source
        self.stream = stream
        self.pending = bytearray()
        self.offset = 0  # what is before it in `pending` was read already
        self.done = False

    def read(self, size: int = -1) -> bytes:
        want = size if size and size > 0 else CHUNK
        if self.stream is None:  # stored as it is: no buffering, no copies
            return self.source.read(want)
        while len(self.pending) - self.offset < want and not self.done:
            data = self.source.read(CHUNK)
            if not data:
                self.done = True
                self.pending += self.stream.flush()
            else:
                self.pending += self.stream.compress(data)
        out = bytes(self.pending[self.offset:self.offset + want])
        self.offset += len(out)
        # Multithreaded zstd hands over megabytes at once and age reads 64 KiB at a time:
        # cutting the front off on every read copied the rest each time (quadratic).
        if self.offset * 2 >= len(self.pending):
            del self.pending[:self.offset]
            self.offset = 0
        return out

    def readable(self) -> bool:
        return True


def _compressor(codec: str, level: int, threads: int) -> _Stream | None:
    if codec == "zstd":
        return zstandard.ZstdCompressor(level=level, threads=threads).compressobj()
    if codec == "gzip":
        return zlib.compressobj(max(1, min(level, 9)), zlib.DEFLATED, 31)
    return None


def recipient(key: str) -> pyrage.x25519.Recipient:
    """The age recipient of a key: an identity (AGE-SECRET-KEY-...) or a recipient (age1...)."""
    try:
        if key.startswith("AGE-SECRET-KEY-"):
            return pyrage.x25519.Identity.from_str(key).to_public()
        return pyrage.x25519.Recipient.from_str(key)
    except (pyrage.IdentityError, pyrage.RecipientError, ValueError):
        raise BackupError("the backup key is not an age key (expected AGE-SECRET-KEY-1... or "
                          "age1...; make one with `marketops keygen`)") from None


def key_fingerprint(key: str) -> str:
    """sha256 of the key's public age recipient: recorded in manifests so that a restore can
    tell a wrong key from a damaged file. Never derived from, nor revealing, the secret."""
    return "sha256:" + hashlib.sha256(str(recipient(key)).encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new age identity (secret) and its public recipient."""
    created = pyrage.x25519.Identity.generate()
    return str(created), str(created.to_public())


def identity(key: str) -> pyrage.x25519.Identity:
    """The age identity that decrypts; a recipient-only key cannot restore."""
    if not key.startswith("AGE-SECRET-KEY-"):
        raise BackupError("restoring needs the secret key (AGE-SECRET-KEY-1...), not only the "
                          "public recipient")
    try:
        return pyrage.x25519.Identity.from_str(key)
    except (pyrage.IdentityError, ValueError):
        raise BackupError("the backup key is not a valid age secret key") from None


def as_is(codec: str, key: str | None) -> bool:
    """Whether files are stored exactly as they are (no compression, no encryption)."""
    return codec == "none" and key is None


def seal(source: BinaryIO, sink: BinaryIO, *, codec: str, level: int = 3,
         key: str | None = None, threads: int = 2, count_lines: bool = False) -> Sealed:
    """Compress (and encrypt, when a key is given) `source` into `sink`; `count_lines` also
    counts the raw newlines (rows of COPY data)."""
    raw = _HashingReader(source, count_lines=count_lines)
    compressed = _CompressingReader(raw, _compressor(codec, level, threads))
    # Stored as it is, the stored bytes are the raw bytes: one digest serves both.
    unchanged = as_is(codec, key)
    stored = _HashingWriter(sink, hashing=not unchanged)
    if key is None:
        shutil.copyfileobj(compressed, stored, CHUNK)
    else:
        try:
            pyrage.encrypt_io(compressed, stored, [recipient(key)])
        except pyrage.EncryptError as exc:
            if stored.error is not None:
                raise stored.error from None
            raise BackupError(f"encryption failed: {exc}") from None
    raw_sha256 = raw.digest.hexdigest()
    return Sealed(raw.size, raw_sha256, stored.size,
                  raw_sha256 if unchanged else stored.digest.hexdigest(), raw.lines, raw.tail)


def copy_rows(lines: int, tail: bytes) -> int:
    """Rows in a pg_dump COPY data file: one line each, then the `\\.` line and blank ones."""
    stripped = tail.rstrip(b"\n")
    if not stripped.endswith(b"\\."):
        return lines
    return lines - (len(tail) - len(stripped))


class _DecompressingWriter:
    def __init__(self, sink: _HashingWriter, codec: str) -> None:
        self.sink = sink
        self.stream: zstandard.ZstdDecompressionObj | zlib._Decompress | None
        if codec == "zstd":
            self.stream = zstandard.ZstdDecompressor().decompressobj()
        elif codec == "gzip":
            self.stream = zlib.decompressobj(31)
        else:
            self.stream = None

    def write(self, data: bytes) -> int:
        self.sink.write(self.stream.decompress(data) if self.stream is not None else data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.sink.flush()


def decompressing(source: BinaryIO, codec: str) -> BinaryIO:
    """`source` read through a streaming decompressor (files a PostgreSQL tool compressed)."""
    if codec == "zstd":
        return cast(BinaryIO, zstandard.ZstdDecompressor().stream_reader(
            source, read_across_frames=True))
    if codec == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=source, mode="rb"))
    return source


def unseal(source: BinaryIO, sink: BinaryIO, *, codec: str, key: str | None = None) -> Sealed:
    """Decrypt and decompress `source` into `sink`, hashing both sides."""
    stored = _HashingReader(source)
    raw = _HashingWriter(sink)
    decompressing = _DecompressingWriter(raw, codec)
    try:
        if key is None:
            shutil.copyfileobj(stored, decompressing, CHUNK)
        else:
            pyrage.decrypt_io(stored, decompressing, [identity(key)])
    except pyrage.DecryptError:
        if raw.error is not None:
            raise raw.error from None
        raise BackupError("cannot decrypt: wrong key or damaged file") from None
    except OSError as exc:
        if raw.error is not None:
            raise raw.error from None
        if "decrypt" not in str(exc):
            raise
        raise DamagedBackupError("cannot decrypt: the stored file is damaged (age "
                                 "authentication failed)") from None
    except (zstandard.ZstdError, zlib.error) as exc:
        raise DamagedBackupError(f"cannot decompress ({codec}): damaged file ({exc})") \
            from None
    return Sealed(raw.size, raw.digest.hexdigest(), stored.size, stored.digest.hexdigest())
