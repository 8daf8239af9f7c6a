"""The audit vault's hash chain: each batch names the hash of the one before it, so a
deleted, altered or reordered batch is found by walking the chain."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

GENESIS = "0" * 64


@dataclass(frozen=True)
class Batch:
    """One exported batch of audit rows, as its manifest records it."""

    batch_id: str
    seq: int
    first_id: int
    last_id: int
    rows: int
    data_sha256: str  # of the raw (decrypted, decompressed) rows
    prev_hash: str
    chain_hash: str


def chain_hash(prev_hash: str, seq: int, first_id: int, last_id: int, rows: int,
               data_sha256: str) -> str:
    """The hash a batch carries: it covers its content and the previous batch's hash."""
    text = f"{prev_hash}|{seq}|{first_id}|{last_id}|{rows}|{data_sha256}"
    return hashlib.sha256(text.encode()).hexdigest()


def chain_problems(batches: list[Batch]) -> list[str]:
    """Every break in the chain, in the order stored (batch ids sort by export time)."""
    problems = []
    prev_hash, prev_last, expected_seq = GENESIS, None, 1
    for batch in batches:
        where = f"batch {batch.batch_id} (#{batch.seq})"
        if batch.seq != expected_seq:
            what = "missing" if batch.seq > expected_seq else "out of order"
            problems.append(f"{where}: expected #{expected_seq}; batch(es) {what}")
        if batch.prev_hash != prev_hash:
            problems.append(f"{where}: does not follow the previous batch (its previous-hash "
                            "differs): a batch before it was deleted, altered or reordered")
        recomputed = chain_hash(batch.prev_hash, batch.seq, batch.first_id, batch.last_id,
                                batch.rows, batch.data_sha256)
        if recomputed != batch.chain_hash:
            problems.append(f"{where}: its manifest was altered (hash mismatch)")
        if prev_last is not None and batch.first_id <= prev_last:
            problems.append(f"{where}: ids {batch.first_id}..{batch.last_id} overlap the "
                            f"previous batch (up to {prev_last})")
        prev_hash, prev_last, expected_seq = batch.chain_hash, batch.last_id, batch.seq + 1
    return problems
