"""The analysis pool of a core whose workers run anywhere, over a Redis bus.

Same interface as :class:`workers.analysis.AnalysisPool` (the scheduler does not know which
it has); the bus protocol is in :mod:`workers.analysis_wire`, the workers in
:mod:`workers.analysis_remote`. ``submit`` and ``stop`` are synchronous, as the scheduler
calls them from callbacks: they queue writes that one task sends in order (a job's entry
before its stop). One task reads this core's results stream and calls the listener; another
refreshes the core's liveness key, reads the workers' advertisements (capacity and engine)
and fails jobs nothing was heard of for too long.

Capacity: :meth:`idle` is the slots the live workers advertise minus this core's jobs in
flight, so the scheduler's preemption works as with local processes (one core per bus, as
the server is built: the core is the only scheduler). With no worker, or Redis away,
capacity is 0 and positions wait in the scheduler, not on the bus.

A job whose worker dies is claimed again by another worker after the workers' reclaim time;
its reports then come from the new runner (the ``start`` report names it), and depths it
reports again are not passed on, so the listener sees each job's depths in increasing order.
A job heard nothing of for its time limit plus the reclaim time plus ``hang_grace_s`` is
stopped on the bus and reported failed (the scheduler retries it once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from workers.analysis import Job, NoListener, PoolListener
from workers.analysis_wire import (
    GROUP,
    JOBS,
    JOBS_MAXLEN,
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

log = logging.getLogger(__name__)

# Until a worker says otherwise (its advertisement carries its reclaim time).
DEFAULT_RECLAIM_S = 5.0


@dataclass(eq=False, slots=True)
class _Flight:
    job: Job
    heard_s: float
    runner: str | None = None


class BusAnalysisPool:
    """Analysis jobs for workers anywhere, over the Redis at ``url`` (see module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        hang_grace_s: float = 5.0,
        refresh_s: float = 0.5,
        core: str | None = None,
    ) -> None:
        """``refresh_s``: how often capacity is read and the liveness key renewed."""
        self.listener: PoolListener = NoListener()
        self.core = core or secrets.token_hex(6)
        self._redis: Redis = Redis.from_url(url, decode_responses=True)
        self._writer = BusWriter(self._redis)
        self._hang_grace_s = hang_grace_s
        self._refresh_s = refresh_s
        self._results = results_key(self.core)
        self._flights: dict[int, _Flight] = {}
        self._workers: dict[str, WorkerAd] = {}
        self._next_id = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._has_group = False

    @property
    def size(self) -> int:
        """Slots the live workers advertise."""
        return sum(ad.slots for ad in self._workers.values())

    @property
    def engine_name(self) -> str:
        """The engine a live worker advertises ("" while none is known)."""
        return next((ad.engine for ad in self._workers.values()), "")

    def workers(self) -> dict[str, WorkerAd]:
        """The live worker processes (consumer name: advertisement), for diagnostics."""
        return dict(self._workers)

    def runner(self, job: Job) -> str | None:
        """The consumer running ``job`` now (None while queued or after it ended)."""
        flight = self._flights.get(job.id)
        return None if flight is None else flight.runner

    def new_job(self, fen: str, max_time_s: float, max_depth: int) -> Job:
        """A job with a fresh id (not yet submitted)."""
        self._next_id += 1
        return Job(self._next_id, fen, max_time_s, max_depth)

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the bus tasks; waits up to ``timeout_s`` (2 s at most) for a first look at
        the workers, who may well come later.

        Never raises for an unreachable Redis: it is logged, capacity stays 0 and the tasks
        keep trying (analysis resumes when the bus does), so a server starts without it.
        """
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._writer.run(), name="gm-analysis-bus-writer"),
            loop.create_task(self._read(), name="gm-analysis-bus-results"),
        ]
        try:
            async with asyncio.timeout(min(timeout_s, 2.0)):
                await self._refresh()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("analysis bus unreachable, will keep trying: %s", exc)
        self._tasks.append(loop.create_task(self._keep_alive(), name="gm-analysis-bus-keepalive"))

    def idle(self) -> int:
        """Advertised slots not taken by this core's jobs in flight."""
        return max(0, self.size - len(self._flights)) if not self._closed else 0

    def running(self) -> list[Job]:
        """Jobs submitted and not ended (queued on the bus or running on a worker)."""
        return [flight.job for flight in self._flights.values()]

    def submit(self, job: Job) -> bool:
        """Put ``job`` on the jobs stream; False when no advertised slot is free."""
        if self.idle() <= 0:
            return False
        job.started_s = time.monotonic()
        self._flights[job.id] = _Flight(job, job.started_s)
        fields = JobOrder(self.core, job.id, job.fen, job.max_time_s, job.max_depth).fields()

        def write(pipe: Pipeline) -> None:
            pipe.xadd(JOBS, fields, maxlen=JOBS_MAXLEN, approximate=True)  # type: ignore[arg-type]

        self._writer.put(write, failed=lambda: self._fail(job))
        return True

    def stop(self, job: Job) -> None:
        """Tell every worker to drop ``job`` (running or not yet picked up)."""
        if job.id not in self._flights or job.stop_sent_s is not None:
            return
        job.stop_sent_s = time.monotonic()
        self._send_stop(job)

    async def close(self) -> None:
        """Stop this core's jobs on the bus, then its tasks and the connection."""
        self._closed = True
        for flight in self._flights.values():
            self._send_stop(flight.job)
        self._flights.clear()

        def goodbye(pipe: Pipeline) -> None:
            pipe.delete(core_key(self.core), self._results)

        self._writer.put(goodbye)
        self._writer.close()
        if self._tasks:
            writer, *others = self._tasks
            await end_tasks(others)
            # The writer sends the stops and the goodbye, then returns (bounded: Redis may be
            # away).
            await asyncio.wait([writer], timeout=3)
            await end_tasks([writer])
        await self._redis.aclose()

    # --- internals ---

    def _send_stop(self, job: Job) -> None:
        key = f"{self.core}:{job.id}"
        # Long enough to outlive any pickup or reclaim of the job, even after every worker
        # was away for a while (a stopped job run anyway costs one search, ignored here).
        ttl_ms = int((job.max_time_s + 600) * 1000)

        def write(pipe: Pipeline) -> None:
            pipe.set(stop_key(key), 1, px=ttl_ms)
            pipe.publish(STOPS, key)

        self._writer.put(write)

    def _fail(self, job: Job) -> None:
        if self._flights.pop(job.id, None) is not None:
            self.listener.on_done(job, False)

    def _on_report(self, report: Report) -> None:
        flight = self._flights.get(report.job)
        if flight is None:
            return
        flight.heard_s = time.monotonic()
        job = flight.job
        if report.kind == "start":
            flight.runner = report.runner
        elif report.runner != flight.runner:
            return  # from a worker that lost the job to another
        elif report.kind == "info":
            assert report.info is not None
            if report.info.depth <= job.depth:
                return  # a reclaimed job searched again from depth 1
            job.depth = report.info.depth
            self.listener.on_info(job, report.info, report.engine)
        else:
            del self._flights[job.id]
            self.listener.on_done(job, report.kind == "done")

    async def _read(self) -> None:
        """Follow this core's results stream (from its start: nothing is missed)."""
        last_id = "0-0"
        while not self._closed:
            try:
                response = await self._redis.xread({self._results: last_id}, count=512, block=1000)
            except (RedisError, OSError) as exc:
                log.debug("analysis bus: reading results failed: %s", exc)
                await asyncio.sleep(self._refresh_s)
                continue
            for entry_id, fields in stream_entries(response):
                last_id = entry_id
                try:
                    self._on_report(Report.from_fields(fields))
                except ValueError as exc:
                    log.warning("analysis bus: %s", exc)
                except Exception:
                    log.exception("analysis report handling failed")

    async def _keep_alive(self) -> None:
        """Refresh and expire every ``refresh_s``; a failed round is logged, never fatal (the
        workers drop this core's jobs once its liveness key lapses)."""
        while not self._closed:
            await asyncio.sleep(self._refresh_s)
            try:
                try:
                    await self._refresh()
                except (RedisError, OSError) as exc:
                    if self._workers:
                        log.warning("analysis bus unreachable: %s", exc)
                    # Submitting into a bus that cannot be reached would only lose jobs.
                    self._workers = {}
                self._expire_silent()
            except Exception:
                log.exception("analysis bus: a keep-alive round failed")

    async def _refresh(self) -> None:
        """Renew the liveness key, ensure the group exists, and read the workers' ads."""
        ttl_ms = int(self._refresh_s * 4000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(core_key(self.core), 1, px=ttl_ms)
            # The results stream outlives a core that died only by a minute.
            pipe.expire(self._results, 60)
            pipe.smembers(WORKERS)
            *_, consumers = await pipe.execute()
        if not self._has_group:
            # The workers create it too (and again after Redis lost it); whoever is first.
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                await self._redis.xgroup_create(JOBS, GROUP, id="0", mkstream=True)
            self._has_group = True
        names = sorted(consumers)
        ads = await self._redis.mget([worker_key(name) for name in names]) if names else []
        workers: dict[str, WorkerAd] = {}
        gone = []
        for name, text in zip(names, ads, strict=True):
            if text is None:
                gone.append(name)
                continue
            try:
                workers[name] = WorkerAd.decode(text if isinstance(text, str) else text.decode())
            except ValueError as exc:
                log.warning("analysis bus: %s", exc)
        if gone:
            await self._redis.srem(WORKERS, *gone)
        self._workers = workers

    def _expire_silent(self) -> None:
        """Fail jobs heard nothing of for longer than a run, a reclaim and the grace."""
        reclaim_s = max((ad.reclaim_s for ad in self._workers.values()), default=DEFAULT_RECLAIM_S)
        now = time.monotonic()
        for flight in list(self._flights.values()):
            job = flight.job
            limit = flight.heard_s + job.max_time_s + reclaim_s + self._hang_grace_s
            if job.stop_sent_s is not None:
                limit = min(limit, job.stop_sent_s + reclaim_s + self._hang_grace_s)
            if now > limit and self._flights.pop(job.id, None) is not None:
                log.warning("analysis job %d: no worker answered; giving it up", job.id)
                if job.stop_sent_s is None:
                    job.stop_sent_s = now
                    self._send_stop(job)
                self.listener.on_done(job, False)
