"""The audit vault: rows of append-only audit tables exported by id into a separate
destination, batch after batch, each batch's manifest carrying the previous batch's hash."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.auditchain import GENESIS, Batch, chain_hash, chain_problems
from engine.errors import BackupError
from engine.manifest import MANIFEST, Manifest, StoredFile, new_backup_id
from runners.catalog import read_catalog
from runners.codec import EXTENSIONS, Sealing, seal, unseal
from runners.database import connect, query
from runners.storage import Store
from runners.verify import verify_backup


def _batch(manifest: Manifest) -> Batch:
    d = manifest.details
    return Batch(manifest.backup_id, int(d["seq"]), int(d["first_id"]), int(d["last_id"]),
                 int(d["rows"]), manifest.files[0].raw_sha256, str(d["prev_hash"]),
                 str(d["chain_hash"]))


def _folder(tier: str, table: str) -> str:
    return f"{tier}/{table}"


class _CopyReader:
    """A readable stream over COPY ... TO STDOUT (constant memory)."""

    def __init__(self, copy: Any) -> None:
        self.chunks = iter(copy)
        self.pending = b""

    def read(self, size: int = -1) -> bytes:
        want = size if size and size > 0 else 1 << 20
        while len(self.pending) < want:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.pending += bytes(chunk)
        out, self.pending = self.pending[:want], self.pending[want:]
        return out

    def readable(self) -> bool:
        return True


@dataclass(frozen=True)
class Exported:
    """Batches written by one export run, per table."""

    batches: dict[str, int]
    rows: dict[str, int]
    head: dict[str, str]
    stored_bytes: int = 0


def export_batches(dsn: str, store: Store, tier: str, tables: list[str], sealing: Sealing,
                   *, id_column: str = "id", batch_rows: int = 100_000,
                   definition_hash: str = "") -> Exported:
    """Export every row above the last exported id, in batches of at most `batch_rows`."""
    batches: dict[str, int] = {}
    rows: dict[str, int] = {}
    head: dict[str, str] = {}
    stored = 0
    for table in tables:
        catalog = read_catalog(store, _folder(tier, table))
        chain = [_batch(m) for m in catalog.complete]
        problems = chain_problems(chain)
        if problems:
            raise BackupError(f"the audit vault chain of {table} is broken, refusing to extend "
                              f"it: {problems[0]}; run marketops verify audit")
        last = chain[-1] if chain else None
        written = total = 0
        while True:
            manifest = _export_one(dsn, store, tier, table, sealing, id_column, batch_rows, last,
                                   definition_hash)
            if manifest is None:
                break
            batch = last = _batch(manifest)
            written += 1
            total += batch.rows
            stored += manifest.stored_bytes
        batches[table], rows[table] = written, total
        head[table] = last.chain_hash if last else GENESIS
    return Exported(batches, rows, head, stored)


def _export_one(dsn: str, store: Store, tier: str, table: str, sealing: Sealing,
                id_column: str, batch_rows: int, last: Batch | None,
                definition_hash: str) -> Manifest | None:
    schema, name = table.split(".")
    after = last.last_id if last else None
    started = datetime.now(UTC)
    qualified = f'"{schema}"."{name}"'
    with connect(dsn, application=f"marketops audit vault {tier}") as conn:
        conn.execute("begin isolation level repeatable read read only")
        bounds = query(conn, f'select min("{id_column}"), max("{id_column}"), count(*) from '
                       f'(select "{id_column}" from {qualified} where %s::bigint is null or '
                       f'"{id_column}" > %s order by 1 limit %s) s', (after, after, batch_rows))
        first_id, last_id, count = bounds[0]
        if not count:
            return None
        backup_id = new_backup_id(started)
        prefix = f"{_folder(tier, table)}/{backup_id}"
        data_name = "rows.csv" + EXTENSIONS[sealing.codec] + (".age" if sealing.key else "")
        statement = (f'copy (select * from {qualified} where "{id_column}" between {first_id} '
                     f'and {last_id} order by "{id_column}") to stdout with (format csv, '
                     "header true)")
        try:
            with conn.cursor().copy(statement) as copy, \
                    store.writer(f"{prefix}/{data_name}") as sink:
                sealed = seal(_CopyReader(copy), sink, codec=sealing.codec,  # type: ignore[arg-type]
                              level=sealing.level, key=sealing.key, threads=sealing.threads)
            conn.rollback()
            seq = (last.seq if last else 0) + 1
            prev = last.chain_hash if last else GENESIS
            digest = chain_hash(prev, seq, int(first_id), int(last_id), int(count),
                                sealed.raw_sha256)
            manifest = Manifest(
                tier=_folder(tier, table), kind="audit_vault", backup_id=backup_id,
                started_at=started, finished_at=datetime.now(UTC), codec=sealing.codec,
                encrypted_with=sealing.key_name,
                files=[StoredFile(data_name, sealed.raw_size, sealed.raw_sha256,
                                  sealed.stored_size, sealed.stored_sha256)],
                backup_type="batch", row_counts={table: int(count)},
                definition_hash=definition_hash,
                details={"seq": seq, "first_id": int(first_id), "last_id": int(last_id),
                         "rows": int(count), "prev_hash": prev, "chain_hash": digest,
                         "id_column": id_column})
            store.put_bytes(f"{prefix}/{MANIFEST}", manifest.to_json())
        except BaseException:
            store.remove(prefix)
            raise
    return manifest


def verify_chain(store: Store, tier: str, table: str, key: str | None) -> tuple[list[str], int]:
    """Problems in one table's chain (structure, manifests, stored bytes); batches checked."""
    catalog = read_catalog(store, _folder(tier, table))
    manifests = sorted(catalog.complete, key=lambda m: m.backup_id)
    problems = [f"{table}: batch {b} is incomplete (no manifest)" for b in catalog.incomplete]
    problems += [f"{table}: batch {b}: manifest damaged or moved from another batch"
                 for b in catalog.damaged]
    problems += [f"{table}: {p}" for p in chain_problems([_batch(m) for m in manifests])]
    for manifest in manifests:
        stored = manifest.files[0]
        name = f"{manifest.tier}/{manifest.backup_id}/{stored.name}"
        with store.reader(name) as handle:
            raw = _DigestSink()
            if manifest.encrypted_with and key is None:
                # Without the key: the stored bytes against the manifest, not the rows.
                found = verify_backup(store, manifest)
                problems += [f"{table}: batch {manifest.backup_id}: {p}" for p in found]
                continue
            try:
                got = unseal(handle, raw, codec=manifest.codec,  # type: ignore[arg-type]
                             key=key if manifest.encrypted_with else None)
            except BackupError as exc:
                problems.append(f"{table}: batch {manifest.backup_id}: {exc}")
                continue
        if got.raw_sha256 != stored.raw_sha256 or got.stored_sha256 != stored.stored_sha256:
            problems.append(f"{table}: batch {manifest.backup_id}: its rows were altered "
                            "(checksum differs from the manifest)")
    return problems, len(manifests)


class _DigestSink:
    """A sink that keeps nothing: unseal hashes what passes through."""

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        return None

    def writable(self) -> bool:
        return True
