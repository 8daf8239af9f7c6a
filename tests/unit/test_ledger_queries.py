"""The ledger's named queries: read from engine/runs/ledger.sql, each one used, none missing."""

from __future__ import annotations

import re
from pathlib import Path

import engine.runs.ledger
from engine.runs.ledger import QUERIES, named_queries


def test_named_queries_splits_on_the_name_lines_and_drops_comments() -> None:
    text = ("-- header of the file\n\n-- first --\n-- what it does\nselect 1;\n\n"
            "-- second_one --\nupdate t\n   set a = 1 -- keep\nwhere b;\n")
    assert named_queries(text) == {"first": "select 1;",
                                   "second_one": "update t\n   set a = 1 -- keep\nwhere b;"}


def test_every_query_the_ledger_uses_is_in_the_file_and_every_one_is_used() -> None:
    source = Path(engine.runs.ledger.__file__).read_text(encoding="utf-8")
    used = set(re.findall(r'QUERIES\["(\w+)"\]', source))
    assert used == set(QUERIES)
    assert all(QUERIES[name].rstrip().endswith(";") for name in QUERIES)
    assert "marketops.runs" in QUERIES["claim"] and "on conflict (job, slot)" in QUERIES["claim"]
