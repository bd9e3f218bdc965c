"""The SQLite history log: group commit, one move per ply, failure refuses writes."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import LiveServer, serve
from workers.store import EventRecord, Store, StoreConflict, StoreUnavailable


def record(game: str, seq: int, ply: int | None = None) -> EventRecord:
    """A stored event of ``game`` (a move when ``ply`` is given)."""
    kind = "move" if ply is not None else "start"
    return EventRecord(game, seq, kind, ply, f'{{"type":"{kind}","seq":{seq}}}')


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An open store in a temporary directory."""
    s = Store(tmp_path / "h.sqlite3")
    s.open()
    yield s  # type: ignore[misc]
    s.close()


async def test_concurrent_writes_are_grouped_into_few_commits(store: Store) -> None:
    """Two hundred concurrent appends for fifty games commit in far fewer transactions."""
    games = [f"game{i:04d}" for i in range(50)]
    await asyncio.gather(*(store.create_game(g, {"id": g}, ("w", "b")) for g in games))
    batches_before = store.stats.batches
    await asyncio.gather(
        *(store.append([record(g, seq, seq)]) for g in games for seq in range(1, 5))
    )
    assert store.stats.writes >= 250
    assert store.stats.batches - batches_before < 100
    loaded = {g.id: g for g in await asyncio.to_thread(store.load_games)}
    assert set(loaded) == set(games)
    assert all([e["seq"] for e in loaded[g].events] == [1, 2, 3, 4] for g in games)


async def test_a_second_move_at_a_ply_is_refused_alone(store: Store) -> None:
    """The unique (game, ply) index refuses a double move without failing the writes batched with it."""
    await store.create_game("gameAAAA", {}, ("w", "b"))
    await store.create_game("gameBBBB", {}, ("w", "b"))
    await store.append([record("gameAAAA", 1, 1)])
    results = await asyncio.gather(
        store.append([record("gameAAAA", 2, 1)]),
        store.append([record("gameBBBB", 1, 1)]),
        return_exceptions=True,
    )
    assert isinstance(results[0], StoreConflict)
    assert results[1] is None
    assert store.is_healthy


async def test_disk_full_refuses_this_and_every_later_write(tmp_path: Path) -> None:
    """When SQLite cannot grow the file, the write fails and the store stays refused."""
    store = Store(tmp_path / "h.sqlite3", max_page_count=32)
    store.open()
    try:
        await store.create_game("gameAAAA", {}, ("w", "b"))

        async def fill() -> None:
            for seq in range(1, 10_000):
                await store.append([EventRecord("gameAAAA", seq, "x", None, "y" * 2000)])

        with pytest.raises(StoreUnavailable):
            await fill()
        assert not store.is_healthy
        with pytest.raises(StoreUnavailable):
            await store.append([record("gameAAAA", 99_999)])
    finally:
        store.close()
    rows = (
        sqlite3.connect(tmp_path / "h.sqlite3")
        .execute("SELECT max(seq), count(*) FROM events")
        .fetchone()
    )
    assert rows[0] == rows[1]


async def test_api_answers_503_once_the_log_cannot_be_written(tmp_path: Path) -> None:
    """Moves after a failed write get 503 with nothing acknowledged, and /healthz turns 503."""
    store = Store(tmp_path / "data" / "grandmaster.sqlite3", max_page_count=24)
    async with serve(tmp_path / "data", store=store) as live:
        live: LiveServer  # type: ignore[no-redef]
        statuses: list[int] = []
        for _ in range(200):
            r = await live.client.post("/api/games", json=_GAME, headers=live.auth())
            statuses.append(r.status_code)
            if r.status_code != 201:
                break
        assert statuses[-1] == 503
        assert r.json()["error"]["code"] == "unavailable"
        games = (await live.client.get("/api/games", params={"limit": 500})).json()["games"]
        assert len(games) == statuses.count(201)
        assert (await live.client.get("/healthz")).status_code == 503
        game_id = games[0]["id"]
        r = await live.client.post(f"/api/games/{game_id}/start", headers=live.auth())
        assert r.status_code == 503
        assert (await live.client.get(f"/api/games/{game_id}")).json()["status"] == "created"


_GAME = {
    "white": {"name": "W" * 100},
    "black": {"name": "B" * 100},
    "clock": {"initial": 60, "increment": 0},
}
