"""The games REST API through real HTTP: contract shapes, auth, errors and limits."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.conftest import FakeTime, LiveServer, serve

CREATE = {
    "white": {"name": "Carlsen", "rating": 2830, "title": "GM"},
    "black": {"name": "Nepo"},
    "clock": {"initial": 5400, "increment": 30},
}


def error_code(r: object) -> str:
    """The contract's error code of a response."""
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    code: str = body["error"]["code"]
    return code


async def test_create_returns_game_and_tokens_that_reads_never_echo(live: LiveServer) -> None:
    """Creation answers 201 with the game and two tokens; no read endpoint shows a token."""
    r = await live.client.post("/api/games", json=CREATE, headers=live.auth())
    assert r.status_code == 201
    data = r.json()
    game, tokens = data["game"], data["tokens"]
    assert set(tokens) == {"white", "black"}
    assert game["status"] == "created"
    assert game["result"] == "*"
    assert game["clock"] == {"white_ms": 5_400_000, "black_ms": 5_400_000, "running": None}
    assert game["id"].isalnum()
    assert len(game["id"]) >= 8
    for path in (f"/api/games/{game['id']}", "/api/games", f"/api/games/{game['id']}/pgn"):
        text = (await live.client.get(path)).text
        assert tokens["white"] not in text
        assert tokens["black"] not in text
        assert live.operator_token not in text


async def test_list_filters_by_status(live: LiveServer) -> None:
    """``GET /api/games?status=`` returns only games in that status."""
    created, _ = await live.create_game()
    started, _ = await live.started_game()
    r = await live.client.get("/api/games", params={"status": "started"})
    assert [g["id"] for g in r.json()["games"]] == [started]
    r = await live.client.get("/api/games", params={"status": "created"})
    assert [g["id"] for g in r.json()["games"]] == [created]
    r = await live.client.get("/api/games", params={"status": "bogus"})
    assert r.status_code == 422


