"""The broadcast delay: the public sees the tournament as it was ``delay`` seconds ago,
event by event; the operator and the game's players see it live."""

from __future__ import annotations

import asyncio
import time

import websockets

from tests.app.test_live import recv_json, ws_url
from tests.conftest import LiveServer

# Long enough that the requests each test makes before a release land inside the delay
# even on a loaded machine (make test runs two test processes).
DELAY_S = 2


async def test_delay_holds_spectators_and_public_reads_back_but_not_the_operator(
    live: LiveServer,
) -> None:
    """Moves reach spectators and public REST exactly the delay after they were accepted, one by one; the operator and players see them at once."""
    body = {
        "name": "Delayed",
        "format": "round_robin",
        "clock": {"initial": 600, "increment": 0},
        "delay": DELAY_S,
        "players": [{"name": "A"}, {"name": "B"}],
    }
    r = await live.client.post("/api/tournaments", json=body, headers=live.auth())
    tid = r.json()["id"]
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    paired = r.json()
    game = paired["pairings"][0]["game"]
    tokens = paired["tokens"][game]
    paired_at = time.monotonic()
    # The round is not public yet: the public tournament has no round, the operator's has.
    public = (await live.client.get(f"/api/tournaments/{tid}")).json()
    assert public["rounds"] == []
    live_view = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
    assert len(live_view["rounds"]) == 1
    async with websockets.connect(ws_url(live, f"/ws/games/{game}")) as ws:
        snapshot = await recv_json(ws)
        assert snapshot["game"]["status"] == "created"
        assert snapshot["game"]["seq"] == 0
        start = await recv_json(ws, DELAY_S + 3)
        assert start["type"] == "start"
        assert time.monotonic() - paired_at >= DELAY_S - 0.05
        acked: dict[int, float] = {}
        for ply, (side, san) in enumerate([("white", "e4"), ("black", "c5")]):
            r = await live.client.post(
                f"/api/games/{game}/moves",
                json={"move": san, "ply": ply},
                headers=live.auth(tokens[side]),
            )
            assert r.status_code == 200
            acked[ply + 1] = time.monotonic()
            # The player who moved sees the game live; the public does not, yet.
            mine = await live.client.get(f"/api/games/{game}", headers=live.auth(tokens[side]))
            assert mine.json()["ply"] == ply + 1
            public_game = (await live.client.get(f"/api/games/{game}")).json()
            assert public_game["ply"] == 0
            await asyncio.sleep(0.3)
        arrived: dict[int, float] = {}
        while len(arrived) < 2:
            message = await recv_json(ws, DELAY_S + 3)
            if message["type"] == "move":
                arrived[message["ply"]] = time.monotonic()
        for ply in (1, 2):
            assert arrived[ply] - acked[ply] >= DELAY_S - 0.05
            assert arrived[ply] - acked[ply] < DELAY_S + 1.0
        # Released one by one, as they happened: not in one burst.
        assert arrived[2] - arrived[1] >= 0.15
    public_game = (await live.client.get(f"/api/games/{game}")).json()
    assert [m["san"] for m in public_game["moves"]] == ["e4", "c5"]
    operator = (await live.client.get(f"/api/games/{game}", headers=live.auth())).json()
    assert operator["seq"] == public_game["seq"]


async def test_delay_holds_rounds_standings_and_public_exports(live: LiveServer) -> None:
    """The tournament socket's round and standings messages, the public standings and TRF all come the delay after the fact."""
    body = {
        "name": "Delayed rounds",
        "format": "round_robin",
        "clock": {"initial": 600, "increment": 0},
        "delay": DELAY_S,
        "players": [{"name": "A"}, {"name": "B"}],
    }
    tid = (await live.client.post("/api/tournaments", json=body, headers=live.auth())).json()["id"]
    async with websockets.connect(ws_url(live, f"/ws/tournaments/{tid}")) as ws:
        assert (await recv_json(ws))["type"] == "tournament"
        r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
        paired_at = time.monotonic()
        game = r.json()["pairings"][0]["game"]
        message = await recv_json(ws, DELAY_S + 3)
        while message["type"] != "round":
            message = await recv_json(ws, DELAY_S + 3)
        assert time.monotonic() - paired_at >= DELAY_S - 0.05
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/results",
            json={"board": 1, "result": "1-0"},
            headers=live.auth(),
        )
        decided_at = time.monotonic()
        standings = (await live.client.get(f"/api/tournaments/{tid}/standings")).json()
        assert [row["points"] for row in standings["standings"]] == [0.0, 0.0]
        trf = (await live.client.get(f"/api/tournaments/{tid}/trf")).text
        assert " 1.0 " not in trf
        operator = (
            await live.client.get(f"/api/tournaments/{tid}/standings", headers=live.auth())
        ).json()
        assert [row["points"] for row in operator["standings"]] == [1.0, 0.0]
        message = await recv_json(ws, DELAY_S + 3)
        while message["type"] != "standings":
            message = await recv_json(ws, DELAY_S + 3)
        assert time.monotonic() - decided_at >= DELAY_S - 0.05
        assert [row["points"] for row in message["standings"]] == [1.0, 0.0]
    public_game = (await live.client.get(f"/api/games/{game}")).json()
    assert public_game["result"] == "1-0"
