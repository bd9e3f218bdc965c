"""The server's log: one JSON object per line, no token ever, no line per spectator."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets

from tests.conftest import ServerProcess

AUTH = {"Authorization": "Bearer operator-secret-token"}


def test_logs_are_json_lines_without_tokens_or_spectator_chatter(
    server_process: ServerProcess,
) -> None:
    """After games, moves with player tokens, a refused token and spectators, every log line is a JSON object with time, level, logger and message; no token appears; spectators' connections make no INFO line."""
    server = server_process
    server.env["GM_ACCESS_LOG"] = "true"
    server.start()
    body = {
        "white": {"name": "W"},
        "black": {"name": "B"},
        "clock": {"initial": 60, "increment": 0},
    }
    created = httpx.post(server.url + "/api/games", json=body, headers=AUTH).json()
    game_id, tokens = created["game"]["id"], created["tokens"]
    httpx.post(f"{server.url}/api/games/{game_id}/start", headers=AUTH)
    r = httpx.post(
        f"{server.url}/api/games/{game_id}/moves",
        json={"move": "e4", "ply": 0},
        headers={"Authorization": f"Bearer {tokens['white']}"},
    )
    assert r.status_code == 200
    wrong = httpx.post(
        f"{server.url}/api/games/{game_id}/resign", headers={"Authorization": "Bearer nope-token"}
    )
    assert wrong.status_code == 401

    async def watch() -> None:
        url = server.url.replace("http://", "ws://") + f"/ws/games/{game_id}"
        for _ in range(5):
            async with websockets.connect(url) as ws:
                await ws.recv()

    asyncio.run(watch())
    server.stop()
    lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
    assert lines
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(record), line
        assert record["time"].endswith(("Z", "+00:00"))
    text = "\n".join(lines)
    for secret in ("operator-secret-token", tokens["white"], tokens["black"], "nope-token"):
        assert secret not in text
    chatter = [json.loads(line) for line in lines if "WebSocket" in line]
    assert [r for r in chatter if r["level"] == "INFO"] == []
