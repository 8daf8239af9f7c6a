"""Structured JSON logs: one object per line, with job, slot and run id when known."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from engine.masking import mask

_FIELDS = ("job", "slot", "run_id", "attempt", "worker")


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", job, slot, run_id, ...}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": mask(record.getMessage()),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = mask(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


_installed = False


def mask_records() -> None:
    """Mask secrets in every log record as it is created, whatever handler prints it (the
    JSON lines of `serve`, or Python's last-resort stderr handler under `run`)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            record.msg, record.args = mask(record.getMessage()), ()
        except (TypeError, ValueError):  # a malformed format string: leave it to the handler
            pass
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)


def configure(worker: str, level: int = logging.INFO) -> None:
    """Send marketops logs to stderr as JSON lines tagged with this worker."""

    class _Worker(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.worker = worker
            return True

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_Worker())
    root = logging.getLogger("marketops")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    mask_records()
