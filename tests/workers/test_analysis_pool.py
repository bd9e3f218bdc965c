"""The analysis process pool with real worker processes (built-in engine and Stockfish)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing.context
import os
import shutil
import signal
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

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


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait (bounded) until ``predicate()`` holds, re-checking every 20 ms."""
    never = asyncio.Event()
    async with asyncio.timeout(timeout_s):
        while not predicate():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(never.wait(), 0.02)


def is_running(pid: int) -> bool:
    """Whether process ``pid`` exists and is neither a zombie nor dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def engine_script(path: Path, body: str) -> str:
    """An executable shell script at ``path`` (a stand-in UCI engine); its ``uci:`` spec."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return f"uci:{path}"


async def test_an_engine_that_cannot_start_fails_the_start_with_its_reason(
    tmp_path: Path,
) -> None:
    """A bad ``uci:`` path fails ``start()`` with the engine's error, without respawning."""
    pool = AnalysisPool(f"uci:{tmp_path / 'no-such-engine'}", 2)
    with pytest.raises(RuntimeError, match="no-such-engine"):
        await pool.start(timeout_s=20)
    assert pool.restarts == 0
    assert pool.pids() == []
    await pool.close()


async def test_a_failed_start_leaves_no_worker_behind(tmp_path: Path) -> None:
    """When the engine never answers, ``start()`` fails and its worker and engine are gone."""
    pid_file = tmp_path / "pids"
    # Never answers ``uci``; ends on end of input, as engines do.
    spec = engine_script(
        tmp_path / "mute-engine",
        f'echo "$PPID $$" > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}\n'
        "while read -r line; do :; done\n",
    )
    pool = AnalysisPool(spec, 1)
    starting = asyncio.get_running_loop().create_task(pool.start(timeout_s=6))
    await wait_until(lambda: pid_file.exists() or starting.done())
    with pytest.raises(RuntimeError, match="did not start"):
        await starting
    worker_pid, engine_pid = map(int, pid_file.read_text().split())
    assert not is_running(worker_pid)
    await wait_until(lambda: not is_running(engine_pid), timeout_s=10)
    assert pool.pids() == []


async def test_workers_are_started_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a worker process (at start and to replace a dead one) never blocks the loop."""
    starters: list[int] = []
    original = multiprocessing.context.ForkServerProcess.start

    def start(process: multiprocessing.context.ForkServerProcess) -> None:
        starters.append(threading.get_ident())
        original(process)

    monkeypatch.setattr(multiprocessing.context.ForkServerProcess, "start", start)
    pool, recorder = await started_pool("builtin")
    try:
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)
        await recorder.wait_for(lambda: pool.restarts == 1 and pool.idle() == 1)
        assert len(starters) == 2
        assert threading.get_ident() not in starters
    finally:
        await pool.close()


async def test_an_engine_that_breaks_is_restarted_with_growing_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the engine fails to start, attempts back off (0.2, 0.4, 0.8 s); then it recovers."""
    broken = tmp_path / "broken"
    spec = engine_script(
        tmp_path / "engine",
        f'if [ -e {broken} ]; then echo "engine broken" >&2; exit 1; fi\n'
        f'exec {stockfish_or_skip()} "$@"\n',
    )
    pool = AnalysisPool(spec, 1, restart_delay_s=0.2)
    pool.listener = Recorder()
    caplog.set_level(logging.WARNING, logger="workers.analysis")
    await pool.start()
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
        await pool.listener.wait_for(lambda: job.id in pool.listener.done)  # type: ignore[attr-defined]
    finally:
        await pool.close()


async def test_the_watchdog_outlives_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After one failed round the watchdog goes on: a hung (SIGSTOPped) worker is replaced."""
    pool, recorder = await started_pool("builtin")
    original = pool._check_workers
    calls = 0

    def failing_once(now_s: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("injected")
        original(now_s)

    monkeypatch.setattr(pool, "_check_workers", failing_once)
    caplog.set_level(logging.ERROR, logger="workers.analysis")
    try:
        await wait_until(lambda: calls >= 1)
        job = pool.new_job(chess_start(), 1.0, 64)
        assert pool.submit(job)
        await recorder.wait_for(lambda: any(jid == job.id for jid, _, _ in recorder.infos))
        [pid] = pool.pids()
        os.kill(pid, signal.SIGSTOP)
        await recorder.wait_for(lambda: job.id in recorder.done)
        assert recorder.done[job.id] is False
        assert any("injected" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
        await recorder.wait_for(lambda: pool.idle() == 1)
        assert pool.pids() != [pid]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        await pool.close()


async def test_the_unfinished_depth_a_stopped_engine_reports_is_not_passed_on(
    tmp_path: Path,
) -> None:
    """Stopped mid-iteration, Stockfish prints one more ``info depth`` with a pv and no bound
    for the depth it did not finish: a stand-in engine doing the same has it dropped, so only
    the depths completed before the stop are reported."""
    spec = engine_script(
        tmp_path / "engine",
        "while read -r line; do\n"
        '  case "$line" in\n'
        '    uci) echo "id name Stand-in"; echo "uciok" ;;\n'
        '    isready) echo "readyok" ;;\n'
        "    go*) for d in 1 2 3; do\n"
        '        echo "info depth $d score cp $d nodes ${d}00 pv e2e4 e7e5"; done ;;\n'
        '    stop) echo "info depth 4 score cp 40 nodes 450 pv d2d4 d7d5"\n'
        '        echo "bestmove d2d4" ;;\n'
        "    quit) exit 0 ;;\n"
        "  esac\n"
        "done\n",
    )
    pool, recorder = await started_pool(spec)
    try:
        job = pool.new_job(chess_start(), 30.0, 20)
        assert pool.submit(job)
        await recorder.wait_for(lambda: len(recorder.infos) == 3)
        pool.stop(job)
        await recorder.wait_for(lambda: job.id in recorder.done)
        assert recorder.done[job.id] is True
        assert [info.depth for _, info, _ in recorder.infos] == [1, 2, 3]
        assert job.depth == 3
    finally:
        await pool.close()


async def test_failing_respawns_back_off_up_to_the_limit_and_the_slot_is_refilled(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When starting a replacement worker raises (a broken forkserver's EOFError, too many
    open files), attempts go on with delays doubling up to ``max_restart_delay_s``, and the
    slot is filled once a start succeeds; after ``close()`` no attempt is scheduled."""
    pool = AnalysisPool("builtin", 1, restart_delay_s=0.01, max_restart_delay_s=0.04)
    recorder = Recorder()
    pool.listener = recorder
    await pool.start()
    real_spawn = pool._spawn
    failures: list[BaseException] = [EOFError()] + [OSError(24, "Too many open files")] * 6

    async def spawn():  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop(0)
        return await real_spawn()

    monkeypatch.setattr(pool, "_spawn", spawn)
    caplog.set_level(logging.ERROR, logger="workers.analysis")
    try:
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: pool.restarts == 1 and pool.idle() == 1)
        assert not failures
        delays = [
            r.args[-1]  # type: ignore[index]
            for r in caplog.records
            if r.msg.startswith("could not start an analysis worker")
        ]
        assert delays == [0.01, 0.02, 0.04, 0.04, 0.04, 0.04, 0.04]
        failures.extend([OSError(24, "Too many open files")] * 1000)
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: len(failures) < 998)
    finally:
        await pool.close()
    await asyncio.sleep(0.1)
    assert not pool._respawns
    assert len(failures) >= 996
