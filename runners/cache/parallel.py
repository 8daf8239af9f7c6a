"""The SQL analyses a validate needs, computed over two processes before the rules run.

The analysis (sqlglot's parse and qualify) is most of a cold validate and each query is
independent: a forked child analyses half of the texts the memo lacks while this process
does the other half, and both land in the memo, so the rules then find every one there.
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

from engine.definitions.project import Project
from engine.validation.sqlmemo import SqlMemo, decode, encode

# Below this many texts a fork costs more than it saves.
_MIN_TEXTS = 6


def _texts(project: Project) -> list[str]:
    texts = [sql.text for sql in project.report_sql.values()]
    texts += [sql.text for sql in project.term_sql.values()]
    texts += [view.definition for loaded in project.schemas.values()
              for view in loaded.model.views.values()]
    texts += [sql.text for sql, _ in project.unbuilt_sql.values()]
    return list(dict.fromkeys(texts))


def _analysed(texts: list[str], project: Project) -> list[Any]:
    from engine.validation.sqlcheck import analyze

    return [encode(analyze(text, project.catalog)) for text in texts]


def prefetch(project: Project, memo: SqlMemo) -> int:
    """Put the analyses of every SQL text of `project` the memo lacks into it, over two
    processes when there are enough; returns how many were computed."""
    catalog = project.catalog
    todo = [(memo.key("analyze", text, catalog), text) for text in _texts(project)]
    todo = [(key, text) for key, text in todo if key not in memo.entries]
    # A fork copies no other thread, only what it held: with threads (a test runner's
    # servers, an embedding program) a lock held elsewhere could hang the child.
    if len(todo) < _MIN_TEXTS or not hasattr(os, "fork") or (os.cpu_count() or 1) < 2 \
            or threading.active_count() > 1:
        return 0
    import engine.validation.sqlcheck  # noqa: F401  imported once, before the fork

    theirs, mine = todo[: len(todo) // 2], todo[len(todo) // 2:]
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: analyse, send, and leave without running any cleanup
        code = 1
        try:
            os.close(read)
            with os.fdopen(write, "w", encoding="utf-8") as out:
                json.dump(_analysed([text for _, text in theirs], project), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    # Through JSON as the child's (and the cache file's) are: decode wants lists, not tuples.
    results = json.loads(json.dumps(_analysed([text for _, text in mine], project)))
    with os.fdopen(read, encoding="utf-8") as pipe:
        sent = pipe.read()
    _, status = os.waitpid(child, 0)
    done = list(zip([key for key, _ in mine], results, strict=True))
    with contextlib.suppress(ValueError, TypeError):
        received = json.loads(sent) if os.waitstatus_to_exitcode(status) == 0 else None
        if isinstance(received, list) and len(received) == len(theirs):
            for entry in received:
                decode(entry)  # the child's answer must be an analysis, or none is used
            done += list(zip([key for key, _ in theirs], received, strict=True))
    for key, entry in done:
        memo.entries[key] = entry
    memo.misses += len(done)
    return len(done)
