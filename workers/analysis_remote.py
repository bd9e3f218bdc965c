"""Analysis workers on any machine, for a core over a Redis bus.

``python -m workers.analysis --bus redis://host:6379/0 [--processes N] [--engine SPEC]
[--reclaim-after-s S]`` runs :class:`RemoteWorkers`: N engine processes managed by the same
:class:`workers.analysis.AnalysisPool` the embedded server uses (same search, same
replacement of a dead or hung process), fed from the bus instead of a scheduler. The
protocol is in :mod:`workers.analysis_wire`.

- Jobs are read from the consumer group (XREADGROUP), at most as many as engine processes
  are idle, so nothing waits here that another machine could run.
- Each job's reports (``start``, each depth, ``done``) go to its core's results stream, in
  order; the job is acknowledged (XACK) in the same write as its ``done``.
- Running jobs are touched (XCLAIM JUSTID) every third of the reclaim time, so that only a
  silent worker's jobs look idle; a job pending for longer than ``--reclaim-after-s`` on a
  worker that died (SIGKILL, a lost machine) is claimed again (XAUTOCLAIM) and run here.
- Stopped jobs (superseded by a move, or given up by the core) are dropped: a running one
  is stopped as soon as the stop is published, and one that is picked up or claimed again
  after its stop (or after its core went away) is acknowledged without being analysed.
- If an engine process dies, its job is reported failed and acknowledged: the core's
  scheduler decides whether to retry, as with local processes.
- SIGTERM or Ctrl-C stop the running jobs (reported done), withdraw the advertisement and
  exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from workers.analysis import AnalysisPool, Job
from workers.analysis_wire import (
    GROUP,
    JOBS,
    RESULTS_MAXLEN,
    STOPS,
    WORKERS,
    BusWriter,
    JobOrder,
    Report,
    WorkerAd,
    core_key,
    end_tasks,
    results_key,
    stop_key,
    stream_entries,
    worker_key,
)
from workers.analysis_worker import DepthInfo

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class _Task:
    entry_id: str
    order: JobOrder
    job: Job | None = None
    # A stop arrived before the job started: it is dropped instead.
    stopped: bool = False
    # Another worker claimed the entry (we were silent too long): our reports are moot.
    lost: bool = False


class RemoteWorkers:
    """Engine processes serving the analysis jobs on the bus at ``url`` (module docstring)."""

    def __init__(
        self,
        url: str,
        engine_spec: str,
        processes: int,
        *,
        reclaim_s: float = 5.0,
        heartbeat_s: float = 1.0,
        niceness: int = 10,
        consumer: str | None = None,
    ) -> None:
        """``reclaim_s``: how long a job pending on a silent worker waits before this one
        claims it; ``heartbeat_s``: how often the advertisement is renewed (it lives 3x)."""
        # Host and pid say where it runs; the suffix keeps two containers with the same
        # hostname and pid (pid 1 of a fixed ``hostname:``) from sharing a consumer.
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.reclaim_s = reclaim_s
        self._heartbeat_s = heartbeat_s
        self._redis: Redis = Redis.from_url(url, decode_responses=True)
        self._writer = BusWriter(self._redis)
        self._pool = AnalysisPool(engine_spec, processes, niceness=niceness)
        self._pool.listener = self
        self._tasks: dict[str, _Task] = {}
        self._keys: dict[int, str] = {}
        self._slot_freed = asyncio.Event()
        self._poll_s = min(1.0, max(0.05, reclaim_s / 4))
        self._closing = False

    async def run(self, stopping: asyncio.Event) -> None:
        """Serve jobs until ``stopping`` is set; then stop what runs and leave cleanly.

        Raises RuntimeError when the engine processes do not start. An unreachable Redis is
        logged and retried, never fatal.
        """
        await self._pool.start()
        log.info(
            "analysis worker %s: %d %s processes on the bus",
            self.consumer,
            self._pool.size,
            self._pool.engine_name,
        )
        loop = asyncio.get_running_loop()
        background = [
            loop.create_task(self._writer.run(), name="gm-bus-writer"),
            loop.create_task(self._listen_stops(), name="gm-bus-stops"),
            loop.create_task(self._advertise(), name="gm-bus-heartbeat"),
            loop.create_task(self._touch(), name="gm-bus-touch"),
        ]
        try:
            await self._take_jobs(stopping)
        finally:
            await self._drain()
            self._closing = True
            self._writer.close()
            writer, *others = background
            await end_tasks(others)
            await asyncio.wait([writer], timeout=3)
            await end_tasks([writer])
            await self._leave()
            await self._pool.close()
            await self._redis.aclose()

    # --- PoolListener: reports of the local engine processes ---

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        """Send a completed depth to the job's core."""
        task = self._tasks.get(self._keys.get(job.id, ""))
        if task is not None and not task.lost:
            self._report(task.order, Report("info", task.order.id, self.consumer, info, engine))

    def on_done(self, job: Job, ok: bool) -> None:
        """Send ``done`` (or ``failed``: the process died) and acknowledge the entry."""
        task = self._tasks.pop(self._keys.pop(job.id, ""), None)
        self._slot_freed.set()
        if task is None or task.lost:
            return
        self._report(task.order, Report("done" if ok else "failed", task.order.id, self.consumer))
        self._ack(task.entry_id)

    # --- taking jobs ---

    async def _take_jobs(self, stopping: asyncio.Event) -> None:
        await self._ensure_group()
        next_reclaim_s = 0.0
        while not stopping.is_set():
            free = self._pool.idle()
            if free <= 0:
                self._slot_freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_freed.wait(), self._poll_s)
                continue
            try:
                entries: list[tuple[str, dict[str, str]]] = []
                if time.monotonic() >= next_reclaim_s:
                    next_reclaim_s = time.monotonic() + self._poll_s
                    entries = await self._reclaim(free)
                if not entries:
                    response = await self._redis.xreadgroup(
                        GROUP,
                        self.consumer,
                        {JOBS: ">"},
                        count=free,
                        block=int(self._poll_s * 1000),
                    )
                    entries = stream_entries(response)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._ensure_group()  # Redis restarted empty
                continue
            except (RedisError, OSError) as exc:
                log.warning("analysis bus unreachable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for entry_id, fields in entries:
                await self._accept(entry_id, fields)

    async def _ensure_group(self) -> None:
        while True:
            try:
                await self._redis.xgroup_create(JOBS, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            except (RedisError, OSError) as exc:
                log.warning("analysis bus unreachable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            return

    async def _reclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """Entries of workers silent for the reclaim time, now ours."""
        reply = await self._redis.xautoclaim(
            JOBS, GROUP, self.consumer, int(self.reclaim_s * 1000), "0-0", count=count
        )
        # A trimmed entry comes back without fields (Redis 7 also lists it apart).
        claimed = [(entry_id, fields or {}) for entry_id, fields in reply[1]]
        for entry_id, _ in claimed:
            log.info("claimed job entry %s of a silent worker", entry_id)
        return claimed

    async def _accept(self, entry_id: str, fields: dict[str, str]) -> None:
        """Run the job of one entry, or drop it if stopped, its core gone, or malformed."""
        try:
            order = JobOrder.from_fields(fields)
        except ValueError as exc:
            log.warning("dropping entry %s: %s", entry_id, exc)
            self._ack(entry_id)
            return
        if order.key in self._tasks:
            return  # ours already (claimed back after a pause); it is running here
        # Registered before the checks, so that a stop published meanwhile is seen.
        task = self._tasks[order.key] = _Task(entry_id, order)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.exists(stop_key(order.key))
                pipe.exists(core_key(order.core))
                stopped, core_alive = await pipe.execute()
        except (RedisError, OSError) as exc:
            # Left pending: claimed again (here or elsewhere) after the reclaim time.
            log.warning("analysis bus unreachable: %s", exc)
            del self._tasks[order.key]
            return
        if stopped or task.stopped or not core_alive:
            del self._tasks[order.key]
            if core_alive:
                # Taken over and ended: the core trusts the reports of the latest starter.
                self._report(order, Report("start", order.id, self.consumer))
                self._report(order, Report("done", order.id, self.consumer))
            self._ack(entry_id)
            return
        job = self._pool.new_job(order.fen, order.max_time_s, order.max_depth)
        self._report(order, Report("start", order.id, self.consumer))
        if not self._pool.submit(job):
            # An engine process is being replaced: leave it pending, to be claimed again.
            del self._tasks[order.key]
            return
        task.job = job
        self._keys[job.id] = order.key

    # --- writes ---

    def _report(self, order: JobOrder, report: Report) -> None:
        key = results_key(order.core)
        fields = report.fields()

        def write(pipe: Pipeline) -> None:
            pipe.xadd(key, fields, maxlen=RESULTS_MAXLEN, approximate=True)  # type: ignore[arg-type]
            # The core keeps a TTL on its results stream; one recreated after it died expires.
            pipe.expire(key, 60, nx=True)

        self._writer.put(write)

    def _ack(self, entry_id: str) -> None:
        def write(pipe: Pipeline) -> None:
            pipe.xack(JOBS, GROUP, entry_id)

        self._writer.put(write)

    # --- stops, liveness ---

    def _stop(self, key: str) -> None:
        task = self._tasks.get(key)
        if task is None:
            return
        if task.job is None:
            task.stopped = True  # picked up, not started yet: _accept drops it
        else:
            self._pool.stop(task.job)

    async def _listen_stops(self) -> None:
        """Stop running jobs as soon as their stop is published."""
        while not self._closing:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(STOPS)
                while not self._closing:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self._stop(message["data"])
            except (RedisError, OSError) as exc:
                log.debug("stop channel lost: %s", exc)
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _advertise(self) -> None:
        ad = WorkerAd(self._pool.size, self._pool.engine_name, self.reclaim_s).encode()
        ttl_ms = int(self._heartbeat_s * 3000)
        while not self._closing:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.set(worker_key(self.consumer), ad, px=ttl_ms)
                    pipe.sadd(WORKERS, self.consumer)
                    await pipe.execute()
            except (RedisError, OSError) as exc:
                log.debug("advertisement failed: %s", exc)
            await asyncio.sleep(self._heartbeat_s)

    async def _touch(self) -> None:
        """Keep running jobs' entries fresh; stop those lost or stopped while we missed it."""
        while not self._closing:
            await asyncio.sleep(self.reclaim_s / 3)
            running = [t for t in self._tasks.values() if t.job is not None and not t.lost]
            if not running:
                continue
            try:
                pending = await self._redis.xpending_range(
                    JOBS, GROUP, "-", "+", len(self._tasks) + 16, consumername=self.consumer
                )
                ours = {p["message_id"] for p in pending}
                async with self._redis.pipeline(transaction=False) as pipe:
                    mine: list[Any] = [t.entry_id for t in running if t.entry_id in ours]
                    if mine:
                        pipe.xclaim(JOBS, GROUP, self.consumer, 0, mine, justid=True)
                    for t in running:
                        pipe.exists(stop_key(t.order.key))
                    replies = await pipe.execute()
            except (RedisError, OSError) as exc:
                log.debug("touch failed: %s", exc)
                continue
            for task, stopped in zip(running, replies[-len(running) :], strict=True):
                assert task.job is not None
                if task.entry_id not in ours:
                    log.warning("job %s was claimed by another worker; stopping it", task.order.key)
                    task.lost = True
                    self._pool.stop(task.job)
                elif stopped:
                    self._pool.stop(task.job)

    async def _drain(self, timeout_s: float = 3.0) -> None:
        """Stop running jobs and wait (bounded) for their ``done``."""
        for task in list(self._tasks.values()):
            if task.job is not None:
                self._pool.stop(task.job)
        deadline = time.monotonic() + timeout_s
        while self._tasks and time.monotonic() < deadline:
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), 0.05)

    async def _leave(self) -> None:
        """Send what is queued and withdraw the advertisement (best effort)."""
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(3):
                await self._writer.flush()
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.delete(worker_key(self.consumer))
                    pipe.srem(WORKERS, self.consumer)
                    await pipe.execute()
                # Forget this consumer unless entries are still pending on it (they would be
                # lost to XAUTOCLAIM with it).
                if not await self._redis.xpending_range(
                    JOBS, GROUP, "-", "+", 1, consumername=self.consumer
                ):
                    await self._redis.xgroup_delconsumer(JOBS, GROUP, self.consumer)


def _engine_spec(spec: str) -> str:
    if spec != "builtin" and not (spec.startswith("uci:") and len(spec) > 4):
        raise argparse.ArgumentTypeError("use 'builtin' or 'uci:/path/to/engine'")
    return spec


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of ``python -m workers.analysis``; defaults from ``GM_*`` variables.

    argparse exits (status 2) on a bad flag or a missing bus.
    """
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m workers.analysis",
        description="Run analysis workers for a Grandmaster core over a Redis bus.",
    )
    parser.add_argument(
        "--bus",
        default=env.get("GM_BUS") or None,
        help="the core's bus, redis://host:port/db (GM_BUS)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=int(env.get("GM_ANALYSIS_PROCESSES") or 0),
        help="engine processes; 0 is one per core (GM_ANALYSIS_PROCESSES, 0)",
    )
    parser.add_argument(
        "--engine",
        type=_engine_spec,
        default=env.get("GM_ENGINE") or "builtin",
        help="builtin or uci:/path/to/engine (GM_ENGINE, builtin)",
    )
    parser.add_argument(
        "--reclaim-after-s",
        type=float,
        default=5.0,
        help="claim a job pending this long on a silent worker (5)",
    )
    parser.add_argument("--log-level", default="info", help="logging level (info)")
    args = parser.parse_args(argv)
    if not args.bus:
        parser.error("--bus (or GM_BUS) is required")
    if args.processes < 0 or args.reclaim_after_s <= 0:
        parser.error("--processes must be >= 0 and --reclaim-after-s > 0")
    return args


async def _serve(args: argparse.Namespace) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    workers = RemoteWorkers(
        args.bus,
        args.engine,
        args.processes or os.cpu_count() or 1,
        reclaim_s=args.reclaim_after_s,
    )
    await workers.run(stopping)


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM or Ctrl-C; the exit status (0, or 1 if the engine did not start)."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args))
    except RuntimeError as exc:
        print(f"python -m workers.analysis: {exc}", file=sys.stderr)
        return 1
    return 0
