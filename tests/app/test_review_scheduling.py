"""The review service on the analysis service's background lane, driven by hand: a real
server's games and store, the real scheduler, a pool that only records what it is asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from app.analysis import AnalysisService
from app.analysis_cache import position_key
from app.review import ReviewService
from engine.rules.wire import BudgetJSON, EvalJSON
from tests.app.test_analysis import FakePool, move
from tests.conftest import LiveServer
from workers.analysis import Job
from workers.analysis_worker import DepthInfo
from workers.store import StoreUnavailable


class NamedPool(FakePool):
    """:class:`FakePool` whose engine has a name and whose jobs start on the scheduler's
    clock."""

    engine_name = "fake"

    def __init__(self, free: int) -> None:
        super().__init__(free, clock=time.monotonic)  # type: ignore[arg-type]


def services(
    live: LiveServer, pool: NamedPool, budget: BudgetJSON
) -> tuple[AnalysisService, ReviewService]:
    """A scheduler on ``pool`` and a review service on its background lane, both on the
    server's games and store."""
    state: Any = live.app.state  # type: ignore[attr-defined]
    analysis = AnalysisService(pool, state.games, state.hub, state.metrics)  # type: ignore[arg-type]
    reviews = ReviewService(
        state.games, state.store, analysis, budget=budget, max_time_s=30.0, wall_ms=lambda: 1_000
    )
    return analysis, reviews


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


def report(analysis: AnalysisService, job: Job, depth: int, nodes: int) -> None:
    """``job``'s worker completed ``depth`` after ``nodes`` nodes."""
    job.depth = depth
    analysis.on_info(job, DepthInfo(depth, 20, None, "g1f3", ("g1f3", "g8f6"), nodes), "fake")


def review_of(live: LiveServer, game_id: str) -> Any:
    """The review in the game's state (None until recorded)."""
    return live.app.state.games.get(game_id).state.review  # type: ignore[attr-defined]


async def test_a_nodes_budget_ends_a_job_at_the_first_depth_that_spent_it(
    live: LiveServer,
) -> None:
    """Each position is a background request; a depth short of the nodes keeps its job
    running, the first one past them stops it and is the position's evaluation; the review
    is then recorded and leaves the queue."""
    game_id = await finished(live, ["e4", "e5"])
    pool = NamedPool(free=3)
    analysis, reviews = services(live, pool, {"nodes": 5000})
    await reviews.request(game_id)
    await until(lambda: len(pool.submitted) == 3)
    assert all(job.max_depth > 30 for job in pool.submitted)
    for job in list(pool.submitted):
        report(analysis, job, 3, 4000)
        assert job not in pool.stopped
        report(analysis, job, 4, 6000)
        assert job in pool.stopped
        pool.finish(job)
    await until(lambda: review_of(live, game_id) is not None)
    review = review_of(live, game_id)
    assert review["budget"] == {"nodes": 5000} and review["initial"]["depth"] == 4
    assert [m["depth"] for m in review["moves"]] == [4, 4]
    store = live.app.state.store  # type: ignore[attr-defined]
    await until(lambda: store.load_review_queue() == [])
    await reviews.close()
    await analysis.close()


async def test_a_live_position_cuts_a_review_job_and_the_review_still_completes(
    live: LiveServer,
) -> None:
    """With the only worker on a review position, a live game's position takes it at once;
    the review position then resumes, and the review completes at its budget."""
    game_id = await finished(live, ["d4"])
    pool = NamedPool(free=1)
    analysis, reviews = services(live, pool, {"depth": 6})
    await reviews.request(game_id)
    await until(lambda: len(pool.submitted) == 1)
    [review_job] = pool.submitted
    report(analysis, review_job, 2, 500)
    playing, _ = await live.started_game()
    state = live.app.state.games.get(playing).state  # type: ignore[attr-defined]
    analysis.on_commit(state, [{"type": "start"}])  # type: ignore[list-item]
    assert pool.stopped == [review_job]
    pool.finish(review_job)
    live_job = pool.submitted[-1]
    assert live_job.fen == state.board.fen()
    report(analysis, live_job, 6, 9000)
    pool.finish(live_job)
    while review_of(live, game_id) is None:
        job = pool.submitted[-1]
        assert job.stop_sent_s is None and job is not live_job
        report(analysis, job, 6, 9000)
        pool.finish(job)
        await asyncio.sleep(0.01)
    review = review_of(live, game_id)
    assert [review["initial"]["depth"], review["moves"][0]["depth"]] == [6, 6]
    await reviews.close()
    await analysis.close()


