"""The review service's use of the pool, driven by hand: a real server's games and store,
a pool that only records what it is asked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from app.review import ReviewService
from engine.rules.wire import BudgetJSON, EvalJSON
from tests.app.test_analysis import move
from tests.conftest import LiveServer
from workers.analysis import Job
from workers.analysis_worker import DepthInfo


class RecordingPool:
    """``free`` idle workers; records submissions and stops."""

    engine_name = "fake"

    def __init__(self, free: int) -> None:
        self.free = free
        self.submitted: list[Job] = []
        self.stopped: list[Job] = []
        self.next_id = 0

    def idle(self) -> int:
        return self.free

    def new_job(self, fen: str, max_time_s: float, max_depth: int) -> Job:
        self.next_id += 1
        return Job(self.next_id, fen, max_time_s, max_depth)

    def submit(self, job: Job) -> bool:
        if self.free == 0:
            return False
        self.free -= 1
        self.submitted.append(job)
        return True

    def stop(self, job: Job) -> None:
        job.stop_sent_s = 0.0
        self.stopped.append(job)


def service(
    live: LiveServer,
    pool: RecordingPool,
    budget: BudgetJSON,
    *,
    live_waiting: Callable[[], int] = lambda: 0,
    lookup: Callable[[str], EvalJSON | None] = lambda fen: None,
) -> ReviewService:
    """A review service on the server's games and store and ``pool``."""
    state: Any = live.app.state  # type: ignore[attr-defined]
    return ReviewService(
        state.games,
        state.store,
        pool,  # type: ignore[arg-type]
        budget=budget,
        max_time_s=30.0,
        live_waiting=live_waiting,
        lookup=lookup,
        wall_ms=lambda: 1_000,
    )


async def finished(live: LiveServer, moves: list[str]) -> str:
    """A game with ``moves`` played, then ended by the arbiter."""
    game_id, _ = await live.started_game()
    for text in moves:
        await move(live, game_id, text)
    r = await live.client.post(
        f"/api/games/{game_id}/result",
        json={"result": "1-0", "reason": "resignation"},
        headers=live.auth(),
    )
    assert r.status_code == 200
    return game_id


async def until(predicate: Callable[[], object]) -> None:
    """Wait (bounded) until ``predicate()`` holds."""
    async with asyncio.timeout(10):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


def info(depth: int, nodes: int) -> DepthInfo:
    """A completed depth of some search."""
    return DepthInfo(depth, 20, None, "g1f3", ("g1f3", "g8f6"), nodes)


def review_of(live: LiveServer, game_id: str) -> Any:
    """The review in the game's state (None until recorded)."""
    return live.app.state.games.get(game_id).state.review  # type: ignore[attr-defined]


async def test_a_nodes_budget_ends_a_job_at_the_first_depth_that_spent_it(live: LiveServer) -> None:
    """Each position gets a job; a depth short of the nodes keeps it running, the first one
    past them stops it and is the position's evaluation; the review is then recorded."""
    game_id = await finished(live, ["e4", "e5"])
    pool = RecordingPool(free=3)
    reviews = service(live, pool, {"nodes": 5000})
    await reviews.request(game_id)
    await until(lambda: reviews.status(game_id)["status"] == "running")
    reviews.fill()
    assert len(pool.submitted) == 3 and all(j.max_depth > 30 for j in pool.submitted)
    for job in pool.submitted:
        reviews.on_info(job, info(3, 4000), "fake")
        assert job.stop_sent_s is None
        reviews.on_info(job, info(4, 6000), "fake")
        assert job.stop_sent_s is not None
        reviews.on_done(job, True)
    await until(lambda: review_of(live, game_id) is not None)
    review = review_of(live, game_id)
    assert review["budget"] == {"nodes": 5000} and review["initial"]["depth"] == 4
    assert [m["depth"] for m in review["moves"]] == [4, 4]
    assert await asyncio.to_thread(live.app.state.store.load_review_queue) == []  # type: ignore[attr-defined]
    await reviews.close()


