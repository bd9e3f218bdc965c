"""The commit path's seams: cancellation of a caller, failing side effects, a dying
writer thread. Real store, real server; the faults are injected at the seam."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from app.games import GameService
from tests.conftest import serve
from workers.store import Store, StoreUnavailable, _Write


class GatedStore(Store):
    """A real store whose writer waits at a gate before each batch (to cancel callers
    while their write is queued), or fails with a non-sqlite error when told to."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.explode = False

    def _execute(self, conn: sqlite3.Connection, batch: list[_Write]) -> None:  # type: ignore[override]
        self.entered.set()
        self.gate.wait(10)
        if self.explode:
            raise RuntimeError("a bug in the writer")
        Store._execute(conn, batch)


async def wait_for(predicate: object, timeout_s: float = 5.0) -> None:
    """Poll a condition on the loop until it holds."""
    for _ in range(int(timeout_s / 0.01)):
        if predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")


async def test_a_cancelled_move_is_still_applied_when_its_write_lands(tmp_path: Path) -> None:
    """Cancelling the caller after its move was queued leaves memory and disk agreeing: the move is applied and play goes on."""
    store = GatedStore(tmp_path / "data" / "grandmaster.sqlite3")
    async with serve(tmp_path / "data", store=store) as live:
        game_id, tokens = await live.started_game()
        service: GameService = live.app.state.games  # type: ignore[attr-defined]
        game = service.get(game_id)
        store.gate.clear()
        store.entered.clear()
        caller = asyncio.create_task(service.move(game, "e4", by=None, ply=0, clock_ms=None))
        await wait_for(store.entered.is_set)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        store.gate.set()
        await wait_for(lambda: game.state.ply == 1)
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": "e5", "ply": 1},
            headers=live.auth(tokens["black"]),
        )
        assert r.status_code == 200, r.text
        stored = {g.id: g for g in await asyncio.to_thread(store.load_games)}[game_id]
        assert [e["uci"] for e in stored.events if e["type"] == "move"] == ["e2e4", "e7e5"]


async def test_a_failing_side_effect_does_not_unaccept_a_stored_move(tmp_path: Path) -> None:
    """An observer that raises after the commit: the move answers 200, is applied, and the flag timer is re-armed."""
    async with serve(tmp_path / "data") as live:
        game_id, tokens = await live.started_game()
        service: GameService = live.app.state.games  # type: ignore[attr-defined]

        def broken(*_: object) -> None:
            raise RuntimeError("observer bug")

        service.observers.insert(0, broken)
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": "e4", "ply": 0},
            headers=live.auth(tokens["white"]),
        )
        assert r.status_code == 200, r.text
        assert r.json()["ply"] == 1
        assert service.get(game_id).timer is not None
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": "e5", "ply": 1},
            headers=live.auth(tokens["black"]),
        )
        assert r.status_code == 200


async def test_a_dying_writer_settles_its_writes_and_refuses_later_ones(tmp_path: Path) -> None:
    """A non-sqlite error in the writer thread fails that batch with StoreUnavailable, tells the owner once, and every later write fails at once instead of hanging."""
    store = GatedStore(tmp_path / "h.sqlite3")
    failures: list[BaseException] = []
    store.on_failure = failures.append
    store.open()
    try:
        await store.create_game("gameAAAA", {}, ("w", "b"))
        store.explode = True
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.create_game("gameBBBB", {}, ("w", "b")), 5)
        assert not store.is_healthy
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(store.create_game("gameCCCC", {}, ("w", "b")), 1)
        assert len(failures) == 1
    finally:
        store.close()


async def test_a_dead_writer_answers_503_over_http(tmp_path: Path) -> None:
    """Once the writer died, a move gets 503 unavailable at once and /healthz is 503."""
    store = GatedStore(tmp_path / "data" / "grandmaster.sqlite3")
    async with serve(tmp_path / "data", store=store) as live:
        game_id, tokens = await live.started_game()
        store.explode = True
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": "e4", "ply": 0},
            headers=live.auth(tokens["white"]),
        )
        assert (r.status_code, r.json()["error"]["code"]) == (503, "unavailable")
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": "e4", "ply": 0},
            headers=live.auth(tokens["white"]),
        )
        assert r.status_code == 503
        assert (await live.client.get("/healthz")).status_code == 503
        assert (await live.client.get(f"/api/games/{game_id}")).json()["ply"] == 0
