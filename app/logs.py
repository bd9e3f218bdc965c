"""Logging that never blocks the event loop: records go through a queue to one thread.

A log call on the loop only puts the record on a queue; a listener thread formats it and
writes it to stderr. A slow or blocked stderr (a full pipe, a stalled terminal, a log
collector that stops reading) then delays the log, never the games.

Records are written as one JSON object per line by python-json-logger (``time`` in ISO
8601 UTC, ``level``, ``logger``, ``message``, and ``exc_info`` with the traceback), or as
plain text lines with ``GM_LOG_FORMAT=text``. uvicorn's line per WebSocket connection is
kept for ``debug``: thousands of spectators must not make thousands of INFO lines.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import threading

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TRACE_LEVEL = 5
# Records waiting for the writer thread; beyond it records are dropped (and counted), so
# a stalled stderr can cost neither memory without bound nor a blocked loop.
MAX_QUEUED = 10_000


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """A QueueHandler that drops a record when the queue is full instead of waiting."""

    dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        """Put without blocking; count what does not fit."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            _DroppingQueueHandler.dropped += 1


def stop_listener(listener: logging.handlers.QueueListener, timeout_s: float = 2.0) -> None:
    """Flush what is queued, but never wait longer than ``timeout_s`` for a stuck stderr."""
    stopper = threading.Thread(target=listener.stop, name="gm-log-flush", daemon=True)
    stopper.start()
    stopper.join(timeout_s)


class QuietConnections(logging.Filter):
    """Demotes uvicorn's INFO line per WebSocket connection to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record, one level down when it is such a line."""
        if (
            record.levelno == logging.INFO
            and record.name == "uvicorn.error"
            and isinstance(record.msg, str)
            and ('"WebSocket %s"' in record.msg or record.msg.startswith("connection "))
        ):
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def install_queue_logging(level: str, log_format: str = "json") -> logging.handlers.QueueListener:
    """Route every logger (uvicorn's included, when its own config is off) through a queue.

    ``log_format`` is ``json`` (one object per line) or ``text``. Returns the started
    listener: ``stop()`` it at exit to flush what is queued.
    """
    # uvicorn's extra level, registered here because its own logging config is off.
    logging.addLevelName(TRACE_LEVEL, "TRACE")
    records: queue.Queue[logging.LogRecord] = queue.Queue(MAX_QUEUED)
    output = logging.StreamHandler()
    output.setFormatter(json_formatter() if log_format == "json" else logging.Formatter(FORMAT))
    listener = logging.handlers.QueueListener(records, output)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    queued = _DroppingQueueHandler(records)
    queued.addFilter(QuietConnections())
    root.addHandler(queued)
    root.setLevel(level.upper())
    listener.start()
    return listener
