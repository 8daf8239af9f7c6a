"""The audit vault: rows of append-only audit tables exported by id into a separate
destination, batch after batch, each batch's manifest carrying the previous batch's hash,
and the chain's head recorded after each batch outside the vault (an `Anchor`).

Rows are exported by id only up to a *settled* horizon: the highest id committed when the
run looks, once every transaction that might still commit a lower id has ended. A row whose
id was allocated before an export but committed after it is therefore never skipped. This is
simpler than an overlap window (no re-reading, no de-duplication): ids come from a sequence
(an identity column) and are allocated in order, and a transaction allocating one holds a
lock on the table (INSERT) or on its sequence (nextval) until it ends; `pg_locks` lists those
transactions without blocking them. It assumes the sequence has CACHE 1 (the default): with a
larger cache, sessions hand out ids out of order and no id horizon can be sound.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from engine.backups.auditchain import (
    GENESIS,
    Batch,
    Head,
    chain_hash,
    chain_problems,
    head_of,
    head_problems,
)
from engine.backups.manifest import MANIFEST, Manifest, StoredFile, new_backup_id
from engine.errors import BackupError
from runners.postgres.connection import connect, query
from runners.storage.catalog import read_catalog
from runners.storage.sealing import EXTENSIONS, Sealing, seal, unseal
from runners.storage.stores import Store
from runners.storage.verify import verify_backup


def _batch(manifest: Manifest) -> Batch:
    d = manifest.details
    return Batch(manifest.backup_id, int(d["seq"]), int(d["first_id"]), int(d["last_id"]),
                 int(d["rows"]), manifest.files[0].raw_sha256, str(d["prev_hash"]),
                 str(d["chain_hash"]))


def _folder(tier: str, table: str) -> str:
    return f"{tier}/{table}"


class Anchor(Protocol):
    """Where a vault's chain heads are kept, outside the vault (the ledger)."""

    def head(self, table: str) -> Head | None: ...
    def record(self, table: str, head: Head) -> None: ...


SETTLE_TIMEOUT = 60.0


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
                   anchor: Anchor, *, id_column: str = "id", batch_rows: int = 100_000,
                   definition_hash: str = "", settle_timeout: float = SETTLE_TIMEOUT
                   ) -> Exported:
    """Export every settled row above the last exported id, in batches of at most
    `batch_rows`, recording the chain head after each batch."""
    batches: dict[str, int] = {}
    rows: dict[str, int] = {}
    head: dict[str, str] = {}
    stored = 0
    for table in tables:
        chain = _checked_chain(dsn, store, tier, table, anchor, id_column)
        last = chain[-1] if chain else None
        anchor.record(table, head_of(chain))
        horizon = settled_horizon(dsn, table, id_column, settle_timeout)
        written = total = 0
        while horizon is not None:
            manifest = _export_one(dsn, store, tier, table, sealing, id_column, batch_rows, last,
                                   horizon, definition_hash)
            if manifest is None:
                break
            batch = last = _batch(manifest)
            chain.append(batch)
            anchor.record(table, head_of(chain))
            written += 1
            total += batch.rows
            stored += manifest.stored_bytes
        batches[table], rows[table] = written, total
        head[table] = last.chain_hash if last else GENESIS
    return Exported(batches, rows, head, stored)


def _checked_chain(dsn: str, store: Store, tier: str, table: str, anchor: Anchor,
                   id_column: str) -> list[Batch]:
    """The stored chain, refused when broken or not the one the anchor recorded; batches
    after the recorded head (a run stopped between writing one and recording it) are kept
    only when their rows still equal the source's."""
    catalog = read_catalog(store, _folder(tier, table))
    chain = [_batch(m) for m in catalog.complete]
    problems = chain_problems(chain)
    found, unanchored = head_problems(chain, anchor.head(table))
    problems += found
    if not problems:
        for batch in unanchored:
            if _source_sha256(dsn, table, id_column, batch.first_id, batch.last_id) \
                    != batch.data_sha256:
                problems.append(f"batch {batch.batch_id} (#{batch.seq}) is not anchored and "
                                "its rows differ from the source table's")
    if problems:
        raise BackupError(f"the audit vault chain of {table} is broken, refusing to extend "
                          f"it: {problems[0]}; run marketops verify audit")
    return chain


