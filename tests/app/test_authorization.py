"""The authorization matrix: every route of the app, by every kind of bearer.

Bearers: none (a spectator), the game's player to move, its other player, a player of
another game, the operator, an account with the broadcast scopes, and an account token
with only ``study:read`` (a spectator as far as writing goes). Each case runs on a fresh
started game (and tournament and broadcast, where its path names one), so one case's
change cannot decide another's answer; a refusal changes none of them, nor the tokens. Every HTTP and WebSocket route of the app has a row (or is named public below):
a route added without one fails ``test_every_route_has_a_row``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import pytest
import pytest_asyncio

from app import Settings, create_app
from tests.conftest import LiveServer, serve

BEARERS = ("none", "mover", "other_side", "other_game", "operator", "account", "reader")


@dataclass
class Setting:
    """A started game (White to move), a second game, two account tokens, and the
    tournament (Swiss, not paired) and broadcast (the operator's, one round) a path names."""

    game: str
    tokens: dict[str, str]
    other_tokens: dict[str, str]
    account: str
    reader: str
    ids: dict[str, str]


async def created(live: LiveServer, path: str, body: Any) -> Any:
    """POST ``body`` to ``path`` as the operator; the answer's JSON."""
    r = await live.client.post(path, json=body, headers=live.auth())
    assert r.status_code in (200, 201), r.text
    return r.json()


async def setting(live: LiveServer, path: str) -> Setting:
    """Create the games, the accounts, and what ``path`` names, for one case."""
    game, tokens = await live.started_game()
    _, other = await live.started_game()
    account = await created(live, "/api/tokens", {"account": "Alice"})
    reader = await created(live, "/api/tokens", {"account": "Carol", "scopes": ["study:read"]})
    ids = {"game": game, "token": account["id"]}
    if "{tournament}" in path:
        tournament = await created(live, "/api/tournaments", SWISS)
        ids |= {"tournament": tournament["id"], "player": tournament["players"][0]["id"]}
    if "{tour}" in path or "{round}" in path:
        tour = (await created(live, "/broadcast/new", {"name": "Owned Cast"}))["tour"]["id"]
        made = await created(live, f"/broadcast/{tour}/new", {"name": "Round 1"})
        ids |= {"tour": tour, "round": made["round"]["id"]}
    return Setting(game, tokens, other, account["token"], reader["token"], ids)


async def snapshot(live: LiveServer, s: Setting) -> list[Any]:
    """What a refusal must leave as it was: the game (but its running clock), the
    tournament and the broadcast, and the tokens."""
    auth = live.auth()
    game = (await live.client.get(f"/api/games/{s.game}", headers=auth)).json()
    state = [{k: v for k, v in game.items() if k != "clock"}]
    state.append((await live.client.get("/api/tokens", headers=auth)).json())
    if "tournament" in s.ids:
        r = await live.client.get(f"/api/tournaments/{s.ids['tournament']}", headers=auth)
        state.append(r.json())
    if "tour" in s.ids:
        state.append((await live.client.get(f"/api/broadcast/{s.ids['tour']}")).json())
    return state


def headers(live: LiveServer, s: Setting, bearer: str) -> dict[str, str]:
    """The Authorization header of ``bearer``."""
    token = {
        "none": None,
        "mover": s.tokens["white"],
        "other_side": s.tokens["black"],
        "other_game": s.other_tokens["white"],
        "operator": live.operator_token,
        "account": s.account,
        "reader": s.reader,
    }[bearer]
    return {} if token is None else {"Authorization": f"Bearer {token}"}


OPERATOR_200 = (401, 403, 403, 403, 200, 403)
OPERATOR_201 = (401, 403, 403, 403, 201, 403)
# The operator's broadcast: its owner (the operator) may; another account may not.
LICHESS_OWNER = (401, 403, 403, 403, 200, 403)
GAME = {"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 60, "increment": 0}}
TOURNAMENT = {
    "name": "Matrix Open",
    "format": "round_robin",
    "clock": {"initial": 60, "increment": 0},
    "players": [{"name": "A"}, {"name": "B"}],
}
SWISS = {
    "name": "Matrix Swiss",
    "format": "swiss",
    "rounds": 3,
    "clock": {"initial": 60, "increment": 0},
    "players": [{"name": "A"}, {"name": "B"}, {"name": "C"}, {"name": "D"}],
}
PGN = '[White "A"]\n[Black "B"]\n[Board "1"]\n\n1. e4 e5 *\n'
# (method, path with {game} and the like, body, expected status per bearer in BEARERS
# order). A str body is sent as text/plain.
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
    ("GET", "/api/games", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/tournaments", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/tournaments/{tournament}", None, (200, 200, 200, 200, 200, 200)),
    ("GET", "/api/tournaments/{tournament}/standings", None, (200,) * 6),
    ("GET", "/api/tournaments/{tournament}/trf", None, (200,) * 6),
    ("GET", "/api/tournaments/{tournament}/pgn", None, (200,) * 6),
    ("POST", "/api/tournaments/{tournament}/players", {"name": "E"}, OPERATOR_201),
    ("POST", "/api/tournaments/{tournament}/players/{player}/withdraw", None, OPERATOR_200),
    (
        "POST",
        "/api/tournaments/{tournament}/players/{player}/bye",
        {"round": 1, "points": 0.5},
        OPERATOR_200,
    ),
    ("POST", "/api/tournaments/{tournament}/rounds", {}, OPERATOR_201),
    (
        "POST",
        "/api/tournaments/{tournament}/rounds/1/results",
        {"board": 1, "result": "1-0"},
        (401, 403, 403, 403, 404, 403),
    ),
    ("POST", "/api/tournaments/{tournament}/rounds/1/pgn", PGN, (401, 403, 403, 403, 404, 403)),
    ("POST", "/api/tokens", {"account": "Bob"}, OPERATOR_201),
    ("DELETE", "/api/tokens/{token}", None, (401, 403, 403, 403, 204, 403)),
    ("DELETE", "/api/token", None, (401, 403, 403, 403, 403, 204)),
    ("POST", "/api/token", {"grant_type": "authorization_code"}, (400,) * 6),
    ("GET", "/healthz", None, (200,) * 6),
    ("GET", "/metrics", None, (200,) * 6),
    ("POST", "/broadcast/{tour}/new", {"name": "Round 2"}, (401, 403, 403, 403, 200, 403)),
    ("POST", "/broadcast/round/{round}/edit", {"name": "Round One"}, LICHESS_OWNER),
    ("POST", "/broadcast/round/{round}/push", PGN, LICHESS_OWNER),
    ("POST", "/api/broadcast/round/{round}/push", PGN, LICHESS_OWNER),
    ("POST", "/broadcast/round/{round}/reset", None, LICHESS_OWNER),
    ("POST", "/api/broadcast/round/{round}/reset", None, LICHESS_OWNER),
    ("GET", "/api/broadcast/my-rounds", None, (401, 403, 403, 403, 200, 200)),
    ("GET", "/api/broadcast/by/operator", None, (200,) * 6),
    ("GET", "/api/broadcast/round/{round}.pgn", None, (200,) * 6),
    ("GET", "/api/broadcast/{tour}.pgn", None, (200,) * 6),
    ("GET", "/api/broadcast/{tour}", None, (200,) * 6),
    ("GET", "/api/broadcast/-/-/{round}", None, (200,) * 6),
    ("GET", "/broadcast/-/-/{round}", None, (303, 200, 200, 200, 200, 200)),
    ("GET", "/broadcast/-/{tour}", None, (303, 200, 200, 200, 200, 200)),
    ("POST", "/api/games/{game}/review", None, (401, 403, 403, 403, 409, 403)),
    ("GET", "/api/games/{game}/review", None, (200, 200, 200, 200, 200, 200)),
]
# Where the read-only account token is answered otherwise than the full one (else alike).
READER = {
    ("POST", "/broadcast/new"): 403,
    ("DELETE", "/api/tokens/{token}"): 403,
}
CASES = [
    pytest.param(
        method,
        path,
        body,
        bearer,
        READER.get((method, path), expected[-1]) if bearer == "reader" else expected[i],
        id=f"{method} {path} by {bearer}",
    )
    for method, path, body, expected in ROUTES
    for i, bearer in enumerate(BEARERS)
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    """One server for the module: each case makes its own games, tournament and broadcast,
    so none sees another's (and 308 server starts would dominate the run). Without the
    periodic clock checkpoint: it adds a clock event to every started game every 10 s, and
    one landing between a case's two snapshots would read as a refusal that changed `seq`."""
    async with serve(tmp_path_factory.mktemp("matrix") / "data", clock_checkpoint_s=3600) as live:
        yield live


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("method", "path", "body", "bearer", "expected"), CASES)
async def test_authorization_matrix(
    server: LiveServer, method: str, path: str, body: Any, bearer: str, expected: int
) -> None:
    """Each route answers each bearer as the contract says; a refusal changes nothing."""
    live = server
    s = await setting(live, path)
    before = await snapshot(live, s)
    sent: dict[str, Any] = {"json": body}
    extra = {}
    if isinstance(body, str):
        sent = {"content": body}
        extra = {"Content-Type": "text/plain"}
    r = await live.client.request(
        method, path.format(**s.ids), **sent, headers={**extra, **headers(live, s, bearer)}
    )
    assert r.status_code == expected, r.text
    if r.status_code in (401, 403):
        assert isinstance(r.json()["error"], str | dict)
        after = await snapshot(live, s)
        changed = [k for k in before[0] if before[0][k] != after[0].get(k)]
        assert after == before, f"changed in the game: {changed}"
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")


# Routes without a row, and why: pages and files of the site and of the OAuth approval
# (HTML, no token), the OpenAPI's own pages, the edges' public state reads, the live
# streams and WebSockets (public, read-only; tested in test_live.py and test_edges.py).
PUBLIC = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/"),
    ("GET", "/games/{game_id}"),
    ("GET", "/watch/{game_id}"),
    ("GET", "/tournaments/{tournament_id}"),
    ("GET", "/static/{name}"),
    ("GET", "/oauth"),
    ("POST", "/oauth/approve"),
    ("GET", "/internal/games/{game_id}/state"),
    ("GET", "/internal/tournaments/{tournament_id}/follow"),
    ("GET", "/api/stream/games/{game_id}"),
    ("GET", "/api/stream/broadcast/round/{round_id}.pgn"),
    ("WS", "/ws/games/{game_id}"),
    ("WS", "/ws/tournaments/{tournament_id}"),
    ("WS", "/{path:path}"),
}


