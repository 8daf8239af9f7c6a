"""The audit vault's head kept outside the vault, and a WAL segment's header against its
name: pure checks, no database."""

from __future__ import annotations

import struct
from dataclasses import replace

from engine.backups.auditchain import (
    GENESIS,
    Batch,
    Head,
    chain_hash,
    chain_problems,
    head_of,
    head_problems,
    sign_head,
    signature_problem,
)
from runners.storage.verify import segment_header_problem


def _chain(count: int) -> list[Batch]:
    batches, prev = [], GENESIS
    for seq in range(1, count + 1):
        digest = chain_hash(prev, seq, seq * 10, seq * 10 + 9, 10, f"{seq:064x}")
        batches.append(Batch(f"b{seq}", seq, seq * 10, seq * 10 + 9, 10, f"{seq:064x}", prev,
                             digest))
        prev = digest
    return batches


def test_the_head_finds_what_the_chain_alone_cannot() -> None:
    chain = _chain(4)
    head = head_of(chain)
    assert head == Head(4, chain[-1].chain_hash, 49)
    assert head_problems(chain, head) == ([], [])
    # The newest batch deleted: what is left is a perfect chain.
    assert chain_problems(chain[:3]) == []
    problems, _ = head_problems(chain[:3], head)
    assert problems == ["the ledger's head records 4 batch(es) up to id 49, the vault ends at "
                        "#3: batch #4 was deleted"]
    assert "batches #3..#4 were deleted" in head_problems(chain[:2], head)[0][0]
    # The newest batch rewritten and re-hashed consistently.
    forged_hash = chain_hash(chain[2].chain_hash, 4, 40, 49, 10, "f" * 64)
    forged = [*chain[:3], replace(chain[3], data_sha256="f" * 64, chain_hash=forged_hash)]
    assert chain_problems(forged) == []
    assert "rewritten" in head_problems(forged, head)[0][0]


def test_batches_after_the_head_are_unanchored_and_no_head_is_a_problem() -> None:
    chain = _chain(3)
    assert head_problems(chain, head_of(chain[:2])) == ([], [chain[2]])
    assert head_problems(chain, Head(0, GENESIS, None)) == ([], chain)
    assert head_problems([], None) == ([], [])
    assert "records no chain head" in head_problems(chain, None)[0][0]


def test_a_signed_head_edited_in_the_ledger_is_caught() -> None:
    head = head_of(_chain(3))
    signed = replace(head, signature=sign_head("k", "vault", "admin.audit_log", head))
    assert signature_problem("k", "vault", "admin.audit_log", signed) is None
    moved_back = replace(signed, batches=2)
    assert "edited" in (signature_problem("k", "vault", "admin.audit_log", moved_back) or "")
    assert "edited" in (signature_problem("other", "vault", "admin.audit_log", signed) or "")
    assert "not signed" in (signature_problem("k", "vault", "admin.audit_log", head) or "")


def _header(timeline: int, pageaddr: int, seg_size: int = 16 << 20, info: int = 0x0002
            ) -> bytes:
    return struct.pack("<HHIQI4xQII", 0xD118, info, timeline, pageaddr, 0, 7, seg_size, 8192)


def test_a_segment_header_must_match_its_name() -> None:
    name = "000000020000000300000004"
    start = (3 << 32) + 4 * (16 << 20)
    assert segment_header_problem(name, _header(2, start)) is None
    assert "another segment" in (segment_header_problem(name, _header(2, start + (16 << 20)))
                                 or "")
    assert "another segment" in (segment_header_problem(name, _header(1, start)) or "")
    assert "header" in (segment_header_problem(name, _header(2, start, info=0)) or "")
    assert "too short" in (segment_header_problem(name, b"\0" * 10) or "")
    # 1 GB segments: a name is read with the segment size the header gives.
    big = "000000020000000300000002"
    assert segment_header_problem(big, _header(2, (3 << 32) + 2 * (1 << 30), 1 << 30)) is None
    assert "does not fit its name" in (segment_header_problem(name, _header(2, 0, 1 << 30))
                                       or "")