async def test_a_job_stopped_for_a_live_position_gives_its_position_back(
    live: LiveServer,
) -> None:
    """``make_room`` stops the newest review jobs (counting those already stopping); a
    stopped job short of the budget is not an evaluation: its position is searched again."""
    game_id = await finished(live, ["d4"])
    pool = RecordingPool(free=2)
    reviews = service(live, pool, {"depth": 6})
    await reviews.request(game_id)
    await until(lambda: reviews.status(game_id)["status"] == "running")
    reviews.fill()
    first, second = pool.submitted
    second.started_s = first.started_s + 1
    assert reviews.make_room(1) == 1 and pool.stopped == [second]
    assert reviews.make_room(1) == 1 and pool.stopped == [second]
    assert reviews.make_room(3) == 2 and pool.stopped == [second, first]
    reviews.on_info(second, info(3, 900), "fake")
    reviews.on_done(second, True)
    pool.free = 1
    reviews.fill()
    assert pool.submitted[-1].fen == second.fen and len(pool.submitted) == 3
    assert reviews.status(game_id) == {"status": "running", "progress": {"done": 0, "total": 2}}
    await reviews.close()


async def test_live_positions_waiting_keep_reviews_off_the_pool(live: LiveServer) -> None:
    """No review job starts while a live position waits for a worker."""
    game_id = await finished(live, ["c4"])
    waiting = [1]
    pool = RecordingPool(free=2)
    reviews = service(live, pool, {"depth": 6}, live_waiting=lambda: waiting[0])
    await reviews.request(game_id)
    await until(lambda: reviews.status(game_id)["status"] == "running")
    reviews.fill()
    assert pool.submitted == []
    waiting[0] = 0
    reviews.fill()
    assert len(pool.submitted) == 2
    await reviews.close()


async def test_a_position_whose_worker_keeps_failing_drops_the_review(live: LiveServer) -> None:
    """A position is tried three times; then the review is given up and leaves the queue."""
    game_id = await finished(live, ["e4"])
    pool = RecordingPool(free=1)
    reviews = service(live, pool, {"depth": 6})
    await reviews.request(game_id)
    await until(lambda: reviews.status(game_id)["status"] == "running")
    for _ in range(3):
        reviews.fill()
        reviews.on_done(pool.submitted[-1], False)
        pool.free = 1
    assert reviews.status(game_id) == {"status": "none"}
    store = live.app.state.store  # type: ignore[attr-defined]
    await until(lambda: store.load_review_queue() == [])
    assert review_of(live, game_id) is None
    await reviews.close()


async def test_evaluations_known_at_the_budget_are_reused(live: LiveServer) -> None:
    """Positions already evaluated deep enough by the same engine need no job; shallower or
    other engines' evaluations do."""
    game_id = await finished(live, ["e4", "c5"])
    deep: EvalJSON = {
        "ply": 0,
        "depth": 8,
        "score": {"cp": 25},
        "best": "e2e4",
        "pv": ["e2e4"],
        "nodes": 90_000,
        "engine": "fake",
    }
    known = {0: deep, 1: {**deep, "depth": 5}, 2: {**deep, "engine": "other"}}
    fens: list[str] = []

    def lookup(fen: str) -> EvalJSON | None:
        if fen not in fens:
            fens.append(fen)
        return known.get(fens.index(fen))  # type: ignore[return-value]

    pool = RecordingPool(free=3)
    reviews = service(live, pool, {"depth": 6}, lookup=lookup)
    await reviews.request(game_id)
    await until(lambda: reviews.status(game_id)["status"] == "running")
    reviews.fill()
    assert [j.fen for j in pool.submitted] == fens[1:]
    for job in pool.submitted:
        reviews.on_info(job, info(6, 1000), "fake")
        reviews.on_done(job, True)
    await until(lambda: review_of(live, game_id) is not None)
    assert review_of(live, game_id)["initial"] == {"score": {"cp": 25}, "depth": 8, "best": "e2e4"}
    await reviews.close()
