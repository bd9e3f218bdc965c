"""Which positions get analysed, for how long, and how results reach spectators.

Policy on top of a :class:`workers.analysis.Pool` (local processes or remote workers over
Redis; the policy is the same):
- per game only the newest position matters: a move supersedes the game's job;
- an evaluation cache keyed by position (shared by all games, bounded LRU) answers a
  repeated position at once;
- when positions wait and no worker is idle, jobs that already ran their minimum time
  are stopped, and the waiting games with the most spectators go first;
- a job whose worker died or hung is retried once;
- evaluations are coalesced per game: at most one ``eval`` event every
  ``publish_interval_s``, the newest replacing an unsent older one. Each published event
  is recorded through the game service (persisted, then fanned out like any event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.games import GameService
from app.hub import Hub
from app.metrics import Metrics
from engine.rules.game import GameState
from engine.rules.wire import EvalJSON, GameEvent, score_json
from workers.analysis import Job, Pool
from workers.analysis_worker import DepthInfo

log = logging.getLogger(__name__)


def position_key(fen: str) -> str:
    """The FEN without move counters: equal positions share evaluations."""
    return " ".join(fen.split()[:4])


@dataclass(eq=False, slots=True)
class Wanted:
    """A game's position waiting for, or under, analysis."""

    game: str
    ply: int
    fen: str
    enqueued_s: float
    retries: int = 0


class Outbox:
    """One game's outgoing evaluations, at most one per ``interval_s`` for a position.

    Sans-I/O: the caller passes the time in (seconds, any monotonic clock). The first
    evaluation of a new position (``ply``) is due at once; a deeper one of the same
    position is due ``interval_s`` after the previous send; an evaluation offered before
    the pending one went out replaces it.
    """

    __slots__ = ("_interval_s", "_last_sent_ply", "_last_sent_s", "pending", "task")

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last_sent_s = 0.0
        self._last_sent_ply = -1
        self.pending: EvalJSON | None = None
        # The task sending this game's evaluations, owned by the service.
        self.task: asyncio.Task[None] | None = None

    def offer(self, evaluation: EvalJSON) -> None:
        """Queue ``evaluation`` in place of any unsent one."""
        self.pending = evaluation

    def wait_s(self, now_s: float) -> float:
        """Seconds until the pending evaluation is due (0 when it is due or none is pending)."""
        if self.pending is None or self.pending["ply"] != self._last_sent_ply:
            return 0.0
        return max(0.0, self._last_sent_s + self._interval_s - now_s)

    def take(self, now_s: float) -> EvalJSON | None:
        """The pending evaluation if it is due at ``now_s`` (marking it sent), else None."""
        evaluation = self.pending
        if evaluation is None or self.wait_s(now_s) > 0:
            return None
        self.pending = None
        self._last_sent_s = now_s
        self._last_sent_ply = evaluation["ply"]
        return evaluation


