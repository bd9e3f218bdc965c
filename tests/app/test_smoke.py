"""Smoke test of the fixture itself."""

from tests.conftest import LiveServer


async def test_health_and_a_first_move(live: LiveServer) -> None:
    """A fresh server is healthy and accepts a first move from the operator."""
    assert (await live.client.get("/healthz")).json() == {"status": "ok"}
    game_id, _ = await live.started_game()
    r = await live.client.post(
        f"/api/games/{game_id}/moves", json={"move": "e4", "ply": 0}, headers=live.auth()
    )
    assert r.status_code == 200
    assert r.json()["moves"][0]["san"] == "e4"
