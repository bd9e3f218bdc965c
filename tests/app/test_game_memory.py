"""Finished games leave memory and come back on demand; start-up reads only what is live.

Real server, real store; the game clock is injected so that "recently used" is exact.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets

from app.games import RECENT_MS, GameService
from engine.rules.snapshot import SNAPSHOT_EVERY
from tests.conftest import FakeTime, LiveServer, serve
from workers.store import Store


def ws_url(live: LiveServer, path: str) -> str:
    """The ``ws://`` address of ``path`` on the live server."""
    return live.url.replace("http://", "ws://") + path


def games_of(live: LiveServer) -> GameService:
    """The server's game service (in-process server)."""
    service: GameService = live.app.state.games  # type: ignore[attr-defined]
    return service


async def finished_game(live: LiveServer, moves: tuple[str, ...] = ("e4", "e5", "Nf3")) -> str:
    """A game played a few moves and resigned; returns its id."""
    game_id, tokens = await live.started_game()
    for ply, move in enumerate(moves):
        side = "white" if ply % 2 == 0 else "black"
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": move, "ply": ply},
            headers=live.auth(tokens[side]),
        )
        assert r.status_code == 200, r.text
    r = await live.client.post(f"/api/games/{game_id}/resign", headers=live.auth(tokens["black"]))
    assert r.status_code == 200, r.text
    return game_id


def without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """``data`` without ``keys``."""
    return {k: v for k, v in data.items() if k not in keys}


