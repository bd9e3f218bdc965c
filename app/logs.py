"""Logging that never blocks the event loop: records go through a queue to one thread.

A log call on the loop only puts the record on a queue; a listener thread formats it and
writes it to stderr. A slow or blocked stderr (a full pipe, a stalled terminal, a log
collector that stops reading) then delays the log, never the games.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def install_queue_logging(level: str) -> logging.handlers.QueueListener:
    """Route every logger (uvicorn's included, when its own config is off) through a queue.

    Returns the started listener: ``stop()`` it at exit to flush what is queued.
    """
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    output = logging.StreamHandler()
    output.setFormatter(logging.Formatter(FORMAT))
    listener = logging.handlers.QueueListener(records, output)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level.upper())
    listener.start()
    return listener