def _template(path: str) -> str:
    """A row's path as its route's template: ids back to their parameters."""
    for value, name in (
        ("{game}", "{game_id}"),
        ("{tournament}", "{tournament_id}"),
        ("{player}", "{player_id}"),
        ("{token}", "{token_id}"),
        ("/rounds/1/", "/rounds/{round_no}/"),
        ("/by/operator", "/by/{user}"),
        ("/api/broadcast/-/-/{round}", "/api/broadcast/{tour_slug}/{round_slug}/{round_id}"),
        ("/broadcast/-/-/{round}", "/broadcast/{tour_slug}/{round_slug}/{round_id}"),
        ("/broadcast/-/{tour}", "/broadcast/{tour_slug}/{tour_id}"),
        ("{tour}", "{tour_id}"),
        ("{round}", "{round_id}"),
    ):
        path = path.replace(value, name)
    return path


def test_every_route_has_a_row(tmp_path: Any) -> None:
    """Every HTTP and WebSocket route of the app is in the matrix or named public."""
    app = create_app(Settings(data_dir=tmp_path, operator_token="x"))
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(flatten(app.routes)) if flatten is not None else list(app.routes)
    served = set()
    for route in routes:
        methods = getattr(route, "methods", None) or {"WS"}
        served |= {(method, route.path) for method in methods if method != "HEAD"}
    rows = {(method, _template(path)) for method, path, _, _ in ROUTES}
    assert rows <= served, rows - served
    assert served - PUBLIC == rows, (served - PUBLIC) ^ rows
