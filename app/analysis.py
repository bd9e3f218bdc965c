"""Which positions get analysed, for how long, and how results reach spectators.

Policy on top of a :class:`workers.analysis.Pool` (local processes or remote workers over
Redis; the policy is the same):
- per game only the newest position matters: a move supersedes the game's job;
- an evaluation cache keyed by position (shared by all games, bounded LRU) answers a
  repeated position at once; the depths then shown for it only go up (a new job's shallower
  depths are not passed on);
- two lanes (:class:`Lane`): live games' positions, and background requests (see
  :meth:`AnalysisService.request_background`) that run only on workers no live position
  needs; any waiting live position cuts a background job at once;
- waiting live positions are ranked: one with no evaluation yet first, then the game with
  the most spectators, then the oldest. When one waits and no worker is idle or already
  stopping, the lowest-ranked job it outranks is cut once its position shows an evaluation
  and it ran ``min_time_s`` (at once if it has not gone deeper than what is shown yet: a
  resumed job); a cut position is queued again (with the time it has left) and resumes
  when a worker frees, so nothing is dropped and two positions never cut each other in turn;
- a job whose worker died or hung is retried once;
- evaluations are coalesced per game: at most one ``eval`` event every
  ``publish_interval_s``, the newest replacing an unsent older one. Each published event
  is recorded through the game service (persisted, then fanned out like any event).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.analysis_cache import EvalCache, position_key
from app.analysis_outbox import Outbox
from app.games import GameService
from app.hub import Hub
from app.metrics import Metrics
from engine.rules.game import GameState
from engine.rules.wire import EvalJSON, GameEvent, score_json
from workers.analysis import Job, NoListener, Pool
from workers.analysis_worker import DepthInfo

log = logging.getLogger(__name__)


class Lane(enum.IntEnum):
    """A position's priority class: a waiting position of a higher lane cuts a lower one's job."""

    BACKGROUND = 0
    LIVE = 1


@dataclass(eq=False, slots=True)
class Wanted:
    """A position waiting for, or under, analysis.

    ``key`` is the game's id in the live lane and the caller's key in the background lane.
    ``line`` is the game's takeback count (live lane): a relay correction to another move
    at the same ply is a new position that ``ply`` alone does not tell apart. ``depth`` is
    the deepest evaluation already passed on for this position (from the cache or a job),
    ``best`` that evaluation; ``spent_s`` is the search time of jobs cut so far.
    """

    key: str
    lane: Lane
    ply: int
    fen: str
    enqueued_s: float
    max_time_s: float
    max_depth: int
    line: int = 0
    retries: int = 0
    depth: int = 0
    best: EvalJSON | None = None
    spent_s: float = 0.0
    cut: bool = False
    on_done: Callable[[EvalJSON | None], None] | None = None
    # Background only: the search ends at the first completed depth that spent this many
    # nodes (a nodes budget, as game reviews may have).
    max_nodes: int | None = None
    # Whether a completed depth spent ``max_nodes``: the search is done, even if cut.
    budget_met: bool = False


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
        max_background: int = 1024,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """``clock`` (seconds, the pool's clock) and ``sleep`` are injectable for tests;
        ``max_background`` bounds the open background requests."""
        self.pool = pool
        pool.listener = self
        self._games = games
        self._hub = hub
        self._metrics = metrics
        self._max_time_s = max_time_s
        self._min_time_s = min_time_s
        self._max_depth = max_depth
        self._publish_interval_s = publish_interval_s
        self._max_background = max_background
        self._clock = clock
        self._sleep = sleep
        self.cache = EvalCache(cache_size)
        # Live positions waiting, by game.
        self._pending: dict[str, Wanted] = {}
        # Background requests not finished (waiting or running), by key; and those waiting,
        # oldest first.
        self._requests: dict[str, Wanted] = {}
        self._backlog: OrderedDict[str, Wanted] = OrderedDict()
        self._running: dict[int, tuple[Job, Wanted]] = {}
        self._outboxes: dict[str, Outbox] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Begin with every started game's current position."""
        for live in self._games.find(status="started"):
            self._want(live.state)
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="gm-analysis")

    async def close(self) -> None:
        """Stop for good: the pool's reports are ignored from here on, running jobs are
        told to stop, nothing more is submitted, published or answered (open background
        requests never get their ``on_done``); waits for evaluations being recorded."""
        self._closed = True
        self.pool.listener = NoListener()
        if self._ticker is not None:
            self._ticker.cancel()
        for job, _ in list(self._running.values()):
            self.pool.stop(job)
        self._running.clear()
        self._pending.clear()
        self._requests.clear()
        self._backlog.clear()
        tasks = [o.task for o in self._outboxes.values() if o.task is not None]
        self._outboxes.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- observing the games ---

    def on_commit(self, state: GameState, events: list[GameEvent]) -> None:
        """Called by the game service after each durable change."""
        if self._closed:
            return
        kinds = {event["type"] for event in events}
        if state.is_finished:
            self._forget(state.setup.id)
        elif kinds & {"move", "start", "takeback"}:
            self._want(state)

    @property
    def queue_depth(self) -> int:
        """Live positions waiting for their first evaluation (cut ones waiting to resume,
        with an evaluation shown already, are not a backlog: they are not counted)."""
        return sum(1 for wanted in self._pending.values() if wanted.depth == 0)

    # --- the background lane ---

    @property
    def background_depth(self) -> int:
        """Background requests waiting for a worker (not counting those running)."""
        return len(self._backlog)

    def request_background(
        self,
        key: str,
        fen: str,
        ply: int,
        on_done: Callable[[EvalJSON | None], None],
        *,
        max_time_s: float | None = None,
        max_depth: int | None = None,
        max_nodes: int | None = None,
    ) -> bool:
        """Analyse ``fen`` on a worker that no live position needs; False when full.

        ``key`` names the request (reusing an open key replaces that request). The search
        stops at ``max_depth`` or after ``max_time_s`` of search (the service's limits by
        default), or at the first completed depth of a job that spent ``max_nodes``; a live
        position that waits cuts it at once, and it resumes later with the time it has left.
        ``on_done`` is called once, on the event loop, with the deepest evaluation reached
        (its ``ply`` is ``ply``), or None when none was (the engine failed twice, or the
        position is over); never after :meth:`cancel_background` or :meth:`close`.
        Depths are cached like live ones but never published or recorded to a game.

        Returns False, queuing nothing, while ``max_background`` requests are open (the
        caller keeps its own backlog and requests more as earlier ones finish), or once
        the service is closed.
        """
        if self._closed:
            return False
        if key not in self._requests and len(self._requests) >= self._max_background:
            return False
        self.cancel_background(key)
        wanted = Wanted(
            key,
            Lane.BACKGROUND,
            ply,
            fen,
            self._clock(),
            self._max_time_s if max_time_s is None else max_time_s,
            self._max_depth if max_depth is None else max_depth,
            on_done=on_done,
            max_nodes=max_nodes,
        )
        self._requests[key] = wanted
        cached = self.cache.get(position_key(fen))
        if cached is not None:
            wanted.depth = cached["depth"]
            wanted.best = {**cached, "ply": ply}
            if wanted.depth >= wanted.max_depth:
                asyncio.get_running_loop().call_soon(self._finish, wanted)
                return True
        self._backlog[key] = wanted
        self._dispatch()
        return True

    def cancel_background(self, key: str) -> None:
        """Drop the background request ``key`` (stopping its job); unknown keys are ignored."""
        wanted = self._requests.pop(key, None)
        if wanted is None:
            return
        self._backlog.pop(key, None)
        for job, running in list(self._running.values()):
            if running is wanted:
                self.pool.stop(job)

    # --- pool callbacks ---

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        """A completed depth: cache it and, if deeper than what was shown, pass it on."""
        entry = self._running.get(job.id)
        if entry is None or self._closed:
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
        if wanted.max_nodes is not None and info.nodes >= wanted.max_nodes:
            wanted.budget_met = True
            self.pool.stop(job)
        # A cached evaluation, or a cut job's, may be deeper than this job has reached yet.
        if info.depth <= wanted.depth:
            return
        wanted.depth = info.depth
        wanted.best = evaluation
        if wanted.lane is Lane.LIVE:
            self._offer(wanted.key, evaluation)

    def on_done(self, job: Job, ok: bool) -> None:
        """A job ended: count it; retry, resume or finish its position; fill the worker."""
        if self._closed:
            return
        entry = self._running.pop(job.id, None)
        if ok:
            self._metrics.positions_analysed.inc()
        if entry is not None:
            self._settle(job, entry[1], ok)
        self._dispatch()

    # --- scheduling ---

    def _settle(self, job: Job, wanted: Wanted, ok: bool) -> None:
        """Decide what follows ``wanted``'s job that just ended."""
        cut, wanted.cut = wanted.cut, False
        if not self._is_current(wanted):
            return
        if not ok and wanted.retries < 1:
            wanted.retries += 1
            log.info("retrying the analysis of %s ply %d", wanted.key, wanted.ply)
            self._queue(wanted)
            return
        if ok and cut and not wanted.budget_met:
            wanted.spent_s += max(0.0, self._clock() - job.started_s)
            left_s = wanted.max_time_s - wanted.spent_s
            if wanted.depth < wanted.max_depth and left_s > 0 and left_s >= self._min_time_s:
                self._queue(wanted)
                return
        if wanted.lane is Lane.BACKGROUND:
            self._finish(wanted)

    def _queue(self, wanted: Wanted) -> None:
        """Put ``wanted`` back among the waiting positions (a cut or retried one goes first
        in its lane's order)."""
        if wanted.lane is Lane.LIVE:
            self._pending.setdefault(wanted.key, wanted)
        else:
            self._backlog[wanted.key] = wanted
            self._backlog.move_to_end(wanted.key, last=False)

    def _finish(self, wanted: Wanted) -> None:
        """Hand a finished background request its result."""
        if self._requests.get(wanted.key) is not wanted:
            return
        del self._requests[wanted.key]
        if wanted.on_done is None:
            return
        try:
            wanted.on_done(wanted.best)
        except Exception:
            log.exception("a background analysis callback failed (%s)", wanted.key)

    def _want(self, state: GameState) -> None:
        game = state.setup.id
        fen = state.board.fen()
        wanted = Wanted(
            game,
            Lane.LIVE,
            state.ply,
            fen,
            self._clock(),
            self._max_time_s,
            self._max_depth,
            line=state.line,
        )
        # An unsent evaluation is of the position this one replaces (perhaps at the same
        # ply, after a correction): it must not go out as this one's.
        outbox = self._outboxes.get(game)
        if outbox is not None:
            outbox.new_position()
        cached = self.cache.get(position_key(fen))
        if cached is not None:
            wanted.depth = cached["depth"]
            wanted.best = {**cached, "ply": state.ply}
            self._offer(game, wanted.best)
        self._stop_live(game)
        if wanted.depth >= self._max_depth:
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
        self._stop_live(game)

    def _stop_live(self, game: str) -> None:
        """Stop the live search of ``game``'s position, if one runs."""
        for job, running in list(self._running.values()):
            if running.lane is Lane.LIVE and running.key == game:
                self.pool.stop(job)

    def _next(self) -> Wanted | None:
        """Take the best waiting position: live ones by rank, then the oldest background one."""
        if self._pending:
            wanted = max(self._pending.values(), key=self._rank)
            del self._pending[wanted.key]
            return wanted
        if self._backlog:
            return self._backlog.popitem(last=False)[1]
        return None

    def _dispatch(self) -> None:
        if self._closed:
            return
        while self.pool.idle():
            wanted = self._next()
            if wanted is None:
                break
            if not self._is_current(wanted):
                continue
            max_time_s = wanted.max_time_s - wanted.spent_s
            job = self.pool.new_job(wanted.fen, max_time_s, wanted.max_depth)
            if not self.pool.submit(job):
                self._queue(wanted)
                break
            self._running[job.id] = (job, wanted)
        self._metrics.analysis_queue.set(self.queue_depth)

    def _rank(self, wanted: Wanted) -> tuple[int, bool, int, float]:
        """Higher goes first: the lane, no evaluation shown yet, spectators, age."""
        spectators = self._hub.spectators(wanted.key) if wanted.lane is Lane.LIVE else 0
        return (wanted.lane, wanted.depth == 0, spectators, -wanted.enqueued_s)

    def _outranks(self, waiting: Wanted, running: Wanted) -> bool:
        """Whether ``waiting`` may cut ``running``'s job (never by age alone, so that two
        positions cannot cut each other in turn)."""
        if waiting.lane != running.lane:
            return waiting.lane > running.lane
        if waiting.lane is Lane.BACKGROUND:
            return False
        return self._rank(waiting)[:3] > self._rank(running)[:3]

    def _can_cut(self, job: Job, wanted: Wanted, now_s: float) -> bool:
        """Whether ``job`` may be cut: background jobs always; a live one once its position
        shows an evaluation and the job either ran its minimum time or has not yet gone
        deeper than what is shown (a resumed job, or one behind a cached evaluation, adds
        nothing visible yet)."""
        if job.stop_sent_s is not None:
            return False
        if wanted.lane is Lane.BACKGROUND:
            return True
        if wanted.depth < 1:
            return False
        return job.depth < wanted.depth or now_s - job.started_s >= self._min_time_s

    def _is_current(self, wanted: Wanted) -> bool:
        if wanted.lane is Lane.BACKGROUND:
            return self._requests.get(wanted.key) is wanted
        if wanted.key not in self._games:
            return False
        state = self._games.get(wanted.key).state
        return state.status == "started" and state.ply == wanted.ply and state.line == wanted.line

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
        """Cut the lowest-ranked jobs that waiting live positions outrank.

        Idle workers and those whose job was already told to stop (superseded, cut or
        cancelled) serve the best waiting positions first; only the rest cut anything.
        """
        if not self._pending:
            return
        freeing = self.pool.idle() + sum(
            1 for job, _ in self._running.values() if job.stop_sent_s is not None
        )
        if len(self._pending) <= freeing:
            return
        now_s = self._clock()
        victims = sorted(
            (
                (job, wanted)
                for job, wanted in self._running.values()
                if self._can_cut(job, wanted, now_s)
            ),
            key=lambda item: self._rank(item[1]),
        )
        if not victims:
            return
        waiting = sorted(self._pending.values(), key=self._rank, reverse=True)[freeing:]
        for position in waiting:
            if not victims or not self._outranks(position, victims[0][1]):
                return
            job, victim = victims.pop(0)
            victim.cut = True
            self.pool.stop(job)

    # --- publishing, at most one eval event per game per interval ---

    def _offer(self, game: str, evaluation: EvalJSON) -> None:
        if self._closed:
            return
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
