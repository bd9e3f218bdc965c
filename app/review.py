"""Game reviews: every position of a finished game analysed at a fixed budget, at the
lowest priority, then recorded as the game's ``review`` event.

- A game's review is asked for when it ends (and by an operator, for any finished game).
  The request is stored (the store's review queue) in the same transaction as the game's
  end event, so neither a crash nor a shutdown loses it and a restart resumes it; it leaves
  the queue once the review event is stored.
- Games are reviewed in the order asked; a game's positions are requests on
  :class:`app.analysis.AnalysisService`'s background lane, which runs them only on workers
  no live position wants: a live position cuts a review job at once, and the position
  resumes later with the time it has left.
- The budget is a depth, or a number of nodes (the search stops at the first completed
  depth that spent them); a search still short of it after ``max_time_s`` counts with what
  it reached. An evaluation already known at the budget (the live analysis cache, the
  game's recorded evaluations) is reused; a position decided on the board needs no search.
- A position the lane could not evaluate (its engine failed twice) is asked for again
  twice; a review that still fails is dropped (logged), and may be asked for again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, NotRequired, TypedDict

import chess

from app.analysis import AnalysisService
from app.analysis_cache import position_key
from app.games import GameService
from engine.review.review import (
    PositionEval,
    asks_for_review,
    build_review,
    meets_budget,
    terminal_score,
)
from engine.rules.game import GameState
from engine.rules.wire import (
    BudgetJSON,
    EvalJSON,
    GameEvent,
    ReviewJSON,
    ScoreJSON,
)
from workers.store import Store

log = logging.getLogger(__name__)

# A position the lane could not evaluate is asked for this many times more before the
# review is dropped.
MAX_FAILURES = 2
# Games whose positions are requested at once (the next one opens only when every
# position of the previous one is requested).
MAX_RUNNING = 2
# Deepest search of a position under a nodes budget (the nodes end it long before).
NODES_MAX_DEPTH = 64


class ProgressJSON(TypedDict):
    """How far a running review is: positions evaluated of ``total``."""

    done: int
    total: int


class ReviewStatusJSON(TypedDict):
    """``GET /api/games/{id}/review`` of a game whose review is not done (yet)."""

    status: Literal["none", "queued", "running"]
    progress: NotRequired[ProgressJSON]
    # Reviews asked for before this one that are not done.
    ahead: NotRequired[int]


@dataclass(eq=False, slots=True)
class Run:
    """A game under review: its positions, their evaluations so far, what is left to do."""

    game: str
    requested_ms: int
    initial_fen: str
    moves: list[str]
    fens: list[str]
    evals: list[PositionEval | None]
    todo: deque[int]
    # Positions requested from the lane and not answered yet.
    asked: set[int] = field(default_factory=set)
    failures: dict[int, int] = field(default_factory=dict)
    engine: str = ""
    finishing: bool = False

    @property
    def done(self) -> int:
        """Positions evaluated."""
        return sum(1 for e in self.evals if e is not None)

    @property
    def is_complete(self) -> bool:
        """Whether every position is evaluated."""
        return all(e is not None for e in self.evals)


class ReviewService:
    """Reviews finished games on ``analysis``'s background lane (see the module docstring).

    ``wall_ms`` is the clock of request times and ``completed_at``.
    """

    def __init__(
        self,
        games: GameService,
        store: Store,
        analysis: AnalysisService,
        *,
        budget: BudgetJSON,
        max_time_s: float,
        wall_ms: Callable[[], int],
    ) -> None:
        self._games = games
        self._store = store
        self._analysis = analysis
        self.budget = budget
        self._max_time_s = max_time_s
        self._max_depth = NODES_MAX_DEPTH if "nodes" in budget else budget.get("depth", 1)
        self._wall_ms = wall_ms
        # Asked for and not stored yet, oldest first: game -> request time (Unix ms).
        self._queue: dict[str, int] = {}
        # The latest request time given out: times only go up, so no two requests of a
        # game (one cancelled, the next) share one, and the end of one never drops another.
        self._last_requested_ms = 0
        self._runs: dict[str, Run] = {}
        self._opening: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    # --- lifecycle ---

    async def start(self) -> None:
        """Resume the reviews asked for before a restart."""
        for game, requested_ms in await asyncio.to_thread(self._store.load_review_queue):
            self._queue[game] = requested_ms
            self._last_requested_ms = max(self._last_requested_ms, requested_ms)
        if self._queue:
            log.info("resuming %d game reviews", len(self._queue))
        self._pump()

    async def close(self) -> None:
        """Stop starting reviews; wait for those being recorded."""
        self._closed = True
        for run in self._runs.values():
            self._withdraw(run)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- requests ---

    def on_commit(self, state: GameState, events: list[GameEvent]) -> None:
        """Game observer: a game that ends is reviewed; one reopened is not any more."""
        kinds = {event["type"] for event in events}
        game = state.setup.id
        if "takeback" in kinds:
            self._cancel(game)
        if asks_for_review(state, events):
            # The game service stored the request with the end; this one (a later time)
            # replaces it, so that the review's end drops exactly it.
            requested_ms = self._enqueue(game)
            self._spawn(self._store_request(game, requested_ms))
            self._pump()

    async def request(self, game: str) -> ReviewStatusJSON:
        """Ask for (another) review of ``game``, a finished game; durable once this returns.

        Raises StoreUnavailable.
        """
        requested_ms = self._enqueue(game)
        write = self._store.queue_review(game, requested_ms)
        self._pump()
        await write
        return self.status(game)

    def status(self, game: str) -> ReviewStatusJSON:
        """Where the review of ``game`` stands, if one is asked for or under way."""
        run = self._runs.get(game)
        if run is not None:
            return {"status": "running", "progress": {"done": run.done, "total": len(run.evals)}}
        if game in self._queue:
            before = list(self._queue)
            waiting = before[: before.index(game)]
            return {"status": "queued", "ahead": sum(1 for g in waiting if g not in self._runs)}
        return {"status": "none"}

    @property
    def backlog(self) -> int:
        """Reviews asked for and not stored yet (running ones included)."""
        return len(self._queue)

    def _enqueue(self, game: str) -> int:
        """Queue ``game`` (in memory) and return the request's time, later than any before."""
        requested_ms = max(self._wall_ms(), self._last_requested_ms + 1)
        self._last_requested_ms = requested_ms
        self._queue[game] = requested_ms
        return requested_ms

    async def _store_request(self, game: str, requested_ms: int) -> None:
        try:
            await self._store.queue_review(game, requested_ms)
        except Exception as exc:
            log.warning("the review of game %s is not stored as asked for: %s", game, exc)

    def _cancel(self, game: str) -> None:
        """Forget ``game``'s review (reopened: it is asked for again when it ends)."""
        requested_ms = self._queue.pop(game, None)
        run = self._runs.pop(game, None)
        if run is not None:
            self._withdraw(run)
        if requested_ms is not None:
            self._spawn(self._dequeue(game, requested_ms))
        self._pump()

    # --- the background lane ---

    def _feed(self) -> None:
        """Request every unrequested position of the open runs, oldest run first, as long
        as the lane takes them."""
        for run in list(self._runs.values()):
            while run.todo:
                index = run.todo[0]
                taken = self._analysis.request_background(
                    _key(run, index),
                    run.fens[index],
                    index,
                    partial(self._answered, run, index),
                    max_time_s=self._max_time_s,
                    max_depth=self._max_depth,
                    max_nodes=self.budget.get("nodes"),
                )
                if not taken:
                    return
                run.todo.popleft()
                run.asked.add(index)
        self._pump()

    def _answered(self, run: Run, index: int, evaluation: EvalJSON | None) -> None:
        """The lane's answer for position ``index`` of ``run``."""
        run.asked.discard(index)
        if self._runs.get(run.game) is not run:
            return
        if evaluation is None or evaluation["best"] is None:
            failures = run.failures[index] = run.failures.get(index, 0) + 1
            if failures > MAX_FAILURES:
                log.error("review of game %s dropped: position %d not evaluated", run.game, index)
                self._drop(run)
                return
            run.todo.appendleft(index)
        else:
            run.evals[index] = PositionEval(
                evaluation["score"],
                evaluation["depth"],
                evaluation["best"],
                tuple(evaluation["pv"]),
            )
            run.engine = run.engine or evaluation["engine"]
        if run.is_complete and not run.finishing:
            run.finishing = True
            self._spawn(self._finish(run))
        self._feed()

    def _withdraw(self, run: Run) -> None:
        """Cancel ``run``'s requests still open on the lane."""
        for index in list(run.asked):
            self._analysis.cancel_background(_key(run, index))
        run.asked.clear()

    # --- internals ---

    def _pump(self) -> None:
        """Open the next game's review when no running one has positions left to hand out."""
        if self._closed or self._opening is not None or len(self._runs) >= MAX_RUNNING:
            return
        if any(run.todo for run in self._runs.values()):
            return
        game = next((g for g in self._queue if g not in self._runs), None)
        if game is None:
            return
        self._opening = game
        self._spawn(self._open(game, self._queue[game]))

    async def _open(self, game: str, requested_ms: int) -> None:
        try:
            run = await self._prepare(game, requested_ms)
        except Exception:
            log.exception("could not start the review of game %s", game)
            run = None
            # A newer request, asked for while this one was being read, stays.
            if self._queue.get(game) == requested_ms:
                del self._queue[game]
        finally:
            self._opening = None
        if run is not None and self._queue.get(game) == requested_ms and not self._closed:
            self._runs[game] = run
            if run.is_complete:
                run.finishing = True
                self._spawn(self._finish(run))
            self._feed()
        self._pump()

    async def _prepare(self, game: str, requested_ms: int) -> Run | None:
        """The run of ``game``'s review, or None (and the request dropped) when there is
        nothing to review: the game is unknown, not finished, or has no move."""
        found = await self._games.fetch_many([game])
        state = found[0].state if found else None
        if state is None or not state.is_finished or state.ply == 0:
            log.info("nothing to review in game %s", game)
            if self._queue.get(game) == requested_ms:
                del self._queue[game]
            await self._dequeue(game, requested_ms)
            return None
        moves = [record.uci for record in state.moves]
        initial_fen = state.setup.initial_fen
        fens, terminal = await asyncio.to_thread(_positions, initial_fen, moves)
        engine = self._analysis.pool.engine_name
        evals: list[PositionEval | None] = []
        for index, fen in enumerate(fens):
            score = terminal[index]
            if score is not None:
                evals.append(PositionEval(score, 0))
                continue
            evals.append(self._known(fen, state.evals.get(index), engine))
        todo = deque(i for i, e in enumerate(evals) if e is None)
        return Run(game, requested_ms, initial_fen, moves, fens, evals, todo, engine=engine)

    def _known(self, fen: str, recorded: EvalJSON | None, engine: str) -> PositionEval | None:
        """An evaluation of ``fen`` already at the budget (by this pool's engine), if any."""
        for known in (self._analysis.cache.get(position_key(fen)), recorded):
            if (
                known is not None
                and known["best"] is not None
                and (not engine or known["engine"] == engine)
                and meets_budget(self.budget, known["depth"], known["nodes"])
            ):
                return PositionEval(
                    known["score"], known["depth"], known["best"], tuple(known["pv"])
                )
        return None

    async def _finish(self, run: Run) -> None:
        """Record the complete review of ``run`` and take its request off the queue."""
        try:
            evals = [e for e in run.evals if e is not None]
            completed_at = datetime.fromtimestamp(self._wall_ms() / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            review: ReviewJSON = await asyncio.to_thread(
                build_review,
                run.initial_fen,
                run.moves,
                evals,
                engine=run.engine or self._analysis.pool.engine_name,
                budget=self.budget,
                completed_at=completed_at,
            )
            await self._games.record_review(run.game, review)
            await self._store.dequeue_review(run.game, run.requested_ms)
        except Exception:
            log.exception("could not record the review of game %s", run.game)
        finally:
            if self._runs.get(run.game) is run:
                del self._runs[run.game]
            if self._queue.get(run.game) == run.requested_ms:
                del self._queue[run.game]
            self._pump()

    def _drop(self, run: Run) -> None:
        """Give up ``run`` (its request leaves the queue)."""
        self._runs.pop(run.game, None)
        self._withdraw(run)
        if self._queue.get(run.game) == run.requested_ms:
            del self._queue[run.game]
        self._spawn(self._dequeue(run.game, run.requested_ms))
        self._pump()

    async def _dequeue(self, game: str, requested_ms: int) -> None:
        try:
            await self._store.dequeue_review(game, requested_ms)
        except Exception as exc:
            log.warning("could not take game %s off the review queue: %s", game, exc)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _positions(initial_fen: str, moves: Sequence[str]) -> tuple[list[str], list[ScoreJSON | None]]:
    """The FEN of each position of the game (the start first) and the score of those
    decided on the board (None for the others). Blocking: run it in a thread."""
    board = chess.Board(initial_fen)
    fens = [board.fen()]
    terminal = [terminal_score(board)]
    for uci in moves:
        board.push(chess.Move.from_uci(uci))
        fens.append(board.fen())
        terminal.append(terminal_score(board))
    return fens, terminal


def _key(run: Run, index: int) -> str:
    """The background lane's key of position ``index`` of ``run``."""
    return f"review:{run.game}:{run.requested_ms}:{index}"
