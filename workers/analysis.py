"""The analysis process pool, as seen from the event loop.

One process per core (by default) runs :func:`workers.analysis_worker.worker_main` at a
lower OS priority, so the event loop always gets the CPU first. Each worker has its own
pipe, watched with ``loop.add_reader``: depth reports reach the loop as they are written,
without a thread in between. The pool only runs jobs and reports; which position to
analyse, and for how long, is the caller's policy.

A worker that dies is replaced and its job reported as failed (the caller may retry).
A worker that stops answering (no report within the job's time limit plus a grace
period) is killed and treated the same way.

Worker processes are started and reaped off the event loop (starting one is a round trip
to the forkserver, which the loop must not wait for). An engine that cannot start (a bad
``uci:`` path) fails :meth:`AnalysisPool.start` at once with its error; after start, a
worker whose engine fails to start is started again after a delay that doubles with each
failure in a row (``restart_delay_s`` up to ``max_restart_delay_s``), never in a tight loop.
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
    # Why its engine did not start, as the worker reported it (or that it exited).
    failure: str | None = None
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


class NoListener:
    """A listener that ignores every report (a pool's until one is set, and after its
    service closed)."""

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        """Ignore a completed depth."""

    def on_done(self, job: Job, ok: bool) -> None:
        """Ignore a job's end."""


