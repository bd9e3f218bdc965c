"""The analysis process pool with real worker processes (built-in engine and Stockfish)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator

import pytest

from workers.analysis import AnalysisPool, Job
from workers.analysis_worker import DepthInfo

MATE_IN_ONE = "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1"
# Where Debian puts it (not on a non-root PATH).
DEBIAN_STOCKFISH = "/usr/games/stockfish"


def stockfish_or_skip() -> str:
    """The Stockfish binary: skip the test when it is missing, fail instead on CI.

    ``make test`` installs it; CI (``CI=true``) must have installed it.
    """
    path = shutil.which("stockfish") or shutil.which(DEBIAN_STOCKFISH)
    if path is not None:
        return path
    reason = f"stockfish is neither on PATH nor at {DEBIAN_STOCKFISH}: apt-get install stockfish"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must install it)")
    pytest.skip(reason)


class Recorder:
    """Collects what the pool reports."""

    def __init__(self) -> None:
        self.infos: list[tuple[int, DepthInfo, str]] = []
        self.done: dict[int, bool] = {}
        self.changed = asyncio.Event()

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        self.infos.append((job.id, info, engine))
        self.changed.set()

    def on_done(self, job: Job, ok: bool) -> None:
        self.done[job.id] = ok
        self.changed.set()

    async def wait_for(self, predicate, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        """Wait (bounded) until ``predicate()`` holds, re-checking on reports and every 20 ms."""
        async with asyncio.timeout(timeout_s):
            while not predicate():
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.02)


async def started_pool(engine: str) -> tuple[AnalysisPool, Recorder]:
    """A one-process pool with a recorder attached."""
    pool = AnalysisPool(engine, 1, hang_grace_s=3.0)
    recorder = Recorder()
    pool.listener = recorder
    await pool.start()
    return pool, recorder


@pytest.fixture
async def builtin() -> AsyncIterator[tuple[AnalysisPool, Recorder]]:
    """A pool running the built-in engine."""
    pool, recorder = await started_pool("builtin")
    yield pool, recorder
    await pool.close()


async def test_job_reports_each_depth_then_done(builtin: tuple[AnalysisPool, Recorder]) -> None:
    """A mate-in-one job reports increasing depths with the mate, then completes."""
    pool, recorder = builtin
    job = pool.new_job(MATE_IN_ONE, max_time_s=10, max_depth=6)
    assert pool.submit(job)
    assert not pool.submit(pool.new_job(MATE_IN_ONE, 10, 6))
    await recorder.wait_for(lambda: job.id in recorder.done)
    depths = [info.depth for jid, info, _ in recorder.infos if jid == job.id]
    assert depths == sorted(depths)
    assert depths
    last = recorder.infos[-1][1]
    assert (last.mate, last.best) == (1, "a1a8")
    assert recorder.infos[-1][2] == "grandmaster-pvs"
    assert recorder.done[job.id] is True
    assert pool.idle() == 1


async def test_stop_ends_a_long_job(builtin: tuple[AnalysisPool, Recorder]) -> None:
    """A job asked to stop ends long before its time limit and frees the worker."""
    pool, recorder = builtin
    job = pool.new_job("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3", 600, 64)
    assert pool.submit(job)
    await recorder.wait_for(lambda: any(jid == job.id for jid, _, _ in recorder.infos))
    pool.stop(job)
    await recorder.wait_for(lambda: job.id in recorder.done, timeout_s=10)
    assert recorder.done[job.id] is True
    assert pool.idle() == 1


async def test_killed_worker_is_replaced_and_its_job_failed(
    builtin: tuple[AnalysisPool, Recorder],
) -> None:
    """SIGKILL of a busy worker reports the job as failed; a new worker runs the next job."""
    pool, recorder = builtin
    job = pool.new_job(chess_start(), 600, 64)
    assert pool.submit(job)
    await recorder.wait_for(lambda: any(jid == job.id for jid, _, _ in recorder.infos))
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    await recorder.wait_for(lambda: job.id in recorder.done)
    assert recorder.done[job.id] is False
    assert pool.restarts == 1
    await recorder.wait_for(lambda: pool.idle() == 1)
    assert pool.pids() != [pid]
    again = pool.new_job(MATE_IN_ONE, 10, 4)
    assert pool.submit(again)
    await recorder.wait_for(lambda: again.id in recorder.done)
    assert recorder.done[again.id] is True


async def test_stockfish_backend_reports_through_the_same_events() -> None:
    """With a UCI engine (Stockfish), jobs report depths and mates like the built-in engine."""
    pool, recorder = await started_pool(f"uci:{stockfish_or_skip()}")
    try:
        job = pool.new_job(MATE_IN_ONE, 10, 8)
        assert pool.submit(job)
        await recorder.wait_for(lambda: job.id in recorder.done)
        infos = [info for jid, info, _ in recorder.infos if jid == job.id]
        assert infos
        assert infos[-1].mate == 1
        assert infos[-1].best == "a1a8"
        assert recorder.infos[-1][2].startswith("Stockfish")
        long_job = pool.new_job(chess_start(), 600, 99)
        assert pool.submit(long_job)
        await recorder.wait_for(lambda: any(jid == long_job.id for jid, _, _ in recorder.infos))
        pool.stop(long_job)
        await recorder.wait_for(lambda: long_job.id in recorder.done, timeout_s=10)
        assert recorder.done[long_job.id] is True
    finally:
        await pool.close()


def chess_start() -> str:
    """The standard start position."""
    return "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
