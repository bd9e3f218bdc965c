"""The analysis bus protocol: Redis keys, the messages on them, and ordered writes.

Shared by the core's :class:`workers.analysis_bus.BusAnalysisPool` and the remote workers of
:mod:`workers.analysis_remote`. Imported only when a bus is configured (it imports redis).

- Jobs: entries of the stream ``gm:analysis:jobs`` (field ``job``: JSON of a :class:`JobOrder`),
  read by the consumer group ``gm-analysis``; a worker acknowledges (XACK) an entry once its
  result is on the bus, and a pending entry idle for longer than the workers' reclaim time
  (its worker died) is claimed again by another worker (XAUTOCLAIM).
- Results: one stream per core instance, ``gm:analysis:results:<core>`` (field ``report``:
  JSON of a :class:`Report`). A stream rather than pub/sub: a ``done`` lost by an at-most-once
  channel would leave the scheduler waiting for a slot that is free, and a stream keeps every
  report of a job in order across a reconnect of the core's reader.
- Stops: ``PUBLISH gm:analysis:stop <job key>`` reaches every worker at once (a search is cut
  within milliseconds); the key ``gm:analysis:stop:<job key>`` (with a TTL) is the durable
  copy, checked when a job is picked up or claimed again, and by each worker's periodic touch,
  so a stop that a disconnected worker missed still takes effect.
- Liveness: each worker process sets ``gm:analysis:worker:<consumer>`` (a :class:`WorkerAd`,
  short TTL, refreshed) and adds itself to the set ``gm:analysis:workers``; the core sets
  ``gm:analysis:core:<core>`` (short TTL). A worker drops jobs of a core that is gone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from workers.analysis_worker import DepthInfo

log = logging.getLogger(__name__)

JOBS = "gm:analysis:jobs"
GROUP = "gm-analysis"
STOPS = "gm:analysis:stop"
WORKERS = "gm:analysis:workers"
# Acknowledged entries are only history; the stream keeps about this many.
JOBS_MAXLEN = 10_000
RESULTS_MAXLEN = 10_000

ReportKind = Literal["start", "info", "done", "failed"]
REPORT_KINDS: tuple[ReportKind, ...] = ("start", "info", "done", "failed")


def results_key(core: str) -> str:
    """The stream of reports to the core instance ``core``."""
    return f"gm:analysis:results:{core}"


def core_key(core: str) -> str:
    """The liveness key of the core instance ``core``."""
    return f"gm:analysis:core:{core}"


def worker_key(consumer: str) -> str:
    """The liveness key (a :class:`WorkerAd`) of the worker process ``consumer``."""
    return f"gm:analysis:worker:{consumer}"


def stop_key(job_key: str) -> str:
    """Present while the job ``job_key`` is stopped (superseded or given up)."""
    return f"gm:analysis:stop:{job_key}"


@dataclass(frozen=True, slots=True)
class JobOrder:
    """A job as it travels on the bus; ``id`` is the core's :class:`workers.analysis.Job` id."""

    core: str
    id: int
    fen: str
    max_time_s: float
    max_depth: int

    @property
    def key(self) -> str:
        """The job's name on the bus, unique across cores."""
        return f"{self.core}:{self.id}"

    def fields(self) -> dict[str, str]:
        """The stream entry's fields."""
        return {"job": json.dumps([self.core, self.id, self.fen, self.max_time_s, self.max_depth])}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> JobOrder:
        """Parse a stream entry. Raises ValueError when it is not a job."""
        try:
            core, job_id, fen, max_time_s, max_depth = json.loads(fields["job"])
            order = cls(str(core), int(job_id), str(fen), float(max_time_s), int(max_depth))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an analysis job: {fields!r}") from exc
        if not math.isfinite(order.max_time_s) or order.max_time_s <= 0 or order.max_depth < 1:
            raise ValueError(f"bad analysis limits: {fields!r}")
        return order


