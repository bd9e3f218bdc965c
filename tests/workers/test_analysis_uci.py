"""UCI engines driven from the event loop, with a real Stockfish (and real failing engines)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.workers.test_analysis_pool import (
    MATE_IN_ONE,
    Recorder,
    chess_start,
    engine_script,
    is_running,
    stockfish_or_skip,
    wait_until,
)
from workers.analysis_uci import UciEnginePool


async def started(path: str, processes: int = 1, **options: float) -> UciEnginePool:
    """A started pool with a :class:`Recorder` as its listener."""
    pool = UciEnginePool(path, processes, **options)  # type: ignore[arg-type]
    pool.listener = Recorder()
    await pool.start()
    return pool


def recorder(pool: UciEnginePool) -> Recorder:
    """The pool's listener."""
    assert isinstance(pool.listener, Recorder)
    return pool.listener


@pytest.fixture
async def stockfish() -> AsyncIterator[UciEnginePool]:
    """One Stockfish process (3 s hang grace)."""
    pool = await started(stockfish_or_skip(), hang_grace_s=3.0)
    yield pool
    await pool.close()


async def test_job_reports_each_depth_then_done(stockfish: UciEnginePool) -> None:
    """A mate-in-one job reports increasing depths ending with the mate, then completes."""
    pool, rec = stockfish, recorder(stockfish)
    job = pool.new_job(MATE_IN_ONE, 10, 8)
    assert pool.submit(job)
    assert not pool.submit(pool.new_job(MATE_IN_ONE, 10, 8))
    await rec.wait_for(lambda: job.id in rec.done)
    depths = [info.depth for jid, info, _ in rec.infos if jid == job.id]
    assert depths and depths == sorted(set(depths))
    last = rec.infos[-1][1]
    assert (last.mate, last.best) == (1, "a1a8")
    assert rec.infos[-1][2].startswith("Stockfish")
    assert rec.done[job.id] is True
    assert pool.idle() == 1
    # The engine searches at a lower priority than the event loop.
    [pid] = pool.pids()
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)


async def test_stop_ends_a_long_job(stockfish: UciEnginePool) -> None:
    """A job asked to stop ends long before its limits and frees the engine."""
    pool, rec = stockfish, recorder(stockfish)
    job = pool.new_job(chess_start(), 600, 99)
    assert pool.submit(job)
    await rec.wait_for(lambda: any(jid == job.id for jid, _, _ in rec.infos))
    pool.stop(job)
    await rec.wait_for(lambda: job.id in rec.done, timeout_s=10)
    assert rec.done[job.id] is True
    assert pool.idle() == 1


async def test_a_job_stopped_before_it_started_ends(stockfish: UciEnginePool) -> None:
    """A stop sent right after submit (before the engine searched) still ends the job."""
    pool, rec = stockfish, recorder(stockfish)
    job = pool.new_job(chess_start(), 600, 99)
    assert pool.submit(job)
    pool.stop(job)
    await rec.wait_for(lambda: job.id in rec.done, timeout_s=10)
    assert rec.done[job.id] is True


async def test_a_killed_engine_is_replaced_and_its_job_failed(stockfish: UciEnginePool) -> None:
    """SIGKILL of a busy engine fails its job; a new engine runs the next one."""
    pool, rec = stockfish, recorder(stockfish)
    job = pool.new_job(chess_start(), 600, 99)
    assert pool.submit(job)
    await rec.wait_for(lambda: any(jid == job.id for jid, _, _ in rec.infos))
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    await rec.wait_for(lambda: job.id in rec.done)
    assert rec.done[job.id] is False
    await rec.wait_for(lambda: pool.idle() == 1)
    assert pool.restarts == 1
    assert pool.pids() != [pid]
    again = pool.new_job(MATE_IN_ONE, 10, 4)
    assert pool.submit(again)
    await rec.wait_for(lambda: again.id in rec.done)
    assert rec.done[again.id] is True


async def test_a_hung_engine_is_killed_and_replaced(stockfish: UciEnginePool) -> None:
    """An engine that stops answering (SIGSTOP) is killed after its job's limit and grace."""
    pool, rec = stockfish, recorder(stockfish)
    job = pool.new_job(chess_start(), 1.0, 99)
    assert pool.submit(job)
    await rec.wait_for(lambda: any(jid == job.id for jid, _, _ in rec.infos))
    [pid] = pool.pids()
    os.kill(pid, signal.SIGSTOP)
    try:
        await rec.wait_for(lambda: job.id in rec.done)
        assert rec.done[job.id] is False
        await rec.wait_for(lambda: pool.idle() == 1)
        assert pool.pids() != [pid]
        assert not is_running(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_an_engine_that_cannot_start_fails_the_start_with_its_reason(
    tmp_path: Path,
) -> None:
    """A bad path fails ``start()`` at once with the error; nothing is left running."""
    pool = UciEnginePool(str(tmp_path / "no-such-engine"), 2)
    with pytest.raises(RuntimeError, match="no-such-engine"):
        await pool.start(timeout_s=20)
    assert pool.pids() == []
    assert pool.restarts == 0


async def test_a_start_that_times_out_leaves_no_engine_behind(tmp_path: Path) -> None:
    """An engine that never answers ``uci`` fails ``start()`` and is ended."""
    pid_file = tmp_path / "pid"
    spec = engine_script(
        tmp_path / "mute-engine",
        f"echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}\n"
        "trap '' TERM\nwhile read -r line; do :; done\n",
    )
    pool = UciEnginePool(spec.removeprefix("uci:"), 1)
    with pytest.raises(RuntimeError, match="did not start"):
        await pool.start(timeout_s=3)
    await wait_until(pid_file.exists)
    engine_pid = int(pid_file.read_text())
    await wait_until(lambda: not is_running(engine_pid), timeout_s=10)


async def test_an_engine_that_breaks_is_restarted_with_growing_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the engine fails to start, attempts back off (0.2, 0.4, 0.8 s); then it recovers."""
    broken = tmp_path / "broken"
    spec = engine_script(
        tmp_path / "engine",
        f"if [ -e {broken} ]; then exit 1; fi\nexec {stockfish_or_skip()}\n",
    )
    caplog.set_level(logging.WARNING, logger="workers.analysis_uci")
    pool = await started(spec.removeprefix("uci:"), restart_delay_s=0.2)
    try:
        broken.touch()
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)

        def delays() -> list[float]:
            return [
                r.args[1]  # type: ignore[index]
                for r in caplog.records
                if r.msg.startswith("analysis engine failed to start")
            ]

        await wait_until(lambda: len(delays()) >= 3)
        assert delays()[:3] == [0.2, 0.4, 0.8]
        broken.unlink()
        await wait_until(lambda: pool.idle() == 1)
        job = pool.new_job(MATE_IN_ONE, 10, 4)
        assert pool.submit(job)
        await recorder(pool).wait_for(lambda: job.id in recorder(pool).done)
    finally:
        await pool.close()
