"""The store's review queue: requests survive a reopen, a newer one replaces an older one."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from workers.store import EventRecord, Store, StoreConflict


async def test_review_requests_survive_a_reopen_in_request_order(tmp_path: Path) -> None:
    """Queued reviews read back oldest first after the store is closed and opened again;
    dropping one request leaves the others."""
    store = Store(tmp_path / "h.sqlite3")
    store.open()
    for game in ("gameAAAA", "gameBBBB", "gameCCCC"):
        await store.create_game(game, {"id": game}, ("w", "b"))
    await store.queue_review("gameBBBB", 200)
    await store.queue_review("gameAAAA", 100)
    await store.queue_review("gameCCCC", 300)
    await store.dequeue_review("gameCCCC", 300)
    store.close()
    again = Store(tmp_path / "h.sqlite3")
    again.open()
    try:
        assert await asyncio.to_thread(again.load_review_queue) == [
            ("gameAAAA", 100),
            ("gameBBBB", 200),
        ]
    finally:
        again.close()


async def test_a_newer_request_outlives_the_end_of_an_older_one(tmp_path: Path) -> None:
    """Asking again replaces the request; the end of the older review leaves the newer one."""
    store = Store(tmp_path / "h.sqlite3")
    store.open()
    try:
        await store.create_game("gameAAAA", {"id": "gameAAAA"}, ("w", "b"))
        await store.queue_review("gameAAAA", 100)
        await store.queue_review("gameAAAA", 150)
        await store.dequeue_review("gameAAAA", 100)
        assert store.load_review_queue() == [("gameAAAA", 150)]
        await store.dequeue_review("gameAAAA", 150)
        assert store.load_review_queue() == []
        with pytest.raises(StoreConflict):
            await store.queue_review("noSuchGame", 1)
    finally:
        store.close()


def test_a_log_from_before_reviews_gets_the_queue(tmp_path: Path) -> None:
    """A history written before reviews existed opens with an empty review queue."""
    path = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE games (id TEXT PRIMARY KEY, setup TEXT NOT NULL, "
        "white_token TEXT NOT NULL, black_token TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO games VALUES ('gameAAAA', '{}', 'w', 'b')")
    conn.commit()
    conn.close()
    store = Store(path)
    store.open()
    try:
        assert store.load_review_queue() == []
    finally:
        store.close()


async def test_events_that_end_a_game_can_carry_its_review_request(tmp_path: Path) -> None:
    """A review request appended with events is stored with them, in request order."""
    store = Store(tmp_path / "h.sqlite3")
    store.open()
    try:
        await store.create_game("gameAAAA", {"id": "gameAAAA"}, ("w", "b"))
        end = EventRecord("gameAAAA", 1, "end", None, '{"type":"end"}')
        await store.append([end], review_ms=500)
        assert store.load_review_queue() == [("gameAAAA", 500)]
        await store.queue_review("gameAAAA", 501)
        assert store.load_review_queue() == [("gameAAAA", 501)]
    finally:
        store.close()