async def test_who_may_do_what(live: LiveServer) -> None:
    """401 without or with an unknown token, 403 for the wrong player or a player on an operator route."""
    game_id, tokens = await live.started_game()
    _, other_tokens = await live.started_game()
    move = {"move": "e4"}
    url = f"/api/games/{game_id}/moves"
    assert (await live.client.post(url, json=move)).status_code == 401
    r = await live.client.post(url, json=move, headers=live.auth("nope"))
    assert (r.status_code, error_code(r)) == (401, "unauthorized")
    r = await live.client.post(url, json=move, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    r = await live.client.post(url, json=move, headers=live.auth(other_tokens["white"]))
    assert (r.status_code, error_code(r)) == (403, "forbidden")
    r = await live.client.post("/api/games", json=CREATE, headers=live.auth(tokens["white"]))
    assert r.status_code == 403
    r = await live.client.post(
        f"/api/games/{game_id}/result", json={"result": "1-0"}, headers=live.auth(tokens["white"])
    )
    assert r.status_code == 403
    r = await live.client.post(f"/api/games/{game_id}/resign", headers=live.auth())
    assert r.status_code == 403
    r = await live.client.post(url, json=move, headers=live.auth(tokens["black"]))
    assert (r.status_code, error_code(r)) == (409, "not_your_turn")
    r = await live.client.post(url, json=move, headers=live.auth(tokens["white"]))
    assert r.status_code == 200


async def test_a_repeated_random_id_is_drawn_again(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the id generator repeats an id in use, the new game gets a fresh one."""
    drawn = iter(["Same0000", "Same0000", "Other000"])
    monkeypatch.setattr("app.games.new_id", lambda: next(drawn))
    first, _ = await live.create_game(white={"name": "First"})
    second, _ = await live.create_game(white={"name": "Second"})
    assert (first, second) == ("Same0000", "Other000")
    for game_id, name in [(first, "First"), (second, "Second")]:
        game = (await live.client.get(f"/api/games/{game_id}")).json()
        assert game["white"]["name"] == name


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"", 400, "bad_request"),
        (json.dumps({"move": "e4", "extra": 1}).encode(), 422, "invalid"),
        (json.dumps({"move": 42}).encode(), 422, "invalid"),
        (json.dumps({"move": "hello"}).encode(), 422, "invalid"),
        (json.dumps({"move": "e4", "ply": "0"}).encode(), 422, "invalid"),
        (json.dumps({"move": "e4", "ply": -1}).encode(), 422, "invalid"),
        (json.dumps({"move": "e4", "clock_ms": 1000}).encode(), 409, "conflict"),
        (json.dumps({"move": "e5"}).encode(), 409, "illegal_move"),
        (json.dumps({"move": "0000"}).encode(), 409, "illegal_move"),
        (json.dumps({"move": "e2e5"}).encode(), 409, "illegal_move"),
        (json.dumps({"move": "e4", "ply": 3}).encode(), 409, "stale_ply"),
        (json.dumps(["e4"]).encode(), 422, "invalid"),
    ],
)
async def test_bad_moves_get_contract_errors_and_change_nothing(
    live: LiveServer, body: bytes, status: int, code: str
) -> None:
    """Every malformed or refused move gets its status and code, and the game is unchanged."""
    game_id, _ = await live.started_game()
    before = (await live.client.get(f"/api/games/{game_id}")).json()
    r = await live.client.post(
        f"/api/games/{game_id}/moves",
        content=body,
        headers={**live.auth(), "Content-Type": "application/json"},
    )
    assert (r.status_code, error_code(r)) == (status, code)
    after = (await live.client.get(f"/api/games/{game_id}")).json()
    assert after["seq"] == before["seq"]
    assert after["moves"] == before["moves"]


@pytest.mark.parametrize(
    "change",
    [
        {"fen": "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNX w KQkq - 0 1"},
        {"fen": "8/8/8/8/8/8/8/8 w - - 0 1"},
        {"fen": "k7/8/8/8/8/8/8/K7 w - - 0 1"},
        {"clock": {"initial": 0}},
        {"clock": {"initial": 60, "increment": -1}},
        {"clock": {"initial": "60"}},
        {"mode": "correspondence"},
        {"white": {"name": ""}},
        {"white": {"name": "X", "rating": 99999}},
        {"white": {"name": "X", "elo": 2000}},
        {"surprise": True},
    ],
)
async def test_bad_game_bodies_are_422(live: LiveServer, change: dict[str, object]) -> None:
    """Schema violations in a new game (bad FEN, clock, mode, player) are 422 and create nothing."""
    r = await live.client.post("/api/games", json={**CREATE, **change}, headers=live.auth())
    assert (r.status_code, error_code(r)) == (422, "invalid")
    assert (await live.client.get("/api/games")).json()["games"] == []


async def test_custom_start_position(live: LiveServer) -> None:
    """A valid custom FEN starts there, with Black to move when the FEN says so."""
    fen = "4k3/8/8/8/8/8/4P3/4K3 b - - 0 1"
    game_id, _ = await live.started_game(fen=fen)
    game = (await live.client.get(f"/api/games/{game_id}")).json()
    assert game["initial_fen"] == fen
    assert game["clock"]["running"] == "black"
    r = await live.client.post(
        f"/api/games/{game_id}/moves", json={"move": "Kd7", "ply": 0}, headers=live.auth()
    )
    assert r.json()["ply"] == 1
    pgn = (await live.client.get(f"/api/games/{game_id}/pgn")).text
    assert f'[FEN "{fen}"]' in pgn


async def test_oversized_bodies_are_413(live: LiveServer) -> None:
    """A body over 64 KiB is refused with 413, declared or chunked."""
    game_id, _ = await live.started_game()
    url = f"/api/games/{game_id}/moves"
    big = b'{"move": "e4", "pad": "' + b"x" * 70_000 + b'"}'
    r = await live.client.post(
        url, content=big, headers={**live.auth(), "Content-Type": "application/json"}
    )
    assert (r.status_code, error_code(r)) == (413, "too_large")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 8192

    r = await live.client.post(
        url, content=chunks(), headers={**live.auth(), "Content-Type": "application/json"}
    )
    assert (r.status_code, error_code(r)) == (413, "too_large")


async def test_unknown_game_and_route_are_404(live: LiveServer) -> None:
    """Unknown ids and paths answer 404 in the contract's format."""
    for path in ("/api/games/AAAAAAAA", "/api/games/AAAAAAAA/pgn", "/nowhere"):
        r = await live.client.get(path)
        assert (r.status_code, error_code(r)) == (404, "not_found")


async def test_concurrent_duplicate_moves_store_one(live: LiveServer) -> None:
    """Twenty simultaneous submissions of the same first move store it once and all answer 200."""
    game_id, tokens = await live.started_game()
    url = f"/api/games/{game_id}/moves"
    rs = await asyncio.gather(
        *(
            live.client.post(url, json={"move": "e4", "ply": 0}, headers=live.auth(tokens["white"]))
            for _ in range(20)
        )
    )
    assert {r.status_code for r in rs} == {200}
    game = (await live.client.get(f"/api/games/{game_id}")).json()
    assert [m["uci"] for m in game["moves"]] == ["e2e4"]
    assert game["seq"] == 2


async def test_retry_of_a_game_ending_move_answers_200(live: LiveServer) -> None:
    """Re-sending the mating move after the game ended answers 200 with the finished game."""
    game_id, tokens = await live.started_game()
    url = f"/api/games/{game_id}/moves"
    for ply, move in enumerate(["f3", "e5", "g4", "Qh4#"]):
        token = tokens["white"] if ply % 2 == 0 else tokens["black"]
        r = await live.client.post(url, json={"move": move, "ply": ply}, headers=live.auth(token))
        assert r.status_code == 200
    again = await live.client.post(
        url, json={"move": "d8h4", "ply": 3}, headers=live.auth(tokens["black"])
    )
    assert again.status_code == 200
    assert (again.json()["result"], again.json()["termination"]) == ("0-1", "checkmate")
    r = await live.client.post(
        url, json={"move": "Ke2", "ply": 4}, headers=live.auth(tokens["white"])
    )
    assert (r.status_code, error_code(r)) == (409, "game_over")


async def test_draw_offer_accept_and_resign(live: LiveServer) -> None:
    """A draw offered by White and accepted by Black ends 1/2-1/2 by agreement; resigning works too."""
    game_id, tokens = await live.started_game()
    url = f"/api/games/{game_id}/draw"
    r = await live.client.post(url, json={"action": "accept"}, headers=live.auth(tokens["black"]))
    assert (r.status_code, error_code(r)) == (409, "no_draw_offer")
    r = await live.client.post(url, json={"action": "offer"}, headers=live.auth(tokens["white"]))
    assert r.json()["draw_offer"] == "white"
    r = await live.client.post(url, json={"action": "accept"}, headers=live.auth(tokens["black"]))
    assert (r.json()["result"], r.json()["termination"]) == ("1/2-1/2", "agreement")
    other, tokens = await live.started_game()
    r = await live.client.post(f"/api/games/{other}/resign", headers=live.auth(tokens["white"]))
    assert (r.json()["result"], r.json()["termination"]) == ("0-1", "resignation")
    r = await live.client.post(
        f"/api/games/{other}/draw", json={"action": "claim"}, headers=live.auth(tokens["black"])
    )
    assert (r.status_code, error_code(r)) == (409, "game_over")


async def test_arbiter_result_and_pgn_archive(live: LiveServer) -> None:
    """The operator sets a result as arbiter; the finished game's PGN lands in data/pgn/<id>.pgn."""
    game_id, _ = await live.started_game()
    await live.client.post(f"/api/games/{game_id}/moves", json={"move": "d4"}, headers=live.auth())
    r = await live.client.post(
        f"/api/games/{game_id}/result",
        json={"result": "1-0", "reason": "illegal device"},
        headers=live.auth(),
    )
    assert (r.json()["result"], r.json()["termination"]) == ("1-0", "arbiter")
    path = live.data_dir / "pgn" / f"{game_id}.pgn"
    # The archive is written off the loop after the answer (atomically, by rename): wait for
    # the file itself, with a deadline no loaded machine reaches.
    deadline_s = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline_s, f"{path} was never written"
        await asyncio.sleep(0.01)
    text = path.read_text()
    assert '[Result "1-0"]' in text
    assert '[Termination "Adjudication"]' in text
    assert "1. d4" in text


async def test_server_clock_counts_and_flag_is_checked_on_the_next_move(
    live_fake_time: LiveServer, fake_time: FakeTime
) -> None:
    """Time spent is charged with increment; a move after the flag fell ends the game on time."""
    live = live_fake_time
    game_id, tokens = await live.started_game(clock={"initial": 60, "increment": 2})
    url = f"/api/games/{game_id}/moves"
    fake_time.advance(10_000)
    r = await live.client.post(
        url, json={"move": "e4", "ply": 0}, headers=live.auth(tokens["white"])
    )
    assert r.json()["clock"] == {"white_ms": 52_000, "black_ms": 60_000, "running": "black"}
    assert r.json()["moves"][0]["clock_ms"] == 52_000
    fake_time.advance(61_000)
    r = await live.client.post(
        url, json={"move": "e5", "ply": 1}, headers=live.auth(tokens["black"])
    )
    assert (r.status_code, error_code(r)) == (409, "game_over")
    game = (await live.client.get(f"/api/games/{game_id}")).json()
    assert (game["result"], game["termination"]) == ("1-0", "timeout")
    assert game["clock"]["black_ms"] == 0
    assert game["seq"] == 3


async def test_openapi_documents_the_request_schemas(live: LiveServer) -> None:
    """``/openapi.json`` carries the move and game-creation schemas."""
    spec = (await live.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert {"CreateGameIn", "MoveIn", "DrawIn", "ResultIn"} <= set(schemas)
    assert schemas["MoveIn"]["additionalProperties"] is False


async def test_a_flooding_player_gets_429_and_changes_nothing(tmp_path: Path) -> None:
    """Past its request budget a player gets 429 with Retry-After; the operator is not limited."""
    async with serve(
        tmp_path / "data", player_requests_per_s=1.0, player_requests_burst=3.0
    ) as live:
        game_id, tokens = await live.started_game()
        url = f"/api/games/{game_id}/draw"
        statuses = []
        for _ in range(6):
            r = await live.client.post(
                url, json={"action": "offer"}, headers=live.auth(tokens["white"])
            )
            statuses.append(r.status_code)
        assert statuses[:3] == [200, 200, 200]
        assert 429 in statuses[3:]
        assert r.status_code == 429
        assert error_code(r) == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        for _ in range(10):
            r = await live.client.get(f"/api/games/{game_id}", headers=live.auth())
            assert r.status_code == 200
        assert r.json()["seq"] == 2
