"""Progress of long steps (demo data, backups, restores, drills), for people and for logs.

On a terminal a step is a live rich bar; elsewhere (a pipe, CI, a log file) it is plain lines:
one when it starts, one every LOG_EVERY seconds while it runs, one when it ends. When the
service has configured logging they go through the `marketops.progress` logger instead, so
its output stays JSON. Deep code reports what it did with `advance(n, unit)` and never needs
to know whether anyone is watching: amounts go to the innermost open step counting that unit.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.backups.listing import human_size

log = logging.getLogger("marketops.progress")

LOG_EVERY = 10.0
BYTES = ("read", "written")  # units counted in bytes

_lock = threading.RLock()
_open: list[Step] = []
_live: Any = None  # the rich Progress while any step is open on a terminal


def on_terminal() -> bool:
    """Whether people watch stderr (and no service logger owns it)."""
    if _logging_configured():
        return False
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def _logging_configured() -> bool:
    handlers = [*logging.getLogger("marketops").handlers, *logging.getLogger().handlers]
    return any(not isinstance(h, logging.NullHandler) for h in handlers)


def note(message: str) -> None:
    """One line for the person running the command (or the service's log)."""
    if _logging_configured():
        log.info(message)
        return
    with _lock:
        if _live is not None:
            _live.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=sys.stderr, flush=True)


def amount(value: float, unit: str) -> str:
    """`12.3 MB written` for bytes (`read`, `written`), `3 tables` otherwise."""
    if unit in BYTES:
        return f"{human_size(value)} {unit}"
    return f"{int(value):,} {unit}"


class Step:
    """One long step: what it is, how much of how much is done, since when."""

    def __init__(self, title: str, total: float | None, unit: str) -> None:
        self.title = title
        self.total = total
        self.unit = unit
        self.done = 0.0
        self.started = time.monotonic()
        self.summary: str | None = None
        self._logged = self.started
        self._task: Any = None

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def text(self) -> str:
        if not self.unit:
            return ""
        if self.total is not None and self.unit in BYTES:
            return f"{amount(self.done, self.unit)} of {human_size(self.total)}"
        if self.total is not None:
            return f"{int(self.done):,}/{amount(self.total, self.unit)}"
        return amount(self.done, self.unit)

    def advance(self, value: float = 1) -> None:
        with _lock:
            self.done += value
            if self._task is not None and _live is not None:
                _live.update(self._task, completed=self.done, done=self.text())
            elif _live is None and time.monotonic() - self._logged >= LOG_EVERY:
                self._logged = time.monotonic()
                note(f"{self.title}: {self.text()} so far ({self.seconds:.0f}s)")


def advance(value: float, unit: str) -> None:
    """Count `value` (bytes, tables, ...) towards the innermost open step of that unit."""
    with _lock:
        for step in reversed(_open):
            if step.unit == unit:
                step.advance(value)
                return


def counting(unit: str) -> bool:
    """Whether an open step counts `unit` (so callers can skip the bookkeeping otherwise)."""
    with _lock:
        return any(step.unit == unit for step in _open)


@contextmanager
def step(title: str, *, total: float | None = None, unit: str = "") -> Iterator[Step]:
    """A long step: a bar on a terminal, a start and an end line otherwise. Set `.summary`
    to say what it did; the end line gives it with the time taken."""
    global _live
    current = Step(title, total, unit)
    with _lock:
        if on_terminal():
            if _live is None:
                _live = _progress()
                _live.start()
            current._task = _live.add_task(title, total=total, done=current.text())
        else:
            note(f"{title} ...")
        _open.append(current)
    failed = True
    try:
        yield current
        failed = False
    finally:
        with _lock:
            _open.remove(current)
            if current._task is not None and _live is not None:
                _live.remove_task(current._task)
            ended = "failed" if failed else (current.summary or current.text() or "done")
            note(f"{title}: {ended} ({current.seconds:.1f}s)")
            if not _open and _live is not None:
                _live.stop()
                _live = None


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.fields[done]}"), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)