async def test_a_position_that_keeps_failing_drops_the_review(live: LiveServer) -> None:
    """A position whose engine keeps failing is asked for three times (the lane tries each
    twice); then the review is given up and leaves the queue."""
    game_id = await finished(live, ["e4"])
    pool = NamedPool(free=1)
    analysis, reviews = services(live, pool, {"depth": 6})
    await reviews.request(game_id)
    await until(lambda: pool.submitted)
    failed = 0
    async with asyncio.timeout(10):
        while reviews.status(game_id)["status"] == "running":
            job = pool.submitted[-1]
            if job.id > failed:
                failed = job.id
                pool.finish(job, ok=False)
            await asyncio.sleep(0.01)
    # Positions 0 and 1 take turns, two jobs a request: 0, 0, 1, 1, 0, 0, 1, 1, 0, 0.
    assert failed == 10
    assert reviews.status(game_id) == {"status": "none"}
    store = live.app.state.store  # type: ignore[attr-defined]
    await until(lambda: store.load_review_queue() == [])
    assert review_of(live, game_id) is None
    await reviews.close()
    await analysis.close()


async def test_evaluations_known_at_the_budget_are_reused(live: LiveServer) -> None:
    """A position already evaluated deep enough needs no job; a shallower one does."""
    game_id = await finished(live, ["e4", "c5"])
    pool = NamedPool(free=3)
    analysis, reviews = services(live, pool, {"depth": 6})
    state = live.app.state.games.get(game_id).state  # type: ignore[attr-defined]
    fens = [state.board_at(ply).fen() for ply in range(3)]
    deep: EvalJSON = {
        "ply": 0,
        "depth": 8,
        "score": {"cp": 25},
        "best": "e2e4",
        "pv": ["e2e4"],
        "nodes": 90_000,
        "engine": "fake",
    }
    analysis.cache.put(position_key(fens[0]), deep)
    analysis.cache.put(position_key(fens[1]), {**deep, "depth": 5, "best": "c7c5"})
    await reviews.request(game_id)
    await until(lambda: len(pool.submitted) == 2)
    assert [job.fen for job in pool.submitted] == fens[1:]
    for job in list(pool.submitted):
        report(analysis, job, 6, 1000)
        pool.finish(job)
    await until(lambda: review_of(live, game_id) is not None)
    assert review_of(live, game_id)["initial"] == {"score": {"cp": 25}, "depth": 8, "best": "e2e4"}
    await reviews.close()
    await analysis.close()


async def test_a_request_after_a_cancelled_one_in_the_same_millisecond_is_kept(
    live: LiveServer,
) -> None:
    """Request times only go up across the service: a review asked for again within the
    millisecond of one cancelled by a takeback is a new request that the cancelled one's
    removal does not take off the stored queue."""
    game_id = await finished(live, ["e4"])
    pool = NamedPool(free=0)
    analysis, reviews = services(live, pool, {"depth": 6})
    store = live.app.state.store  # type: ignore[attr-defined]
    await reviews.request(game_id)
    assert store.load_review_queue() == [(game_id, 1_000)]
    state = live.app.state.games.get(game_id).state  # type: ignore[attr-defined]
    reviews.on_commit(state, [{"type": "takeback"}])  # type: ignore[list-item]
    await reviews.request(game_id)
    await until(lambda: not reviews._tasks)
    assert store.load_review_queue() == [(game_id, 1_001)]
    assert reviews.status(game_id)["status"] in ("queued", "running")
    await reviews.close()
    await analysis.close()


async def test_a_failed_start_drops_only_its_own_request(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When reading a game to review fails (the store unavailable for a moment), a newer
    request of that game, asked for meanwhile, stays and is reviewed."""
    game_id = await finished(live, ["e4"])
    pool = NamedPool(free=0)
    analysis, reviews = services(live, pool, {"depth": 6})
    games = live.app.state.games  # type: ignore[attr-defined]
    reading = asyncio.Event()
    fail = asyncio.Event()
    real_fetch_many = games.fetch_many

    async def failing_fetch_many(ids: list[str]) -> Any:
        monkeypatch.setattr(games, "fetch_many", real_fetch_many)
        reading.set()
        await fail.wait()
        raise StoreUnavailable("the disk is busy")

    monkeypatch.setattr(games, "fetch_many", failing_fetch_many)
    await reviews.request(game_id)
    await reading.wait()
    await reviews.request(game_id)
    fail.set()
    await until(lambda: reviews.status(game_id)["status"] == "running")
    await reviews.close()
    await analysis.close()