async def test_finished_games_leave_memory_and_are_served_from_the_store(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """Beyond the cache, finished games are evicted; REST, PGN, sockets, lists and player tokens still work for them."""
    async with serve(tmp_path / "data", now_ms=fake_time, game_cache=1) as live:
        service = games_of(live)
        ids = [await finished_game(live) for _ in range(3)]
        running, _ = await live.started_game()
        before = {g: (await live.client.get(f"/api/games/{g}")).json() for g in ids}
        pgns = {g: (await live.client.get(f"/api/games/{g}/pgn")).text for g in ids}
        fake_time.advance(RECENT_MS + 1)
        service.evict()
        # The running game and one finished game (the cache) are left.
        assert service.loaded == 2
        assert running in service
        evicted = [g for g in ids if g not in service]
        assert len(evicted) == 2

        for game_id in ids:
            assert (await live.client.get(f"/api/games/{game_id}")).json() == before[game_id]
            assert (await live.client.get(f"/api/games/{game_id}/pgn")).text == pgns[game_id]
        listed = (await live.client.get("/api/games", params={"limit": 10})).json()
        assert listed["next"] is None
        assert [g["id"] for g in listed["games"]] == [running, *reversed(ids)]
        for item in listed["games"][1:]:
            assert item == before[item["id"]]
        finished = (await live.client.get("/api/games", params={"status": "finished"})).json()
        assert {g["id"] for g in finished["games"]} == set(ids)

        fake_time.advance(RECENT_MS + 1)
        service.evict()
        gone = next(g for g in ids if g not in service)
        async with websockets.connect(ws_url(live, f"/ws/games/{gone}")) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot["type"] == "snapshot"
            assert without(snapshot["game"], "spectators") == without(before[gone], "spectators")
            # Watched: it stays however old and however small the cache.
            fake_time.advance(RECENT_MS + 1)
            service.evict()
            assert gone in service
        for _ in range(200):
            if live.app.state.hub.spectators(gone) == 0:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        # No longer watched: the least recently used again once another game is asked for.
        other = next(g for g in ids if g != gone)
        assert (await live.client.get(f"/api/games/{other}")).status_code == 200
        fake_time.advance(RECENT_MS + 1)
        service.evict()
        assert gone not in service
        assert other in service


async def test_player_tokens_of_an_evicted_game_still_identify_its_players(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """A player of an evicted game gets the game's answer (409 game_over), not 401; a stranger still gets 401."""
    async with serve(tmp_path / "data", now_ms=fake_time, game_cache=0) as live:
        game_id, tokens = await live.started_game()
        r = await live.client.post(
            f"/api/games/{game_id}/resign", headers=live.auth(tokens["white"])
        )
        assert r.status_code == 200
        fake_time.advance(RECENT_MS + 1)
        games_of(live).evict()
        assert game_id not in games_of(live)
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": "e5", "ply": 0},
            headers=live.auth(tokens["black"]),
        )
        assert (r.status_code, r.json()["error"]["code"]) == (409, "game_over")
        r = await live.client.post(f"/api/games/{game_id}/resign", headers=live.auth("not-a-token"))
        assert r.status_code == 401
        # Public reads that look at the bearer find the player in the store, too.
        fake_time.advance(RECENT_MS + 1)
        games_of(live).evict()
        assert game_id not in games_of(live)
        for path in ("/api/games", "/api/tournaments"):
            r = await live.client.get(path, headers=live.auth(tokens["white"]))
            assert r.status_code == 200, (path, r.text)
            r = await live.client.get(path, headers=live.auth("not-a-token"))
            assert r.status_code == 401


async def test_a_restart_loads_only_unfinished_games_from_their_snapshots(tmp_path: Path) -> None:
    """After a restart only unfinished games are in memory; a long game is read from its snapshot and equals the game before."""
    data = tmp_path / "data"
    async with serve(data) as live:
        done = [await finished_game(live) for _ in range(3)]
        long_game, _ = await live.started_game()
        service = games_of(live)
        for _ in range(SNAPSHOT_EVERY + 40):
            await service.checkpoint_clocks()
        before = (await live.client.get(f"/api/games/{long_game}")).json()
        assert before["seq"] > SNAPSHOT_EVERY
    store = Store(data / "grandmaster.sqlite3")
    [stored] = store.load_games()
    assert stored.id == long_game
    assert stored.snapshot is not None and stored.snapshot["seq"] >= SNAPSHOT_EVERY
    # The snapshot, then the events after it and a replay window before it: not all.
    assert stored.events[0]["seq"] > 1
    # (Shutdown recorded the running clock once more.)
    assert stored.events[-1]["seq"] == before["seq"] + 1
    async with serve(data) as live:
        assert set(games_of(live).find()) == {games_of(live).get(long_game)}
        after = (await live.client.get(f"/api/games/{long_game}")).json()
        assert without(after, "clock", "seq") == without(before, "clock", "seq")
        for game_id in done:
            r = await live.client.get(f"/api/games/{game_id}")
            assert r.json()["status"] == "finished"
        metrics = (await live.client.get("/metrics")).text
        assert "gm_games_in_memory 4.0" in metrics


async def test_a_log_from_before_statuses_is_upgraded_at_start(tmp_path: Path) -> None:
    """A store without the status, summary and snapshot columns starts, fills them, and serves every game as before."""
    data = tmp_path / "data"
    async with serve(data) as live:
        done = await finished_game(live)
        running, _ = await live.started_game(white={"name": "Still playing"})
        before = {g: (await live.client.get(f"/api/games/{g}")).json() for g in (done, running)}
    path = data / "grandmaster.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX games_by_tournament")
        conn.execute("DROP INDEX games_by_status")
        for column in ("tournament", "status", "summary", "snapshot", "snapshot_seq"):
            conn.execute(f"ALTER TABLE games DROP COLUMN {column}")
    async with serve(data) as live:
        for game_id, game in before.items():
            after = (await live.client.get(f"/api/games/{game_id}")).json()
            # (Shutdown recorded the running clock: one event more.)
            assert without(after, "clock", "seq") == without(game, "clock", "seq")
        listed = (await live.client.get("/api/games")).json()["games"]
        assert [g["id"] for g in listed] == [running, done]
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT id, status FROM games").fetchall())
        assert rows == {done: "finished", running: "started"}
        assert conn.execute("SELECT count(*) FROM games WHERE summary IS NULL").fetchone() == (0,)


async def test_a_delayed_tournament_shows_results_of_games_no_longer_in_memory(
    tmp_path: Path,
) -> None:
    """After a restart, a delayed tournament's public view takes the results of its released, evicted games from the store."""
    data = tmp_path / "data"
    body = {
        "name": "Delayed",
        "format": "round_robin",
        "clock": {"initial": 600, "increment": 0},
        "delay": 1,
        "players": [{"name": n} for n in "ABCD"],
    }
    async with serve(data, game_cache=0) as live:
        tid = (await live.client.post("/api/tournaments", json=body, headers=live.auth())).json()[
            "id"
        ]
        r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
        game = r.json()["pairings"][0]["game"]
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/results",
            json={"board": 1, "result": "1-0"},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
        for _ in range(300):
            public = (await live.client.get(f"/api/tournaments/{tid}")).json()
            if public["rounds"] and public["rounds"][0]["pairings"][0]["result"] == "1-0":
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the result was never released")
    async with serve(data, game_cache=0) as live:
        assert game not in games_of(live)
        public = (await live.client.get(f"/api/tournaments/{tid}")).json()
        assert public["rounds"][0]["pairings"][0]["result"] == "1-0"
        assert public["standings"][0]["points"] == 1


