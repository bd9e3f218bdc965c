"""The analysis process pool, as seen from the event loop.

One process per core (by default) runs :func:`workers.analysis_worker.worker_main` at a
lower OS priority, so the event loop always gets the CPU first. Each worker has its own
pipe, watched with ``loop.add_reader``: depth reports reach the loop as they are written,
without a thread in between. The pool only runs jobs and reports; which position to
analyse, and for how long, is the caller's policy.

A worker that dies is replaced and its job reported as failed (the caller may retry).
A worker that stops answering (no report within the job's time limit plus a grace
period) is killed and treated the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from workers.analysis_worker import DepthInfo, worker_main

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Job:
    """A position to analyse; ``id`` is unique within the pool's life."""

    id: int
    fen: str
    max_time_s: float
    max_depth: int
    started_s: float = 0.0
    depth: int = 0
    stop_sent_s: float | None = None


@dataclass(eq=False, slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection
    engine: str = ""
    ready: bool = False
    job: Job | None = None
    last_message_s: float = field(default_factory=time.monotonic)


class PoolListener(Protocol):
    """Receives the pool's reports, on the event loop."""

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        """A completed depth of ``job``, computed by ``engine``."""

    def on_done(self, job: Job, ok: bool) -> None:
        """``job`` ended; ``ok`` is False when its worker died or hung."""


class Pool(Protocol):
    """What the scheduler (:class:`app.analysis.AnalysisService`) needs of a pool.

    Two implementations: :class:`AnalysisPool` (local processes, the embedded default) and
    :class:`workers.analysis_bus.BusAnalysisPool` (remote workers over Redis).
    """

    listener: PoolListener

    @property
    def size(self) -> int:
        """How many jobs can run at once."""

    @property
    def engine_name(self) -> str:
        """The engine's name, "" until known."""

    def new_job(self, fen: str, max_time_s: float, max_depth: int) -> Job:
        """A job with a fresh id (not yet submitted)."""

    async def start(self, timeout_s: float = 60.0) -> None:
        """Get ready to take jobs."""

    def idle(self) -> int:
        """How many more jobs :meth:`submit` would take now."""

    def running(self) -> list[Job]:
        """Submitted jobs that have not ended."""

    def submit(self, job: Job) -> bool:
        """Start ``job``; False when no capacity is free."""

    def stop(self, job: Job) -> None:
        """Ask for ``job`` to end soon (``on_done`` follows)."""

    async def close(self) -> None:
        """Stop everything."""


class _NoListener:
    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        pass

    def on_done(self, job: Job, ok: bool) -> None:
        pass


class AnalysisPool:
    """Worker processes running analysis jobs; reports go to ``listener`` (set it first)."""

    def __init__(
        self,
        engine_spec: str,
        processes: int,
        *,
        niceness: int = 10,
        hang_grace_s: float = 5.0,
    ) -> None:
        self._engine_spec = engine_spec
        self._size = max(1, processes)
        self.listener: PoolListener = _NoListener()
        self._niceness = niceness
        self._hang_grace_s = hang_grace_s
        self._ctx = multiprocessing.get_context("forkserver")
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._next_id = 0
        self._closed = False
        self.restarts = 0

    @property
    def size(self) -> int:
        """Number of worker processes."""
        return self._size

    @property
    def engine_name(self) -> str:
        """The engine's name as the first ready worker reported it."""
        return next((w.engine for w in self._workers if w.ready), "")

    def new_job(self, fen: str, max_time_s: float, max_depth: int) -> Job:
        """A job with a fresh id (not yet submitted)."""
        self._next_id += 1
        return Job(self._next_id, fen, max_time_s, max_depth)

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the workers and wait until each reported ready. Raises RuntimeError."""
        self._loop = asyncio.get_running_loop()
        self._ctx.set_forkserver_preload(["workers.analysis_worker"])
        for _ in range(self._size):
            self._workers.append(self._spawn())
        deadline = time.monotonic() + timeout_s
        while not all(w.ready for w in self._workers):
            if time.monotonic() > deadline:
                raise RuntimeError("analysis workers did not start")
            await asyncio.sleep(0.02)
        self._watchdog = self._loop.create_task(self._watch(), name="gm-analysis-watchdog")

    def idle(self) -> int:
        """How many ready workers have no job."""
        return sum(1 for w in self._workers if w.ready and w.job is None)

    def running(self) -> list[Job]:
        """The jobs being run now."""
        return [w.job for w in self._workers if w.job is not None]

    def submit(self, job: Job) -> bool:
        """Give ``job`` to an idle worker; False when none is idle."""
        for worker in self._workers:
            if worker.ready and worker.job is None:
                job.started_s = time.monotonic()
                worker.job = job
                worker.last_message_s = job.started_s
                try:
                    worker.conn.send(("go", job.id, job.fen, job.max_time_s, job.max_depth))
                except OSError:
                    self._replace(worker)
                    return False
                return True
        return False

    def stop(self, job: Job) -> None:
        """Ask the worker running ``job`` to stop it soon (``on_done`` follows)."""
        for worker in self._workers:
            if worker.job is job and job.stop_sent_s is None:
                job.stop_sent_s = time.monotonic()
                try:
                    worker.conn.send(("stop", job.id))
                except OSError:
                    self._replace(worker)
                return

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and diagnostics)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    async def close(self) -> None:
        """Stop every worker (quit, then terminate what remains)."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for worker in self._workers:
            self._detach(worker)
            with contextlib.suppress(OSError):
                worker.conn.send(("quit",))
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 3
        for worker in self._workers:
            remaining = max(0.0, deadline - time.monotonic())
            await loop.run_in_executor(None, worker.process.join, remaining)
            if worker.process.is_alive():
                worker.process.kill()
                await loop.run_in_executor(None, worker.process.join, 1.0)
            worker.conn.close()
        self._workers.clear()

    # --- internals ---

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=worker_main,
            args=(child, self._engine_spec, self._niceness),
            name="gm-analysis",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        assert self._loop is not None
        self._loop.add_reader(parent.fileno(), self._on_readable, worker)
        return worker

    def _detach(self, worker: _Worker) -> None:
        if self._loop is not None:
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(worker.conn.fileno())

    def _on_readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            if not self._closed:
                log.warning("analysis worker %s died", worker.process.pid)
                self._replace(worker)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        worker.last_message_s = time.monotonic()
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            worker.engine = message[1]
            return
        job = worker.job
        if job is None or message[1] != job.id:
            return
        if kind == "info":
            _, _, depth, cp, mate, best, pv, nodes = message
            job.depth = depth
            self.listener.on_info(
                job, DepthInfo(depth, cp, mate, best, tuple(pv), nodes), worker.engine
            )
        elif kind == "error":
            log.warning("analysis of %s failed: %s", job.fen, message[2])
        elif kind == "done":
            worker.job = None
            self.listener.on_done(job, True)

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker``, start another in its place, and fail its job."""
        self._detach(worker)
        if worker.process.is_alive():
            worker.process.kill()
        if self._loop is not None:
            # Reap it off the loop: waiting for even a killed process is a blocking call.
            self._loop.run_in_executor(None, worker.process.join, 5.0)
        worker.conn.close()
        job = worker.job
        worker.job = None
        if worker in self._workers and not self._closed:
            self._workers[self._workers.index(worker)] = self._spawn()
            self.restarts += 1
        if job is not None:
            self.listener.on_done(job, False)

    async def _watch(self) -> None:
        """Kill workers whose job overran its limit by the grace period without a word."""
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for worker in list(self._workers):
                job = worker.job
                if job is None:
                    if not worker.process.is_alive() and worker.ready:
                        self._replace(worker)
                    continue
                limit = job.started_s + job.max_time_s + self._hang_grace_s
                if job.stop_sent_s is not None:
                    limit = min(limit, job.stop_sent_s + self._hang_grace_s)
                if now > limit:
                    log.warning(
                        "analysis worker %s hung on %s; replacing it", worker.process.pid, job.fen
                    )
                    self._replace(worker)


if __name__ == "__main__":
    # ``python -m workers.analysis --bus redis://...``: remote workers (see that module). The
    # worker code lives there so that this module stays the local pool; imported lazily, so
    # the embedded server never imports redis.
    from workers.analysis_remote import main

    raise SystemExit(main())
