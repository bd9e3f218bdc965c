"""Over-the-board relays through the API: PGN pushed by the operator, and a PGN URL that
the server polls (served here by a real second HTTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from typing import Any

import chess
import chess.pgn
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import LiveServer, free_socket

PLAYERS = [
    {"name": n}
    for n in ("Carlsen, Magnus", "Nakamura, Hikaru", "Caruana, Fabiano", "Firouzja, Alireza")
]


def board_pgn(white: str, black: str, board: int, sans: list[str], result: str = "*") -> str:
    """One game as a DGT board would write it, a clock after every move."""
    game = chess.pgn.Game()
    game.headers.update(
        {"Event": "Relay", "Round": f"1.{board}", "White": white, "Black": black, "Result": result}
    )
    node: chess.pgn.GameNode = game
    for i, san in enumerate(sans):
        node = node.add_variation(node.board().parse_san(san))
        node.set_clock(5400 - 30 * i)
    return str(game) + "\n\n"


def random_line(n: int, seed: int) -> list[str]:
    """``n`` random legal moves in SAN."""
    rng = random.Random(seed)
    b = chess.Board()
    out = []
    for _ in range(n):
        move = rng.choice(list(b.legal_moves))
        out.append(b.san(move))
        b.push(move)
    return out


async def relay_tournament(live: LiveServer, **extra: Any) -> tuple[str, list[dict[str, Any]]]:
    """A relay round robin of four, round 1 paired; its id and pairings."""
    body = {
        "name": "Relay",
        "format": "round_robin",
        "mode": "relay",
        "clock": {"initial": 5400, "increment": 30},
        "players": PLAYERS,
        **extra,
    }
    r = await live.client.post("/api/tournaments", json=body, headers=live.auth())
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    assert r.status_code == 201, r.text
    return tid, r.json()["pairings"]


def names(live_pairings: list[dict[str, Any]], players: dict[str, str]) -> list[tuple[str, str]]:
    """(white name, black name) per board."""
    return [(players[p["white"]], players[p["black"]]) for p in live_pairings]


async def push(live: LiveServer, tid: str, text: str, rnd: int = 1) -> list[dict[str, Any]]:
    """Push PGN as the operator; the per-game reports."""
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/{rnd}/pgn",
        content=text.encode(),
        headers={**live.auth(), "Content-Type": "application/x-chess-pgn"},
    )
    assert r.status_code == 200, r.text
    games: list[dict[str, Any]] = r.json()["games"]
    return games


async def test_relay_push_adds_only_new_moves_corrects_and_reports_errors(live: LiveServer) -> None:
    """Pushes append only new moves with clocks, the same push changes nothing, a takeback is applied as the board shows it, results finish games, and garbage is reported per game."""
    tid, pairings = await relay_tournament(live)
    t = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
    who = {p["id"]: p["name"] for p in t["players"]}
    (w1, b1), (w2, b2) = names(pairings, who)
    line = random_line(30, 1)
    text = board_pgn(w1, b1, 1, line[:10]) + board_pgn(w2, b2, 2, line[:4])
    reports = await push(live, tid, text)
    assert [(g["board"], g["moves_added"], g["error"]) for g in reports] == [
        (1, 10, None),
        (2, 4, None),
    ]
    game1 = pairings[0]["game"]
    state = (await live.client.get(f"/api/games/{game1}")).json()
    assert state["ply"] == 10 and state["status"] == "started"
    assert state["moves"][0]["clock_ms"] == 5_400_000
    assert state["moves"][9]["clock_ms"] == (5400 - 270) * 1000
    seq = state["seq"]
    # The same push again: nothing changes.
    reports = await push(live, tid, text)
    assert [g["moves_added"] for g in reports] == [0, 0]
    assert (await live.client.get(f"/api/games/{game1}")).json()["seq"] == seq
    # Board 1 takes its last move back and plays another; board 2 gains two moves;
    # an unknown board and garbage are reported without stopping the others.
    other = [m for m in random_line(10, 1)[:9]]
    b = chess.Board()
    for san in other:
        b.push_san(san)
    alternative = next(b.san(m) for m in b.legal_moves if b.san(m) != line[9])
    text = (
        board_pgn(w1, b1, 1, [*line[:9], alternative])
        + board_pgn(w2, b2, 2, line[:6])
        + '[White "Nobody"]\n[Black "Else"]\n[Board "9"]\n\n1. e4 *\n\n'
        + "\x00\x01 garbage {unterminated\n\n"
    )
    reports = await push(live, tid, text)
    assert (reports[0]["moves_added"], reports[0]["corrected"]) == (1, True)
    assert (reports[1]["moves_added"], reports[1]["corrected"]) == (2, False)
    assert reports[2]["game"] is None and reports[2]["error"]
    assert all(r["error"] is None for r in reports[:2])
    state = (await live.client.get(f"/api/games/{game1}")).json()
    assert [m["san"] for m in state["moves"]] == [*line[:9], alternative]
    # A result tag finishes the game (termination arbiter), and the standings follow.
    reports = await push(live, tid, board_pgn(w2, b2, 2, line[:6], "0-1"))
    assert reports[0]["result"] == "0-1"
    game2 = (await live.client.get(f"/api/games/{pairings[1]['game']}")).json()
    assert (game2["result"], game2["termination"]) == ("0-1", "arbiter")
    t = (await live.client.get(f"/api/tournaments/{tid}")).json()
    assert t["rounds"][0]["pairings"][1]["result"] == "0-1"
    # An illegal move: the moves before it are kept, the error names it.
    bad = board_pgn(w1, b1, 1, [*line[:9], alternative]).replace(" *", " Ke8 *")
    reports = await push(live, tid, bad)
    assert reports[0]["error"] and "Ke8" in reports[0]["error"]
    assert (await live.client.get(f"/api/games/{game1}")).json()["ply"] == 10
    # Not PGN at all, or a round not paired.
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/1/pgn", json={"a": 1}, headers=live.auth()
    )
    assert r.status_code == 400
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/2/pgn",
        content=b"1. e4 *",
        headers={**live.auth(), "Content-Type": "text/plain"},
    )
    assert r.status_code == 404
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/1/pgn",
        content=b"1. e4 *",
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 401


class PgnSource:
    """A real HTTP server on 127.0.0.1 serving a PGN file with an ETag, or failing."""

    def __init__(self) -> None:
        self.text = ""
        self.fail = False
        self.requests = 0
        self.not_modified = 0

    async def serve(self, request: Request) -> Response:
        self.requests += 1
        if self.fail:
            return PlainTextResponse("boom", status_code=500)
        etag = '"' + hashlib.sha256(self.text.encode()).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            self.not_modified += 1
            return Response(status_code=304, headers={"ETag": etag})
        return PlainTextResponse(
            self.text, headers={"ETag": etag}, media_type="application/x-chess-pgn"
        )


@pytest.fixture
async def pgn_source() -> AsyncIterator[tuple[PgnSource, str]]:
    """A PGN source and its URL."""
    source = PgnSource()
    app = Starlette(routes=[Route("/round.pgn", source.serve)])
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield source, f"http://127.0.0.1:{sock.getsockname()[1]}/round.pgn"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def until(predicate: Any, timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` (an async callable) until it is true."""
    for _ in range(int(timeout_s / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition never became true")


async def test_relay_url_is_polled_with_conditional_requests_and_errors_are_shown(
    tmp_path: Any, pgn_source: tuple[PgnSource, str]
) -> None:
    """The server polls the relay URL while the round is live: new moves arrive, unchanged files are 304, and a failing source is shown to the operator and retried."""
    from tests.conftest import serve

    source, url = pgn_source
    async with serve(tmp_path / "data", relay_poll_s=0.2, relay_max_backoff_s=0.5) as live:
        tid, pairings = await relay_tournament(live, relay_url=url)
        t = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
        who = {p["id"]: p["name"] for p in t["players"]}
        (w1, b1), _ = names(pairings, who)
        line = random_line(12, 5)
        source.text = board_pgn(w1, b1, 1, line[:5])
        game1 = pairings[0]["game"]

        async def at_ply(n: int) -> bool:
            return bool((await live.client.get(f"/api/games/{game1}")).json()["ply"] == n)

        await until(lambda: at_ply(5))
        await until(lambda: asyncio.sleep(0, source.not_modified > 0))
        source.text = board_pgn(w1, b1, 1, line[:8])
        await until(lambda: at_ply(8))
        source.fail = True

        async def error_shown() -> bool:
            data = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
            relay = data.get("relay") or {}
            return bool(relay.get("last_error")) and relay.get("failures", 0) >= 2

        await until(error_shown)
        public = (await live.client.get(f"/api/tournaments/{tid}")).json()
        assert "relay" not in public
        source.fail = False
        source.text = board_pgn(w1, b1, 1, line[:12])
        await until(lambda: at_ply(12))
        data = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
        assert data["relay"]["failures"] == 0


async def test_a_push_the_store_cannot_write_is_503(tmp_path: Any) -> None:
    """When the history cannot be written, a push answers 503 unavailable, not a 200 with per-game errors."""
    from tests.app.test_commit_seam import GatedStore
    from tests.conftest import serve

    store = GatedStore(tmp_path / "data" / "grandmaster.sqlite3")
    async with serve(tmp_path / "data", store=store) as live:
        tid, pairings = await relay_tournament(live)
        t = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
        who = {p["id"]: p["name"] for p in t["players"]}
        (w1, b1), _ = names(pairings, who)
        store.explode = True
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/pgn",
            content=board_pgn(w1, b1, 1, ["e4", "e5"]).encode(),
            headers={**live.auth(), "Content-Type": "application/x-chess-pgn"},
        )
        assert (r.status_code, r.json()["error"]["code"]) == (503, "unavailable")