async def test_a_reloaded_game_resumes_since_from_its_stored_events(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """A game read back from the store replays the events after ``since=`` from its stored window, not a snapshot."""
    async with serve(tmp_path / "data", now_ms=fake_time, game_cache=0) as live:
        game_id = await finished_game(live)
        last = (await live.client.get(f"/api/games/{game_id}")).json()["seq"]
        fake_time.advance(RECENT_MS + 1)
        games_of(live).evict()
        assert game_id not in games_of(live)
        url = ws_url(live, f"/ws/games/{game_id}?since={last - 2}")
        async with websockets.connect(url) as ws:
            first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
        assert [first["seq"], second["seq"]] == [last - 1, last]
        assert second["type"] == "end"


async def test_a_round_starts_although_a_forfeited_board_left_memory(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """A scheduled round whose forfeited board's game was evicted before the start still starts its other games."""
    async with serve(tmp_path / "data", now_ms=fake_time, game_cache=0) as live:
        body = {
            "name": "Scheduled",
            "format": "round_robin",
            "clock": {"initial": 600, "increment": 0},
            "players": [{"name": n} for n in "ABCD"],
        }
        tid = (await live.client.post("/api/tournaments", json=body, headers=live.auth())).json()[
            "id"
        ]
        start = datetime.now(UTC) + timedelta(seconds=3)
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds",
            json={"start_at": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"},
            headers=live.auth(),
        )
        assert r.status_code == 201, r.text
        forfeited, other = (p["game"] for p in r.json()["pairings"])
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/results",
            json={"board": 1, "result": "+/-"},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
        fake_time.advance(RECENT_MS + 1)
        games_of(live).evict()
        assert forfeited not in games_of(live)
        # The game starts first and the round is recorded as running just after: wait for both.
        for _ in range(1500):
            game = (await live.client.get(f"/api/games/{other}")).json()
            tournament = (await live.client.get(f"/api/tournaments/{tid}")).json()
            if game["status"] == "started" and tournament["rounds"][0]["status"] == "running":
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"the round never started: {game['status']}, {tournament}")


async def test_a_delayed_correction_and_status_stay_hidden_until_released(live: LiveServer) -> None:
    """With a delay, a correction of a game already shown in full is held back like any event, and the public status filter lists games by their public status."""
    body = {
        "name": "Delayed",
        "format": "round_robin",
        "clock": {"initial": 600, "increment": 0},
        "delay": 1,
        "players": [{"name": n} for n in "AB"],
    }
    tid = (await live.client.post("/api/tournaments", json=body, headers=live.auth())).json()["id"]
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    game = r.json()["pairings"][0]["game"]

    async def public_result() -> str:
        data: dict[str, Any] = (await live.client.get(f"/api/games/{game}")).json()
        return str(data["result"])

    async def wait_result(wanted: str) -> None:
        for _ in range(500):
            if await public_result() == wanted:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"the public never saw {wanted}")

    await live.client.post(
        f"/api/tournaments/{tid}/rounds/1/results",
        json={"board": 1, "result": "1-0"},
        headers=live.auth(),
    )
    # Finished for the store and the operator, not yet for the public.
    hidden = (await live.client.get("/api/games", params={"status": "finished"})).json()
    assert hidden["games"] == []
    mine = await live.client.get("/api/games", params={"status": "finished"}, headers=live.auth())
    assert [g["id"] for g in mine.json()["games"]] == [game]
    shown = (await live.client.get("/api/games", params={"status": "created"})).json()
    assert [g["id"] for g in shown["games"]] == [game]
    await wait_result("1-0")
    finished = (await live.client.get("/api/games", params={"status": "finished"})).json()
    assert [g["id"] for g in finished["games"]] == [game]
    await live.client.post(
        f"/api/tournaments/{tid}/rounds/1/results",
        json={"board": 1, "result": "0-1"},
        headers=live.auth(),
    )
    assert await public_result() == "1-0"
    assert '[Result "1-0"]' in (await live.client.get(f"/api/games/{game}/pgn")).text
    await wait_result("0-1")
