"""Progress of long steps (demo data, backups, restores, drills), for people and for logs.

On a terminal a step is a live rich bar and a line when it ends. Off a terminal (a pipe, CI,
a script reading stderr) a command says nothing extra, as pgBackRest and dbt do: scripts that
expect one error line get one. The service is the exception: its log is where the on-call
engineer looks, so when it has configured logging a step is plain lines through the
`marketops.progress` logger (JSON like the rest of its output): one when it starts, one every
LOG_EVERY seconds while it runs, one when it ends. Deep code reports what it did with
`advance(n, unit)` and never needs to know whether anyone is watching: amounts go to the
innermost open step counting that unit.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from engine import logger
from engine.backups.listing import human_size

log = logger("marketops.progress")

LOG_EVERY = 10.0
BYTES = ("read", "written")  # units counted in bytes

_lock = threading.RLock()
_open: list[Step] = []
_live: Any = None  # the rich Progress while any step is open on a terminal


Mode = Literal["bar", "log", "off"]


def mode_for(*, stderr_is_terminal: bool, term: str, service_logging: bool) -> Mode:
    """How steps show: `log` lines when the service's logging owns the output, a live `bar`
    when a person watches stderr on a capable terminal, else `off` (nothing extra)."""
    if service_logging:
        return "log"
    if stderr_is_terminal and term != "dumb":
        return "bar"
    return "off"


def current_mode() -> Mode:
    return mode_for(stderr_is_terminal=sys.stderr.isatty(), term=os.environ.get("TERM", ""),
                    service_logging=_logging_configured())


def on_terminal() -> bool:
    """Whether people watch stderr (and no service logger owns it)."""
    return current_mode() == "bar"


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
        self._logs = False  # plain lines for the service's log

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
            elif self._logs and time.monotonic() - self._logged >= LOG_EVERY:
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
    """A long step: a bar and an end line on a terminal, start and end lines in the service's
    log, nothing elsewhere. Set `.summary` to say what it did; the end line gives it with the
    time taken."""
    global _live
    current = Step(title, total, unit)
    shown = current_mode()
    with _lock:
        if shown == "bar":
            if _live is None:
                _live = _progress()
                _live.start()
            current._task = _live.add_task(title, total=total, done=current.text())
        elif shown == "log":
            current._logs = True
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
            if shown != "off":
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
