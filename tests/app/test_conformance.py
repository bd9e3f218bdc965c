"""Edges of the contract: empty bodies, bearer challenges, unknown WebSocket paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServer, serve


async def test_an_empty_body_is_400(live: LiveServer) -> None:
    """A JSON route sent no body at all answers 400 bad_request, not a schema error."""
    for headers in (live.auth(), {**live.auth(), "Content-Type": "application/json"}):
        r = await live.client.post("/api/games", content=b"", headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")


async def test_a_401_carries_a_bearer_challenge(live: LiveServer) -> None:
    """Every 401 says how to authenticate (WWW-Authenticate: Bearer), lichess routes too."""
    game_id, _ = await live.started_game()
    for r in (
        await live.client.post(f"/api/games/{game_id}/start"),
        await live.client.post(f"/api/games/{game_id}/resign", headers=live.auth("nope")),
        await live.client.post("/broadcast/new", json={"name": "Nope Open"}),
    ):
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_an_unknown_websocket_path_is_404_in_the_contracts_format(live: LiveServer) -> None:
    """A WebSocket handshake on a path that is no socket route is refused with 404 and the contract's error body."""
    url = live.url.replace("http://", "ws://") + "/ws/nothing/here"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    response = refused.value.response
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == "not_found"


async def test_anonymous_requests_are_rate_limited_per_address(tmp_path: Path) -> None:
    """Past the burst, requests without a token get 429 with Retry-After; a token, health checks, and a limit of 0 are not limited."""
    async with serve(tmp_path / "data", anon_requests_per_s=1, anon_requests_burst=5) as live:
        statuses = [(await live.client.get("/api/games")).status_code for _ in range(8)]
        assert statuses[:5] == [200] * 5 and statuses[-1] == 429
        r = await live.client.get("/api/games")
        assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert (await live.client.get("/api/games", headers=live.auth())).status_code == 200
        assert (await live.client.get("/healthz")).status_code == 200
    async with serve(tmp_path / "data2", anon_requests_per_s=0) as live:
        statuses = [(await live.client.get("/api/games")).status_code for _ in range(100)]
        assert set(statuses) == {200}
