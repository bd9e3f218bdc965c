"""UCI engine processes driven straight from the event loop: the analysis pool for ``uci:``.

A UCI engine is already its own process, so a worker process in between (as
:class:`workers.analysis.AnalysisPool` runs for the built-in engine) adds a process, a pipe
and a thread per engine for nothing: here python-chess's asyncio API (``popen_uci``,
``analysis``) talks to each engine over its pipes on the loop. The loop only parses the
engine's ``info`` lines (one per completed depth, scores and principal variations only); the
search runs in the engine process, at a lower OS priority (``niceness``) like the workers.

Same interface and reports as the process pool (:class:`workers.analysis.Pool`): each
completed depth goes to ``listener.on_info``, then ``on_done(job, ok)``. An engine that
exits, or that answers nothing for its job's time plus ``hang_grace_s``, is killed and
started again, its job reported failed; an engine that cannot start fails :meth:`start`
with its error, and after start is tried again after a delay that doubles with each failure
in a row (``restart_delay_s`` up to ``max_restart_delay_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass

import chess
import chess.engine

from workers.analysis import Job, PoolListener, _NoListener
from workers.analysis_worker import DepthInfo

log = logging.getLogger(__name__)

# Parsed from each info line: depth, nodes (always), the score and the principal variation.
_INFO = chess.engine.INFO_SCORE | chess.engine.INFO_PV


@dataclass(eq=False, slots=True)
class _Engine:
    transport: asyncio.SubprocessTransport
    protocol: chess.engine.UciProtocol
    name: str
    job: Job | None = None
    analysis: chess.engine.AnalysisResult | None = None
    task: asyncio.Task[None] | None = None


class UciEnginePool:
    """``processes`` UCI engines at ``path`` analysing jobs; reports go to ``listener``."""

    def __init__(
        self,
        path: str,
        processes: int,
        *,
        niceness: int = 10,
        hang_grace_s: float = 5.0,
        restart_delay_s: float = 0.5,
        max_restart_delay_s: float = 30.0,
    ) -> None:
        self._path = path
        self._size = max(1, processes)
        self.listener: PoolListener = _NoListener()
        self._niceness = niceness
        self._hang_grace_s = hang_grace_s
        self._restart_delay_s = restart_delay_s
        self._max_restart_delay_s = max_restart_delay_s
        self._engines: list[_Engine] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._failed_starts = 0
        self._next_id = 0
        self._closed = False
        # Replacements begun (each dead or hung engine counts once).
        self.restarts = 0

    @property
    def size(self) -> int:
        """Number of engine processes."""
        return self._size

    @property
    def engine_name(self) -> str:
        """The engine's name as it reported it ("" before start)."""
        return next((e.name for e in self._engines), "")

    def new_job(self, fen: str, max_time_s: float, max_depth: int) -> Job:
        """A job with a fresh id (not yet submitted)."""
        self._next_id += 1
        return Job(self._next_id, fen, max_time_s, max_depth)

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the engines. Raises RuntimeError (with the engine's error) when one does
        not start within ``timeout_s``; every engine started is stopped by then."""
        try:
            async with asyncio.timeout(timeout_s):
                for _ in range(self._size):
                    self._engines.append(await self._open())
        except (OSError, chess.engine.EngineError, TimeoutError) as exc:
            await self.close()
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise RuntimeError(
                f"analysis engine 'uci:{self._path}' did not start: {reason}"
            ) from exc
        except BaseException:
            await self.close()
            raise
        loop = asyncio.get_running_loop()
        self._watchdog = loop.create_task(self._watch(), name="gm-analysis-watchdog")

    def idle(self) -> int:
        """How many engines have no job."""
        return sum(1 for e in self._engines if e.job is None) if not self._closed else 0

    def running(self) -> list[Job]:
        """The jobs being run now."""
        return [e.job for e in self._engines if e.job is not None]

    def submit(self, job: Job) -> bool:
        """Give ``job`` to an idle engine; False when none is idle."""
        engine = next((e for e in self._engines if e.job is None), None)
        if engine is None or self._closed:
            return False
        job.started_s = time.monotonic()
        engine.job = job
        engine.task = asyncio.get_running_loop().create_task(
            self._run(engine, job), name="gm-analysis-uci-job"
        )
        return True

    def stop(self, job: Job) -> None:
        """Ask the engine running ``job`` to stop it soon (``on_done`` follows)."""
        for engine in self._engines:
            if engine.job is job and job.stop_sent_s is None:
                job.stop_sent_s = time.monotonic()
                if engine.analysis is not None:
                    engine.analysis.stop()
                return

    def pids(self) -> list[int]:
        """The engine processes' ids (for tests and diagnostics)."""
        return [pid for e in self._engines if (pid := e.transport.get_pid()) is not None]

    async def close(self) -> None:
        """Stop every engine (quit, then kill what remains)."""
        self._closed = True
        tasks = [*self._tasks, *(e.task for e in self._engines if e.task is not None)]
        if self._watchdog is not None:
            tasks.append(self._watchdog)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        engines, self._engines = self._engines, []
        for engine in engines:
            with contextlib.suppress(chess.engine.EngineError, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await engine.protocol.quit()
            engine.transport.close()

    # --- internals ---

    async def _open(self) -> _Engine:
        """Start one engine process. Raises OSError or chess.engine.EngineError."""
        transport, protocol = await chess.engine.popen_uci(self._path)
        try:
            pid = transport.get_pid()
            with contextlib.suppress(OSError):
                os.setpriority(
                    os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + self._niceness
                )
            settings: dict[str, int] = {}
            if "Threads" in protocol.options:
                settings["Threads"] = 1
            if "Hash" in protocol.options:
                settings["Hash"] = 64
            if settings:
                await protocol.configure(settings)
        except BaseException:
            transport.close()
            raise
        name = str(protocol.id.get("name", os.path.basename(self._path)))
        return _Engine(transport, protocol, name)

    async def _run(self, engine: _Engine, job: Job) -> None:
        ok = True
        try:
            board = chess.Board(job.fen)
            if not board.is_game_over():
                limit = chess.engine.Limit(depth=job.max_depth, time=job.max_time_s)
                engine.analysis = await engine.protocol.analysis(board, limit, info=_INFO)
                if job.stop_sent_s is not None:
                    engine.analysis.stop()
                last_depth = 0
                async for info in engine.analysis:
                    reported = _depth_info(info, last_depth)
                    if reported is not None:
                        last_depth = job.depth = reported.depth
                        self.listener.on_info(job, reported, engine.name)
        except (chess.engine.EngineError, OSError) as exc:
            log.warning("analysis engine %s failed: %s", engine.transport.get_pid(), exc)
            ok = False
        finally:
            engine.analysis = None
            engine.job = None
        if not ok:
            self._replace(engine)
        self.listener.on_done(job, ok)

    def _replace(self, engine: _Engine) -> None:
        """Drop ``engine`` (ending its process) and start another in its place."""
        if engine not in self._engines or self._closed:
            return
        self._engines.remove(engine)
        engine.transport.close()
        self.restarts += 1
        self._spawn_after(0.0)

    def _spawn_after(self, delay_s: float) -> None:
        task = asyncio.get_running_loop().create_task(
            self._respawn(delay_s), name="gm-analysis-uci-respawn"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _respawn(self, delay_s: float) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        try:
            engine = await self._open()
        except (OSError, chess.engine.EngineError) as exc:
            self._failed_starts += 1
            next_s = min(
                self._max_restart_delay_s, self._restart_delay_s * 2 ** (self._failed_starts - 1)
            )
            log.warning("analysis engine failed to start (%s); next attempt in %.1f s", exc, next_s)
            self._spawn_after(next_s)
            return
        self._failed_starts = 0
        if self._closed:
            engine.transport.close()
            return
        self._engines.append(engine)

    async def _watch(self) -> None:
        """Every half second, check the engines; a failed round is logged, never fatal."""
        while True:
            await asyncio.sleep(0.5)
            try:
                self._check_engines(time.monotonic())
            except Exception:
                log.exception("analysis watchdog: checking the engines failed")

    def _check_engines(self, now_s: float) -> None:
        """Replace engines that exited idle; kill those whose job overran its limit by the
        grace period (the job's task then fails it and replaces the engine)."""
        for engine in list(self._engines):
            job = engine.job
            if job is None:
                if engine.transport.get_returncode() is not None:
                    log.warning("analysis engine %s exited", engine.transport.get_pid())
                    self._replace(engine)
                continue
            limit = job.started_s + job.max_time_s + self._hang_grace_s
            if job.stop_sent_s is not None:
                limit = min(limit, job.stop_sent_s + self._hang_grace_s)
            if now_s > limit:
                log.warning(
                    "analysis engine %s hung on %s; killing it", engine.transport.get_pid(), job.fen
                )
                with contextlib.suppress(ProcessLookupError):
                    engine.transport.kill()


def _depth_info(info: chess.engine.InfoDict, last_depth: int) -> DepthInfo | None:
    """The completed depth an ``info`` line reports, if it is a new, exact one."""
    depth = info.get("depth")
    score = info.get("score")
    pv = info.get("pv")
    if depth is None or score is None or not pv or depth <= last_depth:
        return None
    if "lowerbound" in info or "upperbound" in info:
        return None
    white = score.white()
    moves = tuple(move.uci() for move in pv)
    return DepthInfo(depth, white.score(), white.mate(), moves[0], moves, info.get("nodes", 0))