class AnalysisPool:
    """Worker processes running analysis jobs; reports go to ``listener`` (set it first)."""

    def __init__(
        self,
        engine_spec: str,
        processes: int,
        *,
        niceness: int = 10,
        hang_grace_s: float = 5.0,
        restart_delay_s: float = 0.5,
        max_restart_delay_s: float = 30.0,
    ) -> None:
        """``restart_delay_s``: the wait before starting again a worker whose engine failed
        to start, doubled for each such failure in a row up to ``max_restart_delay_s``."""
        self._engine_spec = engine_spec
        self._size = max(1, processes)
        self.listener: PoolListener = NoListener()
        self._niceness = niceness
        self._hang_grace_s = hang_grace_s
        self._restart_delay_s = restart_delay_s
        self._max_restart_delay_s = max_restart_delay_s
        self._ctx = multiprocessing.get_context("forkserver")
        self._workers: list[_Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # Replacements being started, and joins of killed workers (both off the loop).
        self._respawns: set[asyncio.Task[None]] = set()
        self._reapers: set[asyncio.Future[None]] = set()
        self._failed_starts = 0
        self._next_id = 0
        self._started = False
        self._closed = False
        # Replacements begun (each dead or hung worker counts once).
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
        """Start the workers and wait until each reported ready.

        Raises RuntimeError, with the engine's error when a worker reported one, if a
        worker exits first or ``timeout_s`` passes; every worker is stopped by then.
        """
        self._loop = asyncio.get_running_loop()
        self._ctx.set_forkserver_preload(["workers.analysis_worker"])
        try:
            for _ in range(self._size):
                self._workers.append(await self._spawn())
            deadline = time.monotonic() + timeout_s
            while not all(w.ready for w in self._workers):
                failed = next((w for w in self._workers if w.failure is not None), None)
                if failed is not None:
                    raise RuntimeError(
                        f"analysis engine {self._engine_spec!r} did not start: {failed.failure}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"analysis engine {self._engine_spec!r} did not start within "
                        f"{timeout_s:g} s"
                    )
                await asyncio.sleep(0.02)
        except BaseException:
            # Nothing started may outlive a failed start (the caller has no pool to close).
            await self.close()
            raise
        self._started = True
        self._watchdog = self._loop.create_task(self._watch(), name="gm-analysis-watchdog")
        self._watchdog.add_done_callback(self._on_watchdog_end)

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
        respawns = list(self._respawns)
        for task in respawns:
            task.cancel()
        await asyncio.gather(*respawns, return_exceptions=True)
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
        if self._reapers:
            await asyncio.wait(list(self._reapers), timeout=6)

    # --- internals ---

    def _launch(self) -> tuple[BaseProcess, Connection]:
        """Start one worker process (blocking: run it in an executor)."""
        parent, child = self._ctx.Pipe(duplex=True)
        try:
            process = self._ctx.Process(
                target=worker_main,
                args=(child, self._engine_spec, self._niceness),
                name="gm-analysis",
                daemon=True,
            )
            process.start()
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        return process, parent

    async def _spawn(self) -> _Worker:
        """A new worker, started off the loop and watched by the loop. Raises OSError."""
        assert self._loop is not None
        launched = self._loop.run_in_executor(None, self._launch)
        try:
            process, conn = await asyncio.shield(launched)
        except asyncio.CancelledError:
            # The process starts anyway; whoever cancelled (close) will not see it.
            launched.add_done_callback(self._discard_launched)
            raise
        worker = _Worker(process, conn)
        self._loop.add_reader(conn.fileno(), self._on_readable, worker)
        return worker

    def _discard_launched(self, launched: asyncio.Future[tuple[BaseProcess, Connection]]) -> None:
        if launched.cancelled() or launched.exception() is not None:
            return
        process, conn = launched.result()
        conn.close()
        self._kill(process)

    def _kill(self, process: BaseProcess) -> None:
        """Kill ``process`` and reap it off the loop (even a killed process's join blocks)."""
        if process.is_alive():
            process.kill()
        if self._loop is not None:
            reaper = self._loop.run_in_executor(None, process.join, 5.0)
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)

    def _detach(self, worker: _Worker) -> None:
        if self._loop is not None:
            with contextlib.suppress(OSError, ValueError):
                self._loop.remove_reader(worker.conn.fileno())

    def _on_readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            if self._closed:
                return
            if not self._started:
                # start() reports it; replacing it would only fail again.
                self._detach(worker)
                worker.failure = worker.failure or "the worker exited"
                return
            log.warning("analysis worker %s died", worker.process.pid)
            self._replace(worker)

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        worker.last_message_s = time.monotonic()
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            worker.engine = message[1]
            self._failed_starts = 0
            return
        if kind == "failed":
            worker.failure = message[1]
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
        self._kill(worker.process)
        worker.conn.close()
        job = worker.job
        worker.job = None
        if worker in self._workers and not self._closed:
            self._workers.remove(worker)
            delay_s = 0.0
            if not worker.ready:
                self._failed_starts += 1
                delay_s = min(
                    self._max_restart_delay_s,
                    self._restart_delay_s * 2 ** (self._failed_starts - 1),
                )
                log.warning(
                    "analysis engine failed to start (%s); next attempt in %.1f s",
                    worker.failure or "the worker exited",
                    delay_s,
                )
            self.restarts += 1
            self._respawn_after(delay_s)
        if job is not None:
            self.listener.on_done(job, False)

    def _respawn_after(self, delay_s: float) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._respawn(delay_s), name="gm-analysis-respawn")
        self._respawns.add(task)
        task.add_done_callback(self._respawns.discard)

    async def _respawn(self, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if self._closed:
            return
        try:
            worker = await self._spawn()
        except Exception as exc:
            # Any failure (too many open files, a dead forkserver's EOFError) leaves the slot
            # empty: try again later, never give it up, never wait unboundedly.
            if self._closed:
                return
            next_s = min(self._max_restart_delay_s, max(delay_s * 2, self._restart_delay_s))
            log.error(
                "could not start an analysis worker (%s: %s); next attempt in %.2f s",
                type(exc).__name__,
                exc,
                next_s,
            )
            self._respawn_after(next_s)
            return
        if self._closed:
            self._detach(worker)
            worker.conn.close()
            self._kill(worker.process)
            return
        self._workers.append(worker)

    async def _watch(self) -> None:
        """Every half second, check the workers; a failed round is logged, never fatal."""
        while True:
            await asyncio.sleep(0.5)
            try:
                self._check_workers(time.monotonic())
            except Exception:
                log.exception("analysis watchdog: checking the workers failed")

    def _check_workers(self, now_s: float) -> None:
        """Replace workers that died idle, and kill those whose job overran its limit by the
        grace period without a word."""
        for worker in list(self._workers):
            job = worker.job
            if job is None:
                if not worker.process.is_alive() and worker.ready:
                    self._replace(worker)
                continue
            limit = job.started_s + job.max_time_s + self._hang_grace_s
            if job.stop_sent_s is not None:
                limit = min(limit, job.stop_sent_s + self._hang_grace_s)
            if now_s > limit:
                log.warning(
                    "analysis worker %s hung on %s; replacing it", worker.process.pid, job.fen
                )
                self._replace(worker)

    def _on_watchdog_end(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the analysis watchdog ended", exc_info=task.exception())


if __name__ == "__main__":
    # ``python -m workers.analysis --bus redis://...``: remote workers (see that module). The
    # worker code lives there so that this module stays the local pool; imported lazily, so
    # the embedded server never imports redis.
    from workers.analysis_remote import main

    raise SystemExit(main())