def settled_horizon(dsn: str, table: str, id_column: str, timeout: float) -> int | None:
    """The highest committed id once every transaction that could still commit a lower one
    has ended (see the module docstring); None when the table is empty."""
    qualified = _qualified(table)
    with connect(dsn, autocommit=True, application="marketops audit vault") as conn:
        horizon = query(conn, f'select max("{id_column}") from {qualified}')[0][0]
        # Read after the maximum: a writer of a lower id still running then holds its lock.
        relations = [r for r in query(conn, "select %s::regclass::oid, to_regclass("
                                      "pg_get_serial_sequence(%s, %s))::oid",
                                      (qualified, qualified, id_column))[0] if r is not None]
        holders = [str(r[0]) for r in query(
            conn, "select distinct virtualtransaction from pg_locks where database = (select "
            "oid from pg_database where datname = current_database()) and relation = "
            "any(%s::oid[]) and granted and pid is distinct from pg_backend_pid()", (relations,))]
        deadline = time.monotonic() + timeout
        while holders:
            left = query(conn, "select virtualtransaction, max(pid) from pg_locks where "
                         "virtualtransaction = any(%s::text[]) and relation = any(%s::oid[]) "
                         "and database = (select oid from pg_database where datname = "
                         "current_database()) group by 1",
                         (holders, relations))
            if not left:
                break
            if time.monotonic() > deadline:
                pids = ", ".join(str(pid) for _, pid in left)
                raise BackupError(f"{table}: transactions writing to it (pid {pids}) are still "
                                  f"open after {timeout:.0f}s; rows are exported only once "
                                  "every lower id has settled, so none committed late is "
                                  "skipped; the next run tries again")
            time.sleep(0.05)
    return int(horizon) if horizon is not None else None


def _qualified(table: str) -> str:
    schema, name = table.split(".")
    return f'"{schema}"."{name}"'


def _copy_statement(table: str, id_column: str, first_id: int, last_id: int) -> str:
    return (f'copy (select * from {_qualified(table)} where "{id_column}" between {first_id} '
            f'and {last_id} order by "{id_column}") to stdout with (format csv, header true)')


def _begin_export(conn: Any) -> None:
    """One snapshot, and text output that does not depend on the server's or session's
    settings, so that a batch's rows can be re-read byte for byte."""
    conn.execute("begin isolation level repeatable read read only")
    conn.execute("set local timezone = 'UTC'")
    conn.execute("set local datestyle = 'ISO, YMD'")
    conn.execute("set local intervalstyle = 'postgres'")
    conn.execute("set local extra_float_digits = 1")


def _source_sha256(dsn: str, table: str, id_column: str, first_id: int, last_id: int) -> str:
    """sha256 of the rows a batch holds, as the source table has them now."""
    digest = hashlib.sha256()
    with connect(dsn, application="marketops audit vault") as conn:
        _begin_export(conn)
        with conn.cursor().copy(_copy_statement(table, id_column, first_id, last_id)) as copy:
            for chunk in copy:
                digest.update(bytes(chunk))
        conn.rollback()
    return digest.hexdigest()


def _export_one(dsn: str, store: Store, tier: str, table: str, sealing: Sealing,
                id_column: str, batch_rows: int, last: Batch | None, horizon: int,
                definition_hash: str) -> Manifest | None:
    after = last.last_id if last else None
    started = datetime.now(UTC)
    with connect(dsn, application=f"marketops audit vault {tier}") as conn:
        _begin_export(conn)
        bounds = query(conn, f'select min("{id_column}"), max("{id_column}"), count(*) from '
                       f'(select "{id_column}" from {_qualified(table)} where (%s::bigint is '
                       f'null or "{id_column}" > %s) and "{id_column}" <= %s order by 1 '
                       'limit %s) s', (after, after, horizon, batch_rows))
        first_id, last_id, count = bounds[0]
        if not count:
            return None
        backup_id = new_backup_id(started)
        prefix = f"{_folder(tier, table)}/{backup_id}"
        data_name = "rows.csv" + EXTENSIONS[sealing.codec] + (".age" if sealing.key else "")
        statement = _copy_statement(table, id_column, int(first_id), int(last_id))
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


def stored_head(store: Store, tier: str, table: str) -> Head:
    """The head of the chain as the vault holds it (to adopt one the ledger lacks)."""
    return head_of([_batch(m) for m in read_catalog(store, _folder(tier, table)).complete])


def verify_chain(store: Store, tier: str, table: str, key: str | None, head: Head | None
                 ) -> tuple[list[str], int]:
    """Problems in one table's chain (structure, the head recorded outside the vault,
    manifests, stored bytes); the number of batches checked."""
    catalog = read_catalog(store, _folder(tier, table))
    manifests = sorted(catalog.complete, key=lambda m: m.backup_id)
    problems = [f"{table}: batch {b} is incomplete (no manifest)" for b in catalog.incomplete]
    problems += [f"{table}: batch {b}: manifest damaged or moved from another batch"
                 for b in catalog.damaged]
    chain = [_batch(m) for m in manifests]
    problems += [f"{table}: {p}" for p in chain_problems(chain)]
    found, unanchored = head_problems(chain, head)
    problems += [f"{table}: {p}" for p in found]
    problems += [f"{table}: batch {b.batch_id} (#{b.seq}) was written after the last head "
                 "the ledger recorded (a run stopped before recording it; the next run "
                 "anchors it if its rows equal the source's)" for b in unanchored]
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
