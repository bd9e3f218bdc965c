"""A game's JSON and PGN are made once per ``seq``, never stale, and leave with the game.

Real server, real store; the game clock is injected where exact bytes are compared.
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import chess
import chess.pgn
import websockets
from starlette.responses import JSONResponse

from app.games import RECENT_MS, GameService
from engine.rules.view import game_json
from tests.conftest import FakeTime, LiveServer, serve

MOVES = ("e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Ba4", "Nf6", "O-O", "Be7")


def games_of(live: LiveServer) -> GameService:
    """The server's game service (in-process server)."""
    service: GameService = live.app.state.games  # type: ignore[attr-defined]
    return service


async def play(live: LiveServer, game_id: str, tokens: dict[str, str], ply: int) -> dict:  # type: ignore[type-arg]
    """Play ``MOVES[ply]`` with the token of the side to move; the 200 answer's game."""
    side = "white" if ply % 2 == 0 else "black"
    r = await live.client.post(
        f"/api/games/{game_id}/moves",
        json={"move": MOVES[ply], "ply": ply},
        headers=live.auth(tokens[side]),
    )
    assert r.status_code == 200, r.text
    game: dict = r.json()  # type: ignore[type-arg]
    return game


def pgn_moves(text: str) -> list[str]:
    """The SAN moves of a PGN, read back with python-chess."""
    game = chess.pgn.read_game(io.StringIO(text))
    assert game is not None
    board = game.board()
    sans = []
    for move in game.mainline_moves():
        sans.append(board.san(move))
        board.push(move)
    return sans


async def test_a_read_right_after_a_move_shows_it_while_readers_keep_reading(
    live: LiveServer,
) -> None:
    """Readers hammer the game's JSON and PGN; every read sent after a move's 200 shows that move."""
    game_id, tokens = await live.started_game()
    stop = asyncio.Event()
    acked: list[int] = [0]
    seen_too_old: list[tuple[int, int]] = []

    async def reader() -> None:
        while not stop.is_set():
            floor = acked[-1]
            r = await live.client.get(f"/api/games/{game_id}")
            seq = r.json()["seq"]
            if seq < floor:
                seen_too_old.append((floor, seq))
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    try:
        for ply in range(len(MOVES)):
            game = await play(live, game_id, tokens, ply)
            acked.append(game["seq"])
            r = await live.client.get(f"/api/games/{game_id}")
            now = r.json()
            assert now["seq"] == game["seq"]
            assert [m["san"] for m in now["moves"]] == list(MOVES[: ply + 1])
            pgn = (await live.client.get(f"/api/games/{game_id}/pgn")).text
            assert pgn_moves(pgn) == list(MOVES[: ply + 1])
            listed = (await live.client.get("/api/games")).json()["games"]
            assert next(g for g in listed if g["id"] == game_id)["seq"] == game["seq"]
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert seen_too_old == []
    # The JSON was made once per seq, not once per read.
    views = games_of(live).views
    assert views.built_json <= len(acked) + 2


async def test_the_kept_body_is_the_body_made_afresh(tmp_path: Path, fake_time: FakeTime) -> None:
    """Served from what is kept, a game's JSON is byte for byte a fresh encoding, its running clock read now."""
    async with serve(tmp_path / "data", now_ms=fake_time) as live:
        service = games_of(live)
        game_id, tokens = await live.started_game()
        for ply in range(4):
            await play(live, game_id, tokens, ply)
        async with websockets.connect(
            live.url.replace("http://", "ws://") + f"/ws/games/{game_id}"
        ) as ws:
            await ws.recv()
            for _ in range(200):
                if service.spectators(game_id) == 1:
                    break
                await asyncio.sleep(0.01)
            built = service.views.built_json
            for step_ms in (0, 1_500, 20_000):
                fake_time.advance(step_ms)
                r = await live.client.get(f"/api/games/{game_id}")
                state = service.get(game_id).state
                fresh = JSONResponse(game_json(state, fake_time(), spectators=1)).body
                assert r.content == fresh
                assert r.headers["content-type"] == "application/json"
            # The clock ran between reads, all served from the body the last move's
            # answer made.
            assert r.json()["clock"]["white_ms"] == 300_000 + 2 * 2_000 - 21_500
            assert service.views.built_json == built
            listed = (await live.client.get("/api/games")).json()["games"]
            assert listed == [r.json()]


async def test_readers_of_one_pgn_share_one_render(live: LiveServer) -> None:
    """Fifty concurrent PGN reads of one seq render it once; the next move renders anew."""
    game_id, tokens = await live.started_game()
    for ply in range(6):
        await play(live, game_id, tokens, ply)
    views = games_of(live).views
    before = views.built_pgn
    answers = await asyncio.gather(
        *(live.client.get(f"/api/games/{game_id}/pgn") for _ in range(50))
    )
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    assert views.built_pgn == before + 1
    await play(live, game_id, tokens, 6)
    text = (await live.client.get(f"/api/games/{game_id}/pgn")).text
    assert pgn_moves(text) == list(MOVES[:7])
    assert views.built_pgn == before + 2


async def test_what_is_kept_of_a_game_leaves_memory_with_it(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """Evicted games take their kept JSON and PGN with them; read again, they are served afresh."""
    async with serve(tmp_path / "data", now_ms=fake_time, game_cache=1) as live:
        service = games_of(live)
        ids = []
        for _ in range(3):
            game_id, tokens = await live.started_game()
            await play(live, game_id, tokens, 0)
            r = await live.client.post(
                f"/api/games/{game_id}/resign", headers=live.auth(tokens["black"])
            )
            assert r.status_code == 200
            ids.append(game_id)
        bodies = {}
        for game_id in ids:
            bodies[game_id] = (await live.client.get(f"/api/games/{game_id}")).content
            assert (await live.client.get(f"/api/games/{game_id}/pgn")).status_code == 200
            assert game_id in service.views
        fake_time.advance(RECENT_MS + 1)
        service.evict()
        gone = [g for g in ids if g not in service]
        assert len(gone) == 2
        assert len(service.views) == 1
        assert all(g not in service.views for g in gone)
        for game_id in gone:
            assert json.loads((await live.client.get(f"/api/games/{game_id}")).content) == (
                json.loads(bodies[game_id])
            )


async def test_a_delayed_view_and_the_live_one_do_not_evict_each_other(live: LiveServer) -> None:
    """Two readers of one game at two ``seq``s (a broadcast delay's public view and the
    live one), taking turns, cost one JSON and one PGN render each, not one per read."""
    service = games_of(live)
    game_id, tokens = await live.started_game()
    await play(live, game_id, tokens, 0)
    delayed = service.state_of(game_id)
    await play(live, game_id, tokens, 1)
    current = service.state_of(game_id)
    assert delayed is not None and current is not None and delayed.seq != current.seq
    service.views.forget(game_id)  # the moves' answers were made from these states
    json_before, pgn_before = service.views.built_json, service.views.built_pgn
    for _ in range(3):
        for state in (delayed, current):
            assert json.loads(service.json_body(state))["ply"] == state.ply
            assert len(pgn_moves(await service.pgn(state))) == state.ply
    assert service.views.built_json - json_before == 2
    assert service.views.built_pgn - pgn_before == 2
