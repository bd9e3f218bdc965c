"""The tournament socket: the tournament first, every game (later rounds too), rounds,
standings, and a resume that is per game."""

from __future__ import annotations

from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.app.test_live import recv_json, ws_url
from tests.conftest import LiveServer

SWISS = {
    "name": "Live Open",
    "format": "swiss",
    "rounds": 3,
    "clock": {"initial": 600, "increment": 5},
    "players": [{"name": f"Player {i}", "rating": 2400 - 10 * i} for i in range(4)],
}


async def recv_until(ws: Any, kind: str, limit: int = 50) -> dict[str, Any]:
    """The next message of type ``kind`` (others are skipped)."""
    for _ in range(limit):
        message = await recv_json(ws)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


async def test_tournament_socket_sends_tournament_rounds_games_and_standings(
    live: LiveServer,
) -> None:
    """A spectator sees the tournament, a round message and a snapshot per new game, game events, and standings after a result."""
    r = await live.client.post("/api/tournaments", json=SWISS, headers=live.auth())
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    async with websockets.connect(ws_url(live, f"/ws/tournaments/{tid}")) as ws:
        first = await recv_json(ws)
        assert first["type"] == "tournament"
        assert first["tournament"]["id"] == tid
        r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
        assert r.status_code == 201, r.text
        games = [p["game"] for p in r.json()["pairings"]]
        seen: dict[str, list[str]] = {}
        for _ in range(12):
            message = await recv_json(ws)
            game = message.get("game", "")
            game_id = game["id"] if isinstance(game, dict) else game
            seen.setdefault(message["type"], []).append(game_id)
            if len(seen.get("start", [])) == 2 and "round" in seen:
                break
        assert sorted(seen["snapshot"]) == sorted(games)
        assert sorted(seen["start"]) == sorted(games)
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/results",
            json={"board": 1, "result": "1-0"},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
        standings = await recv_until(ws, "standings")
        assert standings["tournament"] == tid
        assert standings["round"] == 1
        top = standings["standings"][0]
        assert (top["rank"], top["points"]) == (1, 1.0)
        assert "seq" not in standings


async def test_resume_is_per_game(live: LiveServer) -> None:
    """``since=<game>:<seq>,...`` replays each game from its own seq; a game not named gets a snapshot."""
    r = await live.client.post("/api/tournaments", json=SWISS, headers=live.auth())
    tid = r.json()["id"]
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    paired = r.json()
    g1, g2 = (p["game"] for p in paired["pairings"])
    # Game 1 gets two moves; game 2 none: their seqs differ (g1 at 3, g2 at 1).
    for ply, san in enumerate(["e4", "e5"]):
        token = paired["tokens"][g1]["white" if ply % 2 == 0 else "black"]
        r = await live.client.post(
            f"/api/games/{g1}/moves", json={"move": san, "ply": ply}, headers=live.auth(token)
        )
        assert r.status_code == 200, r.text
    url = ws_url(live, f"/ws/tournaments/{tid}?since={g1}:2,{g2}:1")
    async with websockets.connect(url) as ws:
        assert (await recv_json(ws))["type"] == "tournament"
        replayed = await recv_json(ws)
        assert (replayed["type"], replayed["game"], replayed["seq"]) == ("move", g1, 3)
        # Game 2 was seen up to its last event: nothing is replayed for it; the next
        # message is live.
        r = await live.client.post(
            f"/api/games/{g2}/moves",
            json={"move": "d4", "ply": 0},
            headers=live.auth(paired["tokens"][g2]["white"]),
        )
        nxt = await recv_until(ws, "move")
        assert (nxt["game"], nxt["seq"]) == (g2, 2)
    url = ws_url(live, f"/ws/tournaments/{tid}?since={g1}:3")
    async with websockets.connect(url) as ws:
        assert (await recv_json(ws))["type"] == "tournament"
        snap = await recv_json(ws)
        assert (snap["type"], snap["game"]["id"]) == ("snapshot", g2)
    for bad in ("5", f"{g1}:x", f"{g1}:-1", "a-b:1"):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(ws_url(live, f"/ws/tournaments/{tid}?since={bad}"))
        assert refused.value.response.status_code == 422
    with pytest.raises(InvalidStatus):
        await websockets.connect(ws_url(live, "/ws/tournaments/Nope0000"))
