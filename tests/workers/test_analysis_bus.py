"""Analysis over a real Redis: the core's bus pool and remote worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.conftest import ROOT, RedisServer
from tests.workers.test_analysis_pool import MATE_IN_ONE, Recorder, chess_start
from workers.analysis_bus import BusAnalysisPool
from workers.analysis_wire import (
    GROUP,
    JOBS,
    WORKERS,
    JobOrder,
    Report,
    WorkerAd,
    core_key,
    results_key,
    stop_key,
    worker_key,
)
from workers.analysis_worker import DepthInfo

# A middlegame: every depth of the built-in engine takes a while, so jobs are mid-search
# when a test acts on them.
MIDDLEGAME = "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP3PPP/R2QKB1R w KQ - 0 8"


class WorkerProcess:
    """``python -m workers.analysis --bus URL`` as a real subprocess (log in a file)."""

    def __init__(self, url: str, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "workers.analysis", "--bus", url, *extra],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def is_consumer(self, name: str | None) -> bool:
        """Whether ``name`` (``<host>:<pid>:<random>``) is this process's consumer name."""
        return name is not None and name.split(":")[-2] == str(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up runs (its engine processes die on their broken pipe)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@pytest.fixture
def spawn_worker(
    redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Starts worker subprocesses on the test's Redis; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def spawn(*extra: str) -> WorkerProcess:
        worker = WorkerProcess(redis_server.url, tmp_path / f"worker{len(started)}.log", *extra)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


@pytest.fixture
async def bus_pool(redis_server: RedisServer) -> AsyncIterator[tuple[BusAnalysisPool, Recorder]]:
    """The core side, refreshing every 0.1 s, with a recorder as its listener."""
    pool = BusAnalysisPool(redis_server.url, refresh_s=0.1, hang_grace_s=30)
    recorder = Recorder()
    pool.listener = recorder
    await pool.start()
    yield pool, recorder
    await pool.close()


async def wait_for_slots(pool: BusAnalysisPool, recorder: Recorder, slots: int) -> None:
    """Until the live workers advertise ``slots`` slots (workers take a second to start)."""
    await recorder.wait_for(lambda: pool.size == slots, timeout_s=30)


async def wait_for_stop_key(
    redis: Redis, pool: BusAnalysisPool, recorder: Recorder, job_id: int, timeout_s: float
) -> None:
    """Until the pool has published the stop of its job ``job_id`` (it does so in the
    background), re-checking on reports and every 20 ms."""
    async with asyncio.timeout(timeout_s):
        while not await redis.exists(stop_key(f"{pool.core}:{job_id}")):
            await recorder.wait_for(lambda: True)


def infos_of(recorder: Recorder, job_id: int) -> list[int]:
    """The depths reported for a job, in order."""
    return [info.depth for jid, info, _ in recorder.infos if jid == job_id]


def test_messages_survive_the_wire() -> None:
    """Jobs, reports and advertisements read back as written; garbage raises ValueError."""
    order = JobOrder("core1", 7, MATE_IN_ONE, 2.5, 12)
    assert JobOrder.from_fields(order.fields()) == order
    assert order.key == "core1:7"
    info = Report("info", 7, "host:1", DepthInfo(3, None, 1, "a1a8", ("a1a8",), 99), "eng")
    assert Report.from_fields(info.fields()) == info
    done = Report("done", 7, "host:1")
    assert Report.from_fields(done.fields()) == done
    ad = WorkerAd(4, "Stockfish 16", 5.0)
    assert WorkerAd.decode(ad.encode()) == ad
    for garbage in ({}, {"job": "[1]"}, {"job": '["c", 1, "fen", -1, 3]'}):
        with pytest.raises(ValueError, match="analysis"):
            JobOrder.from_fields(garbage)
    with pytest.raises(ValueError, match="not an analysis report"):
        Report.from_fields({"report": '["nope", 1, "x"]'})


async def test_remote_worker_reports_each_depth_in_order(
    bus_pool: tuple[BusAnalysisPool, Recorder], spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """A job put on the bus is analysed by a worker subprocess; its depths reach the listener
    in increasing order, then done; capacity is what the worker advertises."""
    pool, recorder = bus_pool
    assert pool.idle() == 0
    worker = spawn_worker("--processes", "1")
    await wait_for_slots(pool, recorder, 1)
    assert pool.engine_name == "grandmaster-pvs"
    [consumer] = pool.workers()
    assert worker.is_consumer(consumer)
    job = pool.new_job(MATE_IN_ONE, max_time_s=10, max_depth=6)
    assert pool.submit(job)
    assert pool.idle() == 0
    assert not pool.submit(pool.new_job(MATE_IN_ONE, 10, 6))
    await recorder.wait_for(lambda: job.id in recorder.done)
    assert recorder.done[job.id] is True
    depths = infos_of(recorder, job.id)
    assert depths == sorted(set(depths))
    assert depths[0] == 1
    last = recorder.infos[-1]
    assert (last[1].mate, last[1].best, last[2]) == (1, "a1a8", "grandmaster-pvs")
    assert pool.idle() == 1
    again = pool.new_job(chess_start(), max_time_s=0.3, max_depth=64)
    assert pool.submit(again)
    await recorder.wait_for(lambda: again.id in recorder.done)
    assert infos_of(recorder, again.id)
    assert worker.stop() == 0
    await recorder.wait_for(lambda: pool.size == 0)


async def test_stop_reaches_a_running_job(
    bus_pool: tuple[BusAnalysisPool, Recorder], spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """A stopped (superseded) job mid-search ends long before its time limit."""
    pool, recorder = bus_pool
    # A long reclaim time: the periodic check of stop keys (a third of it) cannot be what
    # ends the job within the wait below; the published stop must.
    spawn_worker("--processes", "1", "--reclaim-after-s", "60")
    await wait_for_slots(pool, recorder, 1)
    job = pool.new_job(MIDDLEGAME, max_time_s=600, max_depth=64)
    assert pool.submit(job)
    await recorder.wait_for(lambda: infos_of(recorder, job.id))
    pool.stop(job)
    await recorder.wait_for(lambda: job.id in recorder.done, timeout_s=5)
    assert recorder.done[job.id] is True
    assert pool.idle() == 1


async def test_killed_worker_job_is_claimed_and_completed_by_another(
    bus_pool: tuple[BusAnalysisPool, Recorder],
    spawn_worker: Callable[..., WorkerProcess],
    redis_server: RedisServer,
) -> None:
    """SIGKILL of the worker running a job: another worker claims it (XAUTOCLAIM) and
    completes it; the listener sees only deeper depths from the new runner, then done."""
    pool, recorder = bus_pool
    first = spawn_worker("--processes", "1", "--reclaim-after-s", "0.5")
    await wait_for_slots(pool, recorder, 1)
    job = pool.new_job(MIDDLEGAME, max_time_s=2.0, max_depth=64)
    assert pool.submit(job)
    await recorder.wait_for(lambda: infos_of(recorder, job.id))
    runner = pool.runner(job)
    assert first.is_consumer(runner)
    first.kill()
    second = spawn_worker("--processes", "1", "--reclaim-after-s", "0.5")
    await recorder.wait_for(lambda: job.id in recorder.done, timeout_s=30)
    assert recorder.done[job.id] is True
    assert "claimed job entry" in second.log()
    depths = infos_of(recorder, job.id)
    assert depths == sorted(set(depths))
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        assert (await redis.xpending(JOBS, GROUP))["pending"] == 0


async def test_stale_job_of_a_dead_worker_is_dropped_when_claimed(
    bus_pool: tuple[BusAnalysisPool, Recorder],
    spawn_worker: Callable[..., WorkerProcess],
    redis_server: RedisServer,
) -> None:
    """A job superseded while its worker is dead is acknowledged, not analysed, by the worker
    that claims it, and the pool hears that it is done."""
    pool, recorder = bus_pool
    first = spawn_worker("--processes", "1", "--reclaim-after-s", "0.5")
    await wait_for_slots(pool, recorder, 1)
    job = pool.new_job(MIDDLEGAME, max_time_s=600, max_depth=64)
    assert pool.submit(job)
    await recorder.wait_for(lambda: infos_of(recorder, job.id))
    first.kill()
    pool.stop(job)
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        await wait_for_stop_key(redis, pool, recorder, job.id, timeout_s=10)
        second = spawn_worker("--processes", "1", "--reclaim-after-s", "0.5")
        await recorder.wait_for(lambda: job.id in recorder.done, timeout_s=30)
        assert recorder.done[job.id] is True
        assert "claimed job entry" in second.log()
        # Depths the first worker sent before its death may still reach the pool after the
        # stop; the second one sends none (it reports only ``start`` and ``done``).
        entries = await redis.xrange(results_key(pool.core))
        reports = [Report.from_fields(fields) for _, fields in entries]
        ours = [r for r in reports if r.job == job.id]
        assert [r.kind for r in ours if second.is_consumer(r.runner)] == ["start", "done"]
        infos = [r for r in ours if r.kind == "info"]
        assert all(first.is_consumer(r.runner) for r in infos)
        assert 0 < len(infos_of(recorder, job.id)) <= len(infos)
        assert (await redis.xpending(JOBS, GROUP))["pending"] == 0
        assert await redis.exists(stop_key(f"{pool.core}:{job.id}"))


async def test_workers_drop_stopped_jobs_and_jobs_of_gone_cores(
    redis_server: RedisServer, spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """Entries whose stop key is set, or whose core is gone, are acknowledged without a
    search; the live one among them is analysed."""
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        await redis.xgroup_create(JOBS, GROUP, id="0", mkstream=True)
        await redis.set(core_key("alive"), 1)
        orders = [
            JobOrder("alive", 1, MIDDLEGAME, 600, 64),  # stopped before any worker saw it
            JobOrder("gone", 1, MIDDLEGAME, 600, 64),  # its core has no liveness key
            JobOrder("alive", 2, MATE_IN_ONE, 5, 4),
        ]
        await redis.set(stop_key(orders[0].key), 1)
        for order in orders:
            await redis.xadd(JOBS, order.fields())  # type: ignore[arg-type]
        spawn_worker("--processes", "1")
        results = "gm:analysis:results:alive"
        reports: list[Report] = []
        last_id = "0-0"
        async with asyncio.timeout(30):
            while not any(r.job == 2 and r.kind == "done" for r in reports):
                for _, entries in await redis.xread({results: last_id}, block=200) or ():
                    reports += [Report.from_fields(fields) for _, fields in entries]
                    last_id = entries[-1][0]
        # Taken over and ended at once: no depth of it was searched.
        assert [(r.job, r.kind) for r in reports if r.job == 1] == [(1, "start"), (1, "done")]
        assert any(r.job == 2 and r.kind == "info" for r in reports)
        assert not await redis.exists("gm:analysis:results:gone")
        # The acknowledgement follows the last report in the same write.
        assert (await redis.xpending(JOBS, GROUP))["pending"] == 0


async def test_a_running_job_is_not_claimed_from_a_live_worker(
    bus_pool: tuple[BusAnalysisPool, Recorder], spawn_worker: Callable[..., WorkerProcess]
) -> None:
    """A job that runs longer than the reclaim time stays with its (live) worker, though
    another worker is idle: running entries are kept fresh."""
    pool, recorder = bus_pool
    workers = [spawn_worker("--processes", "1", "--reclaim-after-s", "0.3") for _ in range(2)]
    await wait_for_slots(pool, recorder, 2)
    job = pool.new_job(MIDDLEGAME, max_time_s=2.0, max_depth=64)
    assert pool.submit(job)
    await recorder.wait_for(lambda: pool.runner(job) is not None)
    runner = pool.runner(job)
    runners = set()
    async with asyncio.timeout(20):
        while job.id not in recorder.done:
            runners.add(pool.runner(job))
            await asyncio.sleep(0.05)
    assert recorder.done[job.id] is True
    assert runners - {None} == {runner}
    assert not any("claimed job entry" in worker.log() for worker in workers)


async def test_a_job_no_worker_answers_is_given_up(
    redis_server: RedisServer,
) -> None:
    """A worker that advertised slots and vanished with the job: after the job's time, the
    reclaim time and the grace, the job is reported failed and stopped on the bus."""
    pool = BusAnalysisPool(redis_server.url, refresh_s=0.05, hang_grace_s=0.2)
    recorder = Recorder()
    pool.listener = recorder
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        await redis.set(worker_key("ghost:1"), WorkerAd(1, "ghost", 0.1).encode(), px=60_000)
        await redis.sadd(WORKERS, "ghost:1")
        await pool.start()
        try:
            await recorder.wait_for(lambda: pool.idle() == 1, timeout_s=5)
            job = pool.new_job(MATE_IN_ONE, max_time_s=0.2, max_depth=4)
            assert pool.submit(job)
            await recorder.wait_for(lambda: job.id in recorder.done, timeout_s=5)
            assert recorder.done[job.id] is False
            assert pool.idle() == 1
            await recorder.wait_for(lambda: True)
            await wait_for_stop_key(redis, pool, recorder, job.id, timeout_s=5)
        finally:
            await pool.close()


async def test_reports_of_a_runner_that_lost_the_job_are_ignored(
    redis_server: RedisServer,
) -> None:
    """After another worker's start, the first runner's reports are ignored, and depths the
    new runner repeats are not passed on."""
    pool = BusAnalysisPool(redis_server.url)
    recorder = Recorder()
    pool.listener = recorder
    pool._workers = {"a:1": WorkerAd(1, "e", 5.0)}
    job = pool.new_job(MATE_IN_ONE, 5, 4)
    assert pool.submit(job)
    info = DepthInfo(1, 10, None, "a1a8", ("a1a8",), 5)
    deeper = DepthInfo(2, 20, None, "a1a8", ("a1a8",), 50)
    for report in [
        Report("start", job.id, "a:1"),
        Report("info", job.id, "a:1", info, "e"),
        Report("start", job.id, "b:2"),
        Report("info", job.id, "a:1", deeper, "e"),  # the old runner: ignored
        Report("done", job.id, "a:1"),  # ignored
        Report("info", job.id, "b:2", info, "e"),  # a depth already passed on
        Report("info", job.id, "b:2", deeper, "e"),
    ]:
        pool._on_report(report)
    assert [(i.depth, i.cp) for _, i, _ in recorder.infos] == [(1, 10), (2, 20)]
    assert pool.runner(job) == "b:2"
    assert job.id not in recorder.done
    pool._on_report(Report("done", job.id, "b:2"))
    assert recorder.done == {job.id: True}
    await pool._redis.aclose()


def test_worker_command_needs_a_bus() -> None:
    """Without --bus or GM_BUS the command exits 2 naming the flag."""
    env = {k: v for k, v in os.environ.items() if k != "GM_BUS"}
    done = subprocess.run(
        [sys.executable, "-m", "workers.analysis"], cwd=ROOT, env=env, capture_output=True
    )
    assert done.returncode == 2
    assert b"--bus" in done.stderr


async def test_the_keep_alive_outlives_an_error(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After one failed round of the core's keep-alive, it goes on: a job no worker answers
    is still given up (and the core's liveness key still renewed)."""
    pool = BusAnalysisPool(redis_server.url, refresh_s=0.05, hang_grace_s=0.2)
    recorder = Recorder()
    pool.listener = recorder
    original = pool._expire_silent
    calls = 0

    def failing_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected")
        original()

    monkeypatch.setattr(pool, "_expire_silent", failing_once)
    async with Redis.from_url(redis_server.url, decode_responses=True) as redis:
        await redis.set(worker_key("ghost:2"), WorkerAd(1, "ghost", 0.1).encode(), px=60_000)
        await redis.sadd(WORKERS, "ghost:2")
        await pool.start()
        try:
            await recorder.wait_for(lambda: calls >= 1 and pool.idle() == 1, timeout_s=5)
            job = pool.new_job(MATE_IN_ONE, max_time_s=0.2, max_depth=4)
            assert pool.submit(job)
            await recorder.wait_for(lambda: job.id in recorder.done, timeout_s=10)
            assert recorder.done[job.id] is False
            assert await redis.exists(core_key(pool.core))
        finally:
            await pool.close()