class EvalCache:
    """Deepest known evaluation per position, least recently used evicted first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, EvalJSON] = OrderedDict()

    def get(self, key: str) -> EvalJSON | None:
        """The cached evaluation (refreshing its recency) or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, evaluation: EvalJSON) -> None:
        """Keep ``evaluation`` unless a deeper one is already cached."""
        current = self._entries.get(key)
        if current is not None and current["depth"] > evaluation["depth"]:
            self._entries.move_to_end(key)
            return
        self._entries[key] = evaluation
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class AnalysisService:
    """Keeps every started game's current position analysed (see module docstring)."""

    def __init__(
        self,
        pool: Pool,
        games: GameService,
        hub: Hub,
        metrics: Metrics,
        *,
        max_time_s: float = 5.0,
        min_time_s: float = 0.1,
        max_depth: int = 24,
        cache_size: int = 50_000,
        publish_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` (seconds, the pool's clock) and ``sleep`` are injectable for tests."""
        self.pool = pool
        pool.listener = self
        self._games = games
        self._hub = hub
        self._metrics = metrics
        self._max_time_s = max_time_s
        self._min_time_s = min_time_s
        self._max_depth = max_depth
        self._publish_interval_s = publish_interval_s
        self._clock = clock
        self._sleep = sleep
        self.cache = EvalCache(cache_size)
        self._pending: dict[str, Wanted] = {}
        self._running: dict[int, tuple[Job, Wanted]] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin with every started game's current position."""
        for live in self._games.find(status="started"):
            self._want(live.state)
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="gm-analysis")

    async def close(self) -> None:
        """Stop scheduling and wait for evaluations being recorded."""
        if self._ticker is not None:
            self._ticker.cancel()
        tasks = [o.task for o in self._outboxes.values() if o.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- observing the games ---

    def on_commit(self, state: GameState, events: list[GameEvent]) -> None:
        """Called by the game service after each durable change."""
        kinds = {event["type"] for event in events}
        if state.is_finished:
            self._forget(state.setup.id)
        elif kinds & {"move", "start", "takeback"}:
            self._want(state)

    @property
    def queue_depth(self) -> int:
        """Positions waiting for a worker."""
        return len(self._pending)

    # --- pool callbacks ---

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        """A completed depth: cache it and, if still current, offer it to spectators."""
        entry = self._running.get(job.id)
        if entry is None:
            return
        wanted = entry[1]
        evaluation: EvalJSON = {
            "ply": wanted.ply,
            "depth": info.depth,
            "score": score_json(info.cp, info.mate),
            "best": info.best,
            "pv": list(info.pv),
            "nodes": info.nodes,
            "engine": engine,
        }
        self.cache.put(position_key(wanted.fen), evaluation)
        if not self._is_current(wanted):
            self.pool.stop(job)
            return
        self._offer(wanted.game, evaluation)

    def on_done(self, job: Job, ok: bool) -> None:
        """A job ended: count it, retry it once if its worker failed, fill the worker."""
        entry = self._running.pop(job.id, None)
        if ok:
            self._metrics.positions_analysed.inc()
        elif entry is not None:
            wanted = entry[1]
            if wanted.retries < 1 and self._is_current(wanted) and wanted.game not in self._pending:
                wanted.retries += 1
                self._pending[wanted.game] = wanted
                log.info("retrying the analysis of game %s ply %d", wanted.game, wanted.ply)
        self._dispatch()

    # --- scheduling ---

    def _want(self, state: GameState) -> None:
        game = state.setup.id
        fen = state.board.fen()
        wanted = Wanted(game, state.ply, fen, self._clock())
        cached = self.cache.get(position_key(fen))
        if cached is not None:
            self._offer(game, {**cached, "ply": state.ply})
        for job, running in list(self._running.values()):
            if running.game == game:
                self.pool.stop(job)
        if cached is not None and cached["depth"] >= self._max_depth:
            self._pending.pop(game, None)
            return
        self._pending[game] = wanted
        self._preempt()
        self._dispatch()

    def _forget(self, game: str) -> None:
        self._pending.pop(game, None)
        # Nothing of a finished game is kept (its last evaluations are stale by now).
        outbox = self._outboxes.pop(game, None)
        if outbox is not None and outbox.task is not None and not outbox.task.done():
            outbox.task.cancel()
        for job, running in list(self._running.values()):
            if running.game == game:
                self.pool.stop(job)

    def _dispatch(self) -> None:
        while self._pending and self.pool.idle():
            wanted = max(self._pending.values(), key=self._priority)
            del self._pending[wanted.game]
            if not self._is_current(wanted):
                continue
            job = self.pool.new_job(wanted.fen, self._max_time_s, self._max_depth)
            if not self.pool.submit(job):
                self._pending[wanted.game] = wanted
                return
            self._running[job.id] = (job, wanted)
        self._metrics.analysis_queue.set(len(self._pending))

    def _priority(self, wanted: Wanted) -> tuple[int, float]:
        return (self._hub.spectators(wanted.game), -wanted.enqueued_s)

    def _is_current(self, wanted: Wanted) -> bool:
        if wanted.game not in self._games:
            return False
        state = self._games.get(wanted.game).state
        return state.status == "started" and state.ply == wanted.ply

    async def _tick(self, interval_s: float = 0.05) -> None:
        """Preempt long jobs while positions wait and no worker is free."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self._preempt()
                self._dispatch()
            except Exception:
                log.exception("analysis scheduling failed")

    def _preempt(self) -> None:
        waiting = len(self._pending) - self.pool.idle()
        if waiting <= 0:
            return
        now = self._clock()
        ripe = [
            (self._priority(wanted), job)
            for job, wanted in self._running.values()
            if job.stop_sent_s is None
            and job.depth >= 1
            and now - job.started_s >= self._min_time_s
        ]
        ripe.sort(key=lambda item: item[0])
        for _, job in ripe[:waiting]:
            self.pool.stop(job)

    # --- publishing, at most one eval event per game per interval ---

    def _offer(self, game: str, evaluation: EvalJSON) -> None:
        outbox = self._outboxes.get(game)
        if outbox is None:
            outbox = self._outboxes[game] = Outbox(self._publish_interval_s)
        outbox.offer(evaluation)
        if outbox.task is None or outbox.task.done():
            outbox.task = asyncio.get_running_loop().create_task(self._flush(game, outbox))

    async def _flush(self, game: str, outbox: Outbox) -> None:
        while outbox.pending is not None:
            wait_s = outbox.wait_s(self._clock())
            if wait_s > 0:
                await self._sleep(wait_s)
            evaluation = outbox.take(self._clock())
            if evaluation is None:
                continue
            try:
                await self._games.record_eval(game, evaluation)
            except Exception as exc:
                log.warning("could not record an evaluation of game %s: %s", game, exc)
        finished = game not in self._games or self._games.get(game).state.is_finished
        if finished and self._outboxes.get(game) is outbox:
            del self._outboxes[game]
