"""The SQL analyses a validate needs, computed over two processes before the rules run.

The analysis (sqlglot's parse and qualify) is most of a cold validate and each query is
independent: a forked child analyses about half of the texts the memo lacks (by size)
while this process does the rest, and both land in the memo, so the rules then find every one there.
Same analyses as one at a time (each is a pure function of the text and the catalog, passed
through the memo's own encoding); anything wrong with the child only means this process
computes its half too.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from typing import Any

from engine.definitions.models.backup import RestoreDrillTier
from engine.definitions.project import Project
from engine.validation.sqlmemo import SqlMemo, decode, encode

# Below this many texts a fork costs more than it saves.
_MIN_TEXTS = 6


# What a validate asks the memo for: ("analyze", text) for every query checked against the
# catalog (reports, terms, views, unbuilt ones, restore drills' smoke queries), and
# ("ctes", text) for the own SQL of each report that lists glossary terms (the glossary rule
# parses it again, without the terms in front).
_Work = tuple[str, str]


def _work(project: Project) -> list[_Work]:
    texts = [sql.text for sql in project.report_sql.values()]
    texts += [sql.text for sql in project.term_sql.values()]
    texts += [view.definition for loaded in project.schemas.values()
              for view in loaded.model.views.values()]
    texts += [sql.text for sql, _ in project.unbuilt_sql.values()]
    texts += [smoke.sql for loaded in project.backups.values()
              if isinstance(loaded.model, RestoreDrillTier) for smoke in loaded.model.smoke_queries]
    work = [("analyze", text) for text in dict.fromkeys(texts)]
    owns = [sql.own_text for report_id, sql in project.report_sql.items()
            if report_id in project.reports and project.reports[report_id].model.uses]
    return work + [("ctes", text) for text in dict.fromkeys(owns)]


def _computed(work: list[_Work], project: Project) -> list[Any]:
    from engine.validation.sqlcheck import analyze, own_cte_names

    return [encode(analyze(text, project.catalog)) if kind == "analyze"
            else sorted(own_cte_names(text)) for kind, text in work]


def _shares(todo: list[tuple[str, _Work]]) -> tuple[list[tuple[str, _Work]],
                                                   list[tuple[str, _Work]]]:
    """Two shares of about the same size in characters (the cost goes with the length):
    the longest texts first, each to the lighter share."""
    shares: tuple[list[tuple[str, _Work]], list[tuple[str, _Work]]] = ([], [])
    sizes = [0, 0]
    for item in sorted(todo, key=lambda item: -len(item[1][1])):
        lighter = 0 if sizes[0] <= sizes[1] else 1
        shares[lighter].append(item)
        sizes[lighter] += len(item[1][1])
    return shares


def prefetch(project: Project, memo: SqlMemo) -> int:
    """Put the analyses (and CTE names) of every SQL text of `project` the memo lacks into
    it, over two processes when there are enough; returns how many were computed."""
    catalog = project.catalog
    todo = [(memo.key(kind, text, catalog if kind == "analyze" else None), (kind, text))
            for kind, text in _work(project)]
    todo = [(key, work) for key, work in todo if key not in memo.entries]
    # A fork copies no other thread, only what it held: with threads (a test runner's
    # servers, an embedding program) a lock held elsewhere could hang the child.
    if len(todo) < _MIN_TEXTS or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2 \
            or threading.active_count() > 1:
        return 0
    import engine.validation.sqlcheck  # noqa: F401  imported once, before the fork

    theirs, mine = _shares(todo)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: analyse, send, and leave without running any cleanup
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "w", encoding="utf-8") as out:
                json.dump(_computed([work for _, work in theirs], project), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    # Through JSON as the child's (and the cache file's) are: decode wants lists, not tuples.
    results = json.loads(json.dumps(_computed([work for _, work in mine], project)))
    with os.fdopen(read, encoding="utf-8") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(child, 0)
    done = list(zip([key for key, _ in mine], results, strict=True))
    with contextlib.suppress(ValueError, TypeError):
        received = json.loads(sent) if os.waitstatus_to_exitcode(status) == 0 else None
        if isinstance(received, list) and len(received) == len(theirs):
            for (_, (kind, _)), entry in zip(theirs, received, strict=True):
                # The child's answer must be what was asked, or none of it is used.
                if kind == "analyze":
                    decode(entry)
                elif not (isinstance(entry, list) and all(isinstance(n, str) for n in entry)):
                    raise TypeError("not a list of names")
            done += list(zip([key for key, _ in theirs], received, strict=True))
    for key, entry in done:
        memo.entries[key] = entry
    memo.misses += len(done)
    return len(done)