@dataclass(frozen=True, slots=True)
class Report:
    """What a worker says about a job: ``start`` (it runs it now), ``info`` (a completed
    depth, by ``engine``), ``done`` (ended or dropped) or ``failed`` (its process died).

    ``runner`` is the consumer that sent it: the core trusts only the reports of the job's
    latest ``start`` (a worker that drops a job it picked up sends ``start`` then ``done``).
    """

    kind: ReportKind
    job: int
    runner: str
    info: DepthInfo | None = None
    engine: str = ""

    def fields(self) -> dict[str, str]:
        """The stream entry's fields."""
        body: list[Any] = [self.kind, self.job, self.runner]
        if self.info is not None:
            i = self.info
            body += [self.engine, i.depth, i.cp, i.mate, i.best, list(i.pv), i.nodes]
        return {"report": json.dumps(body)}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Report:
        """Parse a stream entry. Raises ValueError when it is not a report."""
        try:
            body = json.loads(fields["report"])
            kind, job, runner = body[:3]
            if kind not in REPORT_KINDS:
                raise ValueError(kind)
            if kind != "info":
                return cls(kind, int(job), str(runner))
            engine, depth, cp, mate, best, pv, nodes = body[3:]
            info = DepthInfo(int(depth), cp, mate, str(best), tuple(pv), int(nodes))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an analysis report: {fields!r}") from exc
        return cls(kind, int(job), str(runner), info, str(engine))


@dataclass(frozen=True, slots=True)
class WorkerAd:
    """What a worker process advertises: ``slots`` engine processes running ``engine``; it
    claims jobs of dead workers after ``reclaim_s`` of silence."""

    slots: int
    engine: str
    reclaim_s: float

    def encode(self) -> str:
        """The liveness key's value."""
        return json.dumps({"slots": self.slots, "engine": self.engine, "reclaim_s": self.reclaim_s})

    @classmethod
    def decode(cls, text: str) -> WorkerAd:
        """Parse a liveness key's value. Raises ValueError."""
        try:
            data = json.loads(text)
            return cls(int(data["slots"]), str(data["engine"]), float(data["reclaim_s"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a worker advertisement: {text!r}") from exc


def stream_entries(response: Any) -> list[tuple[str, dict[str, str]]]:
    """The ``(id, fields)`` entries of an XREAD/XREADGROUP reply (RESP2, as our clients use)."""
    entries: list[tuple[str, dict[str, str]]] = []
    for _, stream in response or ():
        for entry_id, fields in stream:
            # An entry trimmed from the stream while pending comes back without fields.
            entries.append((entry_id, fields or {}))
    return entries


class BusWriter:
    """Writes to Redis in the order they were put, batched into one pipeline per wake-up.

    The pool and the workers call :meth:`put` from synchronous callbacks (``submit``,
    ``on_info``); :meth:`run` (a task the owner keeps) sends, until :meth:`close`. A batch
    that fails (Redis down) is dropped after calling each write's ``failed`` callback:
    nothing queues without bound while the bus is away, and the callers' timeouts and the
    consumer group's pending entries recover what was lost.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._writes: list[tuple[Callable[[Pipeline], object], Callable[[], None] | None]] = []
        self._wake = asyncio.Event()
        self._last_warning_s = 0.0
        self._closed = False

    def put(
        self, write: Callable[[Pipeline], object], failed: Callable[[], None] | None = None
    ) -> None:
        """Queue ``write`` (it adds commands to a pipeline); ``failed`` runs if it is lost."""
        self._writes.append((write, failed))
        self._wake.set()

    @property
    def pending(self) -> int:
        """Writes not yet sent."""
        return len(self._writes)

    async def run(self) -> None:
        """Send queued writes until :meth:`close`, then what is still queued."""
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    def close(self) -> None:
        """Make :meth:`run` return once it has sent what is queued."""
        self._closed = True
        self._wake.set()

    async def flush(self) -> None:
        """Send what is queued now (logs, never raises a Redis error)."""
        while self._writes:
            batch, self._writes = self._writes, []
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for write, _ in batch:
                        write(pipe)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                now = time.monotonic()
                if now - self._last_warning_s > 10:
                    self._last_warning_s = now
                    log.warning("analysis bus: %d writes lost: %s", len(batch), exc)
                for _, failed in batch:
                    if failed is not None:
                        failed()


async def end_tasks(tasks: list[asyncio.Task[None]], timeout_s: float = 3.0) -> None:
    """Cancel ``tasks`` and wait for them, at most ``timeout_s``.

    The loops of the bus also end on their owner's closing flag: on Python 3.11 a
    cancellation that meets redis-py's own read timeout can come out as a TimeoutError (a
    RedisError the loops survive), so cancelling alone could leave one running.
    """
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)
