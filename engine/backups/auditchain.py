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


@dataclass(frozen=True)
class Head:
    """The chain head as recorded outside the vault (in the ledger) after each batch.

    The chain alone shows a batch altered in the middle; only a head kept elsewhere shows
    the newest batch deleted, or rewritten and re-hashed consistently."""

    batches: int
    last_hash: str
    last_id: int | None
    signature: str | None = None


def head_of(batches: list[Batch]) -> Head:
    """The head of a chain (GENESIS when empty)."""
    if not batches:
        return Head(0, GENESIS, None)
    last = batches[-1]
    return Head(last.seq, last.chain_hash, last.last_id)


def sign_head(key: str, tier: str, table: str, head: Head) -> str:
    """HMAC-SHA256 of the head under a key the vault's writers need not hold, so a ledger
    row rewritten to match a rewritten vault is told apart from one marketops wrote."""
    import hmac

    text = f"{tier}|{table}|{head.batches}|{head.last_hash}|{head.last_id}"
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def head_problems(batches: list[Batch], head: Head | None) -> tuple[list[str], list[Batch]]:
    """(problems, unanchored): the stored chain against the recorded head; `unanchored` are
    the linked batches after the head (written by a run that stopped before recording it)."""
    if head is None:
        if not batches:
            return [], []
        return [f"the ledger records no chain head for its {len(batches)} batch(es), so "
                "deleted newest batches cannot be ruled out (was the ledger's "
                "marketops.audit_heads row removed, or is this another state database?); "
                "for a vault older than the heads: marketops verify audit --adopt"], []
    if head.batches == 0:
        return [], list(batches)
    by_seq = {b.seq: b for b in batches}
    anchored = by_seq.get(head.batches)
    if anchored is None:
        have = max(by_seq, default=0)
        lost = f"batch #{head.batches} was" if have + 1 == head.batches else \
            f"batches #{have + 1}..#{head.batches} were"
        return [f"the ledger's head records {head.batches} batch(es) up to id "
                f"{head.last_id}, the vault ends at #{have}: {lost} deleted"], []
    if anchored.chain_hash != head.last_hash:
        return [f"batch {anchored.batch_id} (#{anchored.seq}) is not the batch the ledger's "
                "head recorded (its hash differs): it was rewritten"], []
    return [], [b for b in batches if b.seq > head.batches]


def signature_problem(key: str, tier: str, table: str, head: Head) -> str | None:
    """Why the recorded head's signature does not hold under `key`; None when it does."""
    import hmac

    if head.signature is None:
        return ("the ledger's chain head is not signed, though an anchor key is set (signed "
                "from now on by marketops verify audit --adopt)")
    if not hmac.compare_digest(head.signature, sign_head(key, tier, table, head)):
        return ("the ledger's chain head does not match its signature: the ledger row was "
                "edited")
    return None
