"""The authorization matrix: every writing route, by every kind of bearer.

Bearers: none (a spectator), the game's player to move, its other player, a player of
another game, the operator, and an account with the broadcast scopes. Each case runs on a
fresh started game, so one case's change cannot decide another's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import LiveServer

BEARERS = ("none", "mover", "other_side", "other_game", "operator", "account")


@dataclass
class Setting:
    """A started game (White to move), a second game, and an account token."""

    game: str
    tokens: dict[str, str]
    other_tokens: dict[str, str]
    account: str


async def setting(live: LiveServer) -> Setting:
    """Create the games and the account for one case."""
    game, tokens = await live.started_game()
    _, other = await live.started_game()
    r = await live.client.post("/api/tokens", json={"account": "Alice"}, headers=live.auth())
    assert r.status_code == 201, r.text
    return Setting(game, tokens, other, r.json()["token"])


def headers(live: LiveServer, s: Setting, bearer: str) -> dict[str, str]:
    """The Authorization header of ``bearer``."""
    token = {
        "none": None,
        "mover": s.tokens["white"],
        "other_side": s.tokens["black"],
        "other_game": s.other_tokens["white"],
        "operator": live.operator_token,
        "account": s.account,
    }[bearer]
    return {} if token is None else {"Authorization": f"Bearer {token}"}


GAME = {"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 60, "increment": 0}}
TOURNAMENT = {
    "name": "Matrix Open",
    "format": "round_robin",
    "clock": {"initial": 60, "increment": 0},
    "players": [{"name": "A"}, {"name": "B"}],
}
# (method, path with {game}, body, expected status per bearer in BEARERS order)
ROUTES: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("POST", "/api/games", GAME, (401, 403, 403, 403, 201, 403)),
    ("POST", "/api/games/{game}/start", None, (401, 403, 403, 403, 409, 403)),
    ("POST", "/api/games/{game}/moves", {"move": "e4", "ply": 0}, (401, 200, 409, 403, 200, 403)),
    ("POST", "/api/games/{game}/resign", None, (401, 200, 200, 403, 403, 403)),
    ("POST", "/api/games/{game}/draw", {"action": "offer"}, (401, 200, 200, 403, 403, 403)),
    (
        "POST",
        "/api/games/{game}/result",
        {"result": "1-0", "reason": "arbiter"},
        (401, 403, 403, 403, 200, 403),
    ),
    ("POST", "/api/tournaments", TOURNAMENT, (401, 403, 403, 403, 201, 403)),
    ("GET", "/api/tokens", None, (401, 403, 403, 403, 200, 403)),
    ("POST", "/broadcast/new", {"name": "Matrix Broadcast"}, (401, 403, 403, 403, 200, 200)),
    ("GET", "/api/account", None, (401, 403, 403, 403, 200, 200)),
    ("GET", "/api/games/{game}", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/games/{game}/pgn", None, (200, 200, 200, 200, 200, 200)),
    ("POST", "/api/games/{game}/review", None, (401, 403, 403, 403, 409, 403)),
    ("GET", "/api/games/{game}/review", None, (200, 200, 200, 200, 200, 200)),
]
CASES = [
    pytest.param(method, path, body, bearer, expected[i], id=f"{method} {path} by {bearer}")
    for method, path, body, expected in ROUTES
    for i, bearer in enumerate(BEARERS)
]


@pytest.mark.parametrize(("method", "path", "body", "bearer", "expected"), CASES)
async def test_authorization_matrix(
    live: LiveServer, method: str, path: str, body: Any, bearer: str, expected: int
) -> None:
    """Each route answers each bearer as the contract says; a refusal changes nothing."""
    s = await setting(live)
    before = (await live.client.get(f"/api/games/{s.game}", headers=live.auth())).json()
    r = await live.client.request(
        method, path.format(game=s.game), json=body, headers=headers(live, s, bearer)
    )
    assert r.status_code == expected, r.text
    if r.status_code in (401, 403):
        assert isinstance(r.json()["error"], str | dict)
        after = (await live.client.get(f"/api/games/{s.game}", headers=live.auth())).json()
        assert {k: v for k, v in after.items() if k != "clock"} == {
            k: v for k, v in before.items() if k != "clock"
        }
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
